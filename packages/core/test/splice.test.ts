// SplicePipe on real loopback TCP connections, driven by a Poller the way a
// proxy drives it: transfer on the source's readable notification, flush on
// the destination's writable one.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Interest, Poller, SplicePipe, TcpListener, TcpStream, spliceSupported, type TransferResult } from '@amy/core'
import { openFds, waitFor } from './helpers'

/** A connected pair: [client, accepted server side]; the listener is closed. */
function connectedPair(poller: Poller): [TcpStream, TcpStream] {
  const listener = TcpListener.bind({ port: 0 })
  const lid = poller.registrar.register(listener, Interest.Read)
  const client = TcpStream.connect({ port: listener.address().port })
  waitFor(poller, lid)
  const server = listener.accept()
  listener.close()
  if (!server) throw new Error('no connection accepted')
  return [client, server]
}

/**
 * Two connections: the test writes into aClient, the pipe moves bytes from
 * aServer (source) to bClient (destination), the test reads from bServer.
 */
function proxySetup(poller: Poller) {
  const [aClient, aServer] = connectedPair(poller)
  const [bClient, bServer] = connectedPair(poller)
  const close = () => { for (const s of [aClient, aServer, bClient, bServer]) s.close() }
  return { aClient, aServer, bClient, bServer, close }
}

t.test('spliceSupported is true on Linux', async t => {
  t.equal(spliceSupported, process.platform === 'linux')
})

t.test('8 MiB of random bytes move A → B byte for byte, driven by notifications; end of stream follows', async t => {
  const poller = new Poller()
  const { aClient, aServer, bClient, bServer, close } = proxySetup(poller)
  const pipe = new SplicePipe()
  t.teardown(() => { pipe.close(); close(); poller.close() })
  t.ok(pipe.capacity >= 4096, `capacity ${pipe.capacity}`)

  const data = randomBytes(8 << 20)
  const r = poller.registrar
  const writerId = r.register(aClient, Interest.Write)
  const sourceId = r.register(aServer, Interest.Read)
  const destId = r.register(bClient, Interest.Write)
  const readerId = r.register(bServer, Interest.Read)

  let written = 0
  let writerDone = false
  const chunks: Buffer[] = []
  let received = 0
  let readerEof = false
  let forwardedEof = false
  let movedIn = 0
  let movedOut = 0
  let again = false // maxBytes reached: call transfer again, no notification will come
  let maxBuffered = 0
  const buf = Buffer.alloc(1 << 16)

  const write = () => {
    while (written < data.length) {
      const n = aClient.write(data.subarray(written, written + (1 << 18)))
      if (n === null) return
      written += n
    }
    if (!writerDone) {
      aClient.shutdown('write')
      writerDone = true
    }
  }
  const account = (res: TransferResult) => {
    movedIn += res.movedIn
    movedOut += res.movedOut
    maxBuffered = Math.max(maxBuffered, res.buffered)
    again = !res.sourceDrained && !res.sourceEof && !res.destBlocked
    if (res.sourceEof && res.buffered === 0 && !forwardedEof) {
      bClient.shutdown('write')
      forwardedEof = true
    }
  }
  const transfer = () => account(pipe.transfer(aServer, bClient))
  const read = () => {
    for (;;) {
      const n = bServer.read(buf)
      if (n === null) return
      if (n === 0) {
        readerEof = true
        return
      }
      chunks.push(Buffer.from(buf.subarray(0, n)))
      received += n
    }
  }

  write()
  const deadline = Date.now() + 30000
  while (!readerEof) {
    if (Date.now() > deadline) throw new Error(`stuck: written ${written}, in ${movedIn}, out ${movedOut}, received ${received}`)
    if (again) transfer()
    for (const n of poller.wait(again ? 0 : 200)) {
      if (n.id === writerId && n.writable) write()
      if (n.id === sourceId && (n.readable || n.hangup)) transfer()
      if (n.id === destId && n.writable && !forwardedEof) {
        const res = pipe.flush(bClient)
        account(res)
        if (res.buffered === 0) transfer()
      }
      if (n.id === readerId && (n.readable || n.hangup)) read()
    }
  }
  t.equal(written, data.length, 'the writer wrote everything')
  t.equal(movedIn, data.length, 'every byte went into the pipe')
  t.equal(movedOut, data.length, 'and out of it')
  t.equal(received, data.length, 'the reader got every byte')
  t.ok(Buffer.concat(chunks).equals(data), 'byte for byte')
  t.ok(readerEof, 'the reader of B sees end of stream after A shut down')
  t.ok(maxBuffered <= pipe.capacity, `the pipe never held more than its capacity (max ${maxBuffered})`)
  t.equal(pipe.buffered, 0)
})

t.test('backpressure: a destination that does not read gives destBlocked, and the pipe stays within capacity', async t => {
  const poller = new Poller()
  const { aClient, aServer, bClient, bServer, close } = proxySetup(poller)
  const pipe = new SplicePipe({ capacity: 65536 })
  t.teardown(() => { pipe.close(); close(); poller.close() })
  const capacity = pipe.capacity
  t.ok(capacity >= 65536, `capacity ${capacity}`)
  const chunk = Buffer.alloc(1 << 18, 0x5a)
  const destId = poller.registrar.register(bClient, Interest.Write)
  waitFor(poller, destId) // the first writable edge

  let written = 0
  let res: TransferResult | undefined
  let blocked = 0
  let maxBuffered = 0
  let mismatches = 0
  const writeSome = () => {
    for (let n = aClient.write(chunk); n !== null; n = aClient.write(chunk)) written += n
  }
  // bServer never reads: B's socket buffers fill, then the pipe.
  for (let round = 0; round < 2000 && blocked < 10; round++) {
    writeSome()
    res = pipe.transfer(aServer, bClient)
    maxBuffered = Math.max(maxBuffered, res.buffered)
    if (res.buffered !== pipe.buffered) mismatches++
    if (res.destBlocked) blocked++
    else await new Promise(resolve => setImmediate(resolve))
  }
  t.equal(blocked, 10, 'transfer reports destBlocked while the peer does not read')
  t.equal(mismatches, 0, 'the result\'s buffered matches the getter')
  t.ok(res !== undefined && res.buffered > 0, 'bytes wait in the pipe')
  t.ok(maxBuffered <= capacity, `buffered stays <= capacity (max ${maxBuffered} of ${capacity})`)
  const held = pipe.buffered
  const flushed = pipe.flush(bClient)
  t.ok(flushed.destBlocked, 'flush while blocked: still blocked')
  t.equal(flushed.movedOut, 0)
  t.equal(flushed.buffered, held, 'nothing moved, nothing lost')

  // The peer reads: the destination's writable notification lets flush empty the pipe.
  const buf = Buffer.alloc(1 << 16)
  let read = 0
  let writable = false
  for (let round = 0; round < 200 && !writable; round++) {
    for (let n = bServer.read(buf); n !== null && n > 0; n = bServer.read(buf)) read += n
    writable = poller.wait(20).some(n => n.id === destId && n.writable)
  }
  t.ok(writable, 'the destination became writable once the peer read')
  t.ok(read > 0, 'the peer read')
  let out = 0
  for (let round = 0; round < 200 && pipe.buffered > 0; round++) {
    out += pipe.flush(bClient).movedOut
    for (let n = bServer.read(buf); n !== null && n > 0; n = bServer.read(buf)) read += n
  }
  t.equal(out, held, 'flush moved what the pipe held')
  t.equal(pipe.buffered, 0)
})

t.test('errors: EPIPE from splice without SIGPIPE, closed pipe, bad arguments', async t => {
  const poller = new Poller()
  const { aClient, aServer, bClient, close } = proxySetup(poller)
  t.teardown(() => { close(); poller.close() })
  // A SIGPIPE listener replaces Node's SIG_IGN with a handler: had splice
  // raised SIGPIPE, it would be counted here. (Left installed: removing it
  // would leave SIG_DFL behind.)
  let sigpipes = 0
  process.on('SIGPIPE', () => { sigpipes++ })

  const pipe = new SplicePipe()
  bClient.shutdown('write')
  aClient.write(Buffer.from('going nowhere'))
  const sid = poller.registrar.register(aServer, Interest.Read)
  waitFor(poller, sid)
  const err = t.throws(() => pipe.transfer(aServer, bClient)) as NodeJS.ErrnoException
  t.equal(err.code, 'EPIPE')
  t.equal(err.syscall, 'splice')
  t.equal(err.errno, -32)
  t.equal(pipe.buffered, 13, 'the bytes stay counted in the pipe')
  t.throws(() => pipe.flush(bClient), { code: 'EPIPE', syscall: 'splice' })
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(sigpipes, 0, 'no SIGPIPE was delivered')

  pipe.close()
  t.ok(pipe.closed)
  pipe.close() // idempotent
  t.throws(() => pipe.transfer(aServer, bClient), { code: 'ERR_PIPE_CLOSED' })
  t.throws(() => pipe.flush(bClient), { code: 'ERR_PIPE_CLOSED' })
  t.equal(pipe.buffered, 0, 'closing drops what was buffered')

  t.throws(() => new SplicePipe({ capacity: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => new SplicePipe({ capacity: 1.5 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => new SplicePipe({ capacity: '4096' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' })
  const open = new SplicePipe()
  t.teardown(() => open.close())
  t.throws(() => open.transfer(-1, bClient), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => open.transfer(aServer, bClient, -5), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => open.transfer(aServer, bClient, NaN), { code: 'ERR_INVALID_ARG_VALUE' })
  const gone = TcpStream.connect({ port: 1 })
  gone.close()
  t.throws(() => open.transfer(gone, bClient), { code: 'ERR_INVALID_ARG_TYPE' }, 'a closed stream is not a source')
})

t.test('no fd leaks: two fds per pipe, released by close()', async t => {
  const poller = new Poller()
  const { aClient, aServer, bClient, close } = proxySetup(poller)
  t.teardown(() => { close(); poller.close() })
  new SplicePipe().close() // warm up
  const before = openFds()
  for (let i = 0; i < 5; i++) {
    const pipe = new SplicePipe({ capacity: 1 << 16 })
    if (spliceSupported) t.equal(openFds(), before + 2, 'a pipe holds two fds')
    aClient.write(Buffer.from('abc'))
    const sid = poller.registrar.register(aServer, Interest.Read)
    waitFor(poller, sid)
    poller.registrar.deregister(sid)
    pipe.transfer(aServer, bClient)
    pipe.close()
  }
  // Error paths: a failed constructor and a failed transfer.
  t.throws(() => new SplicePipe({ capacity: -1 }))
  const failing = new SplicePipe()
  bClient.shutdown('write')
  aClient.write(Buffer.from('x'))
  await new Promise(resolve => setTimeout(resolve, 20))
  t.throws(() => failing.transfer(aServer, bClient), { code: 'EPIPE' })
  failing.close()
  t.equal(openFds(), before, 'as many open fds as before')
})
