// bench/lib.mjs: what the benchmark scripts share (run.mjs, chat.mjs,
// chat/topology.mjs): building the C programs, free ports, process groups,
// CPU accounting from /proc, statistics and table formatting.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCH = path.dirname(fileURLToPath(import.meta.url))
export const ROOT = path.dirname(BENCH)
export const BUILD = path.join(BENCH, '.build')
export const RESULTS = path.join(BENCH, 'results')

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Compiles bench/<src> into bench/.build/<name> with cc -O2 (once per call; it is fast). */
export function buildC(src, name, extra = [], libs = []) {
  fs.mkdirSync(BUILD, { recursive: true })
  const out = path.join(BUILD, name)
  // Libraries after the source: with --as-needed (Debian's default) they are dropped otherwise.
  const args = ['-O2', '-Wall', ...extra, '-o', out, path.join(BENCH, src), ...libs]
  try {
    execFileSync('cc', args, { stdio: ['ignore', 'inherit', 'inherit'] })
  } catch {
    throw new Error(`build failed: cc ${args.join(' ')}`)
  }
  return out
}

/** A TCP connect to 127.0.0.1:port succeeds within timeoutMs. */
export function accepts(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' })
    const done = (ok) => {
      clearTimeout(timer)
      s.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}

// A port nothing listens on: bind port 0, read it back, release it. A port
// is handed out once per process, and one that accepts is skipped (a server
// of ours may already own it).
const usedPorts = new Set()
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address()
        srv.close(() => resolve(port))
      })
    })
    if (!usedPorts.has(port) && !(await accepts(port, 300))) {
      usedPorts.add(port)
      return port
    }
  }
}

export function pgidOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
  } catch {
    return -1
  }
}

export function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

export function signalGroup(pgid, sig) {
  try {
    process.kill(-pgid, sig)
  } catch {}
}

const TICKS = 100 // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

/** Each process of a process group: its pid and the fields of /proc/<pid>/stat after the name. */
function* groupProcesses(pgid) {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let stat
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
    } catch {
      continue
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(f[2]) === pgid) yield { pid: name, f }
  }
}

/** CPU seconds (user + system, all threads) used so far by the processes of a process group. */
export function groupCpuSeconds(pgid) {
  let ticks = 0
  for (const { f } of groupProcesses(pgid)) ticks += Number(f[11]) + Number(f[12])
  return ticks / TICKS
}

/**
 * CPU seconds of the process group's live threads, exact (the scheduler's
 * nanoseconds from /proc/PID/task/TID/schedstat, not 10 ms ticks): for
 * runs of a fraction of a CPU-second, where ticks are a few percent each.
 * Threads that exited are not counted; read it around a window in which
 * the server's threads live throughout.
 */
export function groupCpuSecondsExact(pgid) {
  let ns = 0
  for (const { pid } of groupProcesses(pgid)) {
    let tasks = []
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`)
    } catch {}
    for (const tid of tasks) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
      } catch {}
    }
  }
  return ns / 1e9
}

/** Busy cores on the whole machine over the next `ms` (from /proc/stat). */
export async function busyCores(ms) {
  const read = () => {
    const v = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
    const total = v.reduce((a, b) => a + b, 0)
    return { total, busy: total - v[3] - v[4] - v[7] }
  }
  try {
    const a = read()
    await sleep(ms)
    const b = read()
    return b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * os.cpus().length : NaN
  } catch {
    return NaN
  }
}

export const loadAverage = () => os.loadavg().map((l) => l.toFixed(2)).join(' ')

// ---------------------------------------------------------------- statistics and tables

export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (!s.length) return NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
export const fmtRate = (v) => (!Number.isFinite(v) ? '-' : v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(0))
export const fmtUs = (v) => (!Number.isFinite(v) ? '-' : v >= 1e6 ? `${(v / 1e6).toFixed(2)} s` : v >= 1000 ? `${(v / 1e3).toFixed(2)} ms` : `${v.toFixed(0)} µs`)
export const fmtRatio = (xs) => {
  const ok = xs.filter(Number.isFinite)
  if (!ok.length) return '-'
  const m = median(ok).toFixed(2)
  return ok.length > 1 ? `${m} [${Math.min(...ok).toFixed(2)}-${Math.max(...ok).toFixed(2)}]` : m
}
/** "median [min-max]" of rates. */
export const fmtRange = (xs) => {
  const v = xs.filter(Number.isFinite)
  if (!v.length) return '-'
  return v.length > 1 ? `${fmtRate(median(v))} [${fmtRate(Math.min(...v))}-${fmtRate(Math.max(...v))}]` : fmtRate(v[0])
}

/** A markdown table, columns padded; the first column left-aligned, the others right-aligned. */
export function table(rows) {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  const line = (r) => `| ${r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join(' | ')} |`
  return [line(rows[0]), `| ${w.map((n, i) => (i === 0 ? '-'.repeat(n) : '-'.repeat(n - 1) + ':')).join(' | ')} |`, ...rows.slice(1).map(line)].join('\n')
}
