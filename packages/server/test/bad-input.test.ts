import t from 'tap'
import { createServer, connect, publish, pipe, subscribe } from '@amy/server'
import { LineClient, fixture } from './helpers'

type Result = { name: string; ok?: true; error?: string; code?: string; message?: string }

// What each wrong call on the worker API must give (null: no error, a no-op).
const EXPECTED: Record<string, string | null> = {
  'write(123)': 'ERR_INVALID_ARG_TYPE',
  'write({})': 'ERR_INVALID_ARG_TYPE',
  'write(ArrayBuffer)': 'ERR_INVALID_ARG_TYPE',
  'write(DataView)': 'ERR_INVALID_ARG_TYPE',
  'write(null)': 'ERR_INVALID_ARG_TYPE',
  'write(undefined)': 'ERR_INVALID_ARG_TYPE',
  'end(123)': 'ERR_INVALID_ARG_TYPE',
  'bufferedBytes is a finite number': null,
  'conn.pipe({})': 'ERR_INVALID_ARG_TYPE',
  'conn.pipe(conn)': 'ERR_INVALID_ARG_VALUE',
  'pipe(conn, {})': 'ERR_INVALID_ARG_TYPE',
  'pipe({}, conn)': 'ERR_INVALID_ARG_TYPE',
  'subscribe({}, topic)': 'ERR_INVALID_ARG_TYPE',
  'conn.subscribe(42)': 'ERR_INVALID_ARG_TYPE',
  "conn.subscribe('')": 'ERR_INVALID_ARG_VALUE',
  'conn.subscribe(65536 bytes)': 'ERR_INVALID_ARG_VALUE',
  'conn.subscribe(65536+ UTF-8 bytes)': 'ERR_INVALID_ARG_VALUE',
  'conn.unsubscribe(null)': 'ERR_INVALID_ARG_TYPE',
  'publish(65536 bytes topic)': 'ERR_INVALID_ARG_VALUE',
  "publish('t', null)": 'ERR_INVALID_ARG_TYPE',
  "publish('t', 123)": 'ERR_INVALID_ARG_TYPE',
  "publish('t', 'a', { except: {} })": 'ERR_INVALID_ARG_TYPE',
  "publish('t', 'a', 5)": 'ERR_INVALID_ARG_TYPE',
  'subscribers(5)': 'ERR_INVALID_ARG_TYPE',
  'connect(null)': 'ERR_INVALID_ARG_TYPE',
  "connect({ port: 'x' })": 'ERR_INVALID_ARG_TYPE',
  'connect({ port: 70000 })': 'ERR_INVALID_ARG_VALUE',
  'connect({ port: 1.5 })': 'ERR_INVALID_ARG_VALUE',
  'connect({ host: 5, port: 1 })': 'ERR_INVALID_ARG_TYPE',
  'setTimeout(-1)': 'ERR_INVALID_ARG_VALUE',
  'setTimeout(NaN)': 'ERR_INVALID_ARG_VALUE',
  'setTimeout(Infinity)': 'ERR_INVALID_ARG_VALUE',
  "setTimeout('x')": 'ERR_INVALID_ARG_TYPE',
  'closed: write': 'ERR_CONNECTION_CLOSED',
  'closed: subscribe': 'ERR_CONNECTION_CLOSED',
  'closed: setTimeout': 'ERR_CONNECTION_CLOSED',
  'closed: pipe from it': 'ERR_CONNECTION_CLOSED',
  'closed: pipe to it': 'ERR_CONNECTION_CLOSED',
  'closed: end (no-op)': null,
  'closed: destroy (no-op)': null,
  'closed: unsubscribe (no-op)': null,
  'closed: pause/resume (no-op)': null,
}

t.test('wrong calls on the worker API: each an Error with its code, the worker unharmed', async t => {
  const server = createServer({ handler: fixture('bad-input.js'), threads: 1, logger: false })
  t.teardown(() => server.close({ force: true }))
  const { port } = await server.listen({ port: 0 })
  const first = await LineClient.connect(port)
  t.equal(await first.request('ping'), 'pong')
  first.destroy() // becomes the worker's closed connection for the table
  for (let i = 0; i < 100 && server.stats().connections > 0; i++) await new Promise(r => setTimeout(r, 20))
  const c = await LineClient.connect(port)
  t.teardown(() => c.destroy())
  const results = JSON.parse(await c.request('run')) as Result[]
  t.same(results.map(r => r.name).sort(), Object.keys(EXPECTED).sort(), 'every case ran')
  for (const r of results) {
    const expected = EXPECTED[r.name]
    if (expected === null) t.ok(r.ok, `${r.name}: no error (${r.message ?? ''})`)
    else t.match(r, { error: 'ServerError', code: expected }, `${r.name}: ${expected} (${r.message ?? 'no error'})`)
  }
  t.equal(await c.request('ping'), 'pong', 'the worker still serves this connection')
  t.equal(server.stats().workerCrashes, 0, 'no worker died')
})

t.test('wrong calls on the main thread: server.publish and the worker-only functions', async t => {
  const server = createServer({ handler: fixture('bad-input.js'), threads: 1, logger: false })
  t.teardown(() => server.close({ force: true }))
  await server.listen({ port: 0 })
  const cases: Array<[string, () => unknown, string]> = [
    ['server.publish(65536 bytes topic)', () => server.publish('x'.repeat(65536), 'a'), 'ERR_INVALID_ARG_VALUE'],
    ["server.publish('t', null)", () => server.publish('t', null as never), 'ERR_INVALID_ARG_TYPE'],
    ["server.publish('t', {})", () => server.publish('t', {} as never), 'ERR_INVALID_ARG_TYPE'],
    ['server.publish(5, ...)', () => server.publish(5 as never, 'a'), 'ERR_INVALID_ARG_TYPE'],
    ["server.publish('', ...)", () => server.publish('', 'a'), 'ERR_INVALID_ARG_VALUE'],
    ['publish() on the main thread', () => publish('t', 'a'), 'ERR_NOT_IN_WORKER'],
    ['connect() on the main thread', () => connect({ port: 1 }), 'ERR_NOT_IN_WORKER'],
    ['subscribe({}, t) on the main thread', () => subscribe({} as never, 't'), 'ERR_INVALID_ARG_TYPE'],
    ['pipe({}, {}) on the main thread', () => pipe({} as never, {} as never), 'ERR_INVALID_ARG_TYPE'],
  ]
  for (const [name, fn, code] of cases) t.throws(fn, { name: 'ServerError', code }, name)
})
