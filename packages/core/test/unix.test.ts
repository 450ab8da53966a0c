// UnixListener: Unix domain stream sockets on a path and (Linux) abstract names.
import t, { type Test } from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Interest, Poller, TcpStream, UnixListener } from '@amy/core'
import { waitFor } from './helpers'

function tempPath(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'amy-unix-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 's.sock')
}

/** Connects with node:net, accepts with amy, and checks bytes go both ways. */
async function roundTrip(t: Test, listener: UnixListener, connectTo: string): Promise<TcpStream> {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const lid = poller.registrar.register(listener, Interest.Read)
  const client = net.connect({ path: connectTo })
  t.teardown(() => client.destroy())
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject))
  t.ok(waitFor(poller, lid), 'the listener becomes readable')
  const stream = listener.accept()
  if (!stream) throw new Error('nothing accepted')
  t.teardown(() => stream.close())
  const got = new Promise<Buffer>(resolve => client.once('data', resolve))
  t.equal(stream.write(Buffer.from('hello')), 5)
  t.equal((await got).toString(), 'hello', 'the client receives what amy wrote')
  return stream
}

t.test('a path: bind, address(), accept, round trip; close() removes the socket file', async t => {
  const path = tempPath(t)
  const listener = UnixListener.bind({ path })
  t.same(listener.address(), { path, family: 'Unix' })
  t.ok(existsSync(path), 'the socket file exists while listening')
  const stream = await roundTrip(t, listener, path)
  t.equal(stream.remoteAddress, undefined, 'a Unix peer has no IP address')
  t.equal(stream.remotePort, undefined)
  listener.close()
  t.notOk(existsSync(path), 'close() removed the socket file')
})

t.test('a path that exists already fails with EADDRINUSE naming it', async t => {
  const path = tempPath(t)
  const first = UnixListener.bind({ path })
  t.teardown(() => first.close())
  const err = t.throws(() => UnixListener.bind({ path })) as NodeJS.ErrnoException
  t.equal(err.code, 'EADDRINUSE')
  t.equal(err.syscall, 'bind')
  t.match(err.message, path, 'the message names the path')
})

const linuxOnly = { skip: process.platform !== 'linux' && 'abstract names are Linux only' }

t.test('an abstract name (Linux): exactly its bytes, nothing on disk; TcpStream.connectUnix reaches it', linuxOnly, async t => {
  const name = `\0amy-core-test-${process.pid}`
  const listener = UnixListener.bind({ path: name })
  t.teardown(() => listener.close())
  t.same(listener.address(), { path: name, family: 'Unix' })
  const poller = new Poller()
  t.teardown(() => poller.close())
  const lid = poller.registrar.register(listener, Interest.Read)
  const client = TcpStream.connectUnix(name)
  t.teardown(() => client.close())
  t.equal(client.takeError(), null, 'connected (no pending error)')
  t.ok(waitFor(poller, lid), 'the listener becomes readable')
  const server = listener.accept()
  if (!server) throw new Error('nothing accepted')
  t.teardown(() => server.close())
  t.equal(client.write(Buffer.from('abstract')), 8)
  const buf = Buffer.alloc(16)
  t.equal(server.read(buf), 8)
  t.equal(buf.toString('utf8', 0, 8), 'abstract')
  t.throws(() => TcpStream.connectUnix(''), { code: 'ERR_INVALID_ARG_VALUE' })
})

// libuv before 1.48 (Node 20's node:net) binds and connects abstract names
// padded with NULs to the whole sun_path (108 bytes); amy uses exactly the
// bytes given, as the kernel, libuv >= 1.48 (Node 22) and other tools do.
// Padding the name reaches a Node 20 peer.
t.test('an abstract name padded to 108 bytes reaches node:net of libuv < 1.48', linuxOnly, async t => {
  const [major, minor] = process.versions.uv.split('.').map(Number) as [number, number]
  const padded = `\0amy-core-pad-${process.pid}`.padEnd(108, '\0')
  const name = major > 1 || minor >= 48 ? padded.replace(/\0+$/, '') : padded
  const listener = UnixListener.bind({ path: name })
  t.teardown(() => listener.close())
  await roundTrip(t, listener, name)
})

t.test('bad paths are coded errors', async t => {
  t.throws(() => UnixListener.bind({ path: '' }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => UnixListener.bind({ path: 42 as unknown as string }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => UnixListener.bind(undefined as unknown as { path: string }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => UnixListener.bind({ path: '/tmp/' + 'x'.repeat(200) }), { code: 'ERR_INVALID_ADDRESS' })
  t.throws(() => UnixListener.bind({ path: '/tmp/a\0b' }), { code: 'ERR_INVALID_ADDRESS' })
  t.throws(() => UnixListener.bind({ path: '/nonexistent-dir/s.sock' }), { code: 'ENOENT' })
  t.throws(() => UnixListener.bind({ path: tempPath(t), backlog: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
})

t.test('acceptFds hands out raw fds that TcpStream.fromFd adopts', async t => {
  const path = tempPath(t)
  const listener = UnixListener.bind({ path })
  t.teardown(() => listener.close())
  const poller = new Poller()
  t.teardown(() => poller.close())
  const lid = poller.registrar.register(listener, Interest.Read)
  const clients = [net.connect({ path }), net.connect({ path })]
  t.teardown(() => clients.forEach(c => c.destroy()))
  await Promise.all(clients.map(c => new Promise(resolve => c.once('connect', resolve))))
  waitFor(poller, lid)
  const fds = new Int32Array(8)
  let n = 0
  for (let round = 0; n < 2 && round < 50; round++) {
    n += listener.acceptFds(fds.subarray(n))
    if (n < 2) waitFor(poller, lid, 100, 1)
  }
  t.equal(n, 2, 'both connections accepted in batches')
  for (let i = 0; i < n; i++) TcpStream.fromFd(fds[i]!, { adopt: false }).close()
  listener.close()
  t.throws(() => listener.acceptFds(fds), { code: 'ERR_SOCKET_CLOSED' })
})
