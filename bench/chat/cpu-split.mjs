#!/usr/bin/env node
// Where a deployment's CPU goes: every process of process group PGID, its
// threads by name, CPU seconds over the next S seconds (from /proc).
//   node bench/chat/cpu-split.mjs PGID S
import fs from 'node:fs'

const [pgid, seconds] = process.argv.slice(2).map(Number)
if (!(pgid > 0) || !(seconds > 0)) {
  console.error('usage: cpu-split.mjs PGID SECONDS')
  process.exit(64)
}
const TICK = 100 // USER_HZ on Linux

function sample() {
  const out = new Map()
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let stat
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    } catch {
      continue
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(fields[2]) !== pgid) continue
    let cmd = ''
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(0, 3).join(' ')
    } catch {}
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const t = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
        const name = t.slice(t.indexOf('(') + 1, t.lastIndexOf(')'))
        const f = t.slice(t.lastIndexOf(')') + 2).split(' ')
        out.set(`${pid}/${tid}`, { pid, cmd, name, ticks: Number(f[11]) + Number(f[12]) })
      } catch {}
    }
  }
  return out
}

const before = sample()
await new Promise((r) => setTimeout(r, seconds * 1000))
const after = sample()
const byProcess = new Map()
for (const [key, a] of after) {
  const used = (a.ticks - (before.get(key)?.ticks ?? 0)) / TICK / seconds
  if (used <= 0) continue
  const p = byProcess.get(a.pid) ?? { cmd: a.cmd, total: 0, threads: new Map() }
  p.total += used
  p.threads.set(a.name, (p.threads.get(a.name) ?? 0) + used)
  byProcess.set(a.pid, p)
}
let total = 0
for (const [pid, p] of [...byProcess].sort((x, y) => y[1].total - x[1].total)) {
  total += p.total
  const threads = [...p.threads].sort((x, y) => y[1] - x[1]).map(([n, c]) => `${n} ${c.toFixed(2)}`).join(', ')
  console.log(`${p.total.toFixed(2)} cores  pid ${pid}  ${p.cmd}\n      threads: ${threads}`)
}
console.log(`${total.toFixed(2)} cores in all`)
