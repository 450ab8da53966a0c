// npm start: a multithreaded echo server on $HOST:$PORT (default
// 127.0.0.1:7000) with $THREADS workers (default: one per core but one);
// BALANCE=reuseport: each worker accepts on its own SO_REUSEPORT listener.
// TLS_KEY and TLS_CERT (PEM files) make it a TLS echo server.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, type ServerTlsOptions } from '@amy/server'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 7000)
const threads = process.env.THREADS ? Number(process.env.THREADS) : undefined
const balance = process.env.BALANCE as 'handoff' | 'reuseport' | undefined
const tls = tlsFromEnv()

function tlsFromEnv(): ServerTlsOptions | undefined {
  const { TLS_KEY: key, TLS_CERT: cert } = process.env
  if (!key && !cert) return undefined
  if (!key || !cert) {
    console.error('echo server: TLS_KEY and TLS_CERT go together (PEM files)')
    process.exit(1)
  }
  return { key: readFileSync(key), cert: readFileSync(cert) }
}

const server = createServer({ handler: join(__dirname, 'handler.js'), threads, ...(balance && { balance }) })

server.listen({ host, port, tls }).then(
  address => console.log(`echo server listening on ${address.address}:${address.port}${tls ? ' (TLS)' : ''}`),
  (err: Error) => {
    console.error(`echo server failed to start: ${err.message}`)
    process.exit(1)
  },
)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.close().then(() => console.log('echo server closed'))
  })
}
