// End to end: an upstream echo server (node:net) behind the compiled proxy;
// bytes go through both ways; SIGTERM stops it.
import t from 'tap'
import net from 'node:net'
import { startServer, exchange } from './helpers.js'

t.test('forwards bytes to the upstream and back, and exits 0 on SIGTERM', async t => {
  const upstream = net.createServer(socket => socket.pipe(socket))
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => upstream.close())
  const { port: upstreamPort } = upstream.address() as net.AddressInfo

  const proxy = await startServer(t, { UPSTREAM_HOST: '127.0.0.1', UPSTREAM_PORT: String(upstreamPort) })
  const payload = 'through the proxy\n'.repeat(2000)
  t.equal(await exchange(proxy.port, payload, reply => reply.length >= payload.length), payload)
  t.equal(await proxy.stop(), 0)
})
