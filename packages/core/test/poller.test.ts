import t from 'tap'
import { Poller, Interest, AmyError, backend } from '@amy/core'
import { openFds } from './helpers'

t.test('backend is epoll on Linux', async t => {
  t.equal(backend, process.platform === 'linux' ? 'epoll' : 'kqueue')
})

t.test('wait with a timeout returns an empty batch, not earlier than asked', async t => {
  const poller = new Poller()
  const start = performance.now()
  const batch = poller.wait(30)
  t.same(batch, [])
  t.ok(performance.now() - start >= 29.5, 'waited about 30 ms')
  t.same(poller.wait(0), [], 'wait(0) polls')
  poller.close()
})

t.test('close is idempotent; later use throws ERR_POLLER_CLOSED', async t => {
  const before = openFds()
  const poller = new Poller()
  t.equal(openFds(), before + 1, 'one fd for the selector')
  const registrar = poller.registrar
  poller.close()
  poller.close()
  t.equal(openFds(), before, 'close() closed the selector fd')
  t.ok(poller.closed)
  t.throws(() => poller.wait(0), { code: 'ERR_POLLER_CLOSED' })
  t.throws(() => poller.start(() => {}), { code: 'ERR_POLLER_CLOSED' })
  t.throws(() => registrar.setTimeout(1), { code: 'ERR_POLLER_CLOSED' })
  t.throws(() => registrar.register(0, Interest.Read), { code: 'ERR_POLLER_CLOSED' })
  t.throws(() => registrar.channel(), { code: 'ERR_POLLER_CLOSED' })
  t.throws(() => registrar.cancelTimeout(1), { code: 'ERR_POLLER_CLOSED' })
  poller.stop() // harmless after close
})

t.test('options and arguments are validated at the boundary', async t => {
  t.throws(() => new Poller({ capacity: 0 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => new Poller({ capacity: 1.5 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => new Poller({ capacity: '8' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' })
  const poller = new Poller({ capacity: 4 })
  t.teardown(() => poller.close())
  t.throws(() => poller.wait(-1), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => poller.wait(NaN), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => poller.start('x' as unknown as () => void), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => poller.registrar.register(0, 7 as Interest), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => poller.registrar.register(-1, Interest.Read), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => poller.registrar.register({ fd: 1.5 }, Interest.Read), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => poller.registrar.setTimeout(-1), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => poller.registrar.setTimeout(Infinity), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => poller.registrar.setInterval(0), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => poller.registrar.channel({ bound: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => poller.registrar.reregister(123456789, 0, Interest.Read), { code: 'ERR_UNKNOWN_ID' })
  t.equal(poller.registrar.deregister(123456789), false, 'deregister of an unknown id is false')
  t.equal(poller.registrar.cancelTimeout(123456789), false)
  const err = t.throws(() => poller.registrar.register(987654, Interest.Read)) as Error & { code: string; syscall: string; errno: number }
  t.equal(err.code, 'EBADF', 'a bad fd keeps its errno name')
  t.equal(err.syscall, 'epoll_ctl')
  t.equal(err.errno, -9)
  t.type(new AmyError('ERR_CHANNEL_FULL', 'x'), Error)
})

t.test('a batch holds at most capacity notifications; the rest come next', async t => {
  const poller = new Poller({ capacity: 2 })
  t.teardown(() => poller.close())
  const ids = [1, 2, 3].map(() => poller.registrar.setTimeout(0))
  const seen: number[] = []
  for (let i = 0; i < 10 && seen.length < 3; i++) {
    const batch = poller.wait(100)
    t.ok(batch.length <= 2, 'batch within capacity')
    seen.push(...batch.map(n => n.id))
  }
  t.same(seen.sort(), ids.sort())
})

t.test('ids are unique across pollers and never reused', async t => {
  const a = new Poller()
  const b = new Poller()
  const ids = new Set<number>()
  for (let i = 0; i < 50; i++) {
    const id = (i % 2 ? a : b).registrar.setTimeout(10000)
    t.notOk(ids.has(id), `id ${id} is new`)
    ids.add(id)
    ;(i % 2 ? a : b).registrar.cancelTimeout(id)
  }
  t.notOk(ids.has(a.id) || ids.has(b.id), 'poller ids come from the same space')
  a.close()
  b.close()
})
