// The pipe's copy/splice state machine and the batch loop's pump scheduling,
// on real loopback sockets, with the connections reduced to what a Pipe uses.
import { readdirSync } from 'node:fs'
import t, { type Test } from 'tap'
import { Interest, Poller, TcpListener, TcpStream, spliceSupported } from '@amy/core'
import { BatchLoop } from '../dist/batch-loop.js'
import { Connection } from '../dist/connection.js'
import { MAX_GROWN_PIPES, Pipe, type PipeHost } from '../dist/pipe.js'
import { until } from './helpers'

/** A connected pair: [client, accepted server side]. */
function connectedPair(poller: Poller): [TcpStream, TcpStream] {
  const listener = TcpListener.bind({ host: '127.0.0.1', port: 0 })
  const id = poller.registrar.register(listener, Interest.Read)
  const client = TcpStream.connect({ host: '127.0.0.1', port: listener.address().port })
  for (let i = 0; i < 100 && !poller.wait(10).some(n => n.id === id); i++);
  const server = listener.accept()
  listener.close()
  if (!server) throw new Error('no connection accepted')
  return [client, server]
}

/** Reads what has arrived so far (non-blocking), polling until `want` bytes came. */
async function readBytes(stream: TcpStream, want: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let got = 0
  const buf = Buffer.alloc(64 * 1024)
  await until(() => {
    for (let n = stream.read(buf); n !== null && n > 0; n = stream.read(buf)) {
      chunks.push(Buffer.from(buf.subarray(0, n)))
      got += n
    }
    return got >= want
  }, 5000, `${want} bytes`)
  return Buffer.concat(chunks)
}

/**
 * A Pipe from one loopback pair to another, with the source's and the
 * target's sides reduced to what a Pipe touches. `sourcePeer` writes into
 * the source, `targetPeer` reads what the target got; `arrive` writes and
 * waits for the source's readable edge.
 */
function pipeOverSockets(t: Test) {
  const poller = new Poller()
  const [sourcePeer, sourceSocket] = connectedPair(poller)
  const [targetSocket, targetPeer] = connectedPair(poller)
  t.teardown(() => {
    for (const s of [sourcePeer, sourceSocket, targetSocket, targetPeer]) s.close()
    poller.close()
  })
  const counts = { resumed: 0, paused: 0 }
  const source = { stream: sourceSocket, closed: false, connecting: false, bufferedBytes: 0, lastActive: 0, pause() { counts.paused++ }, resume() { counts.resumed++ }, destroy(err: Error) { throw err }, endOfStream() {} }
  const target = {
    stream: targetSocket, closed: false, ending: false, connecting: false, bufferedBytes: 0, lastActive: 0, feed: undefined as unknown,
    write(bytes: Uint8Array) { return targetSocket.write(bytes) === bytes.length },
    end() {},
  }
  const host: PipeHost = { stats: new Float64Array(16), now: 0, schedulePump() {}, grownPipes: 0 }
  const fdsBeforePipe = openFds()
  const pipe = new Pipe(source as never, target as never, host, true)
  t.teardown(() => pipe.close())
  const readableId = poller.registrar.register(sourceSocket, Interest.Read)
  const arrive = async (bytes: string): Promise<void> => {
    sourcePeer.write(Buffer.from(bytes))
    await until(() => poller.wait(0).some(n => n.id === readableId), 5000, 'the source to be readable')
  }
  return { pipe, target, sourcePeer, targetPeer, counts, arrive, fdsBeforePipe, host }
}

const openFds = (): number => readdirSync('/proc/self/fd').length

t.test('a pump that runs after the pipe went back to copying (one scheduled while it spliced) moves nothing: copied bytes keep their order', { skip: !spliceSupported && 'splice is Linux-only' }, async t => {
  const { pipe, targetPeer, arrive } = pipeOverSockets(t)
  // Copy mode (short reads): the source's next bytes wait in its socket
  // until its read; a late pump must not move them ahead of what the copy
  // path writes first.
  await arrive('later')
  pipe.pump()
  pipe.forward(Buffer.from('first'), false)
  t.equal((await readBytes(targetPeer, 5)).toString().slice(0, 5), 'first', 'the copied bytes arrive first')
  t.notOk(pipe.splicing)
})

t.test('relayTarget: the target\'s stream only while it can take bytes at once; relayed() queues what the target did not take and pauses the source when it is full', async t => {
  const { pipe, target, counts } = pipeOverSockets(t)
  t.equal(pipe.relayTarget(), target.stream, 'open, nothing queued: the source\'s read may go straight to it')
  const blockers: [string, unknown][] = [['bufferedBytes', 1], ['connecting', true], ['closed', true], ['ending', true], ['feed', {}]]
  for (const [field, value] of blockers) {
    const record = target as Record<string, unknown>
    const before = record[field]
    record[field] = value
    t.equal(pipe.relayTarget(), undefined, `${field} ${JSON.stringify(value)}: read, then forward() (order, end, published bytes owed)`)
    record[field] = before
  }
  t.equal(new Pipe(target as never, target as never, { stats: new Float64Array(16), now: 0, schedulePump() {}, grownPipes: 0 }, false).relayTarget(), undefined, 'not both plain TCP (TLS): never')
  const queued: string[] = []
  target.write = (bytes: Uint8Array) => { queued.push(Buffer.from(bytes).toString()); return false }
  const buf = Buffer.alloc(64 * 1024)
  buf.write('abcdef')
  pipe.relayed(buf, 3, 0)
  t.same(queued, [], 'all sent: nothing queued')
  pipe.relayed(buf, 6, 2)
  t.same(queued, ['ef'], 'the 2 bytes the target did not take are queued, in order')
  t.equal(counts.paused, 1, 'the target is full: the source pauses until it drains')
  t.notOk(pipe.splicing, 'short reads keep copying')
})

t.test('a pump scheduled on a later turn (not in a batch) runs without another notification', async t => {
  class Loop extends BatchLoop {
    protected signalled(): void {}
    protected flushOutbox(): void {}
  }
  const loop = new Loop()
  t.teardown(() => loop.close())
  let pumped = 0
  const pipe = { pump: () => { pumped++ } }
  // A read continued on a later turn (budget used) switches its pipe to
  // splicing and uses up the pump's budget: the pump is scheduled there.
  const schedulePump = (loop as unknown as { schedulePump(pipe: unknown): void }).schedulePump.bind(loop) // @internal
  const conn = { closed: false, readable: () => schedulePump(pipe) }
  loop.readNextTurn(conn as never)
  await until(() => pumped > 0, 5000, 'the scheduled pump')
  t.equal(pumped, 1)
})

t.test('a read deferred to a later turn that finds its pipe splicing pumps instead of reading (a copied read would overtake the kernel pipe)', async t => {
  const poller = new Poller()
  const [client, server] = connectedPair(poller)
  t.teardown(() => {
    client.close()
    server.close()
    poller.close()
  })
  const delivered: number[] = []
  const host = {
    now: performance.now(), readBuffer: Buffer.alloc(64 * 1024), stats: new Float64Array(16), inBatch: true,
    deliver: (_conn: unknown, bytes: Buffer) => { delivered.push(bytes.length) },
    readNextTurn() {}, scheduleRead() {}, markDirty() {},
  }
  // The constructor, pipeOut and readable() are @internal (not in the published types).
  const Internal = Connection as unknown as new (host: unknown, id: number, stream: TcpStream, outbound: boolean) => { pipeOut: unknown, readable(hangup: boolean): void }
  const conn = new Internal(host, 1, server, false)
  let pumped = 0
  // The pipe went to splicing after this read was deferred (runReadNextTurn, runReadLater).
  conn.pipeOut = { splicing: true, sourceReadable: () => { pumped++ } } as never
  const readableId = poller.registrar.register(server, Interest.Read)
  client.write(Buffer.from('bytes for the kernel pipe'))
  await until(() => poller.wait(0).some(n => n.id === readableId), 5000, 'the source to be readable')
  host.now = performance.now()
  conn.readable(false)
  t.equal(pumped, 1, 'the pipe pumped')
  t.same(delivered, [], 'nothing was read and copied')
})

t.test('a splicing pipe stays splicing when a pass on the target\'s edge finds the source nearly empty; only 4 small passes in a row on the source\'s edge return it to copying', { skip: !spliceSupported && 'splice is Linux-only' }, async t => {
  const { pipe, targetPeer, counts, arrive } = pipeOverSockets(t)
  pipe.forward(Buffer.alloc(64 * 1024, 'x'), true) // a full read: bulk
  t.ok(pipe.splicing, 'a full read switched the pipe to splicing')
  await arrive('tail')
  pipe.targetFlushed() // the target's queue emptied: a pass on its edge
  t.ok(pipe.splicing, 'a small pass on the target\'s edge keeps splicing')
  for (let i = 1; i <= 4; i++) {
    await arrive(`s${i}`)
    pipe.sourceReadable()
    t.equal(pipe.splicing, i < 4, `after ${i} small pass(es) on the source's edge: ${i < 4 ? 'splicing' : 'copying'}`)
  }
  t.equal(counts.resumed, 1, 'the source was resumed once, for copying')
  const got = await readBytes(targetPeer, 64 * 1024 + 4 + 8)
  t.equal(got.subarray(64 * 1024).toString(), 'tails1s2s3s4', 'every byte arrived, in order')
})

t.test('a pipe holds a kernel pipe (two fds) only while it splices: none before the first full read, none after it returns to copying', { skip: !spliceSupported && 'splice is Linux-only' }, async t => {
  const { pipe, targetPeer, arrive, fdsBeforePipe } = pipeOverSockets(t)
  pipe.forward(Buffer.from('short'), false)
  t.equal(openFds(), fdsBeforePipe, 'copying: no kernel pipe')
  pipe.forward(Buffer.alloc(64 * 1024, 'x'), true)
  t.equal(openFds(), fdsBeforePipe + 2, 'splicing: one kernel pipe')
  for (let i = 1; i <= 4; i++) {
    await arrive(`s${i}`)
    pipe.sourceReadable()
  }
  t.notOk(pipe.splicing, 'back to copying')
  t.equal(openFds(), fdsBeforePipe, 'copying again: the kernel pipe is closed')
  await readBytes(targetPeer, 5 + 64 * 1024 + 8)
})

/**
 * Bulk through a splicing pipe: `total` pattern bytes written into the
 * source as fast as it takes them, pumped (not on the source's edge) and
 * read from the target's peer until all arrived. Returns what arrived and
 * the pattern.
 */
async function pumpBulk(pipe: Pipe, sourcePeer: TcpStream, targetPeer: TcpStream, total: number): Promise<[Buffer, Buffer]> {
  const pattern = Buffer.alloc(total)
  for (let i = 0; i < total; i++) pattern[i] = (i * 2654435761) >>> 13 & 0xff
  pipe.forward(pattern.subarray(0, 64 * 1024), true) // a full read: bulk
  const got: Buffer[] = []
  let written = 64 * 1024
  let read = 0
  const buf = Buffer.alloc(256 * 1024)
  await until(() => {
    if (written < total) written += sourcePeer.write(pattern.subarray(written, written + 256 * 1024)) ?? 0
    pipe.pump()
    for (let n = targetPeer.read(buf); n !== null && n > 0; n = targetPeer.read(buf)) {
      got.push(Buffer.from(buf.subarray(0, n)))
      read += n
    }
    return read >= total
  }, 10_000, `${total} bytes through the pipe`)
  return [Buffer.concat(got), pattern]
}

t.test('a splicing pipe whose pass took its whole kernel pipe grows it to 1 MiB once empty, counted in the worker\'s grownPipes until closed; every byte arrives in order', { skip: !spliceSupported && 'splice is Linux-only' }, async t => {
  const { pipe, sourcePeer, targetPeer, host, fdsBeforePipe } = pipeOverSockets(t)
  const [got, pattern] = await pumpBulk(pipe, sourcePeer, targetPeer, 2 << 20)
  t.ok(got.equals(pattern), 'every byte arrived, in order, across the swap of kernel pipes')
  t.equal(pipe.spliceCapacity, 1 << 20, 'the kernel pipe grew to 1 MiB')
  t.equal(host.grownPipes, 1, 'counted as one of the worker\'s grown pipes')
  t.equal(openFds(), fdsBeforePipe + 2, 'still one kernel pipe: the small one was closed')
  pipe.close()
  t.equal(host.grownPipes, 0, 'closing the pipe gives its share back')
  t.equal(openFds(), fdsBeforePipe, 'and its fds')
})

t.test(`a worker holding ${MAX_GROWN_PIPES} grown pipes keeps a new bulk pipe at 256 KiB`, { skip: !spliceSupported && 'splice is Linux-only' }, async t => {
  const { pipe, sourcePeer, targetPeer, host } = pipeOverSockets(t)
  host.grownPipes = MAX_GROWN_PIPES
  const [got, pattern] = await pumpBulk(pipe, sourcePeer, targetPeer, 2 << 20)
  t.ok(got.equals(pattern), 'every byte arrived, in order')
  t.equal(pipe.spliceCapacity, 256 * 1024, 'the kernel pipe kept its size')
  t.equal(host.grownPipes, MAX_GROWN_PIPES, 'the worker\'s count is unchanged')
})
