// TcpListener and TcpStream on real sockets (127.0.0.1 / ::1, port 0).
import t from 'tap'
import { Interest, Poller, TcpListener, TcpStream, writeMany, writeManyError } from '@amy/core'
import { waitFor } from './helpers'

/** A connected pair: [client, accepted server side], plus the listener. */
function connectedPair(poller: Poller, host = '127.0.0.1'): [TcpStream, TcpStream, TcpListener] {
  const listener = TcpListener.bind({ host, port: 0 })
  const lid = poller.registrar.register(listener, Interest.Read)
  const client = TcpStream.connect({ host, port: listener.address().port })
  const server = (waitFor(poller, lid), listener.accept())
  if (!server) throw new Error('no connection accepted')
  return [client, server, listener]
}

function readAll(poller: Poller, stream: TcpStream, id: number, want: number): Buffer {
  const chunks: Buffer[] = []
  let got = 0
  const buf = Buffer.alloc(65536)
  for (let rounds = 0; got < want && rounds < 50; rounds++) {
    for (let n = stream.read(buf); n !== null && n > 0; n = stream.read(buf)) {
      chunks.push(Buffer.from(buf.subarray(0, n)))
      got += n
    }
    if (got < want) waitFor(poller, id, 200, 2)
  }
  return Buffer.concat(chunks)
}

t.test('bind on port 0, read the address back', async t => {
  const listener = TcpListener.bind({ port: 0 })
  t.teardown(() => listener.close())
  const address = listener.address()
  t.equal(address.address, '127.0.0.1', 'default host is loopback')
  t.equal(address.family, 'IPv4')
  t.ok(address.port > 0)
  t.equal(listener.accept(), null, 'accept with nothing waiting is null')
})

t.test('binding a port in use fails with EADDRINUSE', async t => {
  const listener = TcpListener.bind({ port: 0 })
  t.teardown(() => listener.close())
  const err = t.throws(() => TcpListener.bind({ port: listener.address().port })) as NodeJS.ErrnoException
  t.equal(err.code, 'EADDRINUSE')
  t.equal(err.syscall, 'bind')
  t.equal(err.errno, -98)
})

t.test('reusePort lets two listeners share a port', async t => {
  const a = TcpListener.bind({ port: 0, reusePort: true })
  const b = TcpListener.bind({ port: a.address().port, reusePort: true })
  t.equal(a.address().port, b.address().port)
  a.close()
  b.close()
})

t.test('bad hosts and ports are clear errors', async t => {
  t.throws(() => TcpListener.bind({ host: 'example.invalid' }), { code: 'ERR_INVALID_ADDRESS' })
  t.throws(() => TcpListener.bind({ port: 70000 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => TcpListener.bind({ port: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => TcpListener.bind({ host: 5 as unknown as string }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => TcpStream.connect({ port: 0 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => TcpStream.connect({ host: 'nope', port: 1 }), { code: 'ERR_INVALID_ADDRESS' })
  t.throws(() => TcpStream.fromFd(-3), { code: 'ERR_INVALID_ARG_VALUE' })
})

t.test('connect, accept, write, read, writev, would-block', async t => {
  const poller = new Poller()
  const [client, server, listener] = connectedPair(poller)
  t.teardown(() => { client.close(); server.close(); listener.close(); poller.close() })
  t.equal(server.remoteAddress, '127.0.0.1')
  t.equal(server.remotePort, client.localAddress().port)
  t.equal(server.remoteFamily, 'IPv4')
  t.equal(client.remotePort, listener.address().port, 'a connected stream asks the kernel')
  const sid = poller.registrar.register(server, Interest.Read)
  t.equal(server.read(Buffer.alloc(16)), null, 'nothing to read: null, not an exception')
  t.equal(client.write(Buffer.from('hello ')), 6)
  t.equal(client.writev([Buffer.from('wor'), Buffer.from(''), Buffer.from('ld')]), 5)
  t.equal(readAll(poller, server, sid, 11).toString(), 'hello world')
})

t.test('write until would-block, then writable again after the peer reads', async t => {
  const poller = new Poller()
  const [client, server, listener] = connectedPair(poller)
  t.teardown(() => { client.close(); server.close(); listener.close(); poller.close() })
  const cid = poller.registrar.register(client, Interest.Write)
  t.ok(waitFor(poller, cid)?.writable, 'writable once connected')
  const chunk = Buffer.alloc(1 << 16, 7)
  let written = 0
  for (let n = client.write(chunk); n !== null; n = client.write(chunk)) written += n
  t.ok(written > 0, `wrote ${written} bytes before would-block`)
  const sid = poller.registrar.register(server, Interest.Read)
  const got = readAll(poller, server, sid, written)
  t.equal(got.length, written, 'every byte arrives')
  t.ok(got.every(b => b === 7))
  t.ok(waitFor(poller, cid)?.writable, 'writable again after the peer drained')
})

t.test('relay: one call reads a stream and sends to another; null when nothing waits, relayUnsent when the target would block, 0 at end of stream, a failed send throws syscall write', async t => {
  const poller = new Poller()
  const [from, source, l1] = connectedPair(poller)
  const [target, sink, l2] = connectedPair(poller)
  t.teardown(() => { for (const s of [from, source, target, sink, l1, l2]) s.close(); poller.close() })
  const sid = poller.registrar.register(source, Interest.Read)
  const tid = poller.registrar.register(sink, Interest.Read)
  const buf = Buffer.alloc(1 << 16)
  t.equal(source.relay(target, buf), null, 'nothing to read: null')
  from.write(Buffer.from('hello'))
  waitFor(poller, sid)
  t.equal(source.relay(target, buf), 5, 'read 5')
  t.equal(source.relayUnsent, 0, 'and sent them all')
  t.equal(readAll(poller, sink, tid, 5).toString(), 'hello', 'the target\'s peer got them')
  // The target's send buffer full (its peer does not read): the relay still reads, and says how many it kept.
  const chunk = Buffer.alloc(1 << 16, 1)
  while (target.write(chunk) !== null);
  from.write(Buffer.from('x'.repeat(64)))
  waitFor(poller, sid)
  t.equal(source.relay(target, buf), 64, 'read 64 with the target blocked')
  t.equal(source.relayUnsent, 64, 'none sent: all 64 are the caller\'s to queue')
  t.equal(buf.subarray(0, 64).toString(), 'x'.repeat(64))
  target.shutdown('write')
  from.write(Buffer.from('y'))
  waitFor(poller, sid)
  const err = t.throws(() => source.relay(target, buf)) as NodeJS.ErrnoException
  t.equal(err.code, 'EPIPE', 'sending on a shut-down target fails')
  t.equal(err.syscall, 'write', 'as the send (the target\'s side), not the read')
  from.shutdown('write')
  waitFor(poller, sid)
  t.equal(source.relay(target, buf), 0, 'end of stream: 0')
})

t.test('writeMany: one call sends the same bytes to several sockets; each result is bytes taken (all, or part when its buffer fills), -1 would block, or an error for a shut-down or closed socket', async t => {
  const poller = new Poller()
  const [aPeer, a, l1] = connectedPair(poller)
  const [bPeer, b, l2] = connectedPair(poller)
  const [cPeer, c, l3] = connectedPair(poller)
  const [dPeer, d, l4] = connectedPair(poller)
  const [, closed, l5] = connectedPair(poller)
  t.teardown(() => { for (const s of [aPeer, a, l1, bPeer, b, l2, cPeer, c, l3, dPeer, d, l4, closed, l5]) s.close(); poller.close() })
  const results = new Int32Array(8).fill(99)
  const fds = Int32Array.of(a.fd, b.fd)
  writeMany(fds, 2, Buffer.from('hello'), results)
  t.same([...results.subarray(0, 3)], [5, 5, 99], 'both took all 5 bytes; nothing written past count')
  const aid = poller.registrar.register(aPeer, Interest.Read)
  const bid = poller.registrar.register(bPeer, Interest.Read)
  t.equal(readAll(poller, aPeer, aid, 5).toString(), 'hello')
  t.equal(readAll(poller, bPeer, bid, 5).toString(), 'hello')
  // b's send buffer full (its peer does not read); c shut down; the closed stream's fd is -1.
  for (const size of [1 << 16, 1 << 10, 1]) {
    const chunk = Buffer.alloc(size, 1)
    for (let i = 0; i < 100_000 && b.write(chunk) !== null; i++);
  }
  c.shutdown('write')
  closed.close()
  writeMany(Int32Array.of(b.fd, c.fd, closed.fd, a.fd), 4, Buffer.from('x'.repeat(64)), results)
  t.equal(results[0], -1, 'b would block: -1')
  t.ok(results[1]! < -1, 'c failed')
  const shutErr = writeManyError(results[1]!)
  t.equal(shutErr.code, 'EPIPE', 'a send on a shut-down socket: EPIPE')
  t.equal(shutErr.syscall, 'write')
  t.equal(writeManyError(results[2]!).code, 'EBADF', 'a closed stream (fd -1): EBADF')
  t.equal(results[3], 64, 'and the socket after them was still sent all 64')
  // More than a loopback socket's buffers hold (the peers do not read): each takes part.
  const big = Buffer.alloc(64 << 20, 2)
  writeMany(Int32Array.of(a.fd, d.fd), 2, big, results)
  for (const i of [0, 1]) t.ok(results[i]! > 0 && results[i]! < big.length, `took part of ${big.length}: ${results[i]}`)
  t.throws(() => writeMany(fds, 3, big, results), { code: 'ERR_INVALID_ARG_TYPE' }, 'count past the fds: a TypeError, nothing sent')
})

t.test('shutdown: the peer reads end of stream and sees a hangup', async t => {
  const poller = new Poller()
  const [client, server, listener] = connectedPair(poller)
  t.teardown(() => { client.close(); server.close(); listener.close(); poller.close() })
  const sid = poller.registrar.register(server, Interest.Read)
  client.write(Buffer.from('bye'))
  client.shutdown('write')
  const n = waitFor(poller, sid)
  t.ok(n?.hangup, 'hangup is reported')
  t.equal(readAll(poller, server, sid, 3).toString(), 'bye', 'data before the FIN')
  t.equal(server.read(Buffer.alloc(8)), 0, 'then 0: end of stream')
  t.equal(server.write(Buffer.from('still open')), 10, 'half-closed: the other direction works')
  t.throws(() => client.shutdown('sideways' as never), { code: 'ERR_INVALID_ARG_VALUE' })
})

t.test('a peer that resets is reported as hangup/error, and read throws ECONNRESET', async t => {
  const poller = new Poller()
  const [client, server, listener] = connectedPair(poller)
  t.teardown(() => { client.close(); server.close(); listener.close(); poller.close() })
  const sid = poller.registrar.register(server, Interest.Both)
  waitFor(poller, sid) // the initial writable edge
  client.write(Buffer.from('x'))
  // Closing with unread data in the receive queue sends RST, not FIN.
  server.write(Buffer.from('unread by client'))
  await new Promise(r => setTimeout(r, 20))
  client.close()
  const n = waitFor(poller, sid)
  t.ok(n && (n.hangup || n.error), 'hangup or error, not a plain read')
  const err = t.throws(() => { while (server.read(Buffer.alloc(64)) !== null) { /* drain */ } }) as NodeJS.ErrnoException
  t.equal(err.code, 'ECONNRESET')
})

t.test('a refused connect: error notification and ECONNREFUSED from takeError', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const probe = TcpListener.bind({ port: 0 })
  const port = probe.address().port
  probe.close() // nobody listens here now
  const stream = TcpStream.connect({ port })
  t.teardown(() => stream.close())
  const id = poller.registrar.register(stream, Interest.Both)
  const n = waitFor(poller, id)
  t.ok(n?.error || n?.hangup, 'reported as error/hangup')
  const err = stream.takeError()
  t.ok(err instanceof Error)
  t.equal(err?.code, 'ECONNREFUSED')
  t.equal(err?.syscall, 'connect')
  t.ok(err!.errno < 0, 'errno negative, as node:net')
  t.match(err?.message, /ECONNREFUSED/)
  t.equal(err?.stack, `Error: ${err?.message}`, 'no stack captured (it would only show the dispatch)')
  t.equal(stream.takeError(), null, 'taking clears it')
})

t.test('IPv6 loopback', async t => {
  const poller = new Poller()
  const [client, server, listener] = connectedPair(poller, '::1')
  t.teardown(() => { client.close(); server.close(); listener.close(); poller.close() })
  t.equal(listener.address().family, 'IPv6')
  t.equal(server.remoteAddress, '::1')
  t.equal(server.remoteFamily, 'IPv6')
  const bracketed = TcpListener.bind({ host: '[::1]' })
  t.equal(bracketed.address().address, '::1', 'bracketed IPv6 is accepted')
  bracketed.close()
})

t.test('closed streams and listeners refuse use; close is idempotent', async t => {
  const poller = new Poller()
  const [client, server, listener] = connectedPair(poller)
  poller.close()
  client.close()
  client.close()
  t.ok(client.closed)
  t.equal(client.fd, -1)
  t.throws(() => client.read(Buffer.alloc(1)), { code: 'ERR_SOCKET_CLOSED' })
  t.throws(() => client.write(Buffer.alloc(1)), { code: 'ERR_SOCKET_CLOSED' })
  server.close()
  listener.close()
  t.throws(() => listener.accept(), { code: 'ERR_SOCKET_CLOSED' })
  t.throws(() => listener.address(), { code: 'ERR_SOCKET_CLOSED' })
})

t.test('fromFd adopts a connected socket handed over from elsewhere', async t => {
  const poller = new Poller()
  const [client, server, listener] = connectedPair(poller)
  // Hand the server side's fd to a new owner (as the server does across threads).
  const adopted = TcpStream.fromFd(server.fd)
  t.teardown(() => { client.close(); adopted.close(); listener.close(); poller.close() })
  const id = poller.registrar.register(adopted, Interest.Read)
  client.write(Buffer.from('adopted'))
  t.equal(readAll(poller, adopted, id, 7).toString(), 'adopted')
})

t.test('acceptRegistered: each connection comes registered under its id (its bytes are announced with it); close() deregisters it', async t => {
  const poller = new Poller()
  const listener = TcpListener.bind({ port: 0 })
  const lid = poller.registrar.register(listener, Interest.Read)
  const client = TcpStream.connect({ port: listener.address().port })
  t.teardown(() => { client.close(); listener.close(); poller.close() })
  const fds = new Int32Array(4)
  const ids = new Float64Array(4)
  let n = 0
  for (let i = 0; i < 10 && n === 0; i++) {
    n = listener.acceptRegistered(poller.registrar, fds, ids, Interest.Read)
    if (n === 0) waitFor(poller, lid, 100, 1)
  }
  t.equal(n, 1)
  const stream = TcpStream.registered(fds[0]!, poller.registrar, ids[0]!)
  t.teardown(() => stream.close())
  t.ok(poller.registrar.has(ids[0]!), 'registered by the accept call')
  client.write(Buffer.from('hi'))
  t.ok(waitFor(poller, ids[0]!)?.readable, 'its bytes are announced under its id')
  stream.close()
  t.notOk(poller.registrar.has(ids[0]!), 'close() deregistered it')
})

t.test('TCP_NODELAY: on for accepted and connected streams, off when the listener says noDelay: false', async t => {
  for (const noDelay of [true, false]) {
    const poller = new Poller()
    const listener = TcpListener.bind({ port: 0, noDelay })
    const lid = poller.registrar.register(listener, Interest.Read)
    const a = TcpStream.connect({ port: listener.address().port })
    const b = TcpStream.connect({ port: listener.address().port })
    t.equal(a.noDelay, true, 'a connected stream has it')
    for (let i = 0; i < 10 && listener.accept() === null; i++) waitFor(poller, lid, 100, 1)
    // (the accepted stream above is dropped; take the second through acceptFds)
    const fds = new Int32Array(4)
    let n = 0
    for (let i = 0; i < 10 && n === 0; i++) {
      n = listener.acceptFds(fds)
      if (n === 0) waitFor(poller, lid, 100, 1)
    }
    t.equal(n, 1)
    const viaFds = TcpStream.fromFd(fds[0]!, { adopt: false })
    t.equal(viaFds.noDelay, noDelay, `acceptFds stream noDelay=${noDelay}`)
    viaFds.close()
    a.close()
    b.close()
    listener.close()
    poller.close()
  }
})

t.test('acceptFds with hosts: each fd comes with its peer host key, IPv4 as a number, IPv4-mapped the same, IPv6 hashed', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  // host to listen on, host to connect from/to, expected key (undefined: any non-IPv4 hash, same for the same host)
  const cases: Array<[string, string, number | undefined]> = [
    ['127.0.0.1', '127.0.0.1', 0x7f000001],
    ['::', '127.0.0.1', 0x7f000001], // dual-stack listener: the peer is ::ffff:127.0.0.1
    ['::1', '::1', undefined],
  ]
  const v6keys: number[] = []
  for (const [listenHost, connectHost, want] of cases) {
    const listener = TcpListener.bind({ host: listenHost, port: 0 })
    t.teardown(() => listener.close())
    const lid = poller.registrar.register(listener, Interest.Read)
    const clients = [TcpStream.connect({ host: connectHost, port: listener.address().port }), TcpStream.connect({ host: connectHost, port: listener.address().port })]
    t.teardown(() => clients.forEach(c => c.close()))
    const fds = new Int32Array(4)
    const hosts = new Uint32Array(4).fill(0xdeadbeef)
    let n = 0
    for (let i = 0; i < 20 && n < 2; i++) {
      n += listener.acceptFds(fds.subarray(n), hosts.subarray(n))
      if (n < 2) waitFor(poller, lid, 100, 1)
    }
    t.equal(n, 2, `${connectHost} → ${listenHost}: both accepted`)
    for (let i = 0; i < n; i++) TcpStream.fromFd(fds[i]!, { adopt: false }).close()
    if (want !== undefined) t.same([hosts[0], hosts[1]], [want, want], `${connectHost} → ${listenHost}: key ${want.toString(16)}`)
    else {
      t.equal(hosts[0], hosts[1], `${connectHost}: the same host, the same key`)
      t.not(hosts[0], 0xdeadbeef, `${connectHost}: a key was written`)
      v6keys.push(hosts[0]!)
    }
    t.equal(hosts[2], 0xdeadbeef, 'nothing written past the accepted count')
  }
  t.equal(v6keys.length, 1)
})

t.test('acceptFds: hosts that is not a Uint32Array is ERR_INVALID_ARG_TYPE', async t => {
  const listener = TcpListener.bind({ host: '127.0.0.1', port: 0 })
  t.teardown(() => listener.close())
  t.throws(() => listener.acceptFds(new Int32Array(1), new Int32Array(1) as unknown as Uint32Array), { code: 'ERR_INVALID_ARG_TYPE' })
})
