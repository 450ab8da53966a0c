#!/usr/bin/env node
// Sums the self time of .cpuprofile files (node --cpu-prof) by where the
// code lives, to say where a chat instance's CPU goes:
//   node bench/chat/profile-summary.mjs DIR
import fs from 'node:fs'
import path from 'node:path'

const dir = process.argv[2]
if (!dir) {
  console.error('usage: profile-summary.mjs DIR')
  process.exit(64)
}

const CATEGORIES = [
  ['redis client (@redis/client)', (u) => u.includes('@redis/client')],
  ['adapter (@amy/redis)', (u) => u.includes('/packages/redis/')],
  ['pub/sub hub + cross-thread encoding', (u) => /pubsub-(hub|message|worker)/.test(u)],
  ['server runtime + connections', (u) => u.includes('/packages/server/')],
  ['core (poller, channels, sockets)', (u) => u.includes('/packages/core/')],
  ['chat handler', (u) => u.includes('/examples/chat/')],
  ['node internals (net, streams, buffers)', (u) => u.startsWith('node:') || u.includes('internal/')],
  ['other JS', (u) => u !== ''],
]

for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()) {
  const profile = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'))
  const selfUs = new Map(profile.nodes.map((n) => [n.id, 0]))
  const dts = profile.timeDeltas
  for (let i = 0; i < profile.samples.length; i++) selfUs.set(profile.samples[i], selfUs.get(profile.samples[i]) + (dts[i] ?? 0))
  const byCategory = new Map()
  const byFunction = new Map()
  let total = 0
  for (const n of profile.nodes) {
    const us = selfUs.get(n.id)
    if (!us) continue
    const { functionName, url } = n.callFrame
    let category
    if (functionName === '(idle)') category = '(idle)'
    else if (functionName === '(garbage collector)') category = 'garbage collector'
    else if (functionName === '(program)') category = 'native (syscalls, libuv, addon, V8)'
    else category = (CATEGORIES.find(([, match]) => match(url)) ?? ['native (syscalls, libuv, addon, V8)'])[0]
    if (category === '(idle)') continue
    total += us
    byCategory.set(category, (byCategory.get(category) ?? 0) + us)
    const key = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + us)
  }
  if (total === 0) continue
  console.log(`\n${file}: ${(total / 1e6).toFixed(2)} s busy`)
  for (const [c, us] of [...byCategory].sort((a, b) => b[1] - a[1])) console.log(`  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${c}`)
  console.log('  top functions:')
  for (const [f, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`    ${((100 * us) / total).toFixed(1).padStart(5)}%  ${f}`)
}
