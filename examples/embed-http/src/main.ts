// npm start: the HTTP app on $HOST:$HTTP_PORT (default 127.0.0.1:8080) and
// its chat on $HOST:$CHAT_PORT (default 7003), $THREADS chat workers. SIGTERM
// or Ctrl-C shuts both down gracefully; the process then exits by itself.
import { startApp } from './app.js'

const controller = new AbortController()
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => controller.abort())

startApp({
  host: process.env.HOST ?? '127.0.0.1',
  httpPort: Number(process.env.HTTP_PORT ?? 8080),
  chatPort: Number(process.env.CHAT_PORT ?? 7003),
  threads: process.env.THREADS ? Number(process.env.THREADS) : undefined,
  signal: controller.signal,
}).then(
  app => {
    console.log(`http listening on ${process.env.HOST ?? '127.0.0.1'}:${app.httpPort}, chat on port ${app.chatPort}`)
    void app.closed.then(() => console.log('closed'))
  },
  (err: Error & { code?: string }) => {
    console.error(`failed to start: ${err.code ?? ''} ${err.message}`)
    process.exitCode = 1
  },
)
