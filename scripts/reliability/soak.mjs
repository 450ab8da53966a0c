// The soak (issue 7): mixed echo, chat and proxy load on one server for a
// while, with faults injected in turn, then close() under load. Checks:
//   - every byte of every completed echo/proxy exchange comes back as sent,
//     every chat line arrives intact and in order per sender (no gap);
//   - no fd leak: once the clients are gone the server has the fds it
//     started with, and no connection open;
//   - bounded memory: the server's peak RSS stays under its idle RSS plus
//     the stated budget (--rss-budget-mib);
//   - close({ timeout }) under load returns within timeout + 1 s (skipped
//     with --timing 0: the test in npm test asserts no durations) and the
//     server process exits by itself, with status 0.
// Faults, one every --fault-every seconds, in this order: a worker crash,
// an RST storm, slow readers in a chat flood, a worker stall (a spinning
// thread the watchdog terminates), EMFILE (idle connections past the
// server's fd limit), a churn burst.
//
//   node scripts/reliability/soak.mjs [--seconds 600] [--threads 2] [--fault-every 6]
//        [--fd-limit 1024] [--rss-budget-mib 400] [--timing 1] [--json 0] [--verbose 0]
//        [--echo 12] [--proxy 6] [--chat 10] [--pace-ms 0] [--faults crash,rst,slow,stall,emfile,churn]
// --echo/--proxy/--chat: how many clients of each kind loop at once;
// --pace-ms: a pause after each exchange (the npm test version is lighter).
// `npm run soak` runs the 10-minute version. Prints the figures (and with
// --json 1 one JSON line last); exits 1 if an invariant failed.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { args, sleep } from './lib.mjs'

const opt = args({ seconds: 600, threads: 2, faultEvery: 6, fdLimit: 1024, rssBudgetMib: 400, timing: 1, json: 0, closeTimeout: 2000, faults: 'crash,rst,slow,stall,emfile,churn', verbose: 0, echo: 12, proxy: 6, chat: 10, paceMs: 0 })
const here = dirname(fileURLToPath(import.meta.url))
const STALL_TIMEOUT = 1000
const MAX_BUFFERED = 1024 * 1024
const EXCHANGE_DEADLINE_MS = 20_000

const fig = {
  seconds: opt.seconds,
  threads: opt.threads,
  echoExchanges: 0,
  proxyExchanges: 0,
  bytesVerified: 0,
  chatLinesVerified: 0,
  chatJoins: 0,
  connections: 0,
  interrupted: 0, // exchanges cut by a fault (connection closed mid-way): not verified, not failures
  mismatches: 0,
  chatErrors: 0,
  stuck: 0,
  connectErrors: 0,
  connectErrorsBy: {}, // "CODE during FAULT": how many
  faults: { crash: 0, rst: 0, slow: 0, stall: 0, emfile: 0, churn: 0 },
  rstConnections: 0,
  slowReadersDisconnected: 0,
  slowReadersTotal: 0,
  emfileConnections: 0,
  churnExchanges: 0,
}
const problems = []
let currentFault = 'none'
let t0 = Date.now()
/** A connect that failed: counted by its code and the fault running then; a short pause so that a loop does not spin on it. */
const connectFailed = async err => {
  fig.connectErrors++
  const key = `${err?.code ?? 'error'} during ${currentFault.split('@')[0]}`
  fig.connectErrorsBy[key] = (fig.connectErrorsBy[key] ?? 0) + 1
  await sleep(10)
}
const fail = what => {
  if (problems.length < 20) problems.push(`${what} (at ${((Date.now() - t0) / 1000).toFixed(1)} s, last fault ${currentFault})`)
}

// ---- the upstream echo for the proxy traffic (node:net, in this process) ----
const upstream = net.createServer(s => {
  s.on('error', () => {})
  s.pipe(s)
})
await new Promise(resolve => upstream.listen(0, '127.0.0.1', resolve))

// ---- the server process, under a low fd limit so that EMFILE can be reached ----
// Every client comes from 127.0.0.1: the per-address limit sits above the
// most this run holds at once (the EMFILE storm plus the load), so a count
// that leaked (a close or a crash not given back) would show as refusals.
const PER_ADDRESS = opt.fdLimit + 500
const config = { threads: opt.threads, maxBufferedBytes: MAX_BUFFERED, stallTimeout: STALL_TIMEOUT, maxConnectionsPerAddress: PER_ADDRESS, upstream: upstream.address().port }
const proc = spawn('/bin/sh', ['-c', `ulimit -n ${opt.fdLimit} && exec "$0" "$1"`, process.execPath, join(here, 'soak-server.mjs')], {
  env: { ...process.env, SOAK_CONFIG: JSON.stringify(config) },
  stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
})
let serverStderr = ''
proc.stderr.setEncoding('utf8').on('data', s => {
  serverStderr += s
  if (serverStderr.length > 200_000) serverStderr = serverStderr.slice(-100_000)
})
process.once('exit', () => proc.kill('SIGKILL'))
const exited = new Promise(resolve => proc.once('exit', (code, signal) => resolve({ code, signal })))
let diedEarly
let closing = false
void exited.then(e => {
  if (!closing) {
    diedEarly = e
    fail(`the server process exited during the run: ${JSON.stringify(e)}`)
  }
})
const waiting = new Map()
proc.on('message', msg => {
  const resolve = waiting.get(msg.type)
  waiting.delete(msg.type)
  resolve?.(msg)
})
const reply = type => new Promise(resolve => waiting.set(type, resolve))
let lastProbe
const probe = async () => {
  if (!proc.connected) return lastProbe
  const p = reply('probe')
  proc.send({ type: 'probe' })
  lastProbe = await p
  return lastProbe
}
const listening = await Promise.race([reply('listening'), exited.then(e => { throw new Error(`server exited before listening: ${JSON.stringify(e)}\n${serverStderr}`) })])
const port = listening.port
const idle = { rssKiB: listening.rssKiB, fds: listening.fds }

// ---- clients --------------------------------------------------------------

let running = true
const sockets = new Set()
const rand = n => Math.floor(Math.random() * n)

function open(localPort = port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: localPort })
    s.once('connect', () => {
      sockets.add(s)
      s.once('close', () => sockets.delete(s))
      resolve(s)
    })
    s.once('error', reject)
  })
}

/** Bytes from a socket, taken n at a time; null once the socket closed first. */
class Reader {
  #chunks = []
  #size = 0
  #closed = false
  #wake = undefined
  constructor(socket) {
    socket.on('data', c => {
      this.#chunks.push(c)
      this.#size += c.length
      this.#wake?.()
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.#closed = true
      this.#wake?.()
    })
  }
  async take(n, deadlineMs) {
    const deadline = Date.now() + deadlineMs
    while (this.#size < n) {
      if (this.#closed) return null
      if (Date.now() > deadline) return 'stuck'
      await new Promise(resolve => {
        this.#wake = resolve
        setTimeout(resolve, 500)
      })
      this.#wake = undefined
    }
    const all = Buffer.concat(this.#chunks)
    this.#chunks = all.length > n ? [all.subarray(n)] : []
    this.#size = all.length - n
    return all.subarray(0, n)
  }
}

/** Sizes mostly small, sometimes up to 256 KiB. */
const exchangeSize = () => (Math.random() < 0.8 ? 1 + rand(2048) : 1 + rand(256 * 1024))

/** One echo or proxy connection: a few request/response exchanges, each checked byte for byte, then FIN or RST. */
async function exchangeSession(kind, rounds) {
  let s
  try {
    s = await open()
  } catch (err) {
    await connectFailed(err)
    return
  }
  fig.connections++
  const reader = new Reader(s)
  s.write(kind + '\n')
  for (let r = 0; r < rounds; r++) {
    const payload = randomBytes(exchangeSize())
    s.write(payload)
    const got = await reader.take(payload.length, EXCHANGE_DEADLINE_MS)
    if (got === null) {
      fig.interrupted++
      break
    }
    if (got === 'stuck') {
      fig.stuck++
      fail(`${kind}: no reply to ${payload.length} bytes within ${EXCHANGE_DEADLINE_MS} ms`)
      break
    }
    if (!got.equals(payload)) {
      fig.mismatches++
      fail(`${kind}: ${payload.length} bytes came back different`)
      break
    }
    if (kind === 'echo') fig.echoExchanges++
    else fig.proxyExchanges++
    fig.bytesVerified += payload.length
    if (opt.paceMs > 0) await sleep(opt.paceMs)
  }
  if (Math.random() < 0.2) s.resetAndDestroy()
  else s.end()
}

async function exchanger(kind) {
  while (running) await exchangeSession(kind, 1 + rand(20))
}

// Chat lines: "ID SEQ PAYLOAD"; the payload is a function of (ID, SEQ), so every receiver can check it.
let nextChatId = 1
const chatPayload = (id, seq) => ((id * 7919 + seq * 104729) % 1e9).toString(36).repeat(1 + ((id + seq) % 40))
const chatLine = (id, seq) => `${id} ${seq} ${chatPayload(id, seq)}\n`

/** A chat member: joins, sends a line every 20-100 ms (or floods), checks every line it receives; leaves after `lifeMs`. */
async function chatMember({ lifeMs, reads = true, flood = false }) {
  let s
  try {
    s = await open()
  } catch (err) {
    await connectFailed(err)
    return { closedByServer: false }
  }
  fig.connections++
  const id = nextChatId++
  const last = new Map()
  let buf = ''
  let joined = false
  let closedByUs = false
  const closed = new Promise(resolve => s.once('close', resolve))
  s.on('error', () => {})
  s.setEncoding('latin1')
  s.on('data', chunk => {
    buf += chunk
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      if (!joined) {
        joined = line === 'joined'
        if (!joined) fail(`chat: first line ${JSON.stringify(line.slice(0, 40))}`)
        continue
      }
      const [sid, sseq, payload] = line.split(' ')
      const from = Number(sid)
      const seq = Number(sseq)
      if (payload !== chatPayload(from, seq)) {
        fig.chatErrors++
        fail(`chat: line ${from}/${seq} corrupted`)
        continue
      }
      const prev = last.get(from)
      if (prev !== undefined && seq !== prev + 1) {
        fig.chatErrors++
        fail(`chat: from ${from}, ${seq} after ${prev}`)
      }
      last.set(from, seq)
      fig.chatLinesVerified++
    }
  })
  if (!reads) s.pause()
  s.write(`chat ${id}\n`)
  fig.chatJoins++
  let seq = 0
  const until = Date.now() + lifeMs
  let gone = false
  closed.then(() => { gone = true })
  while (running && !gone && Date.now() < until) {
    if (flood) {
      // Lines as fast as the socket takes them, 256 KiB per turn at most:
      // on loopback a write often goes straight to the kernel and returns
      // true, so without a cap this loop would never yield.
      let ok = true
      for (let wrote = 0; ok && wrote < 256 * 1024 && !gone && s.writable; ) {
        const line = chatLine(id, seq++)
        wrote += line.length
        ok = s.write(line)
      }
      await Promise.race([ok ? new Promise(resolve => setImmediate(resolve)) : new Promise(resolve => s.once('drain', resolve)), closed, sleep(100)])
    } else {
      // A member that does not read still writes: a paused socket would not
      // notice the server's close otherwise (it reads neither FIN nor RST).
      if ((joined || !reads) && s.writable) s.write(chatLine(id, seq++))
      await Promise.race([sleep(20 + rand(80)), closed])
    }
  }
  const closedByServer = gone
  if (!gone) {
    closedByUs = true
    if (!reads) s.destroy()
    else s.end()
  }
  await Promise.race([closed, sleep(10_000)])
  void closedByUs
  return { closedByServer }
}

async function chatter() {
  while (running) await chatMember({ lifeMs: 2000 + rand(8000) })
}

// ---- faults -----------------------------------------------------------------

async function command(line) {
  try {
    const s = await open()
    s.on('error', () => {})
    s.write(line + '\n')
    // The worker ends it (crash, stall); never wait on it past a while.
    await Promise.race([new Promise(resolve => s.once('close', resolve)), sleep(5000)])
    s.destroy()
  } catch (err) {
    await connectFailed(err)
  }
}

const faults = {
  crash: () => command('crash'),
  stall: () => command(`stall ${STALL_TIMEOUT + 1500}`),
  async rst() {
    // Connections reset at once, some after a partial first line, some mid-exchange.
    const all = await Promise.allSettled(Array.from({ length: 150 }, () => open()))
    for (const [i, r] of all.entries()) {
      if (r.status !== 'fulfilled') continue
      const s = r.value
      s.on('error', () => {})
      if (i % 3 === 1) s.write('echo\nabc')
      if (i % 3 === 2) s.write('proxy\n' + 'x'.repeat(1000))
      fig.rstConnections++
    }
    await sleep(50)
    for (const r of all) if (r.status === 'fulfilled') r.value.resetAndDestroy()
  },
  async slow() {
    // Three members that never read, while one member floods the room.
    const slow = Array.from({ length: 3 }, () => chatMember({ lifeMs: 8000, reads: false }))
    const flooder = chatMember({ lifeMs: 5000, flood: true })
    const results = await Promise.all(slow)
    await flooder
    fig.slowReadersTotal += slow.length
    fig.slowReadersDisconnected += results.filter(r => r.closedByServer).length
  },
  async emfile() {
    // Idle connections past the server's fd limit, held 2 s: accept() fails with EMFILE meanwhile.
    const held = await Promise.allSettled(Array.from({ length: opt.fdLimit + 200 }, () => open()))
    for (const r of held) if (r.status === 'fulfilled') {
      r.value.on('error', () => {})
      fig.emfileConnections++
    }
    await sleep(2000)
    for (const r of held) if (r.status === 'fulfilled') r.value.destroy()
  },
  async churn() {
    // Many short connections at once: connect, one exchange, close.
    const before = fig.echoExchanges
    await Promise.all(Array.from({ length: 200 }, () => exchangeSession('echo', 1)))
    fig.churnExchanges += fig.echoExchanges - before
  },
}
const order = opt.faults.split(',').filter(Boolean)
for (const name of order) if (!(name in faults)) throw new Error(`unknown fault ${name}; known: ${Object.keys(faults).join(',')}`)

// ---- the run ------------------------------------------------------------------

const started = Date.now()
t0 = started
const peak = { rssKiB: idle.rssKiB, fds: idle.fds }
const sample = async () => {
  if (closing) return lastProbe
  const p = await probe()
  if (p.peakKiB > peak.rssKiB) peak.rssKiB = p.peakKiB
  if (p.fds > peak.fds) peak.fds = p.fds
  return p
}
const lag = monitorEventLoopDelay({ resolution: 20 })
lag.enable()
const sampler = setInterval(() => {
  void sample().then(p => {
    if (!opt.verbose || p === undefined) return
    const at = ((Date.now() - started) / 1000).toFixed(0)
    console.log(`  [${at} s] echo ${fig.echoExchanges} proxy ${fig.proxyExchanges} chat ${fig.chatLinesVerified}; server conns ${p.stats.connections} in ${(p.stats.bytesIn / 2 ** 20).toFixed(0)} MiB, fds ${p.fds}, rss ${(p.rssKiB / 1024).toFixed(0)} MiB; driver lag max ${(lag.max / 1e6).toFixed(0)} ms; fault ${currentFault}`)
    lag.reset()
  })
}, 2000)

const startLoad = () => [
  ...Array.from({ length: opt.echo }, () => exchanger('echo')),
  ...Array.from({ length: opt.proxy }, () => exchanger('proxy')),
  ...Array.from({ length: opt.chat }, () => chatter()),
]
const load = startLoad()
let nextFault = 0
while (Date.now() - started < opt.seconds * 1000 && diedEarly === undefined) {
  await sleep(opt.faultEvery * 1000)
  if (Date.now() - started >= opt.seconds * 1000) break
  if (order.length === 0) continue
  const name = order[nextFault++ % order.length]
  fig.faults[name]++
  currentFault = `${name}@${((Date.now() - started) / 1000).toFixed(1)}`
  await faults[name]()
  currentFault = `after ${name}`
}
running = false
await Promise.all(load)
for (const s of sockets) s.destroy()

// No fd leak: with every client gone, the server is back to its idle fds.
let settled
const settleBy = Date.now() + 20_000
do {
  settled = await sample()
  if (settled.stats.connections === 0 && settled.fds === idle.fds) break
  await sleep(200)
} while (Date.now() < settleBy)
fig.fds = { idle: idle.fds, peak: peak.fds, afterLoad: settled.fds }
fig.connectionsOpenAfterLoad = settled.stats.connections
const st = settled.stats
fig.server = {
  accepted: st.accepted,
  acceptFailures: st.acceptFailures,
  refusedPerAddress: st.refusedPerAddress,
  workerCrashes: st.workerCrashes,
  workerStalls: st.workerStalls,
  connectionsLostToCrashes: st.connectionsLostToCrashes,
  maxWorkerStallMs: st.maxWorkerStallMs,
  errors: st.workers.reduce((n, w) => n + w.errors, 0),
  bytesIn: st.bytesIn,
  bytesOut: st.bytesOut,
}

// close() under load: the exchangers run again, then the server closes.
currentFault = 'none'
running = true
const closingLoad = startLoad()
await sleep(3000)
closing = true
currentFault = 'close'
clearInterval(sampler)
const closed = reply('closed')
if (proc.connected) proc.send({ type: 'close', timeout: opt.closeTimeout })
const closeReply = await Promise.race([closed, exited.then(() => ({ closeMs: NaN, peakKiB: 0 }))])
const exit = await exited
running = false
await Promise.all(closingLoad)
for (const s of sockets) s.destroy()
clearInterval(sampler)
upstream.close()
peak.rssKiB = Math.max(peak.rssKiB, closeReply.peakKiB)
fig.closeUnderLoad = { timeoutMs: opt.closeTimeout, closeMs: Math.round(closeReply.closeMs), exit }
const mib = kib => Math.round(kib / 1024)
fig.rssMiB = { idle: mib(idle.rssKiB), peak: mib(peak.rssKiB), afterLoad: mib(settled.rssKiB), budget: opt.rssBudgetMib }
fig.elapsedS = Math.round((Date.now() - started) / 1000)

// ---- invariants ---------------------------------------------------------------
const check = (ok, what) => {
  if (!ok) fail(what)
}
check(fig.mismatches === 0, `${fig.mismatches} echo/proxy exchanges came back different`)
check(fig.chatErrors === 0, `${fig.chatErrors} chat lines corrupted or out of order`)
check(fig.echoExchanges > 0 && fig.proxyExchanges > 0 && fig.chatLinesVerified > 0, 'a kind of traffic completed nothing')
check(fig.fds.afterLoad === fig.fds.idle, `fds: ${fig.fds.afterLoad} after the load, ${fig.fds.idle} idle`)
check(fig.connectionsOpenAfterLoad === 0, `${fig.connectionsOpenAfterLoad} connections still open after every client left`)
check(peak.rssKiB <= idle.rssKiB + opt.rssBudgetMib * 1024, `peak RSS ${mib(peak.rssKiB)} MiB over idle ${mib(idle.rssKiB)} + budget ${opt.rssBudgetMib}`)
check(fig.server.refusedPerAddress === 0, `${fig.server.refusedPerAddress} connections refused by the per-address limit (${PER_ADDRESS}): a count leaked`)
check(exit.code === 0, `the server process exited with ${JSON.stringify(exit)}`)
check(fig.server.workerCrashes >= fig.faults.crash, `${fig.faults.crash} crashes injected, ${fig.server.workerCrashes} counted`)
check(fig.server.workerStalls >= fig.faults.stall, `${fig.faults.stall} stalls injected, ${fig.server.workerStalls} counted`)
if (opt.timing) {
  check(fig.stuck === 0, `${fig.stuck} exchanges got no reply within ${EXCHANGE_DEADLINE_MS} ms`)
  check(fig.closeUnderLoad.closeMs <= opt.closeTimeout + 1000, `close({ timeout: ${opt.closeTimeout} }) took ${fig.closeUnderLoad.closeMs} ms`)
}
fig.problems = problems
fig.ok = problems.length === 0

console.log(`soak: ${fig.elapsedS} s, ${opt.threads} threads, a fault every ${opt.faultEvery} s`)
console.log(`  traffic    echo ${fig.echoExchanges} exchanges, proxy ${fig.proxyExchanges}, ${(fig.bytesVerified / 2 ** 20).toFixed(1)} MiB verified; chat ${fig.chatLinesVerified} lines verified over ${fig.chatJoins} joins; ${fig.connections} connections; ${fig.interrupted} exchanges cut by faults`)
console.log(`  faults     ${JSON.stringify(fig.faults)}; RST ${fig.rstConnections} conns; slow readers disconnected ${fig.slowReadersDisconnected}/${fig.slowReadersTotal}; EMFILE storm ${fig.emfileConnections} conns, ${fig.server.acceptFailures} accept failures`)
if (fig.connectErrors > 0) console.log(`  connects   ${fig.connectErrors} failed: ${JSON.stringify(fig.connectErrorsBy)}`)
console.log(`  server     crashes ${fig.server.workerCrashes}, stalls ${fig.server.workerStalls}, lost ${fig.server.connectionsLostToCrashes}, worst stall ${fig.server.maxWorkerStallMs} ms, error closes ${fig.server.errors}`)
console.log(`  memory     RSS idle ${fig.rssMiB.idle} MiB, peak ${fig.rssMiB.peak}, after load ${fig.rssMiB.afterLoad} (budget +${opt.rssBudgetMib})`)
console.log(`  fds        idle ${fig.fds.idle}, peak ${fig.fds.peak}, after load ${fig.fds.afterLoad}`)
console.log(`  close      close({ timeout: ${opt.closeTimeout} }) under load: ${fig.closeUnderLoad.closeMs} ms; exit ${JSON.stringify(exit)}`)
console.log(fig.ok ? '  invariants held' : `  FAILED:\n    ${problems.join('\n    ')}`)
if (!fig.ok && serverStderr) console.log(`server stderr (tail):\n${serverStderr.slice(-6000)}`)
if (opt.json) console.log(JSON.stringify(fig))
process.exitCode = fig.ok ? 0 : 1
