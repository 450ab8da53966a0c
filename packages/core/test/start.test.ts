// start(): the selector attached to this thread's Node event loop.
import t from 'tap'
import { Poller } from '@amy/core'
import type { Notification } from '@amy/core'

t.test('start delivers timer notifications while the loop keeps running', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const id = poller.registrar.setInterval(10)
  let jsTicks = 0
  const ticker = setInterval(() => jsTicks++, 5)
  const seen = await new Promise<Notification[]>(resolve => {
    const all: Notification[] = []
    poller.start(batch => {
      all.push(...batch)
      if (all.length >= 3) resolve(all)
    })
  })
  clearInterval(ticker)
  t.ok(poller.started)
  t.ok(seen.every(n => n.id === id && n.readable))
  t.ok(jsTicks >= 1, 'JavaScript timers ran meanwhile')
  t.throws(() => poller.wait(0), { code: 'ERR_POLLER_STARTED' })
  t.throws(() => poller.start(() => {}), { code: 'ERR_POLLER_STARTED' })
  poller.stop()
  t.notOk(poller.started)
  t.same(poller.wait(0).length <= 1, true, 'wait works again after stop')
})

t.test('a channel send wakes a started poller; promises settle inside onBatch', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const [sender, receiver] = poller.registrar.channel<string>()
  const got = new Promise<string>(resolve => {
    poller.start(() => {
      const v = receiver.tryRecv()
      if (v !== undefined) Promise.resolve(v).then(resolve)
    })
  })
  setTimeout(() => sender.send('ping'), 10)
  t.equal(await got, 'ping')
})

t.test('unref lets the loop exit; close inside onBatch is safe', async t => {
  const poller = new Poller()
  poller.unref().ref().unref()
  poller.registrar.setTimeout(5)
  await new Promise<void>(resolve => {
    poller.start(() => {
      poller.close()
      resolve()
    })
    // unref'd poller alone would not keep the loop alive: hold it with a timer.
    setTimeout(() => {}, 100)
  })
  t.ok(poller.closed)
  t.equal(poller.started, false)
})
