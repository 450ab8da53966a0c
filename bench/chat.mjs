#!/usr/bin/env node
// npm run bench:chat — chat fan-out: one instance against two instances
// joined by Redis, behind HAProxy, measured by chatgen (bench/chatgen.c).
//
//   node bench/chat.mjs                          configs A,B,C; scenarios c,d,a,b; 3 rounds
//   node bench/chat.mjs --configs A,B --scenarios c,d --rounds 5
//   node bench/chat.mjs --duration 5 --warmup 1 --settle 2
//
// Configs (each a whole deployment in one process group: its CPU is the
// "server" CPU, HAProxy and Redis included):
//   A  1 instance, 2 worker threads, behind HAProxy                   (the baseline)
//   B  2 instances x 1 worker, Redis pub/sub (connections on the main thread), HAProxy
//   C  2 instances x 1 worker, Redis pub/sub (connections in each worker), HAProxy
//   D  1 instance, 2 workers, no HAProxy (clients connect directly)
//   E, F  as B, C with 2 workers per instance (where worker placement
//      doubles each instance's Redis connections and deliveries)
// HAProxy balances at random so every room spans both instances.
//
// Scenarios (chatgen, 64 B lines; every line checked at every peer: once,
// in order, unaltered):
//   c  100 clients, 1 room, 5 msgs/s each: 49.5k deliveries/s offered
//   d  1000 clients, 10 rooms, 0.5 msgs/s each: 49.5k deliveries/s offered
//   a  100 clients, 1 room, as fast as possible (<= 1 message in flight per client)
//   b  1000 clients, 10 rooms, as fast as possible (the same cap)
// Runs go round -> scenario -> config (A B C A B C ...). Results: a table on
// stdout and bench/results/chat-<time>.{jsonl,md}.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { BENCH, RESULTS, ROOT, buildC, fmtRate, fmtUs, freePort, groupAlive, median, signalGroup as killGroup, sleep } from './lib.mjs'
import { CHAT_SCENARIOS as SCENARIOS } from './chat/scenarios.mjs'

const CONFIGS = {
  A: { label: '1 instance (2 workers) + HAProxy', args: ['--instances', '1', '--threads', '2'] },
  B: { label: '2 instances (1 worker each) + Redis, main placement + HAProxy', args: ['--instances', '2', '--threads', '1', '--redis', '--placement', 'main'] },
  C: { label: '2 instances (1 worker each) + Redis, worker placement + HAProxy', args: ['--instances', '2', '--threads', '1', '--redis', '--placement', 'worker'] },
  D: { label: '1 instance (2 workers), direct', args: ['--instances', '1', '--threads', '2', '--no-lb'] },
  E: { label: '2 instances (2 workers each) + Redis, main placement + HAProxy', args: ['--instances', '2', '--threads', '2', '--redis', '--placement', 'main'] },
  F: { label: '2 instances (2 workers each) + Redis, worker placement + HAProxy', args: ['--instances', '2', '--threads', '2', '--redis', '--placement', 'worker'] },
}
const { values: opt } = parseArgs({
  options: {
    configs: { type: 'string', default: 'A,B,C' },
    scenarios: { type: 'string', default: 'c,d,a,b' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    settle: { type: 'string', default: '2' },
    help: { type: 'boolean', default: false },
  },
})
if (opt.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 25).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'))
  process.exit(0)
}
const configs = opt.configs.split(',')
const scenarios = opt.scenarios.split(',')
for (const c of configs) if (!CONFIGS[c]) fail(`unknown config ${c} (A to F)`)
for (const s of scenarios) if (!SCENARIOS[s]) fail(`unknown scenario ${s} (a, b, c, d)`)
const rounds = Number(opt.rounds)

function fail(msg) {
  console.error(`bench:chat: ${msg}`)
  process.exit(64)
}
const log = (msg) => console.error(msg)

// ---------------------------------------------------------------- deployments

const running = new Set()
let currentChatgen
process.on('exit', () => {
  currentChatgen?.kill('SIGKILL')
  for (const d of running) killGroup(d.pid, 'SIGKILL')
})
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130))

/** Starts a deployment in its own process group; resolves once it printed READY. */
async function deploy(key, logDir) {
  const port = await freePort()
  const logFile = fs.createWriteStream(path.join(logDir, `${key}.log`))
  const child = spawn(process.execPath, [path.join(BENCH, 'chat', 'topology.mjs'), '--port', String(port), ...CONFIGS[key].args], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const d = { key, port, pid: child.pid, child }
  running.add(d)
  let out = ''
  child.stdout.on('data', (b) => {
    out += b
    logFile.write(b)
  })
  child.stderr.on('data', (b) => logFile.write(b))
  const deadline = Date.now() + 30000
  while (!/READY/.test(out)) {
    if (child.exitCode !== null) throw new Error(`config ${key} exited; see ${logDir}/${key}.log`)
    if (Date.now() > deadline) throw new Error(`config ${key} not ready after 30 s; see ${logDir}/${key}.log`)
    await sleep(50)
  }
  return d
}

async function undeploy(d) {
  d.child.kill('SIGTERM') // topology.mjs: the instances log their counters, then it stops the group
  for (let i = 0; i < 30 && d.child.exitCode === null; i++) await sleep(100)
  for (let i = 0; i < 30 && groupAlive(d.pid); i++) await sleep(100)
  killGroup(d.pid, 'SIGKILL')
  running.delete(d)
}

// ---------------------------------------------------------------- runs

function chatgen(d, s) {
  // --settle: the pause between the joins and the first lines; through
  // HAProxy on a busy two-core machine 0.5 s (chatgen's default) was too
  // short for 1000 joins, and every member must be in its room by then.
  const args = ['--port', String(d.port), ...SCENARIOS[s].args, '--duration', opt.duration, '--warmup', opt.warmup, '--settle', opt.settle, '--cpu-pgid', String(d.pid)]
  return new Promise((resolve) => {
    const child = spawn(CHATGEN, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    currentChatgen = child
    let out = ''
    let err = ''
    child.stdout.on('data', (b) => (out += b))
    child.stderr.on('data', (b) => (err += b))
    const timer = setTimeout(() => child.kill('SIGKILL'), (Number(opt.duration) + Number(opt.warmup) + 60) * 1000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      let json
      try {
        json = JSON.parse(out.trim().split('\n').pop())
      } catch {}
      resolve({ config: d.key, scenario: s, rc: code, json, err: err.trim().split('\n').slice(-3).join(' | ') })
    })
  })
}

const range = (xs) => {
  const v = xs.filter(Number.isFinite)
  return v.length > 1 ? ` [${fmtRate(Math.min(...v))}-${fmtRate(Math.max(...v))}]` : ''
}

function report(runs) {
  const out = []
  for (const s of scenarios) {
    out.push(`**${s}: ${SCENARIOS[s].what}**`, '')
    out.push('| config | deliveries/s median [min-max] | p50 | p99 | p99 ÷A | srv cpu | lg cpu | deliveries per srv cpu-s | lost / gaps / out of order / errors | failed runs |')
    out.push('| --- | --: | --: | --: | --: | --: | --: | --: | --- | --: |')
    const p99A = median(runs.filter((r) => r.config === configs[0] && r.scenario === s && r.json).map((r) => r.json.p99_us))
    for (const c of configs) {
      const rs = runs.filter((r) => r.config === c && r.scenario === s)
      const ok = rs.filter((r) => r.json)
      const rate = ok.map((r) => r.json.deliveries_per_s)
      const p99 = median(ok.map((r) => r.json.p99_us))
      const cpu = median(ok.map((r) => r.json.srv_cpu))
      const sum = (k) => ok.reduce((t, r) => t + (r.json[k] ?? 0), 0)
      out.push(
        `| ${c}: ${CONFIGS[c].label} | ${fmtRate(median(rate))}${range(rate)} | ${fmtUs(median(ok.map((r) => r.json.p50_us)))} | ${fmtUs(p99)} | ${c === configs[0] ? '(A)' : (p99 / p99A).toFixed(2)} | ${cpu.toFixed(2)} | ${median(ok.map((r) => r.json.lg_cpu)).toFixed(2)} | ${fmtRate(median(ok.map((r) => r.json.deliveries_per_s / r.json.srv_cpu)))} | ${sum('lost')} / ${sum('gaps')} / ${sum('out_of_order')} / ${sum('errors')} | ${rs.filter((r) => r.rc !== 0).length} of ${rs.length} |`,
      )
    }
    out.push('')
  }
  return out.join('\n')
}

// ---------------------------------------------------------------- main

fs.mkdirSync(RESULTS, { recursive: true })
const CHATGEN = buildC('chatgen.c', 'chatgen')
if (!fs.existsSync(path.join(ROOT, 'examples', 'chat', 'dist', 'main.js'))) fail('examples/chat is not built: npm run build')
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)
const logDir = path.join(RESULTS, `chat-${stamp}-logs`)
fs.mkdirSync(logDir, { recursive: true })
const jsonl = path.join(RESULTS, `chat-${stamp}.jsonl`)

const deployments = []
for (const c of configs) deployments.push(await deploy(c, logDir))
log(`deployed: ${deployments.map((d) => `${d.key} :${d.port}`).join(', ')}; load ${os.loadavg()[0].toFixed(2)}`)
const runs = []
for (let round = 1; round <= rounds; round++) {
  for (const s of scenarios) {
    for (const d of deployments) {
      const r = await chatgen(d, s)
      r.round = round
      runs.push(r)
      fs.appendFileSync(jsonl, JSON.stringify(r) + '\n')
      const j = r.json ?? {}
      log(`round ${round} ${s} ${d.key}: ${fmtRate(j.deliveries_per_s)} deliveries/s, p99 ${fmtUs(j.p99_us)}, srv cpu ${j.srv_cpu}, lost ${j.lost}, rc ${r.rc}${r.rc ? ` (${r.err})` : ''}`)
      await sleep(500) // let the deployment drop this run's clients
    }
  }
}
for (const d of deployments) await undeploy(d)

const command = ['node', 'bench/chat.mjs', ...process.argv.slice(2)].join(' ')
const header = `Command: \`${command}\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ${os.cpus().length} CPUs, Node.js ${process.version}; ${rounds} round(s), ${opt.warmup} s warm-up + ${opt.duration} s measured per run; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}.\n`
const md = header + '\n' + report(runs)
fs.writeFileSync(path.join(RESULTS, `chat-${stamp}.md`), md)
console.log(md)
const failed = runs.filter((r) => r.rc !== 0).length
if (failed) log(`${failed} run(s) failed (chatgen exit status: 2 = loss/order/corruption, 1 = connection errors, 3 = rooms never formed)`)
process.exit(failed ? 1 : 0)
