// maxConnectionsPerAddress: the acceptor refuses a client address's
// connections past the limit; workers give the count back when one closes
// (shared counters, no message), and a worker that dies gives back all of
// its own. 127.0.0.0/8 is all loopback on Linux, so 127.0.0.2 is a second
// client address on one machine.
import t from 'tap'
import { createServer } from '@amy/server'
import { captureLogger, fixture, LineClient, started, until } from './helpers'

/** True once the server served `client` (an echo came back), false once it closed it without a reply. */
async function served(client: LineClient): Promise<boolean> {
  client.send('echo ok')
  await client.until(() => client.lines.length > 0 || client.closed, 10_000)
  return client.lines[0] === 'ok'
}

t.test('maxConnectionsPerAddress: past the limit an address is refused, counted and logged; other addresses are served; a close gives the count back', async t => {
  const [logger, lines] = captureLogger('warn')
  const [server, port] = await started(t, { handler: fixture('commands.js'), threads: 2, logger, maxConnectionsPerAddress: 3 })
  const clients: LineClient[] = []
  t.teardown(() => clients.forEach(c => c.destroy()))
  const open = async (from: string): Promise<LineClient> => {
    const c = await LineClient.connect(port, from)
    clients.push(c)
    return c
  }
  const first = [await open('127.0.0.1'), await open('127.0.0.1'), await open('127.0.0.1')]
  for (const c of first) t.ok(await served(c), 'one of the first 3 from 127.0.0.1 is served')
  const fourth = await open('127.0.0.1')
  t.notOk(await served(fourth), 'the 4th from 127.0.0.1 is closed without being served')
  t.equal(server.stats().refusedPerAddress, 1, 'counted in stats().refusedPerAddress')
  t.equal(server.stats().rejected, 0, 'not counted as a maxConnections rejection')
  const refusals = lines.filter(l => l['msg'] === 'connections refused: per-address limit reached')
  t.equal(refusals.length, 1, 'logged')
  t.equal(refusals[0]?.['address'], '127.0.0.1', 'the log names the address')

  const other = await open('127.0.0.2')
  t.ok(await served(other), 'another address is served meanwhile')

  const fifth = await open('127.0.0.1')
  t.notOk(await served(fifth), 'still refused while 3 are open')
  t.equal(lines.filter(l => l['msg'] === 'connections refused: per-address limit reached').length, 1, 'a second refusal within the interval is not logged again')

  first[0]!.destroy()
  // The worker gives the count back when it sees the close: poll with new connections.
  let back: LineClient | undefined
  for (const deadline = Date.now() + 10_000; back === undefined && Date.now() < deadline; ) {
    const c = await open('127.0.0.1')
    if (await served(c)) back = c
  }
  t.ok(back, 'after one of the 3 closed, a new connection from 127.0.0.1 is served')
  const sixth = await open('127.0.0.1')
  t.notOk(await served(sixth), 'and the one after it is refused again: 3 open')
})

t.test('maxConnectionsPerAddress: the connections of a worker that crashed are given back', async t => {
  const [logger, lines] = captureLogger('info')
  const [server, port] = await started(t, { handler: fixture('commands.js'), threads: 1, logger, maxConnectionsPerAddress: 2 })
  const clients: LineClient[] = []
  t.teardown(() => clients.forEach(c => c.destroy()))
  const open = async (): Promise<LineClient> => {
    const c = await LineClient.connect(port)
    clients.push(c)
    return c
  }
  for (let i = 0; i < 2; i++) t.ok(await served(await open()), `connection ${i + 1} of 2 served`)
  t.notOk(await served(await open()), 'a 3rd is refused')
  clients[0]!.send('crash')
  await until(() => lines.some(l => l['msg'] === 'worker replaced'), 15_000, 'the replacement')
  t.ok(clients.slice(0, 2).every(c => c.closed), 'the crash closed both')
  t.ok(await served(await open()), 'a new connection is served by the replacement')
  t.ok(await served(await open()), 'and a second one: the two lost ones were given back')
  t.notOk(await served(await open()), 'a 3rd is refused again')
  t.equal(server.stats().refusedPerAddress, 2)
})

t.test('maxConnectionsPerAddress: off by default; a bad value is refused at createServer', async t => {
  const [server, port] = await started(t, { handler: fixture('commands.js'), threads: 1, logger: false })
  const clients = await Promise.all(Array.from({ length: 20 }, () => LineClient.connect(port)))
  t.teardown(() => clients.forEach(c => c.destroy()))
  for (const c of clients) t.ok(await served(c), 'served')
  t.equal(server.stats().refusedPerAddress, 0, 'none refused')
  for (const bad of [-1, 1.5, 2 ** 31]) {
    t.throws(() => createServer({ handler: fixture('commands.js'), maxConnectionsPerAddress: bad }), { code: 'ERR_INVALID_ARG_VALUE' }, String(bad))
  }
  t.throws(() => createServer({ handler: fixture('commands.js'), maxConnectionsPerAddress: '3' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' })
})
