// context.connect: host names resolved (dns.lookup, as net.connect) and a
// connect timeout that closes the connection with ERR_CONNECT_TIMEOUT.
import t, { type Test } from 'tap'
import { lookup } from 'node:dns/promises'
import net from 'node:net'
import { hostname } from 'node:os'
import { TcpListener } from '@amy/core'
import { createServer } from '@amy/server'
import { LineClient, fixture } from './helpers'

async function dialServer(t: Test): Promise<number> {
  const server = createServer({ handler: fixture('dial.js'), threads: 1, logger: false })
  t.teardown(() => server.close({ force: true }))
  return (await server.listen(0)).port
}

async function echoUpstream(t: Test): Promise<number> {
  const upstream = net.createServer(s => s.pipe(s))
  t.teardown(() => upstream.close())
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  return (upstream.address() as net.AddressInfo).port
}

t.test('connect to a host name from /etc/hosts (and localhost): resolved, connected, piped', async t => {
  const port = await dialServer(t)
  const upstreamPort = await echoUpstream(t)
  const names = ['localhost']
  const own = hostname()
  const found = await lookup(own).catch(() => undefined)
  if (found?.address === '127.0.0.1') names.push(own)
  else t.comment(`${own} does not resolve to 127.0.0.1 here; only localhost is tried`)
  for (const name of names) {
    const c = await LineClient.connect(port)
    t.teardown(() => c.destroy())
    t.equal(await c.request(`dial ${name} ${upstreamPort}`), 'dial open', `${name}: connected`)
    t.equal(await c.request('through the pipe'), 'through the pipe', `${name}: bytes go through`)
  }
})

t.test('a connect that does not complete within timeout closes with ERR_CONNECT_TIMEOUT', async t => {
  // A listener whose accept queue is full and never accepted: the kernel
  // drops further SYNs, so a connect to it stays pending.
  const listener = TcpListener.bind({ port: 0, backlog: 0 })
  t.teardown(() => listener.close())
  const target = listener.address().port
  const fillers: net.Socket[] = []
  t.teardown(() => fillers.forEach(s => s.destroy()))
  // Connect until one stays pending (the queue holds backlog + 1 here; the
  // count differs between kernels), at most 16.
  for (let i = 0; i < 16; i++) {
    const s = net.connect({ host: '127.0.0.1', port: target })
    s.on('error', () => {})
    fillers.push(s)
    const connected = await new Promise<boolean>(resolve => {
      const timer = setTimeout(() => resolve(false), 500)
      s.once('connect', () => { clearTimeout(timer); resolve(true) })
    })
    if (!connected) break
  }
  const port = await dialServer(t)
  const c = await LineClient.connect(port)
  t.teardown(() => c.destroy())
  t.equal(await c.request(`dial 127.0.0.1 ${target} 300`), 'dial closed ERR_CONNECT_TIMEOUT')
  const c2 = await LineClient.connect(port)
  t.teardown(() => c2.destroy())
  t.equal(await c2.request(`dial localhost ${target} 300`), 'dial closed ERR_CONNECT_TIMEOUT', 'by name too')
})

t.test('bad connect options are coded errors', async t => {
  const port = await dialServer(t)
  const c = await LineClient.connect(port)
  t.teardown(() => c.destroy())
  t.equal(await c.request('dial 127.0.0.1 1 -5'), 'dial threw ERR_INVALID_ARG_VALUE', 'a negative timeout')
  t.equal(await c.request('dial 127.0.0.1 1 abc'), 'dial threw ERR_INVALID_ARG_VALUE', 'NaN')
  t.equal(await c.request('dial 127.0.0.1 0'), 'dial threw ERR_INVALID_ARG_VALUE', 'port 0')
})
