// balance: 'reuseport' — every worker accepts from its own SO_REUSEPORT
// listener (worker-listeners.ts) instead of the main thread's hand-off.
import t from 'tap'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer } from '@amy/server'
import { LineClient, captureLogger, fixture, sleep, started, until } from './helpers'

const linux = process.platform === 'linux'

t.test("balance must be 'handoff' or 'reuseport'", async t => {
  t.throws(() => createServer({ handler: fixture('commands.js'), balance: 'random' as 'handoff' }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => createServer({ handler: fixture('commands.js'), balance: 1 as unknown as 'handoff' }), { code: 'ERR_INVALID_ARG_VALUE' })
  // The per-address counters live in the main thread's acceptor, which reuseport bypasses.
  t.throws(() => createServer({ handler: fixture('commands.js'), balance: 'reuseport', maxConnectionsPerAddress: 4 }), { code: 'ERR_INVALID_ARG_VALUE' })
})

t.test('reuseport: the kernel spreads connections over both workers, each serves and counts them', { skip: !linux && 'Linux only' }, async t => {
  const [server, port] = await started(t, { handler: fixture('commands.js'), threads: 2, balance: 'reuseport' })
  const clients = await Promise.all(Array.from({ length: 40 }, () => LineClient.connect(port)))
  t.teardown(() => clients.forEach(c => c.destroy()))
  const workers = await Promise.all(clients.map(c => c.request('worker')))
  for (let i = 0; i < clients.length; i++) t.equal(await clients[i]!.request(`echo hello ${i}`), `hello ${i}`)
  // 40 connections hashed over 2 listeners: all on one is a 2^-39 event.
  t.ok(workers.includes('worker 0') && workers.includes('worker 1'), `both workers got connections (${workers.filter(w => w === 'worker 0').length} / ${workers.filter(w => w === 'worker 1').length})`)
  const stats = server.stats()
  t.equal(stats.accepted, 40, 'accepted counted by the workers')
  t.equal(stats.connections, 40)
  t.equal(stats.rejected, 0)
})

t.test('reuseport: maxConnections holds across the workers; past it connections are closed and counted', { skip: !linux && 'Linux only' }, async t => {
  const [server, port] = await started(t, { handler: fixture('commands.js'), threads: 2, balance: 'reuseport', maxConnections: 3 })
  const kept = await Promise.all(Array.from({ length: 3 }, () => LineClient.connect(port)))
  t.teardown(() => kept.forEach(c => c.destroy()))
  for (const c of kept) t.equal(await c.request('echo in'), 'in')
  const extra: LineClient[] = []
  t.teardown(() => extra.forEach(c => c.destroy()))
  for (let i = 0; i < 6; i++) {
    const c = await LineClient.connect(port)
    extra.push(c)
    await c.until(() => c.closed)
  }
  t.pass('every connection past the limit was closed')
  t.equal(server.stats().rejected, 6)
  t.equal(server.stats().connections, 3)
  for (const c of kept) t.equal(await c.request('echo still'), 'still', 'the first three are served on')
})

t.test('reuseport: a dead worker is replaced with its own listener; new connections reach it', { skip: !linux && 'Linux only' }, async t => {
  const [logger, lines] = captureLogger('info')
  t.teardown(() => { if (t.counts.fail) console.error(JSON.stringify(lines.map(l => [l['time'], l['msg'], l['worker']]))) })
  const [server, port] = await started(t, { handler: fixture('commands.js'), threads: 2, balance: 'reuseport', logger })
  const clients: LineClient[] = []
  t.teardown(() => clients.forEach(c => c.destroy()))
  // Find a connection on worker 0 and crash that worker.
  let victim: LineClient | undefined
  for (let i = 0; i < 200 && victim === undefined; i++) {
    const c = await LineClient.connect(port)
    clients.push(c)
    if ((await c.request('worker')) === 'worker 0') victim = c
  }
  t.ok(victim, 'a connection on worker 0')
  victim!.send('crash')
  await victim!.until(() => victim!.closed)
  await until(() => server.stats().workerCrashes === 1, 10_000, 'the crash to be counted')
  await until(() => lines.some(l => l['msg'] === 'worker replaced'), 30_000, 'the replacement')
  // The replacement binds a new listener into the group: connections reach worker 0 again.
  let back = false
  for (let i = 0; i < 200 && !back; i++) {
    const c = await LineClient.connect(port).catch(() => undefined)
    if (c === undefined) continue
    clients.push(c)
    const w = await c.request('worker').catch(() => `timeout at ${i} ${Date.now()}`)
    if (w.startsWith('timeout')) t.fail(w)
    back = w === 'worker 0'
    if (!back) c.destroy()
  }
  t.ok(back, 'worker 0 serves again, from its new listener')
  t.equal(await clients.at(-1)!.request('echo ok'), 'ok')
})

t.test('reuseport: close() stops every worker listener; the port is free again', { skip: !linux && 'Linux only' }, async t => {
  const server = createServer({ handler: fixture('commands.js'), threads: 2, balance: 'reuseport' })
  const { port } = await server.listen({ port: 0 })
  const c = await LineClient.connect(port)
  t.equal(await c.request('echo x'), 'x')
  c.destroy()
  await server.close()
  // Nothing listens: a plain bind of the same port succeeds.
  const again = createServer({ handler: fixture('commands.js'), threads: 1 })
  t.teardown(() => again.close({ force: true }))
  const address = await again.listen({ port })
  t.equal(address.port, port)
})

t.test("reuseport: a TLS listener is served with TLS", { skip: !linux && 'Linux only' }, async t => {
  const certDir = join(__dirname, '..', '..', 'native', 'test', 'fixtures', 'tls')
  const pem = (name: string): string => readFileSync(join(certDir, name), 'utf8')
  const server = createServer({ handler: fixture('echo.js'), threads: 2, balance: 'reuseport' })
  t.teardown(() => server.close({ force: true }))
  const { port } = await server.listen({ port: 0, tls: { key: pem('server.key'), cert: pem('server.crt') } })
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pem('ca.crt'), servername: 'localhost' }, () => resolve(s))
    s.once('error', reject)
    t.teardown(() => s.destroy())
  })
  t.ok(socket.authorized, 'the handshake completed with the server certificate')
  socket.write('over tls')
  const echoed = await new Promise<string>(resolve => socket.once('data', (d: Buffer) => resolve(d.toString())))
  t.equal(echoed, 'over tls')
})

t.test('reuseport with tls: every worker serves TLS on its own listener; setSecureContext reaches them', { skip: !linux && 'Linux only' }, async t => {
  const certDir = join(__dirname, '..', '..', 'native', 'test', 'fixtures', 'tls')
  const pem = (name: string): string => readFileSync(join(certDir, name), 'utf8')
  const server = createServer({ handler: fixture('tls.js'), threads: 2, balance: 'reuseport', logger: false })
  t.teardown(() => server.close({ force: true }))
  const workerOf = new Map<number, number>() // client port -> the worker that opened it
  server.on('message', msg => {
    const m = msg as { type: string; worker: number; port: number }
    if (m.type === 'open') workerOf.set(m.port, m.worker)
  })
  const { port } = await server.listen({ port: 0, tls: { key: pem('server.key'), cert: pem('server.crt') } })
  // One TLS connection: the certificate's CN and the worker that served it (after an echo).
  const visit = (servername: string): Promise<{ cn: string; worker: number }> =>
    new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: pem('ca.crt'), servername, checkServerIdentity: () => undefined }, () => {
        const local = socket.localPort!
        const cn = String(socket.getPeerCertificate().subject.CN)
        socket.write('x')
        socket.once('data', () => {
          socket.destroy()
          until(() => workerOf.has(local), 10_000, 'the open message').then(() => resolve({ cn, worker: workerOf.get(local)! }), reject)
        })
      })
      socket.once('error', reject)
    })
  // The kernel hashes by 4-tuple: 40 connections miss a worker with probability 2^-39.
  const before = []
  for (let i = 0; i < 40; i++) before.push(await visit('localhost'))
  t.ok(before.every(v => v.cn === 'localhost'), 'the first certificate')
  t.same([...new Set(before.map(v => v.worker))].sort(), [0, 1], 'both workers served TLS')
  server.setSecureContext({ key: pem('other.key'), cert: pem('other.crt') })
  // Each worker switches when its message arrives: connect until both have served the new one.
  const switched = new Set<number>()
  for (let i = 0; i < 200 && switched.size < 2; i++) {
    const v = await visit('other.test')
    if (v.cn === 'other.test') switched.add(v.worker)
  }
  t.same([...switched].sort(), [0, 1], 'both workers serve the new certificate')
  const after = []
  for (let i = 0; i < 10; i++) after.push(await visit('other.test'))
  t.ok(after.every(v => v.cn === 'other.test'), 'and keep serving it')
})
