#!/usr/bin/env node
// Where a chat server's time goes per publish at a fixed rate, step by step,
// from the syscalls of its busiest thread (perf tracepoints; needs root or
// perf_event_paranoid <= -1, and linux-perf):
//
//   node bench/chat-timeline.mjs [--seconds 2] [--rate 0.5] 'LABEL=SERVER COMMAND' ...
//   e.g. 'amy=env THREADS=1 node examples/chat/dist/main.js' 'c=bench/.build/c_chat_epoll'
//
// Each server gets PORT/HOST like bench/run.mjs, then chatgen (1000 clients,
// 10 rooms, --rate msgs/s each: scenario d) runs for 6 s; in its middle the
// busiest thread's syscalls and every CPU's context switches are recorded.
// A *publish* is a wake-up (a blocking epoll_wait returns) followed by at
// least 90 sends. Per publish: wake-up -> first read, first read -> first
// send, first send -> last send, the time inside each send and between two
// sends (thread not switched out), and how often the thread was preempted
// and by whom (with what the other CPU was running then).
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BUILD, ROOT, accepts, buildC, freePort, loadAverage, sleep } from './lib.mjs'

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  if (i === -1) return dflt
  const [v] = args.splice(i, 2).slice(1)
  return v
}
const seconds = Number(opt('--seconds', '2'))
const rate = opt('--rate', '0.5')
if (args.length === 0) {
  console.error("usage: node bench/chat-timeline.mjs [--seconds 2] [--rate 0.5] 'LABEL=SERVER COMMAND' ...")
  process.exit(2)
}
buildC('chatgen.c', 'chatgen')
buildC('c/c_chat_epoll.c', 'c_chat_epoll')
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'amy-chat-timeline-'))

// x86_64 syscall numbers (the tracepoints give numbers, not names).
const READ = 0
const SENDS = new Set([1, 20, 44, 46]) // write, writev, sendto, sendmsg
const WAITS = new Set([232, 281]) // epoll_wait, epoll_pwait

/** The thread of `pid` that used the most CPU over `ms`. */
async function busiestThread(pid, ms) {
  const snap = () => {
    const m = new Map()
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      const f = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8').split(') ')[1].split(' ')
      m.set(t, Number(f[11]) + Number(f[12]))
    }
    return m
  }
  const a = snap()
  await sleep(ms)
  const b = snap()
  return [...b].sort((x, y) => y[1] - (a.get(y[0]) ?? 0) - (x[1] - (a.get(x[0]) ?? 0)))[0][0]
}

async function trace(label, cmd) {
  const port = await freePort()
  const log = fs.openSync(path.join(tmp, `${label}.log`), 'w')
  const server = spawn('sh', ['-c', `exec ${cmd}`], { cwd: ROOT, env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', log, log], detached: true })
  try {
    const deadline = Date.now() + 15_000
    while (!(await accepts(port, 200))) {
      if (Date.now() > deadline || server.exitCode !== null) throw new Error(`${label}: not accepting on ${port}`)
      await sleep(100)
    }
    const gen = spawn(path.join(BUILD, 'chatgen'), ['--port', String(port), '--clients', '1000', '--rooms', '10', '--rate', rate, '--duration', '6', '--warmup', '1', '--settle', '2'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    gen.stdout.on('data', (d) => (out += d))
    const genDone = new Promise((r) => gen.on('close', r))
    await sleep(2500)
    const tid = await busiestThread(server.pid, 500)
    const data = path.join(tmp, `${label}.data`)
    execFileSync('perf', ['record', '-q', '-a', '-o', data, '-e', 'sched:sched_switch', '-e', 'raw_syscalls:sys_enter', '--filter', `common_pid == ${tid}`, '-e', 'raw_syscalls:sys_exit', '--filter', `common_pid == ${tid}`, '--', 'sleep', String(seconds)], { stdio: ['ignore', 'ignore', 'inherit'] })
    await genDone
    const text = execFileSync('perf', ['script', '-i', data, '-F', 'cpu,time,event,trace'], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] }).toString()
    const j = JSON.parse(out)
    return { label, tid, ...analyze(text, tid), p50: j.p50_us, p99: j.p99_us, lost: j.lost + j.gaps + j.out_of_order }
  } finally {
    try {
      process.kill(-server.pid, 'SIGTERM')
    } catch {}
  }
}

function analyze(text, tid) {
  const pubs = []
  let pub
  const inSend = []
  const between = []
  let sendEnter
  let lastExit
  let switched = false
  const running = new Map() // cpu -> comm
  const preemptedBy = new Map()
  let preemptions = 0
  let otherIdle = 0
  for (const line of text.split('\n')) {
    const m = /^\s*\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$/.exec(line)
    if (!m) continue
    const cpu = Number(m[1])
    const t = Number(m[2]) * 1e6 // µs
    const event = m[3]
    const rest = m[4]
    if (event === 'sched:sched_switch') {
      const next = /next_comm=(.*) next_pid=(\d+)/.exec(rest)
      if (rest.includes(`prev_pid=${tid} `)) {
        switched = true
        if (rest.includes('prev_state=R')) {
          preemptions++
          preemptedBy.set(next[1], (preemptedBy.get(next[1]) ?? 0) + 1)
          if (/^swapper/.test([...running].find(([c]) => c !== cpu)?.[1] ?? '')) otherIdle++
        }
      }
      running.set(cpu, next[1])
      continue
    }
    const nr = Number(/NR (\d+)/.exec(rest)?.[1])
    if (event === 'raw_syscalls:sys_enter') {
      // epoll_wait(fd, events, max, timeout): a blocking one (timeout != 0) starts the next publish
      if (WAITS.has(nr) && rest.split('(')[1]?.split(',')[3]?.trim() !== '0') {
        if (pub) pubs.push(pub)
        pub = { wake: undefined, read: undefined, first: undefined, last: undefined, sends: 0 }
        lastExit = undefined
        continue
      }
      if (!pub) continue
      if (nr === READ && pub.read === undefined) pub.read = t
      if (SENDS.has(nr)) {
        pub.sends++
        pub.first ??= t
        pub.last = t
        if (lastExit !== undefined && !switched) between.push(t - lastExit)
        sendEnter = t
        switched = false
      } else lastExit = undefined
    } else if (pub) {
      if (WAITS.has(nr) && pub.wake === undefined) pub.wake = t
      else if (SENDS.has(nr) && sendEnter !== undefined) {
        if (!switched) inSend.push(t - sendEnter)
        lastExit = t
        sendEnter = undefined
        switched = false
      }
    }
  }
  const full = pubs.filter((p) => p.sends >= 90 && p.wake !== undefined && p.read !== undefined)
  const q = (xs) => {
    xs = xs.filter(Number.isFinite).sort((a, b) => a - b)
    return { p50: xs[xs.length >> 1], p90: xs[Math.floor(xs.length * 0.9)], p99: xs[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))], mean: xs.reduce((a, b) => a + b, 0) / xs.length }
  }
  return {
    publishes: full.length,
    wakeToRead: q(full.map((p) => p.read - p.wake)),
    readToSend: q(full.map((p) => p.first - p.read)),
    fanOut: q(full.map((p) => p.last - p.first)),
    inSend: q(inSend),
    between: q(between),
    preemptionsPerS: preemptions / seconds,
    otherCpuIdle: preemptions ? otherIdle / preemptions : 0,
    preemptedBy: [...preemptedBy].sort((a, b) => b[1] - a[1]).slice(0, 3),
  }
}

const f = (x) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1))
const fq = (s) => `${f(s.p50)} / ${f(s.p90)} / ${f(s.p99)}`
console.log(`chat timeline, chatgen 1000 clients / 10 rooms at ${rate} msgs/s each, ${seconds} s traced; load average ${loadAverage()} before`)
const rows = []
for (const spec of args) {
  const i = spec.indexOf('=')
  rows.push(await trace(spec.slice(0, i), spec.slice(i + 1)))
}
console.log(`load average ${loadAverage()} after\n`)
console.log('| server | publishes traced | wake -> first read µs p50 / p90 / p99 | first read -> first send | first -> last send | inside one send, mean µs | between two sends, mean µs | preempted /s (other CPU idle) | by | chatgen p50 / p99 µs |')
console.log('| --- | --: | --: | --: | --: | --: | --: | --: | --- | --: |')
for (const r of rows) {
  console.log(`| ${r.label} | ${r.publishes} | ${fq(r.wakeToRead)} | ${fq(r.readToSend)} | ${fq(r.fanOut)} | ${f(r.inSend.mean)} | ${f(r.between.mean)} | ${r.preemptionsPerS.toFixed(0)} (${(r.otherCpuIdle * 100).toFixed(0)}%) | ${r.preemptedBy.map(([c, n]) => `${c} ${n}`).join(', ')} | ${f(r.p50)} / ${f(r.p99)}${r.lost ? ' LOST/GAPS' : ''} |`)
}
fs.rmSync(tmp, { recursive: true, force: true })
