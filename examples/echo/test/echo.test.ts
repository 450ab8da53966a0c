// The echo example as a user runs it: `npm start` (node dist/main.js),
// driven by real clients, stopped with SIGTERM.
import t from 'tap'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
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

t.test('with TLS_KEY/TLS_CERT it is a TLS echo server (node:tls client, 1 MiB byte for byte)', async t => {
  const certs = join(__dirname, '..', '..', '..', 'packages', 'native', 'test', 'fixtures', 'tls')
  const server = await startExample(t, MAIN, /listening on 127\.0\.0\.1:(\d+) \(TLS\)/, {
    env: { PORT: '0', HOST: '127.0.0.1', THREADS: '1', TLS_KEY: join(certs, 'server.key'), TLS_CERT: join(certs, 'server.crt') },
  })
  const payload = randomBytes(1 << 20)
  const back = await new Promise<Buffer>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: Number(server.match[1]), ca: readFileSync(join(certs, 'ca.crt')), servername: 'localhost' }, () => socket.end(payload))
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => resolve(Buffer.concat(chunks)))
    socket.on('error', reject)
  })
  t.ok(back.equals(payload), '1 MiB echoed over TLS byte for byte')
  t.equal(await stopExample(server), 0, 'SIGTERM: exit 0')
})
