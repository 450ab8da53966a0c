import t from 'tap'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LineClient, fixture, started, until } from './helpers'

t.test('async data: after an await, bytes are still this connection\'s, with two connections interleaving', async t => {
  const [, port] = await started(t, { logger: false, handler: fixture('async.js'), threads: 1 })
  const a = await LineClient.connect(port)
  const b = await LineClient.connect(port)
  t.teardown(() => { a.destroy(); b.destroy() })
  t.equal(await a.request('hold from-a'), 'held')
  // b's line is read into the worker's read buffer while a's hook waits.
  t.equal(await b.request('release from-b'), 'from-b')
  await a.until(() => a.lines.length >= 2)
  t.equal(a.lines[1], 'was hold from-a', 'a\'s hook still sees its own bytes')
})

t.test('async data: no data for a connection runs while its previous data promise is pending', async t => {
  const [, port] = await started(t, { logger: false, handler: fixture('async.js'), threads: 1 })
  const a = await LineClient.connect(port)
  const b = await LineClient.connect(port)
  t.teardown(() => { a.destroy(); b.destroy() })
  t.equal(await a.request('hold first'), 'held')
  a.send('echo second') // must wait for the held hook
  t.equal(await b.request('echo b is served meanwhile'), 'b is served meanwhile', 'other connections are not held up')
  t.equal(await b.request('release go'), 'go')
  await a.until(() => a.lines.length >= 3)
  t.same(a.lines, ['held', 'was hold first', 'second'], 'in order: the held line, then the next')
})

t.test('async open: data waits for it, and its return value becomes conn.state', async t => {
  const [, port] = await started(t, { logger: false, handler: fixture('async.js'), threads: 1 })
  const clients = await Promise.all(Array.from({ length: 5 }, () => LineClient.connect(port)))
  t.teardown(() => { for (const c of clients) c.destroy() })
  for (const c of clients) c.send('count') // sent at once, before open's promise settles
  for (const c of clients) await c.until(() => c.lines.length >= 1)
  t.same(clients.map(c => c.lines[0]), clients.map(() => 'count 1'))
})

t.test('a rejected data promise closes that connection only, is passed to close, and the worker lives on', async t => {
  const [server, port] = await started(t, { logger: false, handler: fixture('async.js'), threads: 1 })
  const bad = await LineClient.connect(port)
  const good = await LineClient.connect(port)
  t.teardown(() => { bad.destroy(); good.destroy() })
  bad.send('reject')
  await bad.until(() => bad.closed)
  t.equal(await good.request('echo still here'), 'still here', 'the other connection on the same worker is served')
  t.equal(await good.request('lastclose'), 'lastclose rejected on purpose', 'close(conn, err) got the rejection')
  const stats = server.stats()
  t.equal(stats.workerCrashes, 0, 'no worker died')
  t.equal(stats.workers[0]!.errors, 1, 'counted as one error close')
})

t.test('a client that resets: close(conn, err) gets an ECONNRESET Error, counted as an error close', async t => {
  const [server, port] = await started(t, { logger: false, handler: fixture('async.js'), threads: 1 })
  const reset = await LineClient.connect(port)
  const good = await LineClient.connect(port)
  t.teardown(() => { reset.destroy(); good.destroy() })
  t.equal(await reset.request('echo up'), 'up')
  reset.socket.resetAndDestroy()
  await until(() => server.stats().workers[0]!.errors === 1, 10_000, 'the reset counted')
  t.equal(await good.request('lastclose'), 'lastclose ECONNRESET true')
})

t.test('close() while a data hook is pending: what the hook writes after close() began is delivered, then FIN', async t => {
  const marker = join(tmpdir(), `amy-late-write-${process.pid}-${Date.now()}`)
  t.teardown(() => rmSync(marker, { force: true }))
  const [server, port] = await started(t, { handler: fixture('async.js'), threads: 1 })
  const busy = await LineClient.connect(port)
  const idle = await LineClient.connect(port)
  t.teardown(() => { busy.destroy(); idle.destroy() })
  t.equal(await idle.request('echo hi'), 'hi')
  busy.send(`waitfile ${marker} late reply`)
  await busy.until(() => busy.lines.includes('waiting'))
  const closed = server.close({ timeout: 30_000 })
  // The idle connection's FIN says the worker has begun closing.
  await idle.until(() => idle.ended, 10_000)
  t.notOk(busy.ended, 'the connection whose hook is pending is not ended yet')
  writeFileSync(marker, '')
  await busy.until(() => busy.ended, 10_000)
  t.same(busy.lines, ['waiting', 'late reply'], 'the reply written after close() began arrived before the FIN')
  await closed
})
