// Issue 7, failures 3-6: overload. A pub/sub burst must not disconnect a
// fast reader; a busy connection must not starve the others; close() must
// deliver what write() accepted.
import t from 'tap'
import { LineClient, fixture, started, until } from './helpers'

t.test('a pub/sub burst of 2M short lines reaches a fast reader on another worker whole (no ERR_BUFFER_LIMIT)', async t => {
  const N = Number(process.env['AMY_BURST_LINES'] ?? 2_000_000)
  const [server, port] = await started(t, { handler: fixture('commands.js'), threads: 2 })
  // The reader and the publisher on different workers (least-loaded placement).
  const probe = await Promise.all([LineClient.connect(port), LineClient.connect(port)])
  const workers = await Promise.all(probe.map(c => c.request('worker')))
  t.not(workers[0], workers[1], 'two workers')
  const [subscriber, publisher] = probe as [LineClient, LineClient]
  t.teardown(() => { subscriber.destroy(); publisher.destroy() })
  t.equal(await subscriber.request('sub room'), 'subscribed')
  // Hand the subscriber's socket over to a counting reader: reuse its socket.
  subscriber.socket.removeAllListeners('data')
  let received = 0
  subscriber.socket.on('data', (chunk: Buffer | string) => {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) received++
  })
  subscriber.socket.setEncoding('latin1' as BufferEncoding)
  publisher.send(`burst room ${N}`)
  await until(() => received >= N || subscriber.closed, 120_000, `${N} lines`)
  t.notOk(subscriber.closed, 'the reader was not disconnected')
  t.equal(received, N, `all ${N} lines arrived`)
  t.equal(server.stats().workers.reduce((n, w) => n + w.errors, 0), 0, 'no connection closed by an error')
})
