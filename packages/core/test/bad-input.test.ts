// Bad input to every public function of @amy/core, table-driven: wrong
// types, out-of-range numbers, closed objects, a handle used after its
// poller closed (as another thread would). Each must be an Error with a
// documented code (AMY_ERROR_CODES), never a crash, a hang or a silent default.
import t, { type Test } from 'tap'
import {
  AMY_ERROR_CODES, FrameReader, FrameWriter, Interest, LineReader, Poller, Receiver, Registrar, Sender, SplicePipe, TcpListener, TcpStream, TlsContext, UnixListener,
} from '@amy/core'
import { serverIdentity } from './tls-helpers'

type Case = [what: string, call: () => unknown, code: string]

function check(t: Test, cases: Case[]): void {
  for (const [what, call, code] of cases) {
    let thrown: unknown
    try {
      call()
    } catch (err) {
      thrown = err
    }
    t.ok(thrown instanceof Error, `${what}: throws an Error`)
    t.equal((thrown as { code?: unknown })?.code, code, `${what}: code ${code}`)
    t.ok((AMY_ERROR_CODES as readonly string[]).includes(code), `${code} is a documented code`)
  }
}

const bad = <T>(value: unknown): T => value as T

t.test('Poller', async t => {
  const closed = new Poller()
  closed.close()
  const started = new Poller()
  t.teardown(() => started.close())
  started.start(() => {})
  check(t, [
    ['options not an object', () => new Poller(bad(42)), 'ERR_INVALID_ARG_TYPE'],
    ['capacity 0', () => new Poller({ capacity: 0 }), 'ERR_INVALID_ARG_VALUE'],
    ['capacity a string', () => new Poller({ capacity: bad('8') }), 'ERR_INVALID_ARG_TYPE'],
    ['wait with a string timeout', () => new Poller().wait(bad('1')), 'ERR_INVALID_ARG_TYPE'],
    ['wait with NaN', () => new Poller().wait(NaN), 'ERR_INVALID_ARG_VALUE'],
    ['wait on a closed poller', () => closed.wait(0), 'ERR_POLLER_CLOSED'],
    ['start on a closed poller', () => closed.start(() => {}), 'ERR_POLLER_CLOSED'],
    ['start without a function', () => new Poller().start(bad(1)), 'ERR_INVALID_ARG_TYPE'],
    ['start twice', () => started.start(() => {}), 'ERR_POLLER_STARTED'],
    ['wait while started', () => started.wait(0), 'ERR_POLLER_STARTED'],
    ['takeFds without an Int32Array', () => new Poller().takeFds(bad([])), 'ERR_INVALID_ARG_TYPE'],
    ['takeFds with tags not a Float64Array', () => new Poller().takeFds(new Int32Array(1), bad(new Int32Array(1))), 'ERR_INVALID_ARG_TYPE'],
    ['takeFds with tags shorter than out', () => new Poller().takeFds(new Int32Array(4), new Float64Array(2)), 'ERR_INVALID_ARG_VALUE'],
  ])
})

t.test('Registrar', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const gone = new Poller()
  const handle = gone.registrar.handle
  gone.close()
  const listener = TcpListener.bind({ port: 0 })
  t.teardown(() => listener.close())
  const r = poller.registrar
  check(t, [
    ['register null', () => r.register(bad(null), Interest.Read), 'ERR_INVALID_ARG_TYPE'],
    ['register a negative fd', () => r.register(-1, Interest.Read), 'ERR_INVALID_ARG_TYPE'],
    ['register with interest 7', () => r.register(listener, bad(7)), 'ERR_INVALID_ARG_VALUE'],
    ['register with interest "read"', () => r.register(listener, bad('read')), 'ERR_INVALID_ARG_VALUE'],
    ['reregister an unknown id', () => r.reregister(987654321, listener, Interest.Read), 'ERR_UNKNOWN_ID'],
    ['deregister a string id', () => r.deregister(bad('1')), 'ERR_INVALID_ARG_TYPE'],
    ['setTimeout -1', () => r.setTimeout(-1), 'ERR_INVALID_ARG_VALUE'],
    ['setTimeout a string', () => r.setTimeout(bad('10')), 'ERR_INVALID_ARG_TYPE'],
    ['setInterval 0', () => r.setInterval(0), 'ERR_INVALID_ARG_VALUE'],
    ['setTimeout Infinity', () => r.setTimeout(Infinity), 'ERR_INVALID_ARG_VALUE'],
    ['channel bound -1', () => r.channel({ bound: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['channel bound 1.5', () => r.channel({ bound: 1.5 }), 'ERR_INVALID_ARG_VALUE'],
    ['Registrar.from(null)', () => Registrar.from(bad(null)), 'ERR_INVALID_ARG_TYPE'],
    ['Registrar.from({})', () => Registrar.from(bad({})), 'ERR_INVALID_ARG_TYPE'],
    ['Registrar.from a closed poller\'s handle (as another thread would)', () => Registrar.from(handle).register(listener, Interest.Read), 'ERR_POLLER_CLOSED'],
    ['handOver without an Int32Array', () => r.handOver(bad([1]), 1), 'ERR_INVALID_ARG_TYPE'],
    ['handOver count past the array', () => r.handOver(new Int32Array(1), 5), 'ERR_INVALID_ARG_VALUE'],
    ['handOver with a negative tag', () => r.handOver(new Int32Array(0), 0, -1), 'ERR_INVALID_ARG_VALUE'],
    ['handOver with a fractional tag', () => r.handOver(new Int32Array(0), 0, 1.5), 'ERR_INVALID_ARG_VALUE'],
    ['handOver with a string tag', () => r.handOver(new Int32Array(0), 0, bad('1')), 'ERR_INVALID_ARG_TYPE'],
  ])
})

t.test('channels', async t => {
  const poller = new Poller()
  t.teardown(() => poller.close())
  const [sender, receiver] = poller.registrar.channel<unknown>({ bound: 1 })
  sender.send(1)
  const [deadSender, deadReceiver] = poller.registrar.channel<unknown>()
  deadReceiver.close()
  check(t, [
    ['send past the bound', () => sender.send(2), 'ERR_CHANNEL_FULL'],
    ['send to a closed receiver', () => deadSender.send(1), 'ERR_CHANNEL_CLOSED'],
    ['send a function (not cloneable)', () => deadSender.send(() => 1), 'ERR_INVALID_ARG_VALUE'],
    ['sendBytes a string', () => sender.sendBytes(bad('x')), 'ERR_INVALID_ARG_TYPE'],
    ['Sender.from(null)', () => Sender.from(bad(null)), 'ERR_INVALID_ARG_TYPE'],
    ['Sender.from an unknown channel', () => Sender.from({ kind: 'amy.Sender', channelId: 987654321 }), 'ERR_CHANNEL_CLOSED'],
    ['tryRecv on a closed receiver', () => deadReceiver.tryRecv(), 'ERR_CHANNEL_CLOSED'],
  ])
  t.equal(receiver.tryRecv(), 1, 'the channel still works')
  void Receiver
})

t.test('TcpListener, TcpStream, UnixListener', async t => {
  const closedListener = TcpListener.bind({ port: 0 })
  closedListener.close()
  const listener = TcpListener.bind({ port: 0 })
  t.teardown(() => listener.close())
  const stream = TcpStream.connect({ port: listener.address().port })
  t.teardown(() => stream.close())
  const closedStream = TcpStream.connect({ port: listener.address().port })
  closedStream.close()
  check(t, [
    ['bind options not an object', () => TcpListener.bind(bad('x')), 'ERR_INVALID_ARG_TYPE'],
    ['bind a host name', () => TcpListener.bind({ host: 'example.invalid' }), 'ERR_INVALID_ADDRESS'],
    ['bind a host that is not a string', () => TcpListener.bind({ host: bad(1) }), 'ERR_INVALID_ARG_TYPE'],
    ['bind port 70000', () => TcpListener.bind({ port: 70000 }), 'ERR_INVALID_ARG_VALUE'],
    ['bind backlog -1', () => TcpListener.bind({ backlog: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['accept on a closed listener', () => closedListener.accept(), 'ERR_SOCKET_CLOSED'],
    ['address of a closed listener', () => closedListener.address(), 'ERR_SOCKET_CLOSED'],
    ['acceptFds into an array', () => listener.acceptFds(bad([])), 'ERR_INVALID_ARG_TYPE'],
    ['TcpListener.fromFd(-1)', () => TcpListener.fromFd(-1), 'ERR_INVALID_ARG_VALUE'],
    ['connect without options', () => TcpStream.connect(bad(undefined)), 'ERR_INVALID_ARG_TYPE'],
    ['connect port 0', () => TcpStream.connect({ port: 0 }), 'ERR_INVALID_ARG_VALUE'],
    ['connect port 1.5', () => TcpStream.connect({ port: 1.5 }), 'ERR_INVALID_ARG_VALUE'],
    ['TcpStream.fromFd("3")', () => TcpStream.fromFd(bad('3')), 'ERR_INVALID_ARG_VALUE'],
    ['read into a string', () => stream.read(bad('buf')), 'ERR_INVALID_ARG_TYPE'],
    ['read into an ArrayBuffer', () => stream.read(bad(new ArrayBuffer(8))), 'ERR_INVALID_ARG_TYPE'],
    ['write a number', () => stream.write(bad(42)), 'ERR_INVALID_ARG_TYPE'],
    ['writev not an array', () => stream.writev(bad(Buffer.from('x'))), 'ERR_INVALID_ARG_TYPE'],
    ['writev with a string inside', () => stream.writev(bad(['x'])), 'ERR_INVALID_ARG_TYPE'],
    ['shutdown "sideways"', () => stream.shutdown(bad('sideways')), 'ERR_INVALID_ARG_VALUE'],
    ['read on a closed stream', () => closedStream.read(Buffer.alloc(4)), 'ERR_SOCKET_CLOSED'],
    ['write on a closed stream', () => closedStream.write(Buffer.alloc(4)), 'ERR_SOCKET_CLOSED'],
    ['setNoDelay on a closed stream', () => closedStream.setNoDelay(true), 'ERR_SOCKET_CLOSED'],
    ['UnixListener.bind without a path', () => UnixListener.bind(bad({})), 'ERR_INVALID_ARG_TYPE'],
    ['TcpStream.connectUnix(1)', () => TcpStream.connectUnix(bad(1)), 'ERR_INVALID_ARG_TYPE'],
  ])
})

t.test('SplicePipe', async t => {
  const pipe = new SplicePipe()
  pipe.close()
  check(t, [
    ['capacity -1', () => new SplicePipe({ capacity: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['capacity a string', () => new SplicePipe({ capacity: bad('1') }), 'ERR_INVALID_ARG_TYPE'],
    ['flush on a closed pipe', () => pipe.flush(1), 'ERR_PIPE_CLOSED'],
  ])
})

t.test('framing', async t => {
  const reader = new FrameReader({ maxFrameSize: 4 })
  const lines = new LineReader({ maxLineLength: 4 })
  check(t, [
    ['FrameReader without options', () => new FrameReader(bad(undefined)), 'ERR_INVALID_ARG_TYPE'],
    ['FrameReader maxFrameSize -1', () => new FrameReader({ maxFrameSize: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['FrameReader maxFrameSize a string', () => new FrameReader({ maxFrameSize: bad('4') }), 'ERR_INVALID_ARG_TYPE'],
    ['FrameReader.push a string', () => reader.push(bad('abc')), 'ERR_INVALID_ARG_TYPE'],
    ['a frame over maxFrameSize', () => reader.push(Buffer.from([0, 0, 0, 9])), 'ERR_FRAME_TOO_LARGE'],
    ['FrameReader.readFrom a non-source', () => new FrameReader({ maxFrameSize: 4 }).readFrom(bad({})), 'ERR_INVALID_ARG_TYPE'],
    ['FrameWriter maxQueuedBytes -1', () => new FrameWriter({ maxQueuedBytes: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['FrameWriter.write a number', () => new FrameWriter().write(bad(1)), 'ERR_INVALID_ARG_TYPE'],
    ['LineReader maxLineLength -1', () => new LineReader({ maxLineLength: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['LineReader.readFrom a non-source', () => lines.readFrom(bad(null)), 'ERR_INVALID_ARG_TYPE'],
    ['FrameWriter.flush into a non-sink', () => new FrameWriter().flush(bad({})), 'ERR_INVALID_ARG_TYPE'],
    ['LineReader.push an object', () => lines.push(bad({})), 'ERR_INVALID_ARG_TYPE'],
    ['a line over maxLineLength', () => lines.push(Buffer.from('toolong')), 'ERR_LINE_TOO_LONG'],
  ])
})

t.test('TlsContext handshakeTimeout: an integer of ms, kept with the context for every thread', async t => {
  const identity = serverIdentity()
  check(t, [
    ['handshakeTimeout -1', () => TlsContext.createServer({ ...identity, handshakeTimeout: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['handshakeTimeout 1.5', () => TlsContext.createServer({ ...identity, handshakeTimeout: 1.5 }), 'ERR_INVALID_ARG_VALUE'],
    ['handshakeTimeout 2^31', () => TlsContext.createServer({ ...identity, handshakeTimeout: 2 ** 31 }), 'ERR_INVALID_ARG_VALUE'],
    ['handshakeTimeout a string', () => TlsContext.createServer({ ...identity, handshakeTimeout: bad('10') }), 'ERR_INVALID_ARG_TYPE'],
  ])
  const context = TlsContext.createServer({ ...identity, handshakeTimeout: 2500 })
  t.equal(TlsContext.from(context.handle).handshakeTimeout, 2500, 'a context taken by handle has it')
  t.equal(TlsContext.createServer(identity).handshakeTimeout, 0, 'default 0: no limit')
})
