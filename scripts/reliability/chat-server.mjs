// The chat example's handler behind createServer with the limits taken from
// the environment, for the reliability scripts: PORT (default 0), THREADS,
// MAX_BUFFERED_BYTES, CLOSE_TIMEOUT (ms, default 5000). Prints "listening
// PORT"; on SIGTERM/SIGINT prints "closed after N ms" once close() resolved.
import { appendFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { createServer } = require('@amy/server')
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const env = name => (process.env[name] ? Number(process.env[name]) : undefined)

const server = createServer({
  handler: join(root, process.env.HANDLER ?? 'examples/chat/dist/handler.js'),
  threads: env('THREADS'),
  maxBufferedBytes: env('MAX_BUFFERED_BYTES'),
  logger: 'warn',
})
const { port } = await server.listen({ host: '127.0.0.1', port: env('PORT') ?? 0, backlog: 4096 })
console.log(`listening ${port}`)
process.on('SIGUSR2', () => console.log(`stats ${JSON.stringify(server.stats())}`))
if (process.env.PROBE_FILE) {
  // flood-memory.mjs --probe: each worker's queue cost and publish backlog (MiB), every 100 ms.
  const MiB = x => Math.round((x / 2 ** 20) * 10) / 10
  setInterval(() => {
    const workers = server.stats().workers.map(w => ({ w: w.worker, buffered: MiB(w.bufferedBytes), backlog: MiB(w.pubsubBacklogBytes) }))
    appendFileSync(process.env.PROBE_FILE, JSON.stringify({ t: Date.now(), main: true, workers }) + '\n')
  }, 100).unref()
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    const start = performance.now()
    void server.close({ timeout: env('CLOSE_TIMEOUT') ?? 5000 }).then(() => console.log(`closed after ${Math.round(performance.now() - start)} ms`))
  })
}
