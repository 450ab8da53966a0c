// The chat example scaled out, as examples/chat/README.md runs it by hand:
//
//   clients ──▶ HAProxy (mode tcp, roundrobin) ──▶ chat instance a (2 workers) ─┐
//                                              └─▶ chat instance b (2 workers) ─┴─ redis-server
//
// 1. redis-server on a free port (redis cannot bind port 0: node binds 0,
//    reads the port and lets it go), no persistence.
// 2. Two chat instances (node dist/main.js, REDIS_URL, INSTANCE=a|b).
// 3. HAProxy in front; clients connect through it and alternate between a
//    and b, so one room spans both instances.
// 4. Every line reaches every other member once, in order per sender.
// 5. Redis is killed and started again on the same port: the instances stay
//    up, their clients stay connected, lines still reach members on the
//    same instance, and cross-instance delivery resumes.
// Every process is killed by pid at teardown (and if tap kills this file).
import t from 'tap'
import net from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, owned, startChat, type TestT } from './harness'

const HAPROXY = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy'].find(p => existsSync(p))

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Polls `check` every 25 ms until it holds; fails with `what` after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

/** Resolves with the first line a TCP client gets from `port` after sending `send`, or '' if it cannot connect. */
function ask(port: number, send: string): Promise<string> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let reply = ''
    socket.setEncoding('utf8')
    socket.setTimeout(2000, () => socket.destroy())
    socket.on('connect', () => socket.write(send))
    socket.on('data', (d: string) => {
      reply += d
      if (reply.includes('\n')) socket.destroy()
    })
    socket.on('close', () => resolve(reply.split('\n')[0] ?? ''))
    socket.on('error', () => {})
  })
}

function spawnOwned(t: TestT, command: string, args: string[]): ChildProcess {
  const child = owned(spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] }))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return child
}

async function startRedis(t: TestT, port: number): Promise<ChildProcess> {
  const child = spawnOwned(t, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--logfile', ''])
  await until(`redis-server on ${port}`, async () => (await ask(port, 'PING\r\n')) === '+PONG\r')
  return child
}

/**
 * Sends distinct probe lines from `from` until one reaches `to`: proves both
 * instances are subscribed at Redis (a join is confirmed to the client
 * before Redis confirms the instance's subscription).
 */
let probes = 0
async function crosses(from: Client, to: Client, what: string): Promise<void> {
  const seen = to.lines.filter(l => l.includes(': probe ')).length
  await until(`a line to cross ${what}`, () => {
    if (to.lines.filter(l => l.includes(': probe ')).length > seen) return true
    from.send(`probe ${probes++}`)
    return false
  }, 20_000)
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await gone
}

t.test('two chat instances behind HAProxy, joined by Redis', { skip: HAPROXY === undefined ? 'haproxy is not installed (apt-get install haproxy)' : false }, async t => {
  const redisPort = await freePort()
  let redis = await startRedis(t, redisPort)
  const env = { REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_PREFIX: `chat-test-${process.pid}:` }
  const a = await startChat(t, { ...env, INSTANCE: 'a' })
  const b = await startChat(t, { ...env, INSTANCE: 'b' })

  const dir = mkdtempSync(join(tmpdir(), 'amy-chat-haproxy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lbPort = await freePort()
  const config = [
    'global',
    '    maxconn 1000',
    'defaults',
    '    mode tcp',
    '    timeout connect 5s',
    '    timeout client 1h',
    '    timeout server 1h',
    'frontend chat',
    `    bind 127.0.0.1:${lbPort}`,
    '    default_backend instances',
    'backend instances',
    '    balance roundrobin',
    `    server a 127.0.0.1:${a.port}`,
    `    server b 127.0.0.1:${b.port}`,
    '',
  ].join('\n')
  writeFileSync(join(dir, 'haproxy.cfg'), config)
  const haproxy = spawnOwned(t, HAPROXY!, ['-db', '-f', join(dir, 'haproxy.cfg')])
  await until('HAProxy to forward to an instance', async () => /^\* welcome/.test(await ask(lbPort, '')))

  const clients: Client[] = []
  t.teardown(() => clients.forEach(c => c.close()))
  const members: Client[] = []
  for (let i = 0; i < 8; i++) {
    const c = await Client.connect(lbPort)
    clients.push(c)
    await c.expect(/^\* welcome, guest-\d+ on [ab]: /)
    members.push(c)
  }
  const instanceOf = (c: Client): string => /^\* welcome, guest-\d+ on ([ab]):/.exec(c.lines[0]!)![1]!
  const onA = members.filter(c => instanceOf(c) === 'a')
  const onB = members.filter(c => instanceOf(c) === 'b')
  t.same([onA.length, onB.length], [4, 4], 'round-robin put 4 members on each instance')
  for (const [i, m] of members.entries()) await m.enter(`m${i}`, 'big')
  const nick = (c: Client): string => `m${members.indexOf(c)}`
  await crosses(onA[0]!, onB[0]!, 'from a to b')
  await crosses(onB[0]!, onA[0]!, 'from b to a')

  await t.test('every line reaches every other member once, in order per sender, across instances', async t => {
    const PER_SENDER = 60
    const senders = [0, 1, 2] // on both instances (round-robin)
    for (let seq = 0; seq < PER_SENDER; seq++) for (const s of senders) members[s]!.send(`msg ${s} ${seq}`)
    // A last line per sender: anything duplicated or late from it would come before.
    for (const s of senders) members[s]!.send(`last ${s}`)
    for (const [i, m] of members.entries()) {
      for (const s of senders) if (s !== i) await m.expect(`m${s}: last ${s}`, 15_000)
    }
    for (const [i, m] of members.entries()) {
      for (const s of senders) {
        const got = m.texts().filter(l => l.startsWith(`m${s}: msg `))
        const want = s === i ? [] : Array.from({ length: PER_SENDER }, (_, seq) => `m${s}: msg ${s} ${seq}`)
        t.same(got, want, `m${i} (on ${instanceOf(m)}) got m${s}'s (on ${instanceOf(members[s]!)}) lines exactly once, in order`)
      }
    }
  })

  await t.test('Redis restarted: the instances survive, local delivery goes on, cross-instance delivery resumes', async t => {
    const [a0, a1] = onA as [Client, Client]
    const [b0] = onB as [Client]
    await killAndWait(redis)
    // Lines sent now reach members on the same instance only (at-most-once
    // across instances: they are counted as not sent, never queued).
    a0.send('during the outage')
    await a1.expect(`${nick(a0)}: during the outage`)
    t.pass('during the outage a line still reaches the members on its own instance')

    redis = await startRedis(t, redisPort) // the same port, empty
    // The instances reconnect with backoff and resubscribe.
    await crosses(a0, b0, 'from a to b after the restart')
    await crosses(b0, a0, 'from b to a after the restart')
    t.pass('cross-instance delivery resumed in both directions')

    for (let seq = 0; seq < 20; seq++) a0.send(`after ${seq}`)
    a0.send('after-last')
    for (const m of members) if (m !== a0) await m.expect(/: after-last$/, 15_000)
    for (const m of members) {
      if (m === a0) continue
      t.same(m.texts().filter(l => / after \d+$/.test(l)).map(l => l.split(': ')[1]), Array.from({ length: 20 }, (_, seq) => `after ${seq}`), `after the restart, ${instanceOf(m)}'s member got every line once, in order`)
    }
    t.equal(b0.texts().filter(l => l.endsWith('during the outage')).length, 0, 'the outage line never reached the other instance')
    t.ok(members.every(m => !m.closed), 'no client was disconnected')
    t.ok(a.child.exitCode === null && b.child.exitCode === null && haproxy.exitCode === null, 'both instances and HAProxy are still running')
  })
})
