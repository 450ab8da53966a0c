// @amy/redis against a real redis-server: server instances in this process
// (each a Server with its own workers and instance id) joined by Redis.
import t from 'tap'
import net from 'node:net'
import { join } from 'node:path'
import { createServer, type Server } from '@amy/server'
import { redisPubSub, type RedisPubSubOptions } from '@amy/redis'
import { RedisServer, until } from './redis-server'

const HANDLER = join(__dirname, 'fixtures', 'pubsub.js')

/** A line client: every line the server sends, in order. */
class Client {
  readonly lines: string[] = []
  #partial = ''
  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n')
      this.#partial = parts.pop()!
      this.lines.push(...parts)
    })
    socket.on('error', () => {})
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new Client(socket)))
      socket.once('error', reject)
    })
  }

  send(line: string): void {
    this.socket.write(line + '\n')
  }

  async expect(line: string, ms?: number): Promise<void> {
    await until(`line ${JSON.stringify(line)}; got ${JSON.stringify(this.lines.slice(-5))}`, () => this.lines.includes(line), ms)
  }

  count(prefix: string): number {
    return this.lines.filter(l => l.startsWith(prefix)).length
  }

  async subscribe(topic: string): Promise<void> {
    this.send(`sub ${topic}`)
    await this.expect(`subscribed ${topic}`)
  }
}

/** A test object, as handed to a t.test callback. */
type TestT = Parameters<Parameters<typeof t.test>[0]>[0]

async function startInstance(t: TestT, options: RedisPubSubOptions, threads = 2): Promise<{ server: Server; port: number }> {
  const server = createServer({ handler: HANDLER, threads, pubsub: redisPubSub(options) })
  t.teardown(() => server.close({ force: true }))
  const { port } = await server.listen({ port: 0 })
  return { server, port }
}

async function connectAll(t: TestT, ports: number[]): Promise<Client[]> {
  const clients = await Promise.all(ports.map(port => Client.connect(port)))
  t.teardown(() => clients.forEach(c => c.socket.destroy()))
  return clients
}

t.test('options are checked by redisPubSub(): each mistake is an Error with a code', async t => {
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn()
    } catch (err) {
      return (err as { code?: string }).code
    }
    return undefined
  }
  t.equal(code(() => redisPubSub({ url: 'not a url' })), 'ERR_INVALID_ARG_VALUE', 'a url that does not parse')
  t.equal(code(() => redisPubSub({ url: 'http://127.0.0.1:6379' })), 'ERR_INVALID_ARG_VALUE', 'a url that is not redis://')
  t.equal(code(() => redisPubSub({ url: 42 as unknown as string })), 'ERR_INVALID_ARG_TYPE', 'a url that is not a string')
  t.equal(code(() => redisPubSub({ url: 'redis://127.0.0.1', prefx: 'a:' } as RedisPubSubOptions)), 'ERR_UNKNOWN_OPTION', 'a misspelt option')
  t.equal(code(() => redisPubSub({ url: 'redis://127.0.0.1', maxPayloadBytes: 0 })), 'ERR_INVALID_ARG_VALUE', 'maxPayloadBytes 0')
  t.equal(code(() => redisPubSub({ url: 'redis://127.0.0.1', maxPending: 1.5 })), 'ERR_INVALID_ARG_VALUE', 'a fractional maxPending')
  t.equal(code(() => redisPubSub({ url: 'redis://127.0.0.1', prefix: 7 as unknown as string })), 'ERR_INVALID_ARG_TYPE', 'a prefix that is not a string')
  t.equal(code(() => redisPubSub({ url: 'redis://127.0.0.1', placement: 'edge' as 'main' })), 'ERR_INVALID_ARG_VALUE', 'an unknown placement')
  t.equal(code(() => redisPubSub(null as unknown as RedisPubSubOptions)), 'ERR_INVALID_ARG_TYPE', 'no options object')
  t.equal(
    code(() => createServer({ handler: HANDLER, pubsub: { url: 'redis://x' } as never })),
    'ERR_INVALID_ARG_TYPE',
    'createServer rejects a pubsub that is not an adapter',
  )
  t.equal(redisPubSub({ url: 'redis://127.0.0.1' }).maxPayloadBytes, 1024 * 1024, 'the default payload limit is 1 MiB')
})

t.test('Redis down at start: listen() rejects with ERR_PUBSUB_UNAVAILABLE', async t => {
  const redis = await RedisServer.start()
  await redis.kill() // a port where nothing listens now
  const server = createServer({ handler: HANDLER, threads: 1, pubsub: redisPubSub({ url: redis.url, connectTimeout: 300 }) })
  t.teardown(() => server.close({ force: true }))
  await t.rejects(server.listen({ port: 0 }), { code: 'ERR_PUBSUB_UNAVAILABLE' })
  t.notOk(server.listening, 'the server does not listen')
})


// Worker threads start slowly under tap's TypeScript loader (seconds each):
// the tests share these instances, each on its own topics.
//   A, B: app1, main placement (the default), 2 workers and 1
//   C: app2 (another prefix on the same Redis), 1 worker
//   WA, WB: app1w, worker placement, 1 worker each
let redis: RedisServer
let A: { server: Server; port: number }
let B: { server: Server; port: number }
let C: { server: Server; port: number }
let WA: { server: Server; port: number }
let WB: { server: Server; port: number }

t.before(async () => {
  redis = await RedisServer.start()
  t.teardown(() => redis.kill())
  // Small limits, so the bad-input and slow-Redis tests reach them quickly.
  const app1 = { url: redis.url, prefix: 'app1:', maxPayloadBytes: 1000, maxPending: 1000, minReconnectDelay: 20, maxReconnectDelay: 200 }
  ;[A, B, C, WA, WB] = await Promise.all([
    startInstance(t, app1),
    startInstance(t, app1, 1),
    startInstance(t, { url: redis.url, prefix: 'app2:' }, 1),
    startInstance(t, { url: redis.url, prefix: 'app1w:', placement: 'worker' }, 1),
    startInstance(t, { url: redis.url, prefix: 'app1w:', placement: 'worker' }, 1),
  ])
})

const numsub = async (channel: string): Promise<number> => Number((await redis.cli('PUBSUB', 'NUMSUB', channel)).split('\n')[1])

for (const placement of ['main', 'worker'] as const) {
  t.test(`placement ${placement}: every subscriber on every instance gets each message once, in order, not the sender`, async t => {
    const [a, b, prefix] = placement === 'main' ? [A, B, 'app1:'] : [WA, WB, 'app1w:']
    const before = { a: { ...a.server.stats().pubsub! }, b: { ...b.server.stats().pubsub! } }
    // Three subscribers per instance (on A, spread over its two workers).
    const [pubA, ...subs] = await connectAll(t, [a.port, a.port, a.port, a.port, b.port, b.port, b.port])
    for (const c of [pubA!, ...subs]) await c.subscribe('room')
    await until('both instances subscribed at Redis', async () => (await numsub(prefix + 'room')) === 2)
    const N = 300
    pubA!.send(`pubn room m ${N}`)
    const want = Array.from({ length: N }, (_, i) => `m ${i}`)
    for (const [i, c] of subs.entries()) {
      await until(`subscriber ${i} to get ${N} lines`, () => c.count('m ') >= N)
    }
    // A sentinel after the burst: anything duplicated would arrive before it.
    pubA!.send('pub room end')
    for (const c of subs) await c.expect('end')
    for (const [i, c] of subs.entries()) t.same(c.lines.filter(l => l.startsWith('m ')), want, `subscriber ${i} (instance ${i < 3 ? 'A' : 'B'}): all ${N}, once each, in order`)
    t.equal(pubA!.count('m '), 0, 'the sender is excepted on its own instance')

    // A publish from the other instance, sender included this time.
    subs[3]!.send('puball room from-b')
    for (const c of [pubA!, ...subs]) await c.expect('from-b')
    subs[3]!.send('pub room end2')
    for (const c of [pubA!, ...subs.slice(0, 3)]) await c.expect('end2')
    for (const c of [pubA!, ...subs]) t.equal(c.count('from-b'), 1, 'puball reaches every subscriber once, its sender too')

    const sa = a.server.stats().pubsub!
    const sb = b.server.stats().pubsub!
    t.equal(sa.connected, placement === 'main' ? 1 : a.server.stats().workers.length, 'stats: connected (one per adapter)')
    t.equal(sa.published - before.a.published, N + 1, 'stats: every publish of A was sent to Redis')
    t.ok(sa.ownEchoes - before.a.ownEchoes >= N + 1, `stats: A dropped its own messages coming back (${sa.ownEchoes})`)
    t.ok(sb.received - before.b.received >= N + 1, `stats: B received A's messages (${sb.received})`)
    t.equal(sa.malformed + sb.malformed, 0, 'nothing malformed')
  })
}

t.test('topics: only topics with local subscribers are subscribed at Redis; prefixes keep apps apart', async t => {
  const channels = async (): Promise<string[]> =>
    (await redis.cli('PUBSUB', 'CHANNELS', '*news*')).split('\n').filter(Boolean).sort()
  t.same(await channels(), [], 'no subscriber anywhere: no channel at Redis')

  const [x, y, z, w, v] = await connectAll(t, [A.port, A.port, C.port, B.port, C.port])
  await x!.subscribe('news')
  await y!.subscribe('news') // a second subscriber on A: no second Redis subscription
  await z!.subscribe('news')
  await until('app1:news and app2:news at Redis', async () => (await channels()).join() === 'app1:news,app2:news')
  t.equal(await numsub('app1:news'), 1, 'A holds one Redis subscription for its two subscribers')

  // B publishes on app1's topic; C's subscriber to the same topic name hears nothing of it.
  w!.send('pub news for-app1')
  await x!.expect('for-app1')
  await y!.expect('for-app1')
  v!.send('pub news for-app2')
  await z!.expect('for-app2')
  t.equal(z!.count('for-app1'), 0, "app2 did not receive app1's message (its own message after it arrived)")

  x!.send('unsub news')
  await x!.expect('unsubscribed news')
  t.same(await channels(), ['app1:news', 'app2:news'], 'one subscriber left on A: still subscribed')
  y!.socket.destroy() // the last one leaves by hanging up
  await until('app1:news to be unsubscribed', async () => (await channels()).join() === 'app2:news')
  t.pass('the last local subscriber leaving unsubscribes the instance at Redis')
})

t.test('bad input: a malformed message from Redis is dropped and counted; oversized payloads and non-string topics throw with a code', async t => {
  const [c, sender] = await connectAll(t, [A.port, A.port])
  await c!.subscribe('bad')
  await until('the subscription at Redis', async () => (await numsub('app1:bad')) === 1)
  const malformed = A.server.stats().pubsub!.malformed
  // Another application on the same channel: no header, an empty message, a lone magic byte.
  await redis.cli('PUBLISH', 'app1:bad', 'hello from someone else')
  await redis.cli('PUBLISH', 'app1:bad', '')
  await redis.cli('PUBLISH', 'app1:bad', '\xa7')
  await until('3 malformed messages counted', () => A.server.stats().pubsub!.malformed === malformed + 3)
  sender!.send('pub bad still-alive')
  await c!.expect('still-alive')
  t.equal(c!.lines.filter(l => l.includes('someone')).length, 0, 'nothing malformed was delivered')

  sender!.send('pubbytes bad 1000') // A's maxPayloadBytes
  await sender!.expect('published')
  sender!.send('pubbytes bad 1001')
  await sender!.expect('error ERR_PAYLOAD_TOO_LARGE')
  sender!.send('pubtype')
  await sender!.expect('error ERR_INVALID_ARG_TYPE')
  sender!.send('pub bad done')
  await c!.expect('done')
  t.equal(c!.lines.filter(l => l.startsWith('b')).length, 1, 'only the payload within the limit was delivered')
})

t.test('Redis slow (stopped with SIGSTOP): publishes past maxPending are dropped and counted, nothing grows, delivery resumes', async t => {
  const [senderA, localA, remoteB] = await connectAll(t, [A.port, A.port, B.port])
  for (const c of [senderA!, localA!, remoteB!]) await c.subscribe('slow')
  await until('both instances subscribed', async () => (await numsub('app1:slow')) === 2)
  const before = { ...A.server.stats().pubsub! }

  redis.child!.kill('SIGSTOP')
  t.teardown(() => redis.child?.kill('SIGCONT'))
  senderA!.send('pubn slow slow 1100')
  await until('local delivery of all 1100', () => localA!.count('slow ') === 1100)
  await until('100 drops counted', () => A.server.stats().pubsub!.dropped - before.dropped === 100)
  t.pass('1000 publishes (maxPending) wait for Redis, the other 100 are dropped and counted; local delivery is complete')

  redis.child!.kill('SIGCONT')
  await until('the 1000 pending to be acknowledged', () => A.server.stats().pubsub!.published - before.published === 1000)
  senderA!.send('pub slow resumed')
  await remoteB!.expect('resumed')
  t.equal(B.server.stats().pubsub!.dropped, 0, "B's hub passed the burst of 1000 to its worker without filling the worker's bounded channel")
  t.same(
    remoteB!.lines.filter(l => l.startsWith('slow ')),
    Array.from({ length: 1000 }, (_, i) => `slow ${i}`),
    'B got the 1000 that were sent, in order, and none of the dropped ones',
  )
})

t.test('Redis restarted mid-run: no crash, local delivery goes on and is counted, then reconnects, resubscribes and delivers across instances again', async t => {
  const [senderA, localA, remoteB] = await connectAll(t, [A.port, A.port, B.port])
  for (const c of [senderA!, localA!, remoteB!]) await c.subscribe('restart')
  await until('both instances subscribed', async () => (await numsub('app1:restart')) === 2)
  senderA!.send('pub restart before')
  await remoteB!.expect('before')
  const before = { ...A.server.stats().pubsub! }

  await redis.kill()
  await until('A to see Redis gone', () => A.server.stats().pubsub!.connected === 0)
  senderA!.send('pub restart during')
  await localA!.expect('during')
  await until('the outage publish counted as not sent', () => A.server.stats().pubsub!.notSent > before.notSent)
  t.pass('during the outage a publish is delivered on its own instance and counted as not sent')

  await redis.start() // same port, empty: nothing subscribed
  await until('A and B to reconnect', () => A.server.stats().pubsub!.connected === 1 && B.server.stats().pubsub!.connected === 1)
  await until('both instances resubscribed at Redis', async () => (await numsub('app1:restart')) === 2)
  senderA!.send('pub restart after')
  await remoteB!.expect('after')
  t.ok(A.server.stats().pubsub!.reconnects > before.reconnects, 'reconnects are counted')
  t.same(remoteB!.lines.filter(l => ['before', 'during', 'after'].includes(l)), ['before', 'after'], 'B: before and after once each; the outage message never crossed (at-most-once)')
  t.ok(A.server.listening && B.server.listening, 'both instances still serve')
})

t.test('a worker that dies takes its subscriptions with it: the instance unsubscribes at Redis', async t => {
  const [victim] = await connectAll(t, [A.port])
  await victim!.subscribe('crashy')
  await until('the subscription at Redis', async () => (await numsub('app1:crashy')) === 1)
  victim!.send('crash')
  await until('app1:crashy to be unsubscribed after the crash', async () => (await numsub('app1:crashy')) === 0)
  await until('the worker to be replaced', () => A.server.stats().workerCrashes === 1)
  t.pass('the dead worker\'s topic is no longer subscribed at Redis')
})
