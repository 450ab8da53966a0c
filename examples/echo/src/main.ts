// npm start: a multithreaded echo server on $HOST:$PORT (default
// 127.0.0.1:7000) with $THREADS workers (default: one per core but one);
// BALANCE=reuseport: each worker accepts on its own SO_REUSEPORT listener.
import { join } from 'node:path'
import { createServer } from '@amy/server'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 7000)
const threads = process.env.THREADS ? Number(process.env.THREADS) : undefined
const balance = process.env.BALANCE as 'handoff' | 'reuseport' | undefined

const server = createServer({ handler: join(__dirname, 'handler.js'), threads, ...(balance && { balance }) })

server.listen({ host, port }).then(
  address => console.log(`echo server listening on ${address.address}:${address.port}`),
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
