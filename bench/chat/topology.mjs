#!/usr/bin/env node
// One chat deployment on one port, for bench/chat.mjs:
//
//   node bench/chat/topology.mjs --port P --instances N --threads T [--redis] [--placement main|worker] [--balance ALGO] [--no-lb] [--cpu-prof DIR]
//
// Starts, all in this process's process group (the runner measures the
// group's CPU and kills the group): redis-server on a free port (--redis;
// no persistence), N chat instances (node examples/chat/dist/main.js, T
// worker threads each, REDIS_URL when --redis) and HAProxy (mode tcp,
// balance ALGO, default random so that rooms span instances) on
// 127.0.0.1:P in front of them. --no-lb (one instance only): the instance
// itself listens on P. --cpu-prof DIR: the instances run with node's
// --cpu-prof (one .cpuprofile per thread in DIR, written at exit). Prints "READY port=P" once everything listens; exits
// (stopping its children) on SIGTERM/SIGINT or when a child exits.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { accepts, freePort } from '../lib.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const { values: opt } = parseArgs({
  options: {
    port: { type: 'string' },
    instances: { type: 'string', default: '1' },
    threads: { type: 'string', default: '1' },
    redis: { type: 'boolean', default: false },
    placement: { type: 'string', default: 'main' },
    balance: { type: 'string', default: 'random' },
    'no-lb': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
  },
})
const port = Number(opt.port)
const instances = Number(opt.instances)
if (!(port > 0) || !(instances >= 1)) {
  console.error('usage: topology.mjs --port P --instances N --threads T [--redis] [--placement main|worker] [--balance ALGO] [--no-lb]')
  process.exit(64)
}
if (opt['no-lb'] && instances !== 1) {
  console.error('--no-lb needs --instances 1')
  process.exit(64)
}

const children = []
let stopping = false
let quiet = false // children exiting on purpose (before stop)
function stop(code) {
  if (stopping) return
  stopping = true
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  if (workDir) rmSync(workDir, { recursive: true, force: true })
  process.exit(code)
}
// On SIGTERM the instances first print their counters (pub/sub included)
// into the log, so a run shows how many lines crossed Redis.
const instancesOut = []
async function statsThenStop() {
  const printed = instancesOut.map((i) => new Promise((resolve) => {
    i.child.stdout.on('data', (d) => /chat server stats/.test(d) && resolve())
    setTimeout(resolve, 1000)
  }))
  for (const i of instancesOut) i.child.kill('SIGUSR2')
  await Promise.all(printed)
  if (opt['cpu-prof']) {
    // The profiles are written when the instances exit: close them gracefully first.
    quiet = true
    const exited = instancesOut.map((i) => new Promise((resolve) => {
      i.child.once('exit', resolve)
      setTimeout(resolve, 8000)
    }))
    for (const i of instancesOut) i.child.kill('SIGTERM')
    await Promise.all(exited)
  }
  stop(0)
}
process.on('SIGTERM', () => void statsThenStop())
process.on('SIGINT', () => stop(0))

function start(name, command, args, env = {}) {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d) => process.stderr.write(`[${name}] ${d}`))
  child.on('exit', (code, signal) => {
    if (!stopping && !quiet) {
      console.error(`topology: ${name} exited (${code ?? signal}); stopping`)
      stop(1)
    }
  })
  return child
}

async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) {
      console.error(`topology: timed out waiting for ${what}`)
      stop(1)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

let workDir
let redisUrl
if (opt.redis) {
  const rport = await freePort()
  start('redis', 'redis-server', ['--port', String(rport), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--logfile', '', '--maxclients', '10000'])
  await until(`redis on ${rport}`, () => accepts(rport))
  redisUrl = `redis://127.0.0.1:${rport}`
}

const ports = []
for (let i = 0; i < instances; i++) {
  const iport = opt['no-lb'] ? port : await freePort()
  ports.push(iport)
  const profile = opt['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(opt['cpu-prof'])] : []
  const child = start(`i${i}`, process.execPath, [...profile, 'examples/chat/dist/main.js'], {
    PORT: String(iport),
    HOST: '127.0.0.1',
    THREADS: opt.threads,
    INSTANCE: `i${i}`,
    REDIS_URL: redisUrl ?? '',
    REDIS_PLACEMENT: opt.placement,
    REDIS_PREFIX: 'bench:',
  })
  let out = ''
  child.stdout.on('data', (d) => {
    out += d
    for (const line of d.split('\n')) if (line.startsWith('chat server stats')) console.log(`[i${i}] ${line}`)
  })
  instancesOut.push({ child })
  await until(`instance ${i} to listen`, () => /listening on/.test(out))
}

if (!opt['no-lb']) {
  const haproxy = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p))
  if (!haproxy) {
    console.error('topology: haproxy not found (apt-get install haproxy)')
    stop(1)
  }
  workDir = mkdtempSync(path.join(tmpdir(), 'amy-bench-chat-'))
  const cfg = [
    'global',
    '    maxconn 8000',
    'defaults',
    '    mode tcp',
    '    timeout connect 5s',
    '    timeout client 1h',
    '    timeout server 1h',
    'frontend chat',
    `    bind 127.0.0.1:${port}`,
    '    maxconn 8000',
    '    default_backend instances',
    'backend instances',
    `    balance ${opt.balance}`,
    ...ports.map((p, i) => `    server i${i} 127.0.0.1:${p}`),
    '',
  ].join('\n')
  writeFileSync(path.join(workDir, 'haproxy.cfg'), cfg)
  start('haproxy', haproxy, ['-db', '-f', path.join(workDir, 'haproxy.cfg')])
  await until(`haproxy on ${port}`, () => accepts(port))
}

console.log(`READY port=${port} instances=${instances} threads=${opt.threads} redis=${redisUrl ?? 'no'} placement=${opt.placement} lb=${opt['no-lb'] ? 'none' : opt.balance}`)
