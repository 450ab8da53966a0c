// The poller echo example as a user runs it: `npm start` (node dist/main.js),
// driven by real clients, stopped with SIGTERM.
import t from 'tap'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { echoBytes, startExample, stopExample } from '../../../test/support/example-process'

const MAIN = join(__dirname, '..', 'dist', 'main.js')

t.test('npm start prints its address, echoes every byte, exits on SIGTERM', async t => {
  const server = await startExample(t, MAIN, /listening on 127\.0\.0\.1:(\d+)/, { env: { PORT: '0', HOST: '127.0.0.1' } })
  const port = Number(server.match[1])

  t.equal((await echoBytes(port, Buffer.from('hello amy'))).toString(), 'hello amy')
  // Large payloads in both directions at once exercise would-block and backpressure.
  const big = randomBytes(8 << 20)
  const results = await Promise.all([echoBytes(port, big), echoBytes(port, big.subarray(0, 1 << 20)), echoBytes(port, Buffer.alloc(0))])
  t.ok(results[0]!.equals(big), '8 MiB echoed byte for byte')
  t.ok(results[1]!.equals(big.subarray(0, 1 << 20)), '1 MiB echoed byte for byte')
  t.equal(results[2]!.length, 0, 'an empty connection closes cleanly')

  t.equal(await stopExample(server), 0, 'SIGTERM closes the server and the process exits 0')
})
