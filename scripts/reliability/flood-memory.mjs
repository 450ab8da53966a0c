// Issue 7, failure 4: 1-byte chat lines flooded into a room whose members
// do not read. Each non-reader's queue must be bounded by maxBufferedBytes
// at its real cost, so the server's peak RSS must stay under
//   baseline + non-readers x maxBufferedBytes x 1.25
//            + min(non-readers, threads) x 24 MiB + 4 MiB
// The last terms are not the non-readers' queues but what a worker that
// falls behind costs (measured with --probe, see docs/reliability.md
// "Memory bounds"): per worker holding non-readers, its inbound pub/sub
// channel filling up (256 messages of <= 64 KiB: 16 MiB, malloc'd) and one
// V8 young-generation step (8 -> 16 MiB); once, the publishing worker's
// backlog (its publishers pause at 4 MiB). Memory the allocator got back
// stays resident, so RSS keeps each of these peaks.
// where the baseline is the peak RSS of the same flood with every member
// reading (phase 1: the heap the flood itself needs, with the same fan-out,
// GC included); in phase 2 the N "quiet" members stop reading and the flood
// goes on as long again, so what phase 2 adds is what their queues cost.
// (--baseline readers: phase 1 without the quiet members, who join at phase
// 2 already paused: the definition used before 2026-11-30, whose phase 2
// also does a fan-out phase 1 did not.)
//
//   node scripts/reliability/flood-memory.mjs [--non-readers 16] [--max-buffered 16777216] [--seconds 15] [--threads 2] [--baseline same|readers] [--probe FILE]
//
// --probe FILE: the server runs probe-handler.mjs (the chat handler plus a
// probe), and FILE gets one JSON line per worker per 100 ms (heap, external,
// queued bytes, GCs) and the process's RSS each time this script samples it.
//
// Prints one JSON line (MiB) and exits 1 if the bound is broken. A paused
// client does not notice that the server closed it: disconnections are the
// server's error count.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { args, connect, memory, sleep, startServer } from './lib.mjs'

const opt = args({ nonReaders: 16, maxBuffered: 16 * 1024 * 1024, seconds: 15, threads: 2, baseline: 'same', probe: '' })
if (opt.baseline !== 'same' && opt.baseline !== 'readers') throw new Error(`--baseline same|readers, not ${opt.baseline}`)
const here = dirname(fileURLToPath(import.meta.url))
const probe = opt.probe === '' ? undefined : opt.probe
if (probe) writeFileSync(probe, '')
const note = (what) => { if (probe) appendFileSync(probe, JSON.stringify({ t: Date.now(), ...what }) + '\n') }
const env = { THREADS: String(opt.threads), MAX_BUFFERED_BYTES: String(opt.maxBuffered) }
if (probe) Object.assign(env, { HANDLER: 'scripts/reliability/probe-handler.mjs', PROBE_FILE: probe })
const server = await startServer(join(here, 'chat-server.mjs'), env)

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
// PROBE_SMAPS=1 with --probe: the server's mappings holding over 1 MiB (start address: resident KiB).
const bigMappings = pid => {
  const out = {}
  let start
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-[0-9a-f]+ /.exec(line)
    if (m) start = m[1]
    else if (line.startsWith('Rss:')) {
      const kb = Number(line.split(/\s+/)[1])
      if (kb > 1024) out[start] = kb
    }
  }
  return out
}
const flood = async (phase) => {
  note({ phase })
  stop = false
  pump()
  const start = performance.now()
  let peak = 0
  while (performance.now() - start < opt.seconds * 1000) {
    await sleep(100)
    const rss = memory(server.proc.pid).rssMiB
    note({ processRss: Math.round(rss), ...(process.env.PROBE_SMAPS && { smaps: bigMappings(server.proc.pid) }) })
    peak = Math.max(peak, rss)
  }
  stop = true
  return Math.max(peak, memory(server.proc.pid).peakMiB)
}
const quiet = () => Promise.all(Array.from({ length: opt.nonReaders }, (_, i) => member(`quiet${i}`, opt.baseline === 'same')))
let nonReaders = opt.baseline === 'same' ? await quiet() : []
const baseline = await flood('baseline')
if (opt.baseline === 'same') for (const s of nonReaders) s.pause()
else nonReaders = await quiet()
const peak = await flood('non-readers')
server.proc.kill('SIGUSR2')
await sleep(500)
const stats = JSON.parse(/stats (.*)/.exec(server.output())?.[1] ?? '{}')
const queues = (opt.nonReaders * opt.maxBuffered * 1.25) / 2 ** 20
const WORKER_BEHIND_MIB = 16 + 8
const BACKLOG_PAUSE_MIB = 4
const bound = baseline + queues + Math.min(opt.nonReaders, opt.threads) * WORKER_BEHIND_MIB + BACKLOG_PAUSE_MIB
const result = {
  nonReaders: opt.nonReaders,
  maxBufferedBytes: opt.maxBuffered,
  threads: opt.threads,
  secondsPerPhase: opt.seconds,
  baseline: opt.baseline,
  linesSent: sent,
  nonReadersDisconnected: stats.workers?.reduce((n, w) => n + w.errors, 0),
  idleMiB: Math.round(idle),
  baselineMiB: Math.round(baseline),
  peakMiB: Math.round(peak),
  boundMiB: Math.round(bound),
  queuesOnlyBoundMiB: Math.round(baseline + queues),
  withinBound: peak <= bound,
}
console.log(JSON.stringify(result))
for (const s of [...nonReaders, ...readers, publisher]) s.destroy()
server.proc.kill('SIGKILL')
process.exit(result.withinBound ? 0 : 1)
