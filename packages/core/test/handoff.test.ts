// Handing accepted fds from one thread to another poller's inbox: batched,
// counted, and never leaked (the server's acceptor is built on this).
import t from 'tap'
import net from 'node:net'
import { Poller, Registrar, TcpListener } from '@amy/core'
import { exitOf, once, openFds, startWorker, waitFor } from './helpers'

function connectClients(port: number, n: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from({ length: n }, () => new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s))
      s.on('error', reject)
    })),
  )
}

t.test('acceptFds takes a batch; handOver delivers it with one wake-up', async t => {
  const before = openFds()
  const acceptor = new Poller()
  const target = new Poller()
  const listener = TcpListener.bind({ port: 0 })
  const lid = acceptor.registrar.register(listener, 1)
  const clients = await connectClients(listener.address().port, 5)
  waitFor(acceptor, lid)
  const fds = new Int32Array(16)
  const count = listener.acceptFds(fds)
  t.equal(count, 5, 'all five in one call')
  t.equal(listener.acceptFds(fds), 0, 'then nothing: would block')

  t.equal(target.registrar.handOver(fds, count), false, 'no inbox yet: refused, fds still ours')
  const inbox = target.openFdInbox()
  t.equal(target.openFdInbox(), inbox, 'one inbox per poller')
  t.equal(target.registrar.handOver(fds.subarray(0, 2)), true)
  const bigTag = 2 ** 53 - 1
  t.equal(target.registrar.handOver(fds.subarray(2, 5), 3, bigTag), true)
  t.equal(target.registrar.load(), 5, 'load counts fds waiting in the inbox')
  const batch = target.wait(1000)
  t.same(batch.map(n => n.id), [inbox], 'two hand-offs, one notification')
  const out = new Int32Array(3)
  const tags = new Float64Array(3)
  t.equal(target.takeFds(out, tags), 3)
  t.same([...out], [...fds.subarray(0, 3)], 'in hand-off order')
  t.same([...tags], [0, 0, bigTag], "each fd carries its hand-off's tag (default 0)")
  t.equal(target.takeFds(out), 2, 'tags are optional')
  t.equal(target.takeFds(out), 0)
  t.equal(target.registrar.load(), 0, 'taken fds are no longer counted until registered')
  // Not taken this time: the poller closes what is left in its inbox.
  t.equal(target.registrar.handOver(fds, 5), true)
  const registrar = Registrar.from(target.registrar.handle)
  target.close()
  t.equal(registrar.closedOnClose, 5, 'the poller closed the 5 fds nobody took')
  t.equal(registrar.closed, true)
  t.equal(registrar.handOver(fds, 1), false, 'a closed poller refuses')
  for (const c of clients) c.destroy()
  listener.close()
  acceptor.close()
  t.equal(openFds(), before, 'no fd leaked')
})

t.test('a worker that dies holding connections has them closed', async t => {
  const before = openFds()
  const worker = startWorker('inbox-worker.js')
  const { registrar: handle } = await once<{ registrar: never }>(worker, 'message')
  const registrar = Registrar.from(handle)
  const listener = TcpListener.bind({ port: 0 })
  const clients = await connectClients(listener.address().port, 3)
  const fds = new Int32Array(8)
  let count = 0
  for (let i = 0; i < 50 && count < 3; i++) {
    count += listener.acceptFds(fds.subarray(count))
    if (count < 3) await new Promise(r => setTimeout(r, 10))
  }
  t.equal(count, 3)
  t.equal(registrar.handOver(fds, count), true)
  const { taken } = await once<{ taken: number }>(worker, 'message')
  t.equal(taken, 3)
  t.equal(registrar.load(), 3, 'three live registrations in the worker')

  const ended = clients.map(c => new Promise<void>(resolve => { c.on('close', () => resolve()); c.on('error', () => {}) }))
  const error = once<Error>(worker, 'error')
  worker.postMessage('crash')
  t.match((await error).message, /crashed on purpose/)
  await exitOf(worker)
  await Promise.all(ended)
  t.pass('every client saw its connection closed')
  t.equal(registrar.closedOnClose, 3, 'the dying worker closed its three connections')
  listener.close()
  t.equal(openFds(), before, 'no fd leaked')
})

t.test('registrar.has(id): source registrations only, from a handle too; bad ids are coded errors', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const other = new Poller()
  t.teardown(() => other.close())
  const listener = TcpListener.bind({ port: 0 })
  t.teardown(() => listener.close())
  const id = poller.registrar.register(listener, 1)
  const timer = poller.registrar.setTimeout(10_000)
  const remote = Registrar.from(poller.registrar.handle)
  t.equal(poller.registrar.has(id), true)
  t.equal(remote.has(id), true, 'through a handle, as another thread would')
  t.equal(other.registrar.has(id), false, 'another poller does not have it')
  t.equal(poller.registrar.has(timer), false, 'a timer is not a source')
  poller.registrar.deregister(id)
  t.equal(poller.registrar.has(id), false, 'gone once deregistered')
  for (const bad of [0, -1, 1.5, NaN]) t.throws(() => poller.registrar.has(bad), { code: 'ERR_INVALID_ARG_VALUE' }, String(bad))
  t.throws(() => poller.registrar.has('1' as never), { code: 'ERR_INVALID_ARG_TYPE' })
})

t.test('registrar.reserveId(): a source registered later takes the id; misuse is a coded error', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const listener = TcpListener.bind({ port: 0 })
  t.teardown(() => listener.close())
  const id = poller.registrar.reserveId()
  t.equal(poller.registrar.has(id), false, 'reserved, not registered')
  t.equal(poller.registrar.register(listener, 1, id), id, 'registered under the reserved id')
  t.equal(poller.registrar.has(id), true)
  const other = TcpListener.bind({ port: 0 })
  t.teardown(() => other.close())
  t.throws(() => poller.registrar.register(other, 1, id), { code: 'ERR_INVALID_ARG_VALUE' }, 'an id in use')
  t.throws(() => poller.registrar.register(other, 1, Number.MAX_SAFE_INTEGER), { code: 'ERR_INVALID_ARG_VALUE' }, 'an id never handed out')
  t.throws(() => poller.registrar.register(other, 1, 0), { code: 'ERR_INVALID_ARG_VALUE' })
  const fresh = poller.registrar.register(other, 1)
  t.ok(fresh > id, 'later ids are fresh')
  const [c] = await connectClients(listener.address().port, 1)
  t.teardown(() => c!.destroy())
  t.ok(waitFor(poller, id, 2000), 'notifications carry the reserved id')
})
