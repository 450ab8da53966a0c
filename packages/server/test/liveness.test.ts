// Issue 7, failure 1: a worker stuck in a loop hung everything. Now a
// watchdog reads each worker's heartbeat (liveness.ts): a silent worker gets
// no new connections, is terminated after stallTimeout and replaced; close()
// terminates what does not stop; signals end the process.
import t from 'tap'
import type { Test } from 'tap'
import net from 'node:net'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from '@amy/server'
import { Child } from './child'
import { LineClient, captureLogger, fixture, started, until } from './helpers'

// Real worker threads and child processes on a shared 2-core machine: more than tap's 60 s default.
t.setTimeout(180_000)

const logged = (lines: Array<Record<string, unknown>>, msg: string) => (): boolean => lines.some(l => l['msg'] === msg)

t.test('a stuck worker gets no new connections, is terminated after stallTimeout and replaced; its connections are closed and counted', async t => {
  const [logger, lines] = captureLogger()
  const [server, port] = await started(t, { handler: fixture('commands.js'), threads: 2, logger, stallTimeout: 3000 })
  const clients = await Promise.all(Array.from({ length: 4 }, () => LineClient.connect(port)))
  t.teardown(() => { for (const c of clients) c.destroy() })
  const workers = await Promise.all(clients.map(c => c.request('worker')))
  const stuck = clients.filter((_, i) => workers[i] === 'worker 0')
  t.equal(await stuck[0]!.request('spin'), 'spinning')
  await until(logged(lines, 'worker unresponsive; it gets no new connections until it recovers'), 10_000, 'the unresponsive log')
  t.pass('the silent worker is logged')
  // Every new connection is served (none is routed into the stuck worker).
  const fresh = await Promise.all(Array.from({ length: 4 }, () => LineClient.connect(port)))
  t.teardown(() => { for (const c of fresh) c.destroy() })
  for (const c of fresh) t.equal(await c.request('echo served'), 'served', 'a new connection is served meanwhile')
  await until(() => server.stats().workerStalls === 1, 15_000, 'the stalled worker to be terminated')
  await Promise.all(stuck.map(c => c.until(() => c.closed, 10_000)))
  t.pass(`the ${stuck.length} connections of the stuck worker were closed`)
  t.equal(server.stats().connectionsLostToCrashes, stuck.length, 'and counted as lost')
  t.equal(server.stats().workerCrashes, 0, 'a stall is not counted as a crash')
  t.ok(lines.some(l => l['msg'] === 'worker stalled; terminating it'), 'the termination is logged')
  // Its replacement serves again.
  await until(logged(lines, 'worker replaced'), 15_000, 'the replacement')
  let back = false
  for (let i = 0; i < 20 && !back; i++) {
    const c = await LineClient.connect(port)
    fresh.push(c)
    back = (await c.request('worker')) === 'worker 0'
  }
  t.ok(back, 'worker 0 is back')
})

t.test('close({ timeout }) terminates a worker stuck in a loop and resolves', async t => {
  const [logger, lines] = captureLogger()
  const server = createServer({ handler: fixture('commands.js'), threads: 2, logger, stallTimeout: 0 })
  t.teardown(() => server.close({ force: true }))
  const { port } = await server.listen({ port: 0 })
  const c = await LineClient.connect(port)
  t.teardown(() => c.destroy())
  t.equal(await c.request('spin'), 'spinning')
  await server.close({ timeout: 300 })
  t.pass('close() resolved')
  t.ok(lines.some(l => l['msg'] === 'worker did not stop in time; terminating it'), 'the termination is logged')
  await c.until(() => c.closed, 10_000)
  t.pass("the stuck worker's connection was closed")
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  for (const stallTimeout of ['0', '10000']) {
    t.test(`${signal} ends the process while a worker is stuck (stallTimeout ${stallTimeout})`, async t => {
      const child = Child.serve(t, { STALL_TIMEOUT: stallTimeout })
      const port = await child.port()
      const c = await LineClient.connect(port)
      t.teardown(() => c.destroy())
      t.equal(await c.request('spin'), 'spinning')
      child.proc.kill(signal)
      await until(() => child.exited, 30_000, 'the process to exit')
      t.equal(child.exitCode, 0, 'it exited by itself, status 0')
      t.match(child.stdout, /closed/, 'after close() resolved')
    })
  }
}

t.test('close({ timeout }) leaves no timer of its own behind once it resolved (the process can exit at once)', async t => {
  const timers = (): number => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
  const server = createServer({ handler: fixture('echo.js'), threads: 1, logger: false })
  await server.listen({ port: 0 })
  const before = timers()
  await server.close({ timeout: 600_000 })
  t.ok(timers() <= before, `active timers: ${before} before close(), ${timers()} after`)
})

t.test('setupTimeout: a setup() that never settles (or loops) makes listen() reject with ERR_SETUP_TIMEOUT', async t => {
  for (const setup of ['hang', 'spin']) {
    const server = createServer({ handler: fixture('fragile.js'), threads: 2, setupTimeout: 300, handlerData: { setup } })
    t.teardown(() => server.close({ force: true }))
    await t.rejects(server.listen({ port: 0 }), { code: 'ERR_SETUP_TIMEOUT' }, `setup ${setup}`)
    await server.close()
    t.equal(server.listening, false)
  }
  t.throws(() => createServer({ handler: fixture('echo.js'), stallTimeout: 100 }), { code: 'ERR_INVALID_ARG_VALUE' }, 'stallTimeout under 500 ms')
})

/** fragile.js on 2 workers (a replacement's setup() fails while `marker` exists), a client on each. */
async function fragileServer(t: Test) {
  const marker = join(tmpdir(), `amy-fragile-${process.pid}-${Date.now()}-${Math.random()}`)
  t.teardown(() => rmSync(marker, { force: true }))
  const [logger, lines] = captureLogger()
  const [server, port] = await started(t, { handler: fixture('fragile.js'), threads: 2, logger, handlerData: { failIfExists: marker } })
  const clients = await Promise.all(Array.from({ length: 2 }, () => LineClient.connect(port)))
  t.teardown(() => { for (const c of clients) c.destroy() })
  const workers = await Promise.all(clients.map(c => c.request('worker')))
  return { marker, lines, server, port, clients, workers }
}

t.test('a worker whose replacement fails is retried with backoff until it serves again', async t => {
  const { marker, lines, server, port, clients, workers } = await fragileServer(t)
  writeFileSync(marker, '')
  clients[workers.indexOf('worker 0')]!.send('crash')
  await until(() => lines.filter(l => l['msg'] === 'could not replace a dead worker; retrying').length >= 2, 15_000, 'two failed replacements')
  t.pass('failed replacements are logged and retried')
  rmSync(marker)
  await until(logged(lines, 'worker replaced'), 15_000, 'the replacement')
  let back = false
  for (let i = 0; i < 20 && !back; i++) {
    const c = await LineClient.connect(port)
    clients.push(c)
    back = (await c.request('worker')) === 'worker 0'
  }
  t.ok(back, 'worker 0 serves again')
  t.equal(server.stats().workerCrashes, 1)
})

t.test('publishing while a peer worker is dead and not yet replaced is logged once, not once per publish; the replacement gets publishes again', async t => {
  const { marker, lines, server, port, clients, workers } = await fragileServer(t)
  const publisher = clients[workers.indexOf('worker 0')]!
  writeFileSync(marker, '') // worker 1's replacement fails while it exists
  clients[workers.indexOf('worker 1')]!.send('crash')
  await until(() => server.stats().workerCrashes === 1, 15_000, 'the crash')
  // 20 publishes, each in its own turn (the echo after it is the sentinel).
  for (let i = 0; i < 20; i++) {
    publisher.send('pub room x')
    t.equal(await publisher.request(`echo ${i}`), String(i))
  }
  const failures = lines.filter(l => (l['err'] as { code?: string } | undefined)?.code === 'ERR_CHANNEL_CLOSED')
  t.ok(failures.length <= 1, `the dead peer is logged at most once (got ${failures.length} lines)`)
  rmSync(marker)
  await until(logged(lines, 'worker replaced'), 15_000, 'the replacement')
  let subscriber: LineClient | undefined
  for (let i = 0; i < 20 && subscriber === undefined; i++) {
    const c = await LineClient.connect(port)
    clients.push(c)
    if ((await c.request('worker')) === 'worker 1') subscriber = c
  }
  t.ok(subscriber, 'a connection on the replacement')
  t.equal(await subscriber!.request('sub room'), 'subscribed')
  publisher.send('pub room hello')
  await subscriber!.until(() => subscriber!.lines.includes('hello'), 10_000)
  t.pass('a publish from worker 0 reaches the replacement worker 1')
})

t.test('firstDataTimeout closes connections that never send; one that sends stays', async t => {
  const [server, port] = await started(t, { handler: fixture('commands.js'), threads: 1, firstDataTimeout: 300 })
  const silent = await LineClient.connect(port)
  const talker = await LineClient.connect(port)
  t.teardown(() => { silent.destroy(); talker.destroy() })
  t.equal(await talker.request('echo hi'), 'hi')
  await silent.until(() => silent.closed, 10_000)
  t.pass('the silent connection was closed')
  t.equal(await talker.request('echo still'), 'still', 'the one that sent stays (no idle timeout set)')
  t.equal(server.stats().workers[0]!.errors, 1, 'counted as an error close')
})

t.test('a proxied pair lost to a crash counts once', async t => {
  const upstream = net.createServer(s => { s.on('error', () => {}); s.pipe(s) })
  await new Promise<void>(r => upstream.listen(0, '127.0.0.1', r))
  t.teardown(() => upstream.close())
  const upstreamPort = (upstream.address() as net.AddressInfo).port
  const [logger] = captureLogger()
  const [server, port] = await started(t, { handler: fixture('proxy-commands.js'), threads: 1, logger, handlerData: { port: upstreamPort } })
  const clients = await Promise.all(Array.from({ length: 3 }, () => LineClient.connect(port)))
  t.teardown(() => { for (const c of clients) c.destroy() })
  for (const c of clients) t.equal(await c.request('via upstream'), 'via upstream', 'proxied')
  t.equal(server.stats().connections, 6, 'three pairs open')
  clients[0]!.send('crash')
  await until(() => server.stats().workerCrashes === 1, 15_000, 'the crash')
  t.equal(server.stats().connectionsLostToCrashes, 3, 'three client connections lost, not six')
})
