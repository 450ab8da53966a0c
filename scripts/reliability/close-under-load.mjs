// Issue 7, failure 6: close({ timeout }) under overload. N clients send
// faster than they read to the echo example's handler; then SIGTERM makes
// the server call close({ timeout: CLOSE_TIMEOUT }). Measures how long
// close() took and when the process exited, and how many clients saw EOF
// (clean) versus a reset.
//
//   node scripts/reliability/close-under-load.mjs [--clients 1000] [--timeout 5000] [--load-seconds 5] [--threads 2]
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { args, connect, sleep, startServer } from './lib.mjs'

const opt = args({ clients: 1000, timeout: 5000, loadSeconds: 5, threads: 2 })
const here = dirname(fileURLToPath(import.meta.url))
const server = await startServer(join(here, 'chat-server.mjs'), {
  THREADS: String(opt.threads),
  CLOSE_TIMEOUT: String(opt.timeout),
  HANDLER: 'examples/echo/dist/handler.js',
})
const block = Buffer.alloc(64 * 1024, 0x61)
let eof = 0
let resets = 0
let closed = 0
const sockets = []
for (let i = 0; i < opt.clients; i++) {
  const s = await connect(server.port)
  sockets.push(s)
  // Reads slowly (paused most of the time), writes as fast as it can.
  s.pause()
  const pump = () => {
    while (s.writable && s.write(block));
  }
  s.on('drain', pump)
  s.on('end', () => { eof++; s.end() })
  s.on('error', () => { resets++ })
  s.on('close', () => { closed++ })
  pump()
}
const reader = setInterval(() => {
  for (const s of sockets) { s.resume(); setImmediate(() => s.pause()) }
}, 200)
await sleep(opt.loadSeconds * 1000)
server.proc.kill('SIGUSR2')
for (let i = 0; i < 50 && !/stats /.test(server.output()); i++) await sleep(100)
const stats = JSON.parse(/stats (.*)/.exec(server.output())?.[1] ?? '{}')
const start = performance.now()
server.proc.kill('SIGTERM')
const exited = await new Promise(resolve => server.proc.on('exit', () => resolve(performance.now() - start)))
clearInterval(reader)
for (const s of sockets) s.resume()
const deadline = Date.now() + 10_000
while (closed < opt.clients && Date.now() < deadline) await sleep(50)
const closeMs = Number(/closed after (\d+) ms/.exec(server.output())?.[1] ?? NaN)
const result = {
  clients: opt.clients,
  timeoutMs: opt.timeout,
  closeResolvedMs: closeMs,
  processExitMs: Math.round(exited),
  withinTimeoutPlus1s: closeMs <= opt.timeout + 1000,
  maxWorkerStallMsUnderLoad: stats.maxWorkerStallMs,
  clientsEof: eof,
  clientsReset: resets,
}
console.log(JSON.stringify(result))
for (const s of sockets) s.destroy()
process.exit(result.withinTimeoutPlus1s ? 0 : 1)
