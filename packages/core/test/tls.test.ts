import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { connect as netConnect, type Socket } from 'node:net'
import * as tls from 'node:tls'
import { TlsContext, TLS_ERROR_CODES, opensslVersion } from '@amy/core'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { openFds } from './helpers'
import { pem, serverIdentity, startTlsEchoServer, until, type EchoServer } from './tls-helpers'

// TLS at the core level: a TlsStream echo server driven by a started Poller
// in this thread, against node:tls clients. Certificates: the committed
// test-only ones in packages/native/test/fixtures/tls.

const ca = pem('ca.crt')

function serve(t: Test, options = {}, onData?: (chunk: Buffer) => Buffer | undefined): EchoServer {
  const server = startTlsEchoServer(TlsContext.createServer({ ...serverIdentity(), ...options }), onData)
  t.teardown(() => server.close())
  return server
}

function client(t: Test, port: number, options: tls.ConnectionOptions = {}): tls.TLSSocket {
  const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...options })
  socket.on('error', () => {})  // each test awaits the error it expects
  t.teardown(() => socket.destroy())
  return socket
}

function secure(socket: tls.TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('secureConnect', resolve)
    socket.once('error', reject)
  })
}

function collect(socket: Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let got = 0
    const onData = (c: Buffer) => {
      chunks.push(c)
      got += c.length
      if (got >= bytes) {
        socket.off('data', onData)
        resolve(Buffer.concat(chunks))
      }
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.once('end', () => resolve(Buffer.concat(chunks)))
  })
}

function errorOf(socket: tls.TLSSocket): Promise<NodeJS.ErrnoException> {
  return new Promise(resolve => {
    socket.once('error', resolve)
    socket.once('close', () => resolve(Object.assign(new Error('closed without error'), { code: 'CLOSED' })))
  })
}

t.test('echo with a node:tls client over TLS 1.3; the server sees servername, protocol and no client certificate', async t => {
  const server = serve(t)
  const socket = client(t, server.port)
  await secure(socket)
  t.equal(socket.authorized, true, 'node:tls verified our certificate chain')
  socket.write('hello')
  t.equal((await collect(socket, 5)).toString(), 'hello')
  const conn = server.connections[0]!.stream
  t.equal(conn.protocol, 'TLSv1.3')
  t.equal(conn.servername, 'localhost')
  t.equal(conn.getPeerCertificate(), null)
  t.equal(conn.isSessionReused(), false)
  t.match(opensslVersion, /^OpenSSL 3\./, 'the OpenSSL inside node')
})

t.test('16 MiB through the echo server come back byte for byte', async t => {
  const server = serve(t)
  const socket = client(t, server.port)
  await secure(socket)
  const data = randomBytes(16 << 20)
  const back = collect(socket, data.length)
  socket.write(data)
  const got = await back
  t.equal(got.length, data.length)
  t.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(data).digest('hex'))
})

t.test('end: a client end() is read as end of stream, answered with close_notify and FIN', async t => {
  const server = serve(t)
  const socket = client(t, server.port)
  await secure(socket)
  socket.end('last words')
  const got = await collect(socket, Infinity)
  t.equal(got.toString(), 'last words')
  await until(() => server.connections[0]!.done, 'the server side to finish')
  t.equal(server.errors.length, 0)
})

t.test('TLS 1.2-only and TLS 1.3-only node:tls clients get their version', async t => {
  const server = serve(t)
  for (const [options, want] of [
    [{ maxVersion: 'TLSv1.2' }, 'TLSv1.2'],
    [{ minVersion: 'TLSv1.3' }, 'TLSv1.3'],
  ] as const) {
    const socket = client(t, server.port, options)
    await secure(socket)
    t.equal(socket.getProtocol(), want)
    socket.write('v')
    await collect(socket, 1)
    t.equal(server.connections.at(-1)!.stream.protocol, want)
  }
})

t.test('a TLS 1.2-only server refuses a TLS 1.3-only client: ERR_TLS_HANDSHAKE on the server', async t => {
  const server = serve(t, { maxVersion: 'TLSv1.2' })
  const socket = client(t, server.port, { minVersion: 'TLSv1.3' })
  const err = await errorOf(socket)
  t.match(err.code, /ERR_SSL/)
  await until(() => server.errors.length === 1, 'the server error')
  t.equal(server.errors[0]!.code, 'ERR_TLS_HANDSHAKE')
  t.ok(server.errors[0]!.reason, 'OpenSSL reason kept')
})

t.test('SNI: the servername picks the certificate (exact and wildcard)', async t => {
  const other = { key: pem('other.key'), cert: pem('other.crt') }
  const server = serve(t, { sni: { 'other.test': other, '*.wild.test': other } })
  for (const [name, cn] of [['other.test', 'other.test'], ['x.wild.test', 'other.test'], ['localhost', 'localhost']]) {
    const socket = client(t, server.port, { servername: name })
    await secure(socket)
    t.equal(socket.getPeerCertificate().subject.CN, cn, `${name} -> ${cn}`)
    socket.write('s')
    await collect(socket, 1)
    t.equal(server.connections.at(-1)!.stream.servername, name)
  }
})

t.test('ALPN: the server picks from its list; no protocol in common fails the handshake', async t => {
  const server = serve(t, { alpn: ['amy', 'h2'] })
  const socket = client(t, server.port, { ALPNProtocols: ['h2', 'amy'] })
  await secure(socket)
  t.equal(socket.alpnProtocol, 'amy')
  socket.write('a')
  await collect(socket, 1)
  t.equal(server.connections[0]!.stream.alpnProtocol, 'amy')
  const other = client(t, server.port, { ALPNProtocols: ['http/1.1'] })
  const err = await errorOf(other)
  t.match(err.code, /ALERT_NO_APPLICATION_PROTOCOL/)
  await until(() => server.errors.length === 1, 'the server error')
  t.equal(server.errors[0]!.code, 'ERR_TLS_HANDSHAKE')
})

t.test('mTLS: a client certificate is verified and reported; a client without one fails with ERR_TLS_CERT_REQUIRED', async t => {
  const server = serve(t, { ca, requestCert: true })
  const socket = client(t, server.port, { key: pem('client.key'), cert: pem('client.crt') })
  await secure(socket)
  socket.write('m')
  await collect(socket, 1)
  const conn = server.connections[0]!.stream
  t.equal(conn.authorized, true)
  t.equal(conn.getPeerCertificate()?.subject, 'O=amy,CN=amy test client')
  t.match(conn.getPeerCertificate()?.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
  const anonymous = client(t, server.port)
  const err = await errorOf(anonymous)
  t.match(err.code, /CERTIFICATE_REQUIRED|ECONNRESET/)
  await until(() => server.errors.length === 1, 'the server error')
  t.equal(server.errors[0]!.code, 'ERR_TLS_CERT_REQUIRED')
})

t.test('resumption: a node:tls session ticket resumes on the same context', async t => {
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    const server = serve(t)
    const first = client(t, server.port, { maxVersion })
    const ticket = new Promise<Buffer>(resolve => first.once('session', resolve))
    await secure(first)
    first.write('1')
    await collect(first, 1)
    const session = await ticket
    first.end()
    const second = client(t, server.port, { maxVersion, session })
    await secure(second)
    t.equal(second.isSessionReused(), true, `${maxVersion}: node:tls resumed`)
    second.write('2')
    await collect(second, 1)
    t.equal(server.connections[1]!.stream.isSessionReused(), true, `${maxVersion}: our server resumed`)
  }
})

t.test('garbage instead of a ClientHello: ERR_TLS_HANDSHAKE with a reason; no fd left open', async t => {
  const server = serve(t)
  const before = openFds()
  const socket = netConnect(server.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
  await until(() => server.errors.length === 1, 'the server error')
  t.equal(server.errors[0]!.code, 'ERR_TLS_HANDSHAKE')
  t.ok(server.errors[0]!.reason)
  socket.destroy()
  await until(() => openFds() === before, 'fds back to the start')
})

t.test('a client that stops mid-handshake (FIN) or resets: ERR_TLS_HANDSHAKE; no fd left open', async t => {
  const server = serve(t)
  // A real ClientHello's first bytes, captured from node:tls.
  const hello = await new Promise<Buffer>(resolve => {
    const capture = startTlsEchoServerCapture(resolve)
    t.teardown(() => capture.close())
  })
  const before = openFds()
  const fin = netConnect(server.port, '127.0.0.1')
  fin.on('error', () => {})
  t.teardown(() => fin.destroy())
  fin.end(hello.subarray(0, 40))
  await until(() => server.errors.length === 1, 'the FIN error')
  t.equal(server.errors[0]!.code, 'ERR_TLS_HANDSHAKE')
  t.match(server.errors[0]!.message, /closed the connection during the TLS handshake/)
  const rst = netConnect(server.port, '127.0.0.1')
  rst.on('error', () => {})
  t.teardown(() => rst.destroy())
  await new Promise(resolve => rst.once('connect', resolve))
  rst.write(hello)
  await until(() => server.connections.length === 2, 'the second connection')
  rst.resetAndDestroy()
  await until(() => server.errors.length === 2, 'the reset error')
  t.equal(server.errors[1]!.code, 'ERR_TLS_HANDSHAKE')
  t.equal(server.errors[1]!.errno, -104, 'ECONNRESET kept as errno')
  await until(() => openFds() === before, 'fds back to the start')
})

t.test('renegotiation by a TLS 1.2 node:tls client is refused: ERR_TLS_RENEGOTIATION', async t => {
  const server = serve(t)
  const socket = client(t, server.port, { maxVersion: 'TLSv1.2' })
  await secure(socket)
  socket.write('r')
  await collect(socket, 1)
  socket.renegotiate({}, () => {})
  await until(() => server.errors.length === 1, 'the server error')
  t.equal(server.errors[0]!.code, 'ERR_TLS_RENEGOTIATION')
})

t.test('the TLS error codes of @amy/core are the native layer\'s', async t => {
  const header = readFileSync(join(__dirname, '..', '..', 'native', 'src', 'tls', 'tls_error.h'), 'utf8')
  const native = [...header.matchAll(/"(ERR_TLS_[A-Z_0-9]+)"/g)].map(m => m[1])
  t.same([...TLS_ERROR_CODES].sort(), native.sort())
})

// A plain TCP server that captures what a node:tls client sends first.
function startTlsEchoServerCapture(onHello: (hello: Buffer) => void): { close(): void } {
  const { createServer } = require('node:net') as typeof import('node:net')
  const sockets: Socket[] = []
  const capture = createServer(s => {
    sockets.push(s)
    s.once('data', d => onHello(d))
  })
  capture.listen(0, '127.0.0.1', () => {
    const port = (capture.address() as { port: number }).port
    const c = tls.connect({ host: '127.0.0.1', port, servername: 'localhost' })
    c.on('error', () => {})
    sockets.push(c)
  })
  return {
    close() {
      for (const s of sockets) s.destroy()
      capture.close()
    },
  }
}
