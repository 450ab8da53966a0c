// The echo example as a user runs it: `npm start` (node dist/main.js),
// driven by real clients, stopped with SIGTERM.
import t from 'tap'
import net from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'

// Processes this file starts die with it, even when tap kills it on a
// timeout before any teardown can run (a leaked redis-server taught us).
const children = new Set<ChildProcess>()
function owned<T extends ChildProcess>(child: T): T {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}
const killChildren = (): void => {
  for (const child of children) child.kill('SIGKILL')
}
process.once('exit', killChildren)
process.once('SIGTERM', killChildren)

function echo(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.end(payload))
    const chunks: Buffer[] = []
    socket.on('data', c => chunks.push(c))
    socket.on('end', () => resolve(Buffer.concat(chunks)))
    socket.on('error', reject)
    socket.setTimeout(10000, () => socket.destroy(new Error('timed out')))
  })
}

t.test('npm start prints its address, echoes every byte, exits on SIGTERM', async t => {
  const child = owned(spawn(process.execPath, [join(__dirname, '..', 'dist', 'main.js')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  }))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8')
    child.stdout.once('data', (d: string) => resolve(d))
    child.once('exit', code => reject(new Error(`exited early with ${code}`)))
  })
  const match = /listening on 127\.0\.0\.1:(\d+)/.exec(line)
  t.ok(match, `ready line: ${line.trim()}`)
  const port = Number(match![1])

  t.equal((await echo(port, Buffer.from('hello amy'))).toString(), 'hello amy')
  // Large payloads in both directions at once exercise would-block and backpressure.
  const big = randomBytes(8 << 20)
  const results = await Promise.all([echo(port, big), echo(port, big.subarray(0, 1 << 20)), echo(port, Buffer.alloc(0))])
  t.ok(results[0]!.equals(big), '8 MiB echoed byte for byte')
  t.ok(results[1]!.equals(big.subarray(0, 1 << 20)), '1 MiB echoed byte for byte')
  t.equal(results[2]!.length, 0, 'an empty connection closes cleanly')

  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM closes the server and the process exits 0')
})

t.test('with TLS_KEY/TLS_CERT it is a TLS echo server (node:tls client, 1 MiB byte for byte)', async t => {
  const certs = join(__dirname, '..', '..', '..', 'packages', 'native', 'test', 'fixtures', 'tls')
  const child = owned(spawn(process.execPath, [join(__dirname, '..', 'dist', 'main.js')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', THREADS: '1', TLS_KEY: join(certs, 'server.key'), TLS_CERT: join(certs, 'server.crt') },
    stdio: ['ignore', 'pipe', 'inherit'],
  }))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8')
    child.stdout.once('data', (d: string) => resolve(d))
    child.once('exit', code => reject(new Error(`exited early with ${code}`)))
  })
  const match = /listening on 127\.0\.0\.1:(\d+) \(TLS\)/.exec(line)
  t.ok(match, `ready line: ${line.trim()}`)
  const payload = randomBytes(1 << 20)
  const back = await new Promise<Buffer>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: Number(match![1]), ca: readFileSync(join(certs, 'ca.crt')), servername: 'localhost' }, () => socket.end(payload))
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => resolve(Buffer.concat(chunks)))
    socket.on('error', reject)
  })
  t.ok(back.equals(payload), '1 MiB echoed over TLS byte for byte')
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM: exit 0')
})
