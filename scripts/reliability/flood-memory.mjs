// Issue 7, failure 4: 1-byte chat lines flooded into a room whose members
// do not read. Each non-reader's queue must be bounded by maxBufferedBytes
// at its real cost, so the server's peak RSS must stay under
//   baseline + non-readers x maxBufferedBytes x 1.25
// where the baseline is the peak RSS of the same flood with no non-reader
// (phase 1: the heap the flood itself needs, GC included); phase 2 adds the
// non-readers and floods as long again.
//
//   node scripts/reliability/flood-memory.mjs [--non-readers 16] [--max-buffered 16777216] [--seconds 15] [--threads 2]
//
// Prints one JSON line (MiB) and exits 1 if the bound is broken. A paused
// client does not notice that the server closed it: disconnections are the
// server's error count.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { args, connect, memory, sleep, startServer } from './lib.mjs'

const opt = args({ nonReaders: 16, maxBuffered: 16 * 1024 * 1024, seconds: 15, threads: 2 })
const here = dirname(fileURLToPath(import.meta.url))
const server = await startServer(join(here, 'chat-server.mjs'), { THREADS: String(opt.threads), MAX_BUFFERED_BYTES: String(opt.maxBuffered) })

const member = async (nick, read) => {
  const s = await connect(server.port)
  s.on('error', () => {})
  s.write(`/nick ${nick}\n/join flood\n`)
  if (read) s.resume()
  else s.pause()
  return s
}
const readers = await Promise.all(Array.from({ length: 2 }, (_, i) => member(`reader${i}`, true)))
const publisher = await member('flooder', true)
await sleep(500)
const idle = memory(server.proc.pid).rssMiB

// 1-byte lines ("x\n"), written as fast as the server takes them.
const block = Buffer.from('x\n'.repeat(32 * 1024))
let sent = 0
let stop = false
const pump = () => {
  while (!stop && publisher.write(block)) sent += block.length / 2
}
publisher.on('drain', pump)
const flood = async () => {
  stop = false
  pump()
  const start = performance.now()
  let peak = 0
  while (performance.now() - start < opt.seconds * 1000) {
    await sleep(100)
    peak = Math.max(peak, memory(server.proc.pid).rssMiB)
  }
  stop = true
  return Math.max(peak, memory(server.proc.pid).peakMiB)
}
const baseline = await flood()
const nonReaders = await Promise.all(Array.from({ length: opt.nonReaders }, (_, i) => member(`quiet${i}`, false)))
const peak = await flood()
server.proc.kill('SIGUSR2')
await sleep(500)
const stats = JSON.parse(/stats (.*)/.exec(server.output())?.[1] ?? '{}')
const bound = baseline + (opt.nonReaders * opt.maxBuffered * 1.25) / 2 ** 20
const result = {
  nonReaders: opt.nonReaders,
  maxBufferedBytes: opt.maxBuffered,
  threads: opt.threads,
  secondsPerPhase: opt.seconds,
  linesSent: sent,
  nonReadersDisconnected: stats.workers?.reduce((n, w) => n + w.errors, 0),
  idleMiB: Math.round(idle),
  baselineMiB: Math.round(baseline),
  peakMiB: Math.round(peak),
  boundMiB: Math.round(bound),
  withinBound: peak <= bound,
}
console.log(JSON.stringify(result))
for (const s of [...nonReaders, ...readers, publisher]) s.destroy()
server.proc.kill('SIGKILL')
process.exit(result.withinBound ? 0 : 1)
