// The proxy example as a user runs it: `npm start` (node dist/main.js) with
// PORT=0 THREADS=2 UPSTREAM_HOST/UPSTREAM_PORT, in front of a node:net echo
// server and, when installed, a real redis-server; stopped with SIGTERM.
import t from 'tap'
import net from 'node:net'
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process'
import { randomBytes, createHash } from 'node:crypto'
import { join } from 'node:path'
import { owned, startExample, type TestT } from '../../../test/support/example-process'

const MAIN = join(__dirname, '..', 'dist', 'main.js')

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** An echo upstream on node:net; with allowHalfOpen it ends only after echoing everything. */
async function startEcho(t: TestT): Promise<number> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true }, socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return (server.address() as net.AddressInfo).port
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

interface Proxy {
  child: ChildProcess
  port: number
  exited: Promise<number | string | null>
  stderr: () => string
  /** The ready line. */
  stdout: string
}

const PROXY_ENV = { HOST: '127.0.0.1', PORT: '0', THREADS: '2', UPSTREAM_HOST: undefined, UPSTREAM_PORT: undefined }

/** A proxy that is expected to fail at start: no ready line is awaited. */
function spawnProxy(env: Record<string, string | undefined>): { child: ChildProcess; exited: Promise<number | string | null>; stderr: () => string } {
  const child = owned(spawn(process.execPath, [MAIN], {
    env: { ...process.env, ...PROXY_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }))
  let err = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (d: string) => (err += d))
  const exited = new Promise<number | string | null>(resolve => child.once('exit', (code, signal) => resolve(code ?? signal)))
  return { child, exited, stderr: () => err }
}

async function startProxy(t: TestT, upstreamPort: number, upstreamHost = '127.0.0.1', env: Record<string, string> = {}): Promise<Proxy> {
  const proxy = await startExample(t, MAIN, /^proxy listening on 127\.0\.0\.1:(\d+) -> (\S+)( \(TLS terminated\))?$/m, {
    env: { ...PROXY_ENV, UPSTREAM_HOST: upstreamHost, UPSTREAM_PORT: String(upstreamPort), ...env },
    captureStderr: true,
  })
  t.equal(proxy.match[2], `${upstreamHost}:${upstreamPort}`, 'it names the upstream')
  return { child: proxy.child, port: Number(proxy.match[1]), exited: proxy.exited, stderr: proxy.stderr, stdout: proxy.line }
}

async function stopProxy(t: TestT, proxy: Proxy): Promise<void> {
  proxy.child.kill('SIGTERM')
  t.equal(await withTimeout(proxy.exited, 10000, 'the proxy to exit after SIGTERM'), 0, 'SIGTERM: the proxy exits 0')
}

interface Transfer {
  received: Buffer
  /** Bytes received before we finished writing: proof the directions overlap. */
  receivedWhileWriting: number
  ended: boolean
}

/**
 * Writes `payload` in chunks, respecting backpressure and yielding to the
 * event loop between chunks (the echo upstream runs in this process), while
 * reading the echo; ends after the last chunk; resolves at the peer's end.
 */
function transfer(port: number, payload: Buffer, chunk = 256 * 1024): Promise<Transfer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    let received = 0
    let receivedWhileWriting = -1
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      received += c.length
    })
    socket.on('end', () => {
      resolve({ received: Buffer.concat(chunks), receivedWhileWriting, ended: true })
      socket.end()
    })
    socket.on('error', reject)
    let offset = 0
    const write = (): void => {
      if (offset < payload.length) {
        const piece = payload.subarray(offset, offset + chunk)
        offset += piece.length
        if (socket.write(piece)) setImmediate(write)
        else socket.once('drain', write)
        return
      }
      receivedWhileWriting = received
      socket.end()
    }
    socket.once('connect', write)
  })
}

/** Connects, sends `data` and ends at once (data and FIN back to back); resolves with the echo at its end. */
function quick(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => socket.end(data))
    let got = ''
    socket.setEncoding('utf8')
    socket.on('data', (c: string) => (got += c))
    socket.on('end', () => resolve(got))
    socket.on('error', reject)
  })
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('without UPSTREAM_PORT the proxy exits 1 with a clear message', async t => {
  const { exited, stderr } = spawnProxy({})
  t.equal(await withTimeout(exited, 10000, 'the proxy to exit'), 1, 'exit code 1')
  t.match(stderr(), /UPSTREAM_PORT is required/, `message: ${stderr().trim()}`)
  const bad = spawnProxy({ UPSTREAM_PORT: 'seventy' })
  t.equal(await withTimeout(bad.exited, 10000, 'the proxy to exit'), 1, 'a bad port: exit code 1')
  t.match(bad.stderr(), /UPSTREAM_PORT must be a port number/)
})

t.test('in front of a node:net echo server', async t => {
  const echoPort = await startEcho(t)
  const proxy = await startProxy(t, echoPort)

  await t.test('8 connections x 8 MiB, full duplex, byte for byte', async t => {
    const payloads = Array.from({ length: 8 }, () => randomBytes(8 << 20))
    const results = await withTimeout(Promise.all(payloads.map(p => transfer(proxy.port, p))), 60000, '8 x 8 MiB through the proxy')
    for (const [i, r] of results.entries()) {
      t.equal(r.received.length, payloads[i]!.length, `connection ${i}: ${r.received.length} bytes back`)
      t.ok(r.received.equals(payloads[i]!), `connection ${i}: identical (sha256 ${sha(r.received).slice(0, 12)})`)
    }
    const overlapped = results.filter(r => r.receivedWhileWriting > 0).length
    t.ok(overlapped > 0, `echo bytes arrived while still writing on ${overlapped}/8 connections (full duplex)`)
  })

  await t.test('half-close: the client ends after sending and still gets the whole echo, then end', async t => {
    const payload = randomBytes(3 << 20)
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    const ended = new Promise<void>((resolve, reject) => {
      socket.on('end', resolve)
      socket.on('error', reject)
    })
    await new Promise<void>(resolve => socket.once('connect', resolve))
    socket.end(payload) // our FIN goes right after the data
    await withTimeout(ended, 20000, 'the echo and the end')
    const back = Buffer.concat(chunks)
    t.equal(back.length, payload.length, 'all bytes came back after our FIN')
    t.ok(back.equals(payload), 'byte for byte')
    socket.destroy()

    // A small one, where the whole exchange fits in one read each way.
    const small = await withTimeout(transfer(proxy.port, Buffer.from('ping\n')), 10000, 'a small half-closed exchange')
    t.equal(small.received.toString(), 'ping\n')
    t.ok(small.ended, 'the end is forwarded')
  })

  await t.test('many short half-closed connections in a row', async t => {
    // Each: connect, send, end at once; the data must come back, then the end.
    let failed = 0
    for (let i = 0; i < 200; i++) {
      const got = await withTimeout(quick(proxy.port, `hello ${i}`), 10000, `connection ${i}`)
      if (got !== `hello ${i}`) {
        failed++
        if (failed <= 5) t.fail(`connection ${i}: got ${JSON.stringify(got)}`)
      }
    }
    t.equal(failed, 0, '200 connections each echoed')
  })

  await stopProxy(t, proxy)
})

t.test('upstream refused: the client connection is closed promptly', async t => {
  const deadPort = await freePort()
  const proxy = await startProxy(t, deadPort)
  const started = Date.now()
  const outcome = await withTimeout(
    new Promise<string>(resolve => {
      const socket = net.connect({ host: '127.0.0.1', port: proxy.port })
      socket.on('connect', () => socket.write('anyone there?\n'))
      socket.on('data', () => resolve('data'))
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`))
      socket.on('close', () => resolve('close'))
    }),
    5000,
    'the proxy to close the client connection',
  )
  t.match(outcome, /^(close|error ECONNRESET|error EPIPE)$/, `closed (${outcome}) after ${Date.now() - started} ms`)
  await withTimeout(
    (async () => {
      while (!/connect to upstream 127\.0\.0\.1:\d+ failed/.test(proxy.stderr())) await new Promise(r => setTimeout(r, 20))
    })(),
    5000,
    'the log line',
  )
  t.match(proxy.stderr(), /ECONNREFUSED|refused/i, `logged: ${proxy.stderr().trim().split('\n')[0]}`)
  await stopProxy(t, proxy)
})

function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0
}

function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : null) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

const missingRedis = ['redis-server', 'redis-benchmark', 'redis-cli'].filter(c => !have(c))
const skipRedis = missingRedis.length > 0 && `${missingRedis.join(', ')} not on PATH: apt-get install -y redis-server redis-tools to run this test`

t.test('in front of a real redis-server', { skip: skipRedis }, async t => {
  const redisPort = await freePort()
  const redis = owned(spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  }))
  let redisLog = ''
  redis.stdout!.on('data', (d: Buffer) => (redisLog += d.toString()))
  redis.stderr!.on('data', (d: Buffer) => (redisLog += d.toString()))
  const redisExited = new Promise<void>(resolve => redis.once('exit', () => resolve()))
  t.teardown(async () => {
    if (redis.exitCode === null && redis.signalCode === null) {
      redis.kill('SIGTERM')
      await withTimeout(redisExited, 5000, 'redis-server to exit').catch(() => redis.kill('SIGKILL'))
    }
  })
  // Ready once it answers PING directly.
  await withTimeout(
    (async () => {
      for (;;) {
        const r = await run('redis-cli', ['-p', String(redisPort), 'ping'], 2000)
        if (r.stdout.trim() === 'PONG') return
        if (redis.exitCode !== null) throw new Error(`redis-server exited: ${redisLog}`)
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    })(),
    10000,
    'redis-server to answer PING',
  )

  const proxy = await startProxy(t, redisPort)
  const port = String(proxy.port)

  const set = await run('redis-cli', ['-p', port, 'set', 'amy:k', 'v through the proxy'], 10000)
  t.equal(set.stdout.trim(), 'OK', 'SET through the proxy')
  const get = await run('redis-cli', ['-p', port, 'get', 'amy:k'], 10000)
  t.equal(get.stdout.trim(), 'v through the proxy', 'GET through the proxy returns it')
  const direct = await run('redis-cli', ['-p', String(redisPort), 'get', 'amy:k'], 10000)
  t.equal(direct.stdout.trim(), 'v through the proxy', 'the value really is in redis')

  const bench = await run('redis-benchmark', ['-p', port, '-t', 'set,get', '-n', '20000', '-c', '20', '--csv'], 120000)
  t.equal(bench.code, 0, `redis-benchmark exited 0${bench.code === 0 ? '' : `: ${bench.stderr}`}`)
  // --csv: a header, then "test","rps",... per test.
  const rows = bench.stdout
    .split('\n')
    .map(l => l.split(',').map(f => f.replace(/^"|"$/g, '')))
    .filter(f => f[0] === 'SET' || f[0] === 'GET')
  t.same(rows.map(r => r[0]).sort(), ['GET', 'SET'], `one row per test: ${rows.map(r => `${r[0]} ${r[1]} req/s`).join(', ')}`)
  for (const r of rows) t.ok(Number(r[1]) > 0, `${r[0]}: ${r[1]} requests/s through the proxy`)
  await stopProxy(t, proxy)

  // The same, with the proxy terminating TLS (TLS_KEY/TLS_CERT): redis-cli
  // and redis-benchmark speak TLS to it, it speaks plain RESP to redis.
  const certs = join(__dirname, '..', '..', '..', 'packages', 'native', 'test', 'fixtures', 'tls')
  const tlsProxy = await startProxy(t, redisPort, '127.0.0.1', { TLS_KEY: join(certs, 'server.key'), TLS_CERT: join(certs, 'server.crt') })
  t.match(tlsProxy.stdout, /TLS terminated/, 'it says it terminates TLS')
  const tlsArgs = ['-p', String(tlsProxy.port), '--tls', '--cacert', join(certs, 'ca.crt'), '--sni', 'localhost']
  const tlsGet = await run('redis-cli', [...tlsArgs, 'get', 'amy:k'], 10000)
  t.equal(tlsGet.stdout.trim(), 'v through the proxy', `GET over TLS through the proxy${tlsGet.stderr ? `: ${tlsGet.stderr}` : ''}`)
  const tlsBench = await run('redis-benchmark', [...tlsArgs, '-t', 'set,get', '-n', '20000', '-c', '20', '--csv'], 120000)
  t.equal(tlsBench.code, 0, `redis-benchmark --tls exited 0${tlsBench.code === 0 ? '' : `: ${tlsBench.stderr}`}`)
  const tlsRows = tlsBench.stdout
    .split('\n')
    .map(l => l.split(',').map(f => f.replace(/^"|"$/g, '')))
    .filter(f => f[0] === 'SET' || f[0] === 'GET')
  t.same(tlsRows.map(r => r[0]).sort(), ['GET', 'SET'], `over TLS: ${tlsRows.map(r => `${r[0]} ${r[1]} req/s`).join(', ')}`)
  for (const r of tlsRows) t.ok(Number(r[1]) > 0, `${r[0]}: ${r[1]} requests/s over TLS through the proxy`)
  await stopProxy(t, tlsProxy)
})
