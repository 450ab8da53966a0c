// npm start: a multithreaded line-based chat on $HOST:$PORT (default
// 127.0.0.1:7001) with $THREADS workers (default: one per core). Try it with
// two or more `nc 127.0.0.1 7001`.
import { join } from 'node:path'
import { createServer } from '@amy/server'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 7001)
const threads = process.env.THREADS ? Number(process.env.THREADS) : undefined

const server = createServer({ handler: join(__dirname, 'handler.js'), threads })

server.listen({ host, port, backlog: 4096 }).then(
  address => console.log(`chat server listening on ${address.address}:${address.port}`),
  (err: Error) => {
    console.error(`chat server failed to start: ${err.message}`)
    process.exit(1)
  },
)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // Each connection is flushed and ended; the ones still open after 2 s
    // (say, an idle `nc` that never hangs up) are destroyed.
    void server.close({ timeout: 2000 }).then(() => console.log('chat server closed'))
  })
}
