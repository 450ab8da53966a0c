// listen({ tls }): the server terminates TLS in its workers. One server (two
// workers) with two TLS addresses — one plain-server-auth with ALPN, SNI and
// a short handshake timeout, one requiring client certificates — driven by
// node:tls clients, openssl s_client and raw sockets that misbehave.
import t, { type Test } from 'tap'
import net from 'node:net'
import tls from 'node:tls'
import { createHash, randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, type ConnectTlsOptions } from '@amy/server'
import { captureLogger, fixture, until } from './helpers'

const certDir = join(__dirname, '..', '..', 'native', 'test', 'fixtures', 'tls')
const pem = (name: string): string => readFileSync(join(certDir, name), 'utf8')
const ca = pem('ca.crt')
const openFds = (): number => readdirSync('/proc/self/fd').length

interface Told {
  type: 'open' | 'paused' | 'close' | 'data'
  port?: number
  tag?: string
  text?: string
  worker: number
  tls?: { protocol: string; alpn?: string; servername?: string; resumed: boolean; authorized: boolean; authorizationError?: string; peerCertificate?: { subject: string } }
  queued?: number
  maxQueued?: number
  code?: string
}

t.test('TLS server', async t => {
  const [logger, lines] = captureLogger('debug')
  // A small queue limit: a pipe without backpressure would hit it (ERR_BUFFER_LIMIT).
  const server = createServer({ handler: fixture('tls.js'), threads: 2, logger, maxBufferedBytes: 2 * 1024 * 1024 })
  const told: Told[] = []
  server.on('message', msg => told.push(msg as Told))
  t.teardown(() => server.close({ force: true }))
  const handshakeTimeout = 500
  const { port } = await server.listen({
    port: 0,
    tls: { key: pem('server.key'), cert: pem('server.crt'), alpn: ['amy', 'http/1.1'], sni: { 'other.test': { key: pem('other.key'), cert: pem('other.crt') } }, handshakeTimeout },
  })
  const { port: mtlsPort } = await server.listen({ port: 0, tls: { key: pem('server.key'), cert: pem('server.crt'), ca, requestCert: true } })
  const { port: plainPort } = await server.listen({ port: 0 })

  // Upstreams for outbound connections and pipes: a node:tls echo (asks for
  // a client certificate, does not require one) and a plain node:net echo.
  const upstreamClientCerts: Array<string | undefined> = []
  const upstreamSockets: net.Socket[] = []
  const tlsUpstream = tls.createServer({ key: pem('server.key'), cert: pem('server.crt'), ca, requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['amy'] }, socket => {
    upstreamSockets.push(socket)
    upstreamClientCerts.push((socket.getPeerCertificate() as { subject?: { CN?: string } }).subject?.CN)
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  const plainUpstream = net.createServer(socket => {
    upstreamSockets.push(socket)
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  const listening = (s: net.Server): Promise<number> => new Promise(resolve => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)))
  const tlsUpstreamPort = await listening(tlsUpstream)
  const plainUpstreamPort = await listening(plainUpstream)
  t.teardown(() => {
    tlsUpstream.close()
    plainUpstream.close()
  })
  const fdsAtStart = openFds()

  // Every client socket, destroyed (and waited for) before the fd count.
  const clients: net.Socket[] = []
  const connect = (options: tls.ConnectionOptions): Promise<tls.TLSSocket> =>
    new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...options }, () => {
        localPorts.set(socket, socket.localPort!)
        resolve(socket)
      })
      clients.push(socket)
      socket.once('error', reject)
    })
  const raw = (): net.Socket => {
    const socket = net.connect({ host: '127.0.0.1', port })
    clients.push(socket)
    socket.on('error', () => {})
    return socket
  }
  const closeClients = async (): Promise<void> => {
    const open = [...clients, ...upstreamSockets].filter(s => !s.closed)
    for (const s of open) s.destroy()
    await until(() => open.every(s => s.closed), 10_000, 'client sockets closed')
    await until(() => server.stats().connections === 0, 10_000, 'the server to see them closed')
  }
  t.teardown(() => {
    for (const s of clients) s.destroy()
  })
  // The client's port names its connection in the handler's messages (kept: a closed socket forgets it).
  const localPorts = new WeakMap<net.Socket, number>()
  const toldFor = (socket: net.Socket | tls.TLSSocket, type: Told['type']): Promise<Told> => {
    const local = localPorts.get(socket) ?? socket.localPort
    return until(() => told.some(m => m.port === local && m.type === type), 10_000, `'${type}' for port ${local}`).then(
      () => told.find(m => m.port === local && m.type === type)!,
    )
  }
  const echo = async (socket: tls.TLSSocket, text: string): Promise<string> => {
    let got = ''
    const onData = (d: Buffer): void => void (got += d.toString())
    socket.on('data', onData)
    socket.write(text)
    await until(() => got.length >= text.length, 10_000, 'the echo')
    socket.off('data', onData)
    return got
  }
  const failures = (): number => server.stats().tlsFailures

  await t.test('echo over TLS 1.3; open runs after the handshake with conn.tls filled in', async t => {
    const socket = await connect({ ALPNProtocols: ['amy'] })
    t.equal(await echo(socket, 'hello over tls'), 'hello over tls')
    const open = await toldFor(socket, 'open')
    t.match(open.tls, { protocol: 'TLSv1.3', alpn: 'amy', servername: 'localhost', resumed: false, authorized: false })
    t.equal(open.tls!.peerCertificate, undefined, 'no client certificate was asked for')
    t.equal(socket.alpnProtocol, 'amy')
    t.ok(server.stats().tlsHandshakes >= 1, 'the handshake is counted')
  })

  await t.test('16 MiB come back byte for byte; a client that does not read makes the server pause, not queue', async t => {
    const socket = await connect({})
    const payload = randomBytes(16 * 1024 * 1024)
    socket.pause() // not reading yet: the server must hold back
    const received = createHash('sha256')
    let got = 0
    socket.on('data', (d: Buffer) => {
      received.update(d)
      got += d.length
    })
    socket.write(payload)
    const paused = await toldFor(socket, 'paused')
    t.ok(paused.queued! < 1024 * 1024, `paused with ${paused.queued} bytes queued`)
    socket.resume()
    await until(() => got === payload.length, 60_000, '16 MiB back')
    t.equal(received.digest('hex'), createHash('sha256').update(payload).digest('hex'), 'same bytes, same order')
    const ended = new Promise(resolve => socket.once('end', resolve))
    socket.end()
    await ended
    const closed = await toldFor(socket, 'close')
    t.ok(closed.maxQueued! < 1024 * 1024, `at most ${closed.maxQueued} bytes were ever queued`)
  })

  await t.test("end: the client's close_notify ends the connection; the server answers with its own and FIN", async t => {
    const socket = await connect({})
    await echo(socket, 'x')
    const ended = new Promise(resolve => socket.once('end', resolve))
    const closed = new Promise<boolean>(resolve => socket.once('close', resolve))
    socket.end()
    await ended
    t.equal(await closed, false, 'closed without an error')
    const close = await toldFor(socket, 'close')
    t.equal(close.code, undefined, 'the close hook saw no error')
  })

  await t.test('SNI picks the certificate; ALPN without a common protocol fails that handshake and is counted', async t => {
    const other = await connect({ servername: 'other.test' })
    t.match(other.getPeerCertificate().subject, { CN: 'other.test' })
    t.equal((await toldFor(other, 'open')).tls!.servername, 'other.test')

    const before = failures()
    await t.rejects(connect({ ALPNProtocols: ['h2'] }), 'no protocol in common: the client sees the alert')
    await until(() => failures() > before, 10_000, 'the failure counted')
    await until(() => lines.some(l => (l['err'] as { code?: string } | undefined)?.code === 'ERR_TLS_HANDSHAKE'), 10_000, 'the log line with the code')
  })

  await t.test('mTLS: the client certificate is on conn.tls; a client without one fails (counted)', async t => {
    const socket = await connect({ port: mtlsPort, key: pem('client.key'), cert: pem('client.crt') })
    t.equal(await echo(socket, 'mtls'), 'mtls')
    const open = await toldFor(socket, 'open')
    t.equal(open.tls!.authorized, true)
    t.match(open.tls!.peerCertificate!.subject, /CN=amy test client/)

    const before = failures()
    const bare = tls.connect({ host: '127.0.0.1', port: mtlsPort, ca, servername: 'localhost' })
    clients.push(bare)
    // TLS 1.3: the client finishes first and learns of the refusal by an alert.
    await new Promise<void>(resolve => {
      bare.once('error', () => resolve())
      bare.once('close', () => resolve())
    })
    await until(() => failures() > before, 10_000, 'the failure counted')
  })

  await t.test('a session resumes on the other worker (one ticket key for every worker)', async t => {
    await closeClients() // equal loads: the next two connections go to different workers
    const first = await connect({})
    const ticket = new Promise<Buffer>(resolve => first.once('session', resolve))
    await echo(first, '1')
    const session = await ticket
    const firstOpen = await toldFor(first, 'open')
    // The first connection stays open: the least-loaded worker is the other one.
    const second = await connect({ session })
    await echo(second, '2')
    const secondOpen = await toldFor(second, 'open')
    t.not(secondOpen.worker, firstOpen.worker, 'served by the other worker')
    t.equal(second.isSessionReused(), true, 'the client resumed')
    t.equal(secondOpen.tls!.resumed, true, 'conn.tls.resumed')
  })

  await t.test('TLS 1.2-only and 1.3-only node:tls clients', async t => {
    for (const [options, protocol] of [[{ maxVersion: 'TLSv1.2' }, 'TLSv1.2'], [{ minVersion: 'TLSv1.3' }, 'TLSv1.3']] as const) {
      const socket = await connect(options)
      t.equal(await echo(socket, protocol), protocol)
      t.equal((await toldFor(socket, 'open')).tls!.protocol, protocol)
    }
  })

  for (const version of ['-tls1_2', '-tls1_3']) {
    await t.test(`openssl s_client ${version} echoes through the server`, async t => {
      const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', join(certDir, 'ca.crt'), '-verify_return_error', '-quiet', '-no_ign_eof', version])
      t.teardown(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      })
      const toldBefore = told.length
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      child.stdin.write('through amy\n')
      await until(() => out.includes('through amy'), 10_000, 'the echo')
      const open = told.slice(toldBefore).find(m => m.type === 'open')
      t.equal(open?.tls?.protocol, version === '-tls1_2' ? 'TLSv1.2' : 'TLSv1.3')
      const closed = new Promise(resolve => child.once('close', resolve))
      child.stdin.end()
      await closed
    })
  }

  await t.test('garbage instead of a ClientHello: that connection is closed with a code and counted', async t => {
    const before = failures()
    const socket = raw()
    socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await new Promise(resolve => socket.once('close', resolve))
    await until(() => failures() > before, 10_000, 'the failure counted')
  })

  await t.test('a client that stalls mid-handshake is closed with ERR_TLS_HANDSHAKE_TIMEOUT', async t => {
    const before = failures()
    const socket = raw()
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])) // the start of a ClientHello, then nothing
    await new Promise(resolve => socket.once('close', resolve))
    await until(() => failures() > before, 10_000, 'the failure counted')
    await until(() => lines.some(l => (l['err'] as { code?: string } | undefined)?.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'), 10_000, 'the log line with the code')
  })

  await t.test('a client that resets mid-handshake is counted; no worker is hurt', async t => {
    const before = failures()
    const socket = raw()
    await new Promise(resolve => socket.once('connect', resolve))
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
    socket.resetAndDestroy()
    await until(() => failures() > before, 10_000, 'the failure counted')
    const after = await connect({})
    t.equal(await echo(after, 'still serving'), 'still serving')
    t.equal(server.stats().workerCrashes, 0)
  })

  // ---- context.connect({ tls }) ----------------------------------------------

  let tags = 0
  const outbound = async (tls: ConnectTlsOptions | true, host = '127.0.0.1', send?: string): Promise<string> => {
    const tag = `out${++tags}`
    await server.request({ type: 'connect', tag, host, port: tlsUpstreamPort, tls, send }, { worker: 0 })
    return tag
  }
  const toldTag = async (tag: string, type: Told['type'], what = type): Promise<Told> => {
    await until(() => told.some(m => m.tag === tag && m.type === type), 10_000, `'${what}' for ${tag}`)
    return told.find(m => m.tag === tag && m.type === type)!
  }

  await t.test('connect({ tls }): verified, with ALPN and a client certificate; bytes both ways', async t => {
    const tag = await outbound({ ca, alpn: ['amy'], key: pem('client.key'), cert: pem('client.crt') }, '127.0.0.1', 'ping')
    const open = await toldTag(tag, 'open')
    t.match(open.tls, { protocol: 'TLSv1.3', alpn: 'amy', authorized: true })
    t.match(open.tls!.peerCertificate!.subject, /CN=localhost/, "the server's certificate")
    const data = await toldTag(tag, 'data')
    t.equal(data.text, 'ping', 'the echo came back')
    t.ok(upstreamClientCerts.includes('amy test client'), 'the upstream saw our client certificate')
  })

  await t.test('connect({ tls }) to a host name: servername defaults to the host', async t => {
    const open = await toldTag(await outbound({ ca }, 'localhost'), 'open')
    t.equal(open.tls!.authorized, true)
  })

  await t.test('verification failures close the connection with their code (close hook), counted', async t => {
    const before = failures()
    t.equal((await toldTag(await outbound(true), 'close')).code, 'ERR_TLS_CERT_UNTRUSTED', 'a CA not among the default roots')
    t.equal((await toldTag(await outbound({ ca, servername: 'wrong.test' }), 'close')).code, 'ERR_TLS_CERT_ALTNAME_INVALID', 'a name the certificate lacks')
    await until(() => failures() >= before + 2, 10_000, 'both counted')
    const open = await toldTag(await outbound({ rejectUnauthorized: false }), 'open')
    t.equal(open.tls!.authorized, false, 'rejectUnauthorized: false connects anyway')
    t.ok(open.tls!.authorizationError, `and says why: ${open.tls!.authorizationError}`)
  })

  await t.test('connect({ tls }) with an unknown option throws ERR_UNKNOWN_OPTION', async t => {
    await t.rejects(server.request({ type: 'connect', tag: 'bad', host: '127.0.0.1', port: tlsUpstreamPort, tls: { bogus: 1 } }, { worker: 0 }), { code: 'ERR_UNKNOWN_OPTION' })
  })

  // ---- pipe() across TLS -------------------------------------------------------

  const through = async (t: Test, client: net.Socket, bytes: number): Promise<void> => {
    const payload = randomBytes(bytes)
    const received = createHash('sha256')
    let got = 0
    client.on('data', (d: Buffer) => {
      received.update(d)
      got += d.length
    })
    client.write(payload)
    await until(() => got === payload.length, 60_000, `${bytes} bytes back`)
    t.equal(received.digest('hex'), createHash('sha256').update(payload).digest('hex'), `${bytes} bytes back byte for byte`)
    const ended = new Promise(resolve => client.once('end', resolve))
    client.end()
    await ended
  }
  const proxyTo = (to: { port: number; tls?: ConnectTlsOptions } | undefined): Promise<unknown> => server.request({ type: 'proxy', to })

  await t.test('pipe: TLS client -> plain upstream (TLS termination), 16 MiB', async t => {
    await proxyTo({ port: plainUpstreamPort })
    await through(t, await connect({}), 16 * 1024 * 1024)
  })

  await t.test('pipe: TLS client -> TLS upstream, 16 MiB', async t => {
    await proxyTo({ port: tlsUpstreamPort, tls: { ca } })
    await through(t, await connect({}), 16 * 1024 * 1024)
  })

  await t.test('pipe: plain client -> TLS upstream, 4 MiB', async t => {
    await proxyTo({ port: tlsUpstreamPort, tls: { ca } })
    const client = net.connect({ host: '127.0.0.1', port: plainPort })
    clients.push(client)
    await new Promise(resolve => client.once('connect', resolve))
    await through(t, client, 4 * 1024 * 1024)
    await proxyTo(undefined)
  })

  await t.test('every fd opened by these connections is closed again', async t => {
    await closeClients()
    // Handshakes that failed never opened: their fds are counted here too.
    await until(() => openFds() === fdsAtStart, 10_000, `fds back to ${fdsAtStart}`)
    t.equal(openFds(), fdsAtStart)
  })

  await t.test('setSecureContext: connections accepted after it get the new certificate, open ones keep theirs', async t => {
    const before = await connect({})
    t.match(before.getPeerCertificate().subject, { CN: 'localhost' })
    server.setSecureContext({ key: pem('other.key'), cert: pem('other.crt') })
    const after = await connect({ servername: 'other.test' })
    t.match(after.getPeerCertificate().subject, { CN: 'other.test' })
    t.equal(await echo(before, 'old'), 'old', 'the open connection goes on')
    t.equal(await echo(after, 'new'), 'new')
    t.throws(() => server.setSecureContext({ key: pem('server.key'), cert: pem('other.crt') }), { code: 'ERR_TLS_KEY_MISMATCH' }, 'bad options throw and change nothing')
    const still = await connect({ servername: 'other.test' })
    t.match(still.getPeerCertificate().subject, { CN: 'other.test' })
  })
})
