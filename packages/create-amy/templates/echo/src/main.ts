// The main thread: accepts connections and hands them to the worker
// threads, which run src/handler.ts. Configured by PORT, HOST and THREADS.
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

// Graceful shutdown: stop accepting, let connections finish (5 s at most).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`${signal}: closing`)
    server.close({ timeout: 5000 }).then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`close failed: ${err.message}`)
        process.exit(1)
      },
    )
  })
}
