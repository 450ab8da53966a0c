// Runs in every worker thread: each accepted connection gets an outbound
// connection to the upstream, and conn.pipe() both ways moves the bytes
// (with backpressure, forwarding end-of-stream; on Linux via splice(2),
// never through JavaScript). Each side's state is the other side.
import { defineHandler, type Connection } from '@amy/server/handler'

/** What main.ts passes as handlerData. */
export interface Upstream {
  host: string
  port: number
}

let upstream: Upstream

export default defineHandler<Connection, Upstream>({
  setup(context) {
    upstream = context.data
  },
  open(client) {
    if (client.outbound) return // the upstream side connected: the pipes already run
    const up = client.context.connect({ host: upstream.host, port: upstream.port })
    up.state = client
    client.state = up
    client.pipe(up) // bytes written before the connect completes are queued
    up.pipe(client)
  },
  close(conn, err) {
    // The upstream refused or failed: say so, and drop its client.
    if (!conn.outbound || err === undefined) return
    conn.log.warn({ err }, `upstream ${upstream.host}:${upstream.port} failed`)
    if (conn.state !== undefined && !conn.state.closed) conn.state.destroy()
  },
})
