// Runs in every worker thread: each accepted connection gets an outbound
// connection to the upstream, and conn.pipe() both ways moves the bytes (with
// backpressure, forwarding end-of-stream; on Linux via splice(2), never
// through JavaScript; with TLS on a side, copied through the worker's read
// buffer, decrypted and encrypted natively). Each side's state is the other side.
import { defineHandler, type Connection, type ConnectTlsOptions } from '@amy/server'

/** What main.ts passes as handlerData: the upstream, its host already an IP address. */
export interface Upstream {
  host: string
  port: number
  /** As the user wrote it, for messages. */
  label: string
  /** TLS to the upstream (UPSTREAM_TLS=1). */
  tls?: ConnectTlsOptions
}

let upstream: Upstream

export default defineHandler<Connection, Upstream>({
  setup(context) {
    upstream = context.data
  },

  open(client) {
    if (client.outbound) return // the upstream side connected: the pipes already run
    const up = client.context.connect({ host: upstream.host, port: upstream.port, tls: upstream.tls })
    up.state = client
    client.state = up
    client.pipe(up) // bytes written before the connect completes are queued
    up.pipe(client)
  },

  close(conn, err) {
    if (!conn.outbound || err === undefined) return
    const client = conn.state
    const what = conn.connecting ? 'connect to' : 'connection to'
    console.error(`proxy: ${what} upstream ${upstream.label} failed (${err.message}); closing client connection ${client?.id ?? '?'}`)
    // pipe() already destroys the other side on an error; make it explicit.
    if (client !== undefined && !client.closed) client.destroy()
  },
})
