import t from 'tap'
import net from 'node:net'
import { createServer, publish, connect } from '@amy/server'
import { LineClient, captureLogger, fixture, started, until } from './helpers'

t.test('conn.subscribe, context.publish (except), context.subscribers, conn.unsubscribe across 2 workers', async t => {
  const [server, port] = await started(t, { logger: false, handler: fixture('objects.js'), threads: 2 })
  const clients = await Promise.all(Array.from({ length: 4 }, () => LineClient.connect(port)))
  t.teardown(() => { for (const c of clients) c.destroy() })
  const workers = await Promise.all(clients.map(c => c.request('worker')))
  t.equal(new Set(workers).size, 2, 'subscribers on both workers')
  for (const c of clients) t.equal(await c.request('sub room'), 'subscribed')
  const counts = await Promise.all(clients.map(c => c.request('count room')))
  t.same(counts, clients.map(() => 'count 2'), 'two local subscribers per worker')
  const [sender, ...receivers] = clients
  sender!.send('pub room hello')
  for (const r of receivers) await r.until(() => r.lines.includes('hello'))
  t.equal(await receivers[0]!.request('unsub room'), 'unsubscribed')
  server.publish('room', 'from main\n')
  for (const r of [sender!, ...receivers.slice(1)]) await r.until(() => r.lines.includes('from main'))
  // A sentinel after the publish: the unsubscribed one got it before (FIFO), not 'from main'.
  t.equal(await receivers[0]!.request('worker'), workers[1], 'still served')
  t.notOk(receivers[0]!.lines.includes('from main'), 'unsubscribed: no delivery')
  t.notOk(sender!.lines.includes('hello'), 'the sender was excluded')
})

t.test('context.connect + conn.pipe: a proxy on objects', async t => {
  const upstream = net.createServer(s => s.pipe(s))
  await new Promise<void>(r => upstream.listen(0, '127.0.0.1', r))
  t.teardown(() => upstream.close())
  const upstreamPort = (upstream.address() as net.AddressInfo).port
  const [, port] = await started(t, { logger: false, handler: fixture('objects.js'), threads: 1 })
  const c = await LineClient.connect(port)
  t.teardown(() => c.destroy())
  t.equal(await c.request(`proxy ${upstreamPort}`), 'proxying')
  t.equal(await c.request('through the pipe'), 'through the pipe', 'echoed by the upstream')
})

t.test('conn.log and context.log carry worker and conn bindings to the server logger', async t => {
  const [logger, lines] = captureLogger()
  const [, port] = await started(t, { handler: fixture('objects.js'), threads: 1, logger })
  const c = await LineClient.connect(port)
  t.teardown(() => c.destroy())
  t.equal(await c.request('log look here'), 'logged')
  await until(() => lines.some(l => l['msg'] === 'look here'), 5000, 'the log line')
  const line = lines.find(l => l['msg'] === 'look here')
  t.equal(line?.['worker'], 0)
  t.type(line?.['conn'], 'number')
  t.equal(line?.['level'], 40, 'warn')
  t.ok(lines.some(l => l['msg'] === 'setup ran' && l['worker'] === 0), 'context.log in setup')
})

t.test('the deprecated module-level functions on the main thread: ERR_NOT_IN_WORKER with a correct hint', async t => {
  t.throws(() => publish('room', 'x'), { code: 'ERR_NOT_IN_WORKER', message: /conn\.context\.publish\(\).*server\.publish\(\)/ })
  t.throws(() => connect({ port: 1 }), { code: 'ERR_NOT_IN_WORKER', message: /conn\.context\.connect\(\)/ })
})

// Regression: a worker that took its peers' pub/sub channels after a peer
// had already stopped (listen, then close at once) died on ERR_CHANNEL_CLOSED.
t.test('listen then close at once: no worker dies while taking its peers', async t => {
  const [logger, lines] = captureLogger('warn')
  for (let i = 0; i < 4; i++) {
    const server = createServer({ handler: fixture('objects.js'), threads: 2, logger })
    await server.listen(0)
    await server.close()
  }
  t.same(lines.filter(l => l['level'] as number >= 50).map(l => l['msg']), [], 'nothing logged at error level')
})
