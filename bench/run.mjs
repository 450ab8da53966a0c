#!/usr/bin/env node
// bench/run.mjs: TCP servers compared in one run (A B A B ...): echo, chat
// fan-out and proxy modes, each with a C reference server from bench/c/.
//
//   node bench/run.mjs                      node:net (A) vs amy echo (B), scenarios a-e, 3 rounds
//   node bench/run.mjs --rounds 5 --scenarios a,c
//   node bench/run.mjs --mode chat --with-c node:net chat vs amy chat (vs C), 1000 clients / 10 rooms
//   node bench/run.mjs --mode proxy --with-c  64 B echo and bulk through node:net / amy / C splice proxies
//   node bench/run.mjs --mode tls --with-c    TLS echo 64 B / 16 KiB and full handshakes: node:tls / amy / C OpenSSL
//   node bench/run.mjs --threads 1,2        every server but A once per THREADS value
//   node bench/run.mjs --server 'base=node x.js' --server 'new=node y.js'
//   node bench/run.mjs --add 'amy 2t=THREADS=2 node examples/echo/dist/main.js'
//   node bench/run.mjs --write-doc          also regenerate the results in docs/benchmarks.md
//   node bench/run.mjs --selftest           check that the load generator catches corruption
//
// Every server is a shell command started from the repository root with PORT
// and HOST=127.0.0.1 in its environment, in its own process group; it is
// ready when it prints a "listening on" (or READY) line and its port accepts
// a connection. The first server is A, the baseline of every ratio. All the
// servers stay up for the whole run and idle while another is measured; for
// each round and scenario they are measured back to back, so drift of the
// shared machine hits them alike, and each ratio is taken within a round.
// Server CPU is measured by the load generator (bench/loadgen.c, chatgen.c)
// from /proc over its measured window, for the server's whole process group
// (bulk proxy runs: by this script around bulkgen's run).
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { BENCH, BUILD, RESULTS, ROOT, accepts, buildC, busyCores, fmtRange, fmtRate, fmtRatio, fmtUs, freePort, groupAlive, groupCpuSeconds, groupCpuSecondsExact, loadAverage, median, pgidOf, signalGroup, sleep, table } from './lib.mjs'
import { CHAT_SCENARIOS } from './chat/scenarios.mjs'

const DOC = path.join(ROOT, 'docs', 'benchmarks.md')
const DOC_START = '<!-- bench:start -->'
const DOC_END = '<!-- bench:end -->'

// The load generators, built from bench/*.c on every run.
const TOOLS = {
  loadgen: { src: 'loadgen.c' },
  chatgen: { src: 'chatgen.c' },
  bulkgen: { src: 'bulkgen.c' },
  tlsgen: { src: 'tlsgen.c', libs: ['-lssl', '-lcrypto'] },
}
// TLS mode: every server gets the repository's test certificate (EC P-256).
const TLS_CERTS = path.join(ROOT, 'packages', 'native', 'test', 'fixtures', 'tls')

// What each mode measures. A scenario names its load generator and how to
// read its JSON line into one record: rate, per server CPU-second, latency,
// and the faults that fail a run (every byte, line and message is checked).
const ECHO_SCENARIOS = {
  a: { what: '64 B, pipeline 1, 100 conns', unit: 'msgs/s', per: 'msg', tool: 'loadgen', args: ['--mode', 'echo', '--conns', '100', '--size', '64', '--pipeline', '1'] },
  b: { what: '64 B, pipeline 16, 100 conns', unit: 'msgs/s', per: 'msg', tool: 'loadgen', args: ['--mode', 'echo', '--conns', '100', '--size', '64', '--pipeline', '16'] },
  c: { what: '16 KiB, pipeline 4, 50 conns', unit: 'msgs/s', per: 'msg', tool: 'loadgen', args: ['--mode', 'echo', '--conns', '50', '--size', '16384', '--pipeline', '4'] },
  d: { what: '64 B, pipeline 1, 1000 conns', unit: 'msgs/s', per: 'msg', tool: 'loadgen', args: ['--mode', 'echo', '--conns', '1000', '--size', '64', '--pipeline', '1'] },
  e: { what: 'connect churn: 32 loops of connect, 64 B echo, close', unit: 'conns/s', per: 'conns', tool: 'loadgen', args: ['--mode', 'churn', '--conns', '32', '--size', '64'] },
}
const chatScenario = ([key, s]) => [key, { what: s.what, unit: 'deliveries/s', per: 'deliveries', tool: 'chatgen', args: [...s.args, '--settle', '2'] }]
const MODES = {
  echo: {
    scenarios: ECHO_SCENARIOS,
    defaultScenarios: 'a,b,c,d,e',
    servers: ['node:net=node bench/node-net-echo.mjs', 'amy echo=node examples/echo/dist/main.js'],
    reference: { label: 'c-epoll', src: 'c/c_echo_epoll.c', bin: 'c_echo_epoll', cflags: ['-pthread'], args: '--mode reuseport --threads 1' },
  },
  chat: {
    scenarios: Object.fromEntries(Object.entries(CHAT_SCENARIOS).map(chatScenario)),
    defaultScenarios: 'b,d',
    servers: ['node:net=node bench/node-net-chat.cjs', 'amy chat=node examples/chat/dist/main.js'],
    reference: { label: 'c-epoll', src: 'c/c_chat_epoll.c', bin: 'c_chat_epoll', cflags: [], args: '' },
  },
  proxy: {
    scenarios: {
      small: { what: '64 B echo through the proxy, pipeline 1, 100 conns', unit: 'msgs/s', per: 'msg', tool: 'loadgen', args: ECHO_SCENARIOS.a.args },
      bulk: { what: '8 conns x 64 MiB each way through the proxy', unit: 'MB/s', per: 'MB', tool: 'bulkgen', args: ['--conns', '8', '--mib', '64'] },
    },
    defaultScenarios: 'small,bulk',
    servers: ['node:net=node bench/node-net-proxy.cjs', 'amy proxy=node examples/proxy/dist/main.js'],
    reference: { label: 'c-splice', src: 'c/splice_proxy.c', bin: 'splice_proxy', cflags: [], args: '' },
    // Every proxy forwards to this C echo server (one thread), started once.
    upstream: { label: 'upstream', src: 'c/c_echo_epoll.c', bin: 'c_echo_epoll', cflags: ['-pthread'], args: '--mode reuseport --threads 1' },
  },
  // TLS 1.3 (tlsgen's default): echo after the handshake (done in the ramp-up), and full handshakes (no resumption).
  tls: {
    scenarios: {
      a: { what: 'TLS echo 64 B, pipeline 1, 100 conns', unit: 'msgs/s', per: 'msg', tool: 'tlsgen', args: ['--mode', 'echo', '--conns', '100', '--size', '64', '--pipeline', '1'] },
      c: { what: 'TLS echo 16 KiB, pipeline 4, 50 conns', unit: 'msgs/s', per: 'msg', tool: 'tlsgen', args: ['--mode', 'echo', '--conns', '50', '--size', '16384', '--pipeline', '4'] },
      h: { what: '32 loops of connect, full TLS handshake, 64 B echo, close', unit: 'handshakes/s', per: 'handshake', tool: 'tlsgen', args: ['--mode', 'handshake', '--conns', '32'] },
    },
    defaultScenarios: 'a,c,h',
    servers: ['node:tls=node bench/node-tls-echo.cjs', 'amy echo=node examples/echo/dist/main.js'],
    reference: { label: 'c-tls', src: 'c/c_tls_echo.c', bin: 'c_tls_echo', cflags: [], libs: ['-lssl', '-lcrypto'], args: '' },
    env: { TLS_KEY: path.join(TLS_CERTS, 'server.key'), TLS_CERT: path.join(TLS_CERTS, 'server.crt') },
  },
}
const READY_LINE = /listening on|READY/i

const USAGE = `usage: node bench/run.mjs [options]
  --mode echo|chat|proxy|tls  what to measure                           [echo]
  --server 'LABEL=CMD'  a server to measure (repeatable; replaces the defaults; the first is A);
                        the label is everything before the first '='
  --add 'LABEL=CMD'     a server measured next to the defaults (repeatable)
  --with-c              add the mode's C reference server from bench/c/ (echo, chat: c-epoll; proxy: c-splice)
                        (HAProxy, the proxy peer: --add 'haproxy=haproxy -db -f bench/haproxy.cfg')
  --threads LIST        run every server but A once per value, with THREADS=value (e.g. 1,2,4)
  --scenarios LIST      comma-separated subset of the mode's scenarios  [echo a,b,c,d,e; chat b,d; proxy small,bulk]
  --rounds N            rounds; each round measures every server once per scenario  [3]
  --duration S          measured seconds per run                       [4]
  --warmup S            warm-up seconds per run                        [1]
  --fin                 scenario e closes with FIN instead of RST (TIME_WAIT piles up)
  --write-doc           regenerate the results section of docs/benchmarks.md (echo mode)
  --selftest            check the harness (corruption is caught) and the servers' echo; no benchmark
Scenarios: echo ${Object.entries(ECHO_SCENARIOS).map(([k, v]) => `${k} (${v.what})`).join(', ')};
chat ${Object.entries(CHAT_SCENARIOS).map(([k, v]) => `${k} (${v.what})`).join(', ')};
proxy small (64 B echo), bulk (8 x 64 MiB).
Servers get PORT and HOST=127.0.0.1 (proxies also UPSTREAM_HOST, UPSTREAM_PORT) and inherit the rest
of the environment (e.g. THREADS=2 npm run bench).
Environment: BENCH_ROUNDS, BENCH_DURATION, BENCH_WARMUP, BENCH_SCENARIOS set the same defaults.`

// ---------------------------------------------------------------- options

function options() {
  let parsed
  try {
    parsed = parseArgs({
      options: {
        mode: { type: 'string', default: 'echo' },
        server: { type: 'string', multiple: true },
        add: { type: 'string', multiple: true },
        'with-c': { type: 'boolean' },
        threads: { type: 'string' },
        scenarios: { type: 'string', default: process.env.BENCH_SCENARIOS },
        rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '3' },
        duration: { type: 'string', default: process.env.BENCH_DURATION ?? '4' },
        warmup: { type: 'string', default: process.env.BENCH_WARMUP ?? '1' },
        fin: { type: 'boolean' },
        'write-doc': { type: 'boolean' },
        selftest: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values
  } catch (err) {
    fail(`${err.message}\n${USAGE}`, 64)
  }
  if (parsed.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const mode = MODES[parsed.mode]
  if (!mode) fail(`unknown --mode '${parsed.mode}' (known: ${Object.keys(MODES).join(', ')})`, 64)
  const num = (name, min, max, int) => {
    const v = Number(parsed[name])
    if (!Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v))) fail(`--${name} must be ${int ? 'an integer' : 'a number'} in [${min}, ${max}]`, 64)
    return v
  }
  const scenarios = (parsed.scenarios ?? mode.defaultScenarios).split(',').map((s) => s.trim()).filter(Boolean)
  for (const s of scenarios) if (!mode.scenarios[s]) fail(`unknown ${parsed.mode} scenario '${s}' (known: ${Object.keys(mode.scenarios).join(',')})`, 64)
  if (!scenarios.length) fail('no scenarios', 64)
  let servers = (parsed.server ?? mode.servers).concat(parsed.add ?? []).map(parseServer)
  if (parsed.threads !== undefined) {
    const counts = parsed.threads.split(',').map(Number)
    if (!counts.length || counts.some((n) => !Number.isInteger(n) || n < 1 || n > 1024)) fail('--threads is a comma-separated list of integers in [1, 1024]', 64)
    // A stays as it is (the baseline); every other server once per count.
    servers = [servers[0], ...servers.slice(1).flatMap((s) => counts.map((n) => ({ label: `${s.label} ${n}t`, cmd: s.cmd, env: { THREADS: String(n) } })))]
  }
  if (new Set(servers.map((s) => s.label)).size !== servers.length) fail('server labels must be unique', 64)
  return {
    modeName: parsed.mode,
    mode,
    servers,
    withC: !!parsed['with-c'],
    scenarios,
    rounds: num('rounds', 1, 1000, true),
    duration: num('duration', 0.1, 3600, false),
    warmup: num('warmup', 0, 600, false),
    fin: !!parsed.fin,
    writeDoc: !!parsed['write-doc'],
    selftest: !!parsed.selftest,
  }
}

function parseServer(spec) {
  // 'LABEL=CMD': the label is everything before the first '='.
  const eq = spec.indexOf('=')
  const label = spec.slice(0, eq).trim()
  const cmd = spec.slice(eq + 1).trim()
  if (eq < 1 || !label || !cmd) fail(`a server is 'LABEL=CMD', got '${spec}'`, 64)
  return { label, cmd }
}

function fail(msg, code = 1) {
  console.error(`bench: ${msg}`)
  process.exit(code)
}

const log = (msg) => console.error(msg)

function build(src, name, extra = [], libs = []) {
  try {
    return buildC(src, name, extra, libs)
  } catch (err) {
    fail(err.message)
  }
}

/** Builds a C reference server; its spec runs the binary from the repository root. */
function referenceSpec(ref, label = ref.label) {
  build(ref.src, ref.bin, ref.cflags, ref.libs)
  return { label, cmd: `bench/.build/${ref.bin}${ref.args ? ` ${ref.args}` : ''}` }
}

// ---------------------------------------------------------------- servers

const started = new Set() // servers whose process group we created and have not seen gone

class Server {
  constructor({ label, cmd, env }, extraEnv = {}) {
    this.label = label
    this.cmd = cmd
    this.env = { ...env, ...extraEnv }
    this.tail = []
  }

  async start(logDir, env = {}) {
    this.port = await freePort()
    const logFile = logDir && path.join(logDir, `${this.label.replace(/[^\w.-]+/g, '_')}.log`)
    const logStream = logFile && fs.createWriteStream(logFile)
    this.logFile = logFile
    // detached: the shell gets its own session and process group (pgid = its
    // pid), which holds the server and anything it forks; we signal only it.
    const child = spawn(this.cmd, {
      shell: true,
      detached: true,
      cwd: ROOT,
      env: { ...process.env, ...env, ...this.env, PORT: String(this.port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child = child
    this.exited = new Promise((resolve) => child.once('exit', resolve))
    child.once('error', (err) => this.tail.push(`spawn error: ${err.message}`))
    if (!child.pid) throw new Error(`${this.label}: could not start '${this.cmd}'`)
    this.pid = child.pid
    if (pgidOf(this.pid) !== this.pid) {
      child.kill('SIGKILL') // never signal a group we did not create
      throw new Error(`${this.label}: did not get its own process group`)
    }
    started.add(this)
    let sawReady = false
    let partial = ''
    const onData = (buf) => {
      logStream?.write(buf)
      const lines = (partial + buf.toString()).split('\n')
      partial = lines.pop()
      for (const line of lines) {
        this.tail.push(line)
        if (this.tail.length > 20) this.tail.shift()
        if (READY_LINE.test(line)) sawReady = true
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', () => logStream?.end())

    const deadline = Date.now() + 15000
    let openSince = 0
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) break
      const open = await accepts(this.port, 500)
      // Ready: the ready line and an accepting port, or (no line) the port open for 1 s.
      if (open && (sawReady || (openSince && Date.now() - openSince >= 1000))) return
      if (open && !openSince) openSince = Date.now()
      await sleep(100)
    }
    const why = child.exitCode !== null || child.signalCode !== null ? `exited (${child.exitCode ?? child.signalCode})` : 'not accepting on its port after 15 s'
    const hint = /\bdist\//.test(this.cmd) ? ' (is it built? npm run build)' : ''
    throw new Error(`server '${this.label}' (${this.cmd}) ${why}${hint}\n    ${this.tail.slice(-12).join('\n    ')}`)
  }

  alive() {
    return this.child && this.child.exitCode === null && this.child.signalCode === null && groupAlive(this.pid)
  }

  async stop() {
    if (!started.has(this)) return
    signalGroup(this.pid, 'SIGTERM')
    for (let i = 0; i < 30 && groupAlive(this.pid); i++) await sleep(100)
    if (groupAlive(this.pid)) signalGroup(this.pid, 'SIGKILL')
    for (let i = 0; i < 20 && groupAlive(this.pid); i++) await sleep(50)
    await Promise.race([this.exited, sleep(1000)])
    started.delete(this)
  }
}

let currentLoadgen = null
function killEverything() {
  // Synchronous last resort (exit, signals): only what we started.
  if (currentLoadgen && currentLoadgen.exitCode === null) {
    try {
      currentLoadgen.kill('SIGKILL')
    } catch {}
  }
  for (const s of started) signalGroup(s.pid, 'SIGKILL')
  started.clear()
}
process.on('exit', killEverything)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`\nbench: ${sig}, stopping the servers`)
    killEverything()
    process.exit(130)
  })
}

// ---------------------------------------------------------------- load generator

function runTool(tool, args, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(path.join(BUILD, tool), args, { stdio: ['ignore', 'pipe', 'pipe'] })
    currentLoadgen = child
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const timer = setTimeout(() => {
      err += `\n${tool}: killed after ${timeoutMs / 1000} s`
      child.kill('SIGKILL')
    }, timeoutMs)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      currentLoadgen = null
      const line = out.split('\n').find((l) => l.startsWith('{'))
      let json = null
      try {
        json = line ? JSON.parse(line) : null
      } catch {}
      resolve({ rc: code ?? (signal ? 128 : -1), json, stderr: err.trim() })
    })
  })
}
const runLoadgen = (args, timeoutMs) => runTool('loadgen', args, timeoutMs)

// Fault counters a tool reports; any non-zero one is flagged in the notes
// (and fails the run: the tools exit non-zero on them).
const FAULTS = {
  loadgen: ['corrupt', 'errors', 'connect_failures'],
  chatgen: ['corrupt', 'lost', 'gaps', 'out_of_order', 'misrouted', 'errors'],
  bulkgen: ['corrupt', 'errors'],
  tlsgen: ['corrupt', 'errors', 'connect_failures', 'handshake_failures'],
}

/** One run of scenario `s` against `srv`: the tool's JSON plus rate, per_cpu_s, srv_cpu, lg_cpu, other_cpu. */
async function measure(opts, srv, s) {
  const sc = opts.mode.scenarios[s]
  const timing = ['--warmup', String(opts.warmup), '--duration', String(opts.duration)]
  const rec = { rc: -1, json: null }
  if (sc.tool === 'bulkgen') {
    // bulkgen runs a fixed amount of bytes; the proxy's CPU is read around
    // it (exact: a run is a fraction of a CPU-second), and the upstream's.
    // Over loopback, whichever process sends a packet also runs its
    // delivery to the receiver, so the proxy's share of the kernel work
    // moves with timing; the CPU of all three (proxy + bulkgen + upstream)
    // per MB does not, and is reported beside it.
    const upstreamCpu = () => (opts.upstreamPgid ? groupCpuSecondsExact(opts.upstreamPgid) : NaN)
    const cpu0 = groupCpuSecondsExact(srv.pid)
    const up0 = upstreamCpu()
    const t0 = performance.now()
    Object.assign(rec, await runTool('bulkgen', ['--port', String(srv.port), ...sc.args], 120_000))
    const secs = (performance.now() - t0) / 1000
    const cpu = groupCpuSecondsExact(srv.pid) - cpu0
    const up = upstreamCpu() - up0
    if (rec.json) {
      const mb = rec.json.mbytes_per_s * rec.json.elapsed_s
      rec.json.srv_cpu = secs > 0 ? cpu / secs : NaN
      rec.rate = rec.json.mbytes_per_s
      rec.per_cpu_s = cpu > 0 ? mb / cpu : NaN
      const all = cpu + up + rec.json.lg_cpu * rec.json.elapsed_s
      rec.json.all3_per_cpu_s = all > 0 ? mb / all : NaN
    }
  } else {
    const extra = sc.tool === 'loadgen' ? (s === 'e' && opts.fin ? ['--fin'] : []) : []
    const args = ['--port', String(srv.port), ...sc.args, ...extra, ...timing, '--cpu-pgid', String(srv.pid)]
    Object.assign(rec, await runTool(sc.tool, args, (opts.warmup + opts.duration + 60) * 1000))
    const j = rec.json
    if (j) {
      rec.rate = j.msgs_per_s ?? j.conns_per_s ?? j.handshakes_per_s
      if (sc.tool === 'chatgen') rec.rate = j.deliveries_per_s
      rec.per_cpu_s = j.srv_cpu > 0 ? rec.rate / j.srv_cpu : NaN
    }
  }
  rec.rate ??= NaN
  rec.per_cpu_s ??= NaN
  return rec
}

// ---------------------------------------------------------------- statistics

// Busy cores on the machine in the window besides the server and the load
// generator: loopback interrupt work charged to neither, and other processes.
const otherCpu = (r) => (r.json && r.json.machine_cpu >= 0 && r.json.srv_cpu >= 0 ? Math.max(0, r.json.machine_cpu - r.json.srv_cpu - r.json.lg_cpu) : NaN)
const isOk = (r) => r.rc === 0 && r.json && Number.isFinite(r.rate)
const fixed2 = (v) => (Number.isFinite(v) ? v.toFixed(2) : '-')

function summarize(runs, labels, opts) {
  const out = []
  const versus = labels.length === 2 ? 'B/A' : '÷A'
  const overview = [['scenario', ...labels.slice(1).flatMap((l) => [`${l} ${versus} rate`, `${l} ${versus} per cpu-s`])]]
  for (const s of opts.scenarios) {
    const sc = opts.mode.scenarios[s]
    const unit = sc.unit
    const latency = sc.tool !== 'bulkgen'
    const all3 = sc.tool === 'bulkgen'
    const head = ['server', `${unit} median [min-max]`, ...(latency ? ['p50', 'p99'] : []), 'srv cpu', 'lg cpu', 'other cpu', `${sc.per}/cpu-s`, ...(all3 ? [`${sc.per}/cpu-s all 3`, `${versus} all 3`] : []), `${versus} ${unit}`, `${versus} per cpu-s`, 'notes']
    const rows = [head]
    const of = (label) => runs.filter((r) => r.scenario === s && r.server === label)
    const base = of(labels[0])
    const ovRow = [`${s}: ${sc.what}`]
    for (const label of labels) {
      const all = of(label)
      const ok = all.filter(isOk)
      const ratio = (f) => {
        if (label === labels[0]) return []
        return ok.map((r) => {
          const a = base.find((x) => x.round === r.round && isOk(x))
          return a && f(a) > 0 ? f(r) / f(a) : NaN
        })
      }
      const rRate = ratio((r) => r.rate)
      const rEff = ratio((r) => r.per_cpu_s)
      const notes = []
      const failed = all.length - ok.length
      if (failed) notes.push(`${failed} failed run(s)`)
      const sum = (f) => all.reduce((acc, r) => acc + Math.max(0, r.json?.[f] ?? 0), 0)
      for (const f of FAULTS[sc.tool]) if (sum(f)) notes.push(`${f === 'corrupt' ? 'CORRUPT' : f.replace(/_/g, ' ')} ${sum(f)}`)
      if (sum('listen_overflows')) notes.push(`listen overflows ${sum('listen_overflows')}`)
      const steal = median(ok.map((r) => r.json.steal_pct))
      if (steal >= 5) notes.push(`steal ${steal.toFixed(0)}%`)
      rows.push([
        label,
        fmtRange(ok.map((r) => r.rate)),
        ...(latency ? [fmtUs(median(ok.map((r) => r.json.p50_us))), fmtUs(median(ok.map((r) => r.json.p99_us)))] : []),
        fixed2(median(ok.map((r) => r.json.srv_cpu))),
        fixed2(median(ok.map((r) => r.json.lg_cpu))),
        fixed2(median(ok.map(otherCpu))),
        fmtRate(median(ok.map((r) => r.per_cpu_s))),
        ...(all3 ? [fmtRate(median(ok.map((r) => r.json.all3_per_cpu_s))), label === labels[0] ? '(A)' : fmtRatio(ratio((r) => r.json.all3_per_cpu_s))] : []),
        label === labels[0] ? '(A)' : fmtRatio(rRate),
        label === labels[0] ? '(A)' : fmtRatio(rEff),
        notes.join(', '),
      ])
      if (label !== labels[0]) ovRow.push(fmtRatio(rRate), fmtRatio(rEff))
    }
    out.push(`**${s}: ${sc.what}** (${unit})\n\n${table(rows)}`)
    overview.push(ovRow)
  }
  if (labels.length > 1) out.push(`**Ratios against A (${labels[0]})**, median of per-round ratios [min-max]\n\n${table(overview)}`)
  return out.join('\n\n')
}

// ---------------------------------------------------------------- machine / doc

function machine() {
  const git = (...a) => {
    try {
      return execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return ''
    }
  }
  const commit = git('rev-parse', '--short', 'HEAD')
  const dirty = commit && git('status', '--porcelain', '--untracked-files=no') !== ''
  return {
    cpus: os.availableParallelism?.() ?? os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? '?',
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    commit: commit ? `${commit}${dirty ? ' (with uncommitted changes)' : ''}` : 'unknown',
  }
}

const shellQuote = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)

function writeDoc(section) {
  let doc = fs.existsSync(DOC) ? fs.readFileSync(DOC, 'utf8') : '# Benchmarks\n'
  const i = doc.indexOf(DOC_START)
  const j = doc.indexOf(DOC_END)
  const block = `${DOC_START}\n${section}\n${DOC_END}`
  if (i >= 0 && j > i) doc = doc.slice(0, i) + block + doc.slice(j + DOC_END.length)
  else doc = `${doc.trimEnd()}\n\n## Results\n\n${block}\n`
  fs.writeFileSync(DOC, doc)
}

// ---------------------------------------------------------------- benchmark

async function bench(opts) {
  const tools = new Set(opts.scenarios.map((s) => opts.mode.scenarios[s].tool))
  for (const t of tools) build(TOOLS[t].src, t, [], TOOLS[t].libs)
  const specs = [...opts.servers]
  if (opts.withC) specs.push(referenceSpec(opts.mode.reference))
  const stamp = new Date().toISOString().replace(/\..*/, '').replace(/:/g, '-') + 'Z'
  fs.mkdirSync(RESULTS, { recursive: true })
  const logDir = path.join(RESULTS, `${stamp}-logs`)
  fs.mkdirSync(logDir, { recursive: true })
  const jsonl = path.join(RESULTS, `${stamp}.jsonl`)
  const mdFile = path.join(RESULTS, `${stamp}.md`)
  const command = ['node', 'bench/run.mjs', ...process.argv.slice(2)].map(shellQuote).join(' ')
  const mach = machine()
  const labels = specs.map((s) => s.label)
  const perRun = opts.warmup + opts.duration + 0.6
  log(`bench: ${labels.length} servers x ${opts.scenarios.length} scenarios x ${opts.rounds} rounds, ${opts.warmup}+${opts.duration} s per run: about ${Math.ceil((labels.length * opts.scenarios.length * opts.rounds * perRun) / 60)} min`)

  const busy = await busyCores(1000)
  const loadBefore = loadAverage()
  if (busy > 0.25) log(`note: ${busy.toFixed(2)} cores were busy before the run started (other processes); expect noisier numbers, and see "other cpu"`)
  // Proxy mode: one upstream echo server behind every proxy, not measured.
  let upstream
  const serverEnv = { ...opts.mode.env }
  if (opts.mode.upstream) {
    upstream = new Server(referenceSpec(opts.mode.upstream))
    try {
      await upstream.start(logDir)
    } catch (err) {
      fail(err.message)
    }
    Object.assign(serverEnv, { UPSTREAM_HOST: '127.0.0.1', UPSTREAM_PORT: String(upstream.port) })
    opts.upstreamPgid = upstream.pid
    log(`  upstream: ${upstream.cmd}  (pid ${upstream.pid}, port ${upstream.port})`)
  }
  const servers = specs.map((s) => new Server(s))
  for (const s of servers) {
    try {
      await s.start(logDir, serverEnv)
    } catch (err) {
      log(`bench: ${err.message}`)
      for (const x of servers) await x.stop()
      await upstream?.stop()
      process.exit(1)
    }
    log(`  ${String.fromCharCode(65 + servers.indexOf(s))} = ${s.label}: ${s.cmd}  (pid ${s.pid}, port ${s.port})`)
  }

  const runs = []
  let exitCode = 0
  for (let round = 1; round <= opts.rounds; round++) {
    for (const s of opts.scenarios) {
      for (const srv of servers) {
        const rec = { round, scenario: s, server: srv.label, cmd: srv.cmd, rc: -1 }
        if (!srv.alive()) {
          rec.error = 'server not running'
          log(`bench: server '${srv.label}' is not running; see ${srv.logFile}`)
          exitCode = exitCode || 1
        } else {
          Object.assign(rec, await measure(opts, srv, s))
          const { rc, json, stderr } = rec
          if (!stderr) delete rec.stderr
          if (rc === 2 || json?.corrupt) exitCode = 2
          else if (rc !== 0) exitCode = exitCode || 1
          const j = json ?? {}
          const faults = FAULTS[opts.mode.scenarios[s].tool].filter((f) => j[f] > 0).map((f) => `  ${f}=${j[f]}`).join('')
          log(
            `  r${round} ${s} ${srv.label.padEnd(Math.max(...labels.map((l) => l.length)))} ${fmtRate(rec.rate).padStart(7)} ${opts.mode.scenarios[s].unit}` +
              `  per cpu-s ${fmtRate(rec.per_cpu_s)}  p50 ${fmtUs(j.p50_us)}  p99 ${fmtUs(j.p99_us)}  srv ${fixed2(j.srv_cpu)}  lg ${fixed2(j.lg_cpu)}  other ${json ? fixed2(otherCpu(rec)) : '-'}` +
              (rc !== 0 ? `  rc=${rc}` : '') +
              faults +
              (stderr ? `\n      ${stderr.split('\n').join('\n      ')}` : ''),
          )
        }
        runs.push(rec)
        fs.appendFileSync(jsonl, JSON.stringify({ ...rec, rate: Number.isFinite(rec.rate) ? rec.rate : null, per_cpu_s: Number.isFinite(rec.per_cpu_s) ? rec.per_cpu_s : null }) + '\n')
        await sleep(300) // let the server tear the run's connections down
      }
    }
  }
  for (const s of servers) await s.stop()
  await upstream?.stop()

  const date = new Date().toISOString().replace('T', ' ').replace(/\..*/, ' UTC')
  const header = [
    `Command: \`${command}\`, ${date}.`,
    `Machine: ${mach.cpus} CPUs (${mach.cpu_model}), ${mach.kernel}, Node.js ${mach.node}; amy at commit ${mach.commit}; load average ${loadBefore} before the run, ${loadAverage()} after.`,
    `Each run: ${opts.warmup} s warm-up + ${opts.duration} s measured; ${opts.rounds} round(s), servers measured back to back in each round (${labels.map((l, i) => String.fromCharCode(65 + i)).join(' ')} per scenario).`,
    specs.map((s, i) => `- ${String.fromCharCode(65 + i)} = **${s.label}**: \`${s.env ? Object.entries(s.env).map(([k, v]) => `${k}=${v} `).join('') : ''}${s.cmd}\``).join('\n'),
    upstream ? `Every proxy forwards to \`${upstream.cmd}\` (UPSTREAM_PORT).` : '',
  ].filter(Boolean).join('\n\n')
  const legend =
    'Rates and srv/lg cpu are medians over the rounds (rates with [min-max]); p50/p99 are medians of each run\'s batch round-trip percentiles. ' +
    '*srv cpu* / *lg cpu*: cores used by the server\'s process group / by the load generator in the measured window; ' +
    '*other cpu*: the rest of the machine\'s busy cores in the window (interrupt work of the loopback traffic, other processes). ' +
    '*per cpu-s*: messages (churn: connections; chat: deliveries; bulk: MB one way) per server CPU-second. Ratios: median of the per-round ratios against A [min-max]. Bulk: the proxy\'s CPU is exact (schedstat); *all 3*: MB per CPU-second of proxy + bulkgen + upstream together (over loopback the sender of a packet runs its delivery, so the proxy\'s own share moves with timing; the sum does not).'
  const others = runs.filter(isOk).map(otherCpu).filter(Number.isFinite)
  const busyNote = others.length && median(others) > 0.3
    ? `\n\nThe machine was not quiet: *other cpu* was ${median(others).toFixed(2)} cores in the median run (up to ${Math.max(...others).toFixed(2)}), so the servers and the load generator shared the two cores with other work; absolute figures are lower and noisier than on a quiet machine.`
    : ''
  const body = `${header}${busyNote}\n\n${summarize(runs, labels, opts)}\n\n${legend}`
  fs.writeFileSync(mdFile, `# Benchmark ${stamp}\n\n${body}\n`)
  console.log(`\n${body}\n`)
  log(`raw runs: ${path.relative(ROOT, jsonl)}, summary: ${path.relative(ROOT, mdFile)}, server logs: ${path.relative(ROOT, logDir)}/`)
  if (exitCode === 2) log('bench: CORRUPTION detected: a server echoed bytes that were not sent on that connection')
  else if (exitCode) log('bench: some runs failed (see above)')
  if (opts.writeDoc) {
    if (opts.modeName !== 'echo') log('bench: --write-doc writes echo results only; the tables above are in ' + path.relative(ROOT, mdFile))
    else if (exitCode) log('bench: not writing docs/benchmarks.md from a run with failures')
    else {
      writeDoc(body)
      log(`wrote the results section of ${path.relative(ROOT, DOC)}`)
    }
  }
  return exitCode
}

// ---------------------------------------------------------------- selftest

async function selftest(opts) {
  build(TOOLS.loadgen.src, 'loadgen')
  let passed = 0
  let failed = 0
  const short = ['--warmup', '0.3', '--duration', '1.5']
  const check = async (name, spec, env, args, want) => {
    const srv = new Server(spec, env)
    let res
    try {
      await srv.start(null)
      res = await runLoadgen(['--port', String(srv.port), ...args, ...short, '--cpu-pgid', String(srv.pid)], 30000)
    } catch (err) {
      res = { rc: -1, json: null, stderr: err.message }
    } finally {
      await srv.stop()
    }
    const j = res.json ?? {}
    const ok = want === 0 ? res.rc === 0 && j.corrupt === 0 && j.errors === 0 && j.connect_failures === 0 && (j.msgs ?? j.cycles) > 0 : res.rc === want
    ok ? passed++ : failed++
    log(`${ok ? 'ok  ' : 'FAIL'} ${name} (rc=${res.rc}, want ${want}${j.corrupt ? `, corrupt=${j.corrupt}` : ''})${ok ? '' : `\n     ${res.stderr}\n     ${JSON.stringify(j)}`}`)
  }
  const bad = { label: 'bad-echo', cmd: 'node bench/selftest/bad-echo.mjs' }
  const small = ['--mode', 'echo', '--conns', '4', '--size', '1000', '--pipeline', '4']
  await check('a bit flip is caught', bad, { BAD: 'flip' }, small, 2)
  await check('cross-talk between connections is caught', bad, { BAD: 'cross' }, small, 2)
  await check('a duplicated chunk is caught', bad, { BAD: 'dup' }, small, 2)
  await check('the faultless control passes', bad, { BAD: 'ok' }, small, 0)
  // No server at all: exit 3, not a result.
  const port = await freePort()
  const none = await runLoadgen(['--port', String(port), ...small, ...short], 30000)
  none.rc === 3 ? passed++ : failed++
  log(`${none.rc === 3 ? 'ok  ' : 'FAIL'} no server: no result (rc=${none.rc}, want 3)`)
  // Every configured server: 4 MiB batches (partial reads/writes on both sides) and churn.
  for (const spec of opts.servers) {
    await check(`${spec.label}: 8 conns x 4 MiB batches`, spec, {}, ['--mode', 'echo', '--conns', '8', '--size', '1048576', '--pipeline', '4'], 0)
    await check(`${spec.label}: connect churn`, spec, {}, ['--mode', 'churn', '--conns', '32', '--size', '64'], 0)
  }
  log(`${passed} passed, ${failed} failed`)
  return failed ? 1 : 0
}

// ---------------------------------------------------------------- main

const opts = options()
if (opts.selftest && opts.modeName !== 'echo') fail('--selftest checks echo servers (--mode echo)', 64)
try {
  process.exitCode = opts.selftest ? await selftest(opts) : await bench(opts)
} catch (err) {
  log(`bench: ${err.stack ?? err}`)
  killEverything()
  process.exitCode = 1
}
