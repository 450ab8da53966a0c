#!/usr/bin/env node
// Where a server's CPU time goes, per thread and per step, from perf samples:
//
//   perf record -F 999 -g -p PID -o perf.data -- sleep 4     (node --perf-basic-prof-only-functions)
//   perf script -i perf.data -F tid,ip,sym | node bench/perf-steps.mjs bench/perf-steps/churn.tsv
//
// A steps file has one step a line: NAME<TAB>REGEX. Each sample goes to the
// first step (in file order) whose regex matches any frame of its stack, so
// specific steps come first (a syscall before the binding that makes it,
// the binding before the JavaScript that calls it); the rest is "other".
import fs from 'node:fs'
import readline from 'node:readline'

const steps = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => {
  const [name, pattern] = l.split('\t')
  return { name, re: new RegExp(pattern) }
})
const byThread = new Map()
let tid
let frames = []
const flush = () => {
  if (tid === undefined) return
  const step = steps.find((s) => frames.some((f) => s.re.test(f)))?.name ?? 'other'
  const counts = byThread.get(tid) ?? new Map()
  counts.set(step, (counts.get(step) ?? 0) + 1)
  byThread.set(tid, counts)
}
for await (const line of readline.createInterface({ input: process.stdin })) {
  if (/^\s*\d+\s*$/.test(line)) {
    flush()
    tid = line.trim()
    frames = []
  } else if (line.trim()) frames.push(line.trim().replace(/^[0-9a-f]+ /, ''))
  else {
    flush()
    tid = undefined
  }
}
flush()
const size = (m) => [...m.values()].reduce((a, b) => a + b, 0)
const total = [...byThread.values()].reduce((a, m) => a + size(m), 0)
for (const [t, counts] of [...byThread].sort((a, b) => size(b[1]) - size(a[1]))) {
  const n = size(counts)
  if (n / total < 0.02) continue
  console.log(`thread ${t}: ${n} samples (${((100 * n) / total).toFixed(1)}% of all)`)
  for (const [name, c] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`  ${name.padEnd(48)} ${((100 * c) / n).toFixed(1).padStart(5)}%`)
}
