// amy's edge-trigger test, and what deregistration promises.
import t from 'tap'
import { Interest, Poller, TcpListener, TcpStream } from '@amy/core'
import { waitFor } from './helpers'

t.test('edge-triggered: one Write notification, none on the next wait', async t => {
  const poller = new Poller()
  const listener = TcpListener.bind({ port: 0 })
  const client = TcpStream.connect({ port: listener.address().port })
  t.teardown(() => { client.close(); listener.close(); poller.close() })
  const id = poller.registrar.register(client, Interest.Write)
  const first = waitFor(poller, id)
  t.ok(first?.writable, 'writable once connected')
  t.same(poller.wait(50).filter(n => n.id === id), [], 'no second notification without a new edge')
})

t.test('readiness not drained is not reported again (read until would-block)', async t => {
  const poller = new Poller()
  const listener = TcpListener.bind({ port: 0 })
  const client = TcpStream.connect({ port: listener.address().port })
  const lid = poller.registrar.register(listener, Interest.Read)
  waitFor(poller, lid)
  const server = listener.accept()!
  t.teardown(() => { client.close(); server.close(); listener.close(); poller.close() })
  const sid = poller.registrar.register(server, Interest.Read)
  client.write(Buffer.from('0123456789'))
  t.ok(waitFor(poller, sid)?.readable)
  server.read(Buffer.alloc(4)) // read only part
  t.same(poller.wait(50).filter(n => n.id === sid), [], 'no new edge for the bytes left')
  client.write(Buffer.from('more'))
  t.ok(waitFor(poller, sid)?.readable, 'new data is a new edge')
})

t.test('reregister changes the interest', async t => {
  const poller = new Poller()
  const listener = TcpListener.bind({ port: 0 })
  const client = TcpStream.connect({ port: listener.address().port })
  t.teardown(() => { client.close(); listener.close(); poller.close() })
  const id = poller.registrar.register(client, Interest.Read)
  t.same(poller.wait(50).filter(n => n.id === id), [], 'no read readiness')
  poller.registrar.reregister(id, client, Interest.Write)
  t.ok(waitFor(poller, id)?.writable, 'writable after reregister for Write')
  t.throws(() => poller.registrar.reregister(id, listener, Interest.Read), { code: 'ERR_INVALID_ARG_VALUE' }, 'another fd under the same id is refused')
})

t.test('after deregister returns, no notification for the id is delivered', async t => {
  const poller = new Poller()
  const listener = TcpListener.bind({ port: 0 })
  const client = TcpStream.connect({ port: listener.address().port })
  t.teardown(() => { client.close(); listener.close(); poller.close() })
  const id = poller.registrar.register(listener, Interest.Read)
  // The connection is pending in the kernel's ready list for this id...
  await new Promise(r => setTimeout(r, 20))
  t.equal(poller.registrar.deregister(id), true)
  // ...and is dropped with the registration.
  t.same(poller.wait(50), [], 'nothing after deregister')
  t.equal(poller.registrar.deregister(id), false, 'twice is false')
  const again = poller.registrar.register(listener, Interest.Read)
  t.not(again, id, 'a new registration of the same fd gets a new id')
  t.equal(waitFor(poller, again)?.id, again)
})

t.test('closing a registered stream deregisters it first', async t => {
  const poller = new Poller()
  const listener = TcpListener.bind({ port: 0 })
  t.teardown(() => { listener.close(); poller.close() })
  const lid = poller.registrar.register(listener, Interest.Read)
  listener.close()
  t.equal(poller.registrar.deregister(lid), false, 'close() already removed the registration')
})
