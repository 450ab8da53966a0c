// The main thread talks to the workers: server.send/destroy by connection
// id, broadcast and request to the handler's message hook, subscriber
// counts, and context.postMessage back to server.on('message').
import t, { type Test } from 'tap'
import { EventEmitter } from 'node:events'
import { createServer, type Server } from '@amy/server'
import { LineClient, fixture } from './helpers'

// One server for the file (starting workers is the slow part on a loaded
// machine); each test uses its own connections and topics.
let shared: Promise<[Server, number]> | undefined
function started(_t: Test): Promise<[Server, number]> {
  shared ??= (async () => {
    const server = createServer({ handler: fixture('messages.js'), threads: 2, logger: false })
    t.teardown(() => server.close({ force: true }))
    const { port } = await server.listen(0)
    return [server, port] as [Server, number]
  })()
  return shared
}

/** A client and the connection id the server told it. */
async function client(t: Test, port: number): Promise<[LineClient, number]> {
  const c = await LineClient.connect(port)
  t.teardown(() => c.destroy())
  await c.until(() => c.lines.length > 0)
  const id = Number(c.lines[0]!.split(' ')[1])
  return [c, id]
}

t.test('server.send(id, bytes) writes to that connection in whichever worker owns it', async t => {
  const [server, port] = await started(t)
  const clients = await Promise.all(Array.from({ length: 4 }, () => client(t, port)))
  for (const [c, id] of clients) {
    t.equal(await server.send(id, `to ${id}\n`), true)
    t.equal(await server.send(id, Buffer.from(`bytes ${id}\n`)), true)
    await c.until(() => c.lines.length >= 3)
    t.same(c.lines.slice(1), [`to ${id}`, `bytes ${id}`], `connection ${id} got its own lines only`)
  }
  t.equal(await server.send(123456789, 'nobody'), false, 'an unknown id: false')
})

t.test('server.destroy(id) closes that connection; false once it is gone', async t => {
  const [server, port] = await started(t)
  const [a, idA] = await client(t, port)
  const [b, idB] = await client(t, port)
  t.equal(await server.destroy(idA), true)
  await a.until(() => a.closed)
  t.equal(await server.destroy(idA), false, 'already gone')
  t.equal(await server.send(idA, 'x'), false, 'send to it: false')
  t.equal(await server.send(idB, 'still here\n'), true)
  await b.until(() => b.lines.includes('still here'))
})

t.test('broadcast runs the message hook in every worker', async t => {
  const [server, port] = await started(t)
  const clients = await Promise.all(Array.from({ length: 4 }, () => client(t, port)))
  server.broadcast({ kind: 'say', text: 'hello all' })
  for (const [c] of clients) await c.until(() => c.lines.includes('hello all'))
  t.pass('every connection on every worker got it')
})

t.test('request: one worker -> its reply; no worker -> an array from all, in worker order', async t => {
  const [server] = await started(t)
  t.equal(await server.request({ kind: 'worker' }, { worker: 1 }), 1)
  t.same(await server.request({ kind: 'worker' }), [0, 1])
  t.equal(await server.request({ kind: 'double', value: 21 }, { worker: 0 }), 42, 'an async hook: its resolved value')
  t.same(await server.request({ kind: 'data' }, { worker: 1 }), undefined)
})

t.test("request: the hook's error rejects with its code; uncloneable results are coded", async t => {
  const [server] = await started(t)
  await t.rejects(server.request({ kind: 'fail' }, { worker: 1 }), { code: 'ERR_NO_ROOM', message: 'no such room', worker: 1 })
  await t.rejects(server.request({ kind: 'reject' }), { code: 'ERR_ASYNC' }, 'from all: the first failure')
  await t.rejects(server.request({ kind: 'uncloneable' }, { worker: 0 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.equal(await server.request({ kind: 'worker' }, { worker: 1 }), 1, 'the worker still answers')
})

t.test('request with a timeout: a hook that never settles rejects with ERR_REQUEST_TIMEOUT; the worker still answers after', async t => {
  const [server] = await started(t)
  await t.rejects(server.request({ kind: 'never' }, { worker: 0, timeout: 50 }), { code: 'ERR_REQUEST_TIMEOUT', worker: 0 })
  await t.rejects(server.request({ kind: 'never' }, { timeout: 50 }), { code: 'ERR_REQUEST_TIMEOUT' }, 'from all')
  t.equal(await server.request({ kind: 'double', value: 2 }, { worker: 1, timeout: 10_000 }), 4, 'a reply in time resolves as before')
  await t.rejects(server.request({ kind: 'worker' }, { timeout: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  await t.rejects(server.request({ kind: 'worker' }, { timeout: '5' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' })
})

t.test('context.postMessage reaches server.on("message") with the worker index; Server is an EventEmitter', async t => {
  const [server, port] = await started(t)
  t.ok(server instanceof EventEmitter)
  const got: Array<[unknown, number]> = []
  const listener = (msg: unknown, worker: number): void => void got.push([msg, worker])
  server.on('message', listener)
  t.teardown(() => server.off('message', listener))
  const [c, id] = await client(t, port)
  c.send('post hi there')
  const deadline = Date.now() + 5000
  while (got.length === 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 10))
  t.equal(got.length, 1)
  const [msg, worker] = got[0]!
  t.same(msg, { conn: id, text: 'hi there' })
  t.ok(worker === 0 || worker === 1)
  t.equal(await c.request('postbad'), 'postbad ERR_INVALID_ARG_VALUE', 'an uncloneable message throws a coded error in the worker')
})

t.test('server.subscribers(topic) sums every worker', async t => {
  const [server, port] = await started(t)
  const clients = await Promise.all(Array.from({ length: 4 }, () => client(t, port)))
  t.equal(await server.subscribers('room'), 0)
  for (const [c] of clients.slice(0, 3)) t.equal(await c.request('sub room'), 'subscribed')
  t.equal(await server.subscribers('room'), 3)
  clients[0]![0].destroy()
  const deadline = Date.now() + 5000
  while ((await server.subscribers('room')) !== 2 && Date.now() < deadline) await new Promise(r => setTimeout(r, 10))
  t.equal(await server.subscribers('room'), 2, 'a closed connection no longer counts')
})

t.test('handlerData that cannot be cloned is ERR_INVALID_ARG_VALUE at createServer', async t => {
  const err = t.throws(() => createServer({ handler: fixture('messages.js'), handlerData: { f() {} } })) as Error & { code?: string }
  t.equal(err.code, 'ERR_INVALID_ARG_VALUE')
  t.match(err.message, /handlerData/)
})

t.test('messages that cannot be cloned are ERR_INVALID_ARG_VALUE', async t => {
  const [server] = await started(t)
  t.throws(() => server.broadcast({ f() {} }), { code: 'ERR_INVALID_ARG_VALUE' })
  await t.rejects(server.request(Symbol('x')), { code: 'ERR_INVALID_ARG_VALUE' })
  t.equal(await server.request({ kind: 'worker' }, { worker: 0 }), 0, 'nothing was left pending or broken')
})

t.test('before listen and after close: coded errors, never a hang', async t => {
  const server = createServer({ handler: fixture('messages.js'), threads: 1, logger: false })
  await t.rejects(server.send(1, 'x'), { code: 'ERR_SERVER_NOT_RUNNING' })
  await t.rejects(server.request({ kind: 'worker' }), { code: 'ERR_SERVER_NOT_RUNNING' })
  t.throws(() => server.broadcast({}), { code: 'ERR_SERVER_NOT_RUNNING' })
  await server.listen(0)
  await server.close()
  await t.rejects(server.destroy(1), { code: 'ERR_SERVER_CLOSED' })
  await t.rejects(server.subscribers('t'), { code: 'ERR_SERVER_CLOSED' })
  t.throws(() => server.broadcast({}), { code: 'ERR_SERVER_CLOSED' })
})
