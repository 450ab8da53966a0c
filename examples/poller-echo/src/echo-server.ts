// An echo server on @amy/core, one thread: the listener and every connection
// are registered with one Poller attached to this thread's event loop.
import { Interest, Poller, TcpListener, type Notification, type TcpStream } from '@amy/core'

export interface EchoServerOptions {
  host?: string
  port?: number
  /** Stop reading from a connection while this many bytes wait to be written back. */
  maxPendingBytes?: number
}

export interface EchoServer {
  readonly address: { address: string; port: number; family: string }
  readonly connections: number
  close(): void
}

interface Connection {
  stream: TcpStream
  pending: Buffer[] // bytes the peer has not taken yet
  pendingBytes: number
}

export function startEchoServer(options: EchoServerOptions = {}): EchoServer {
  const maxPending = options.maxPendingBytes ?? 1 << 20
  const poller = new Poller()
  const listener = TcpListener.bind({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 })
  const listenerId = poller.registrar.register(listener, Interest.Read)
  const connections = new Map<number, Connection>()
  const buf = Buffer.allocUnsafe(64 * 1024)

  function drop(id: number, conn: Connection): void {
    connections.delete(id)
    conn.stream.close() // deregisters, then closes the fd
  }

  // Writes what is pending; true when nothing is left.
  function flush(conn: Connection): boolean {
    while (conn.pending.length > 0) {
      const n = conn.stream.writev(conn.pending)
      if (n === null) return false
      conn.pendingBytes -= n
      let left = n
      while (left > 0) {
        const head = conn.pending[0]!
        if (head.length <= left) {
          left -= head.length
          conn.pending.shift()
        } else {
          conn.pending[0] = head.subarray(left)
          left = 0
        }
      }
    }
    return true
  }

  // Reads until would-block (edge-triggered), writing each chunk straight back.
  function pump(id: number, conn: Connection): void {
    while (conn.pendingBytes < maxPending) {
      const n = conn.stream.read(buf)
      if (n === null) return
      if (n === 0) {
        // The client is done sending: finish writing, then close.
        if (conn.pendingBytes === 0) drop(id, conn)
        else conn.stream.shutdown('read')
        return
      }
      const chunk = buf.subarray(0, n)
      if (conn.pendingBytes === 0) {
        const w = conn.stream.write(chunk) ?? 0
        if (w === n) continue
        conn.pending.push(Buffer.from(chunk.subarray(w)))
        conn.pendingBytes += n - w
      } else {
        conn.pending.push(Buffer.from(chunk))
        conn.pendingBytes += n
      }
    }
  }

  function onNotification(n: Notification): void {
    if (n.id === listenerId) {
      for (let stream = listener.accept(); stream !== null; stream = listener.accept()) {
        const id = poller.registrar.register(stream, Interest.Both)
        connections.set(id, { stream, pending: [], pendingBytes: 0 })
      }
      return
    }
    const conn = connections.get(n.id)
    if (!conn) return
    try {
      if (n.writable && conn.pendingBytes > 0 && flush(conn)) pump(n.id, conn)
      if (n.readable || n.hangup) pump(n.id, conn)
      if (n.error && connections.has(n.id)) drop(n.id, conn)
    } catch {
      // ECONNRESET, EPIPE: the peer is gone.
      drop(n.id, conn)
    }
  }

  poller.start(batch => {
    for (const n of batch) onNotification(n)
  })

  return {
    address: listener.address(),
    get connections() {
      return connections.size
    },
    close() {
      for (const [id, conn] of connections) drop(id, conn)
      listener.close()
      poller.close()
    },
  }
}
