// Counts this process's open fds around everything that opens one,
// including the error paths, as the native rules promise.
import t from 'tap'
import { Interest, Poller, TcpListener, TcpStream } from '@amy/core'
import { openFds, waitFor } from './helpers'

t.test('no fd leaks, on success and error paths', async t => {
  // Warm up lazily opened fds (libuv, the addon) outside the count.
  new Poller().close()
  const before = openFds()

  for (let round = 0; round < 3; round++) {
    const poller = new Poller()
    const r = poller.registrar
    r.setTimeout(1000)
    r.setInterval(1000)
    r.setTimeout(0)
    r.cancelTimeout(r.setTimeout(5000))
    const [sender, receiver] = r.channel()
    sender.send('x')
    r.channel() // left open: the poller closes it
    receiver.close()

    const listener = TcpListener.bind({ port: 0 })
    r.register(listener, Interest.Read)
    const client = TcpStream.connect({ port: listener.address().port })
    const cid = r.register(client, Interest.Both)
    waitFor(poller, cid)
    const server = listener.accept()
    server?.close()

    // Error paths.
    t.throws(() => TcpListener.bind({ port: listener.address().port }), { code: 'EADDRINUSE' })
    t.throws(() => TcpListener.bind({ host: 'not-an-ip' }), { code: 'ERR_INVALID_ADDRESS' })
    t.throws(() => r.register(client, 9 as Interest))
    const probe = TcpListener.bind({ port: 0 })
    const closedPort = probe.address().port
    probe.close()
    const refused = TcpStream.connect({ port: closedPort })
    r.register(refused, Interest.Write)
    refused.close()

    client.close()
    listener.close()
    poller.close() // closes the timers and channels that are still live
  }
  t.equal(openFds(), before, 'as many open fds as before')
})
