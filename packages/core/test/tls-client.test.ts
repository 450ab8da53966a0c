import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import * as tls from 'node:tls'
import { Worker } from 'node:worker_threads'
import { join } from 'node:path'
import { TlsContext } from '@amy/core'
import { openFds } from './helpers'
import { certDir, pem, serverIdentity, startTlsClient, startTlsEchoServer, until, type TlsClient } from './tls-helpers'

// TlsStream as a client (against node:tls and `openssl s_server`), our
// server against `openssl s_client`, resumption across worker threads, and
// bad records from a client that bypasses TLS.

const ca = pem('ca.crt')

function nodeTlsEchoServer(t: Test, options: tls.TlsOptions = {}): Promise<number> {
  const server = tls.createServer({ ...serverIdentity(), ...options }, socket => {
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  t.teardown(() => server.close())
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)))
}

function ourClient(t: Test, context: TlsContext, port: number, options = {}): TlsClient {
  const c = startTlsClient(context, port, options)
  t.teardown(() => c.close())
  return c
}

t.test('client: echo and 16 MiB byte for byte against a node:tls server; the server is verified', async t => {
  const port = await nodeTlsEchoServer(t)
  const c = ourClient(t, TlsContext.createClient({ ca }), port)
  c.conn.send(Buffer.from('hello'))
  await until(() => c.text() === 'hello', 'the echo')
  t.equal(c.conn.stream.authorized, true)
  t.equal(c.conn.stream.getPeerCertificate()?.subject, 'O=amy,CN=localhost')
  const data = randomBytes(16 << 20)
  c.received.length = 0
  c.conn.send(data)
  await until(() => c.conn.received >= 5 + data.length, '16 MiB back', 30_000)
  const got = Buffer.concat(c.received)
  t.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(data).digest('hex'))
})

t.test('client: ALPN and a client certificate (mTLS) against node:tls', async t => {
  const port = await nodeTlsEchoServer(t, { ca, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['amy'] })
  const context = TlsContext.createClient({ ca, key: pem('client.key'), cert: pem('client.crt'), alpn: ['h2', 'amy'] })
  const c = ourClient(t, context, port)
  c.conn.send(Buffer.from('m'))
  await until(() => c.text() === 'm', 'the echo')
  t.equal(c.conn.stream.alpnProtocol, 'amy')
})

t.test('client: an untrusted server certificate fails with ERR_TLS_CERT_UNTRUSTED; a wrong name with ERR_TLS_CERT_ALTNAME_INVALID', async t => {
  const selfSigned = await nodeTlsEchoServer(t, { key: pem('self.key'), cert: pem('self.crt') })
  const a = ourClient(t, TlsContext.createClient({ ca }), selfSigned)
  await until(() => a.conn.done, 'the failure')
  t.equal(a.conn.error?.code, 'ERR_TLS_CERT_UNTRUSTED')
  t.equal(a.conn.error?.reason, 'self-signed certificate')
  const port = await nodeTlsEchoServer(t)
  const b = ourClient(t, TlsContext.createClient({ ca }), port, { servername: 'wrong.test' })
  await until(() => b.conn.done, 'the failure')
  t.equal(b.conn.error?.code, 'ERR_TLS_CERT_ALTNAME_INVALID')
  // The default trust is node:tls's root bundle: our test CA is not in it.
  const c = ourClient(t, TlsContext.createClient(), port)
  await until(() => c.conn.done, 'the failure')
  t.equal(c.conn.error?.code, 'ERR_TLS_CERT_UNTRUSTED')
  // rejectUnauthorized: false connects and reports why it is not authorized.
  const d = ourClient(t, TlsContext.createClient({ rejectUnauthorized: false }), port)
  d.conn.send(Buffer.from('x'))
  await until(() => d.text() === 'x', 'the echo')
  t.equal(d.conn.stream.authorized, false)
  t.ok(d.conn.stream.authorizationError)
})

t.test('client: session resumption against node:tls with getSession()', async t => {
  const port = await nodeTlsEchoServer(t)
  const context = TlsContext.createClient({ ca })
  const first = ourClient(t, context, port)
  first.conn.send(Buffer.from('1'))
  await until(() => first.text() === '1', 'the echo')
  const session = first.conn.stream.getSession()
  t.ok(session && session.length > 0, 'a session to resume')
  const second = ourClient(t, context, port, { session })
  second.conn.send(Buffer.from('2'))
  await until(() => second.text() === '2', 'the echo')
  t.equal(second.conn.stream.isSessionReused(), true)
})

// ---------------------------------------------------------------------------
// openssl s_server / s_client

function spawnOpenssl(t: Test, args: string[]): ChildProcess {
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return child
}

function output(child: ChildProcess, stream: 'stdout' | 'stderr' = 'stdout'): () => string {
  let text = ''
  child[stream]!.on('data', (d: Buffer) => (text += d.toString()))
  return () => text
}

for (const version of ['-tls1_2', '-tls1_3']) {
  t.test(`client: against openssl s_server ${version} (echo with -rev: the line comes back reversed)`, async t => {
    const server = spawnOpenssl(t, ['s_server', '-accept', '127.0.0.1:0', '-cert', `${certDir}/server.crt`, '-key', `${certDir}/server.key`, '-rev', version, '-naccept', '1'])
    const out = output(server)
    await until(() => /ACCEPT .*:(\d+)/.test(out()), 's_server to listen')
    const port = Number(/ACCEPT .*:(\d+)/.exec(out())![1])
    const c = ourClient(t, TlsContext.createClient({ ca }), port)
    c.conn.send(Buffer.from('amy\n'))
    await until(() => c.text().includes('yma'), 'the reversed line')
    t.equal(c.conn.stream.protocol, version === '-tls1_2' ? 'TLSv1.2' : 'TLSv1.3')
  })

  t.test(`server: openssl s_client ${version} echoes through our server`, async t => {
    const server = startTlsEchoServer(TlsContext.createServer(serverIdentity()))
    t.teardown(() => server.close())
    const client = spawnOpenssl(t, ['s_client', '-connect', `127.0.0.1:${server.port}`, '-servername', 'localhost', '-CAfile', `${certDir}/ca.crt`, '-verify_return_error', '-quiet', version])
    const out = output(client)
    client.stdin!.write('through amy\n')
    await until(() => out().includes('through amy'), 'the echo')
    t.equal(server.connections[0]!.stream.protocol, version === '-tls1_2' ? 'TLSv1.2' : 'TLSv1.3')
    client.stdin!.end()
  })
}

t.test('server: openssl s_client -reconnect resumes sessions', async t => {
  const server = startTlsEchoServer(TlsContext.createServer(serverIdentity()))
  t.teardown(() => server.close())
  const client = spawnOpenssl(t, ['s_client', '-connect', `127.0.0.1:${server.port}`, '-servername', 'localhost', '-CAfile', `${certDir}/ca.crt`, '-reconnect', '-tls1_2'])
  const out = output(client)
  client.stdin!.end()
  await until(() => client.exitCode !== null, 's_client to finish')
  t.ok((out().match(/^Reused, /gm) ?? []).length >= 5, 's_client reused the session on its 5 reconnects')
})

// ---------------------------------------------------------------------------
// Across worker threads: one context, tickets valid in every worker

t.test('resumption across threads: a ticket from a server in this thread resumes on a worker using the same context', async t => {
  const context = TlsContext.createServer(serverIdentity())
  const worker = new Worker(join(__dirname, 'fixtures', 'tls-echo-worker.js'), { workerData: { context: context.handle } })
  // Registered first, so it runs last: after the clients are gone, the
  // worker closes its own sockets and ends; terminate() only if it does not.
  t.teardown(async () => {
    const exited = new Promise(resolve => worker.once('exit', resolve))
    worker.postMessage('stop')
    const timer = setTimeout(() => void worker.terminate(), 10_000)
    await exited
    clearTimeout(timer)
  })
  const workerPort = await new Promise<number>((resolve, reject) => {
    worker.once('message', (m: { port: number }) => resolve(m.port))
    worker.once('error', reject)
  })
  const local = startTlsEchoServer(context)
  t.teardown(() => local.close())
  const first = tls.connect({ host: '127.0.0.1', port: local.port, ca, servername: 'localhost' })
  t.teardown(() => first.destroy())
  const ticket = new Promise<Buffer>(resolve => first.once('session', resolve))
  first.write('1')
  await new Promise(resolve => first.once('data', resolve))
  const session = await ticket
  const second = tls.connect({ host: '127.0.0.1', port: workerPort, ca, servername: 'localhost', session })
  t.teardown(() => second.destroy())
  await new Promise(resolve => second.once('secureConnect', resolve))
  t.equal(second.isSessionReused(), true, 'the worker resumed a session issued by this thread')
  second.write('2')
  t.equal(String(await new Promise(resolve => second.once('data', resolve))), '2')
})

// ---------------------------------------------------------------------------
// Bad records, and nothing left behind

t.test('an oversized record after the handshake: ERR_TLS_PROTOCOL on the server; fds released', async t => {
  const before = openFds()
  const server = startTlsEchoServer(TlsContext.createServer(serverIdentity()))
  t.teardown(() => server.close())
  const c = ourClient(t, TlsContext.createClient({ ca }), server.port)
  c.conn.send(Buffer.from('x'))
  await until(() => c.text() === 'x', 'the echo')
  // Bypass TLS: an application_data header claiming 0x4801 bytes (> 2^14 + 256).
  const record = Buffer.alloc(2000, 0xab)
  record.set([0x17, 0x03, 0x03, 0x48, 0x01])
  c.conn.stream.tcp.write(record)
  await until(() => server.errors.length === 1, 'the server error')
  t.equal(server.errors[0]!.code, 'ERR_TLS_PROTOCOL')
  t.ok(server.errors[0]!.reason)
  c.close()
  server.close()
  await until(() => openFds() === before, 'fds back to the start')
})

t.test('many connections opened and dropped at every stage leave no fd behind', async t => {
  const server = startTlsEchoServer(TlsContext.createServer(serverIdentity()))
  t.teardown(() => server.close())
  const before = openFds()
  const sockets: tls.TLSSocket[] = []
  for (let i = 0; i < 30; i++) {
    const s = tls.connect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost' })
    s.on('error', () => {})
    sockets.push(s)
    if (i % 3 === 0) s.once('connect', () => s.destroy())  // during the handshake
    else if (i % 3 === 1) s.once('secureConnect', () => s.destroy())
    else s.once('secureConnect', () => s.end('bye'))
  }
  await until(() => server.connections.length === 30 && server.connections.every(c => c.done) , 'every server connection to finish', 20_000)
  for (const s of sockets) s.destroy()
  await until(() => openFds() === before, 'fds back to the start')
  t.pass('no fd left')
})
