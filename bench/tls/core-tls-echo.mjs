// A TLS echo server on @amy/core alone (one thread, one Poller, TlsStream),
// for the TLS harness in ../shared/bench/tls (tls_run.sh): it reads PORT,
// TLS_KEY and TLS_CERT (PEM paths) and prints READY when listening. This
// measures the native TLS layer and its binding, not @amy/server.
//
//   cd ../shared/bench && ROUNDS=3 tls/tls_run.sh ratio \
//     'node tls/node_tls_echo.js' 'node <repo>/bench/tls/core-tls-echo.mjs'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Interest, Poller, TcpListener, TlsContext, TlsStream } = require('@amy/core')

const port = Number(process.env.PORT || 9443)
const context = TlsContext.createServer({ key: readFileSync(process.env.TLS_KEY), cert: readFileSync(process.env.TLS_CERT) })
const poller = new Poller()
const listener = TcpListener.bind({ host: '127.0.0.1', port, backlog: 4096 })
const listenerId = poller.registrar.register(listener, Interest.Read)
const conns = new Map() // registration id -> { stream, queue }
const buf = Buffer.allocUnsafe(65536)

function drop(id, conn) {
  conns.delete(id)
  conn.stream.close()
}

// Edge-triggered: flush what is queued, then read until would-block while
// nothing is queued (backpressure), echoing each read at once.
function service(id, conn) {
  const { stream, queue } = conn
  try {
    if (!stream.flush()) return
    while (queue.length > 0) {
      const n = stream.write(queue[0])
      if (n === null) return
      if (n < queue[0].length) queue[0] = queue[0].subarray(n)
      else queue.shift()
    }
    for (;;) {
      const n = stream.read(buf)
      if (n === null) return
      if (n === 0) return drop(id, conn)
      const w = stream.write(buf.subarray(0, n))
      if (w === null) {
        queue.push(Buffer.from(buf.subarray(0, n)))
        return
      }
      if (w < n) {
        queue.push(Buffer.from(buf.subarray(w, n)))
        return
      }
    }
  } catch {
    drop(id, conn)
  }
}

poller.start(batch => {
  for (const n of batch) {
    if (n.id === listenerId) {
      for (let tcp = listener.accept(); tcp !== null; tcp = listener.accept()) {
        const conn = { stream: TlsStream.server(tcp, context), queue: [] }
        const id = poller.registrar.register(conn.stream, Interest.Both)
        conns.set(id, conn)
        service(id, conn)
      }
    } else {
      const conn = conns.get(n.id)
      if (conn) service(n.id, conn)
    }
  }
})
console.log(`READY core-tls-echo port=${port} openssl=${process.versions.openssl}`)
