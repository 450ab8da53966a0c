// Ports of amy's channel tests (send wakes the poller, coalesced sends, send
// after drain, sync channel bound) plus what amy got wrong.
import t from 'tap'
import { Poller, Sender } from '@amy/core'
import { once, startWorker, waitFor } from './helpers'

t.test('a send from another thread wakes a poller blocked in wait()', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const [sender, receiver] = poller.registrar.channel<string>()
  const worker = startWorker('send-later.js', { handle: sender.handle, values: ['hello'], delayMs: 50 })
  // Blocks this thread; the worker's timer and send run on its own thread.
  // A wait that timed out would return an empty batch: the channel's
  // notification in it is what proves the send woke the poller.
  const batch = poller.wait(60_000)
  t.same(batch.map(n => n.id), [receiver.id], 'woken by the send, with the channel ready')
  t.equal(batch[0]!.readable, true)
  t.equal(receiver.tryRecv(), 'hello')
  t.equal(receiver.tryRecv(), undefined)
  await worker.terminate()
})

t.test('N sends before a receive wake the poller once', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const [sender, receiver] = poller.registrar.channel<number>()
  for (let i = 0; i < 5; i++) sender.send(i)
  const batch = poller.wait(1000)
  t.equal(batch.filter(n => n.id === receiver.id).length, 1, 'one notification')
  t.same(poller.wait(50), [], 'no second wake-up while values wait')
  t.equal(receiver.size, 5)
  const got: number[] = []
  for (let v = receiver.tryRecv(); v !== undefined; v = receiver.tryRecv()) got.push(v)
  t.same(got, [0, 1, 2, 3, 4], 'in order')
})

t.test('a send after the receiver drained the channel wakes it again', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const [sender, receiver] = poller.registrar.channel<string>()
  sender.send('a')
  t.ok(waitFor(poller, receiver.id))
  t.equal(receiver.tryRecv(), 'a')
  t.equal(receiver.tryRecv(), undefined, 'empty channel gives undefined, not an error')
  sender.send('b')
  t.ok(waitFor(poller, receiver.id), 'woken again')
  t.equal(receiver.tryRecv(), 'b')
  // Popping the last value (without the extra undefined) also re-arms.
  sender.send('c')
  t.ok(waitFor(poller, receiver.id), 'woken again after popping the last value')
})

t.test('tryRecv on an empty channel returns undefined', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const [, receiver] = poller.registrar.channel()
  t.equal(receiver.tryRecv(), undefined)
  t.equal(receiver.tryRecv(), undefined)
  t.same(poller.wait(20), [], 'no notification without a send')
})

t.test('sync channel bound: a full channel refuses further sends', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const [sender, receiver] = poller.registrar.channel<number>({ bound: 2 })
  sender.send(1)
  t.equal(sender.trySend(2), true)
  t.equal(sender.trySend(3), false, 'trySend says full')
  t.throws(() => sender.send(3), { code: 'ERR_CHANNEL_FULL' })
  t.equal(receiver.tryRecv(), 1)
  sender.send(3)
  t.equal(receiver.tryRecv(), 2)
  t.equal(receiver.tryRecv(), 3)
})

t.test('values are structured clones', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const [sender, receiver] = poller.registrar.channel<unknown>()
  const value = { a: [1, 2, { b: 'c' }], d: new Map([[1, 'x']]), e: Buffer.from('bytes'), f: 2n ** 70n }
  sender.send(value)
  const got = receiver.tryRecv() as typeof value
  t.same(got.a, value.a)
  t.equal(got.d.get(1), 'x')
  t.equal(Buffer.from(got.e).toString(), 'bytes')
  t.equal(got.f, 2n ** 70n)
  t.not(got, value)
  t.throws(() => sender.send((() => 1) as unknown), 'functions cannot be cloned')
})

t.test('closing the receiver or the poller closes the channel for senders', async t => {
  const poller = new Poller()
  const [sender, receiver] = poller.registrar.channel()
  const again = Sender.from(sender.handle)
  receiver.close()
  t.throws(() => sender.send(1), { code: 'ERR_CHANNEL_CLOSED' })
  t.throws(() => again.trySend(1), { code: 'ERR_CHANNEL_CLOSED' })
  t.throws(() => receiver.tryRecv(), { code: 'ERR_CHANNEL_CLOSED' })
  t.throws(() => Sender.from(sender.handle), { code: 'ERR_CHANNEL_CLOSED' }, 'no sender for a closed channel')
  const [sender2] = poller.registrar.channel()
  poller.close()
  t.throws(() => sender2.send(1), { code: 'ERR_CHANNEL_CLOSED' })
  t.throws(() => Sender.from({ kind: 'nope' } as never), { code: 'ERR_INVALID_ARG_TYPE' })
})
