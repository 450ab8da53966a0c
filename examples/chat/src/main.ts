// npm start: a multithreaded line-based chat on $HOST:$PORT (default
// 127.0.0.1:7001) with $THREADS workers (default: one per core). Try it with
// two or more `nc 127.0.0.1 7001`.
//
// With REDIS_URL (e.g. redis://127.0.0.1:6379) several instances behind a
// TCP load balancer are one chat: rooms span instances over Redis pub/sub
// (channels REDIS_PREFIX + 'room:NAME', default prefix 'chat:'). INSTANCE
// names this instance in the welcome line. TLS_KEY and TLS_CERT (PEM files)
// make it a TLS chat (`openssl s_client -connect 127.0.0.1:7001`). See README.md.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, type ServerTlsOptions } from '@amy/server'
import { redisPubSub } from '@amy/redis'
import type { ChatData } from './handler.js'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 7001)
const threads = process.env.THREADS ? Number(process.env.THREADS) : undefined
const redisUrl = process.env.REDIS_URL
const handlerData: ChatData = { instance: process.env.INSTANCE }
const tls = tlsFromEnv()

function tlsFromEnv(): ServerTlsOptions | undefined {
  const { TLS_KEY: key, TLS_CERT: cert } = process.env
  if (!key && !cert) return undefined
  if (!key || !cert) {
    console.error('chat server: TLS_KEY and TLS_CERT go together (PEM files)')
    process.exit(1)
  }
  return { key: readFileSync(key), cert: readFileSync(cert) }
}

const server = createServer({
  handler: join(__dirname, 'handler.js'),
  threads,
  handlerData,
  ...(redisUrl && {
    pubsub: redisPubSub({
      url: redisUrl,
      prefix: process.env.REDIS_PREFIX ?? 'chat:',
      // The benchmark's switch (npm run bench:chat): where the Redis connections live.
      ...(process.env.REDIS_PLACEMENT === 'worker' && { placement: 'worker' as const }),
    }),
  }),
})

server.listen({ host, port, backlog: 4096, tls }).then(
  address => console.log(`chat server listening on ${address.address}:${address.port}${tls ? ' (TLS)' : ''}${redisUrl ? ` (rooms shared over ${redisUrl})` : ''}`),
  (err: Error & { code?: string }) => {
    console.error(`chat server failed to start: ${err.code ?? ''} ${err.message}`)
    process.exit(1)
  },
)

// SIGUSR2 prints the server's counters (pub/sub included) as one JSON line.
process.on('SIGUSR2', () => console.log(`chat server stats ${JSON.stringify(server.stats())}`))

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // Each connection is flushed and ended; the ones still open after 2 s
    // (say, an idle `nc` that never hangs up) are destroyed.
    void server.close({ timeout: 2000 }).then(() => console.log('chat server closed'))
  })
}
