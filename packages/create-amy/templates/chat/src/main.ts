// The main thread: accepts connections and hands them to the worker
// threads, which run src/handler.ts. Configured by PORT, HOST, THREADS, and
// STATS_PORT for an optional HTTP endpoint with the server's counters.
import http from 'node:http'
import { createServer } from '@amy/server'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? {{port}})
const threads = process.env.THREADS ? Number(process.env.THREADS) : undefined

// `npm run dev` runs this file as TypeScript (tsx), and the workers load the
// handler's .ts the same way; `npm start` runs the compiled .js.
const handler = new URL(import.meta.url.endsWith('.ts') ? './handler.ts' : './handler.js', import.meta.url)

const server = createServer({ handler, threads })
const address = await server.listen({ host, port })
console.log(`{{name}} listening on ${address.address}:${address.port}`)

// GET /stats on STATS_PORT: connections, bytes and messages, as JSON.
let stats: http.Server | undefined
if (process.env.STATS_PORT !== undefined) {
  stats = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/stats') {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(server.stats()))
  })
  stats.listen(Number(process.env.STATS_PORT), host, () => {
    const { port: statsPort } = stats!.address() as { port: number }
    console.log(`stats on http://${host}:${statsPort}/stats`)
  })
}

// Graceful shutdown: stop accepting, let connections finish (5 s at most).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`${signal}: closing`)
    stats?.close()
    server.close({ timeout: 5000 }).then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`close failed: ${err.message}`)
        process.exit(1)
      },
    )
  })
}
