// npm start: a one-thread echo server on the core API, on $HOST:$PORT (default 127.0.0.1:7000).
import { startEchoServer } from './echo-server.js'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 7000)

const server = startEchoServer({ host, port })
console.log(`poller echo server listening on ${server.address.address}:${server.address.port}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close()
    console.log('poller echo server closed')
  })
}
