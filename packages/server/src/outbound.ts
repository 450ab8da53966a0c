import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { TcpStream, type ByteStream } from '@amy/core'
import type { Connection } from './connection.js'
import { ServerError } from './errors.js'

// Outbound connections (context.connect) to host names and with a connect
// timeout. A name is resolved with dns.lookup (as net.connect: /etc/hosts,
// then DNS; the first address) while the Connection already exists: it is
// `connecting`, known by an id reserved from the registrar, and its socket
// is made and registered under that id once the address is known.

/** The IP address in `host` ("[::1]" brackets dropped), or undefined for a name. */
export function ipLiteral(host: string): string | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  return isIP(bare) !== 0 ? bare : undefined
}

/** A stream with no socket yet (closed): what a connection holds until its name resolves. */
export function unconnected(): TcpStream {
  return new TcpStream(-1)
}

/**
 * Resolves `host`, then connects `conn` to it: `register` wraps the new
 * socket (TLS) and puts it into the worker's poller under the connection's
 * reserved id. A failed lookup (ENOTFOUND, EAI_AGAIN) or connect closes the
 * connection with that error, as a refused connect does.
 */
export function resolveThenConnect(conn: Connection, host: string, port: number, register: (tcp: TcpStream) => ByteStream): void {
  lookup(host).then(
    ({ address }) => {
      if (conn.closed) return
      let tcp: TcpStream | undefined
      try {
        tcp = TcpStream.connect({ host: address, port })
        conn.attach(register(tcp))
      } catch (err) {
        tcp?.close()
        conn.destroy(err as Error)
      }
    },
    (err: NodeJS.ErrnoException) => {
      if (conn.closed) return
      if (typeof err.message === 'string' && !err.message.includes(host)) err.message += ` (${host})`
      conn.destroy(err)
    },
  )
}

/** Closes `conn` with ERR_CONNECT_TIMEOUT unless it connected (or closed) within `ms`. */
export function armConnectTimeout(conn: Connection, host: string, port: number, ms: number): void {
  const timer = setTimeout(() => {
    if (conn.connecting && !conn.closed) {
      conn.destroy(new ServerError('ERR_CONNECT_TIMEOUT', `connect to ${host}:${port} did not complete within ${ms} ms`))
    }
  }, ms)
  timer.unref()
}
