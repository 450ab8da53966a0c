import t from 'tap'
import { type ByteSource, FrameReader } from '@amy/core'

// Unit tests against the ByteSource contract with a scripted fake; real
// sockets are exercised by the TcpStream tests.

/** One scripted `read` result: bytes to deliver, null (would block), 0 (end) or an error to throw. */
type Step = Uint8Array | null | 0 | Error

/**
 * A ByteSource that replays `steps`. A byte step larger than the reader's
 * buffer is delivered over several reads; an exhausted script would block.
 */
class ScriptedSource implements ByteSource {
  readonly buffers: Uint8Array[] = []
  private readonly steps: Step[]

  constructor(steps: Step[]) {
    this.steps = [...steps]
  }

  get reads(): number {
    return this.buffers.length
  }

  /** True once every scripted step has been delivered. */
  get done(): boolean {
    return this.steps.length === 0
  }

  read(buf: Uint8Array): number | null {
    this.buffers.push(buf)
    const step = this.steps.shift()
    if (step === undefined || step === null) return null
    if (step === 0) return 0
    if (step instanceof Error) throw step
    const n = Math.min(buf.length, step.length)
    buf.set(step.subarray(0, n))
    if (n < step.length) this.steps.unshift(step.subarray(n))
    return n
  }
}

/** `payload` behind its 4-byte big-endian length prefix. */
function frame(payload: Uint8Array | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload)
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(body.length, 0)
  return Buffer.concat([prefix, body])
}

function prefixOf(length: number): Buffer {
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(length, 0)
  return prefix
}

/** Splits `bytes` into one-byte steps. */
function byteByByte(bytes: Uint8Array): Step[] {
  return Array.from(bytes, (b) => Uint8Array.of(b))
}

/** Deterministic PRNG (mulberry32) so random splits are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let r = Math.imul(a ^ (a >>> 15), 1 | a)
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296
  }
}

t.test('partial and complete reads (amy: partial_and_complete_reads)', async (t) => {
  const buf1 = Buffer.from('Hello World')
  const buf2 = Buffer.from('Hi.')
  const header1 = prefixOf(buf1.length)
  const header2 = prefixOf(buf2.length)
  const reader = new FrameReader({ maxFrameSize: 1024 })

  // A partial header
  t.equal(reader.readFrom(new ScriptedSource([header1.subarray(0, 2)])), 2)
  t.equal(reader.next(), undefined)

  // Complete just the header
  t.equal(reader.readFrom(new ScriptedSource([header1.subarray(2)])), 2)
  t.equal(reader.next(), undefined)

  // A partial value
  t.equal(reader.readFrom(new ScriptedSource([buf1.subarray(0, 5)])), 5)
  t.equal(reader.next(), undefined)

  // Complete the first value
  t.equal(reader.readFrom(new ScriptedSource([buf1.subarray(5)])), 6)
  t.same(reader.next(), buf1)
  t.equal(reader.next(), undefined)

  // An entire header and value at once
  t.equal(reader.readFrom(new ScriptedSource([Buffer.concat([header2, buf2])])), 7)
  t.same(reader.next(), buf2)
  t.equal(reader.next(), undefined)
  t.equal(reader.ended, false)
})

t.test('would block returns 0 bytes, not an error (amy: would_block)', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 1024 })
  const source = new ScriptedSource([null])
  t.equal(reader.readFrom(source), 0)
  t.equal(source.reads, 1)
  t.equal(reader.ended, false)
  t.equal(reader.next(), undefined)
})

t.test('keeps reading until the source would block', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 1024 })
  const source = new ScriptedSource([frame('a'), frame('bc'), frame('def'), null, frame('late')])
  t.equal(reader.readFrom(source), 5 + 6 + 7)
  t.equal(source.reads, 4, 'stopped at the would-block')
  t.same([...reader].map(String), ['a', 'bc', 'def'])
  t.equal(reader.readFrom(source), 8)
  t.same(reader.next()?.toString(), 'late')
})

t.test('reads into one reusable buffer of bufferSize bytes', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 1024, bufferSize: 8 })
  const source = new ScriptedSource([frame('0123456789abcdef'), frame('x')])
  reader.readFrom(source)
  t.ok(source.reads > 2)
  const first = source.buffers[0]
  t.equal(first?.length, 8)
  t.ok(source.buffers.every((b) => b === first), 'same buffer every read')
  t.same(reader.next()?.toString(), '0123456789abcdef')
  t.same(reader.next()?.toString(), 'x')
})

t.test('frames stay valid after later reads reuse the read buffer', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 64, bufferSize: 16 })
  reader.readFrom(new ScriptedSource([frame('first!')]))
  const first = reader.next()
  reader.readFrom(new ScriptedSource([frame('SECOND'), frame('third.')]))
  t.equal(first?.toString(), 'first!')
  t.equal(reader.next()?.toString(), 'SECOND')
  t.equal(reader.next()?.toString(), 'third.')
})

t.test('prefix and payload split one byte per read', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 1024 })
  const stream = Buffer.concat([frame('hello'), frame(''), frame('world'), frame('')])
  const source = new ScriptedSource(byteByByte(stream))
  t.equal(reader.readFrom(source), stream.length)
  t.same([...reader.frames()].map(String), ['hello', '', 'world', ''])
  t.equal(reader.partialBytes, 0)
})

t.test('prefix split across readFrom calls one byte at a time', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 1024 })
  const stream = frame('payload')
  for (let i = 0; i < stream.length; i++) {
    t.equal(reader.next(), undefined)
    t.equal(reader.partialBytes, i)
    t.equal(reader.readFrom(new ScriptedSource([stream.subarray(i, i + 1)])), 1)
  }
  t.equal(reader.next()?.toString(), 'payload')
  t.equal(reader.partialBytes, 0)
})

t.test('many frames in one read', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 1024, bufferSize: 1 << 20 })
  const payloads = Array.from({ length: 5000 }, (_, i) => `frame-${i}`)
  const stream = Buffer.concat(payloads.map(frame))
  const source = new ScriptedSource([stream])
  t.equal(reader.readFrom(source), stream.length)
  t.equal(source.reads, 2, 'one read with data, one that would block')
  t.equal(reader.pendingFrames, payloads.length)
  t.same([...reader].map(String), payloads)
  t.equal(reader.pendingFrames, 0)
})

t.test('frame larger than the read buffer spans many reads', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 100_000, bufferSize: 1000 })
  const payload = Buffer.alloc(100_000, 7)
  payload[0] = 1
  payload[99_999] = 2
  reader.readFrom(new ScriptedSource([frame(payload)]))
  t.ok(reader.next()?.equals(payload))
})

t.test('zero-length frames are legal', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 0 })
  reader.push(Buffer.concat([frame(''), frame(''), frame('')]))
  t.equal(reader.pendingFrames, 3)
  for (const f of reader) t.equal(f.length, 0)
  // A zero-length frame whose prefix completes at the very end of a chunk.
  reader.push(Buffer.from([0, 0, 0]))
  t.equal(reader.next(), undefined)
  reader.push(Buffer.from([0]))
  t.equal(reader.next()?.length, 0)
})

t.test('frame of exactly maxFrameSize is accepted', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 10 })
  reader.push(frame('0123456789'))
  t.equal(reader.next()?.toString(), '0123456789')
  t.throws(() => reader.push(frame('0123456789!')), { code: 'ERR_FRAME_TOO_LARGE' })
})

t.test('oversized prefix throws as soon as the header arrives, allocating nothing', async (t) => {
  for (const announced of [2 ** 31 - 1, 2 ** 32 - 1, 1025]) {
    const reader = new FrameReader({ maxFrameSize: 1024 })
    const before = process.memoryUsage().arrayBuffers
    // Only the header is ever delivered: the error cannot wait for a payload.
    const source = new ScriptedSource([prefixOf(announced)])
    t.throws(() => reader.readFrom(source), { code: 'ERR_FRAME_TOO_LARGE', name: 'AmyError' }, `announced ${announced}`)
    t.equal(source.reads, 1)
    t.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'no allocation of the announced size')
  }
})

t.test('oversized prefix split across reads is caught on its last byte', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 1024 })
  const header = prefixOf(2 ** 31 - 1)
  reader.push(header.subarray(0, 3))
  t.throws(() => reader.push(header.subarray(3)), { code: 'ERR_FRAME_TOO_LARGE' })
})

t.test('poisoned after a too-large frame', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 8 })
  t.throws(() => reader.push(Buffer.concat([frame('ok'), prefixOf(9), frame('after')])), {
    code: 'ERR_FRAME_TOO_LARGE',
  })
  // Frames completed before the bad prefix were well-formed and stay available.
  t.equal(reader.next()?.toString(), 'ok')
  t.equal(reader.next(), undefined, 'nothing after the bad prefix is parsed')
  t.throws(() => reader.push(frame('x')), { code: 'ERR_FRAME_TOO_LARGE' })
  const source = new ScriptedSource([frame('x')])
  t.throws(() => reader.readFrom(source), { code: 'ERR_FRAME_TOO_LARGE' })
  t.equal(source.reads, 0, 'a poisoned reader does not touch the source')
})

t.test('end of stream sets ended and returns the bytes read before it', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 1024 })
  const source = new ScriptedSource([frame('last'), 0, frame('never')])
  t.equal(reader.readFrom(source), 8)
  t.equal(reader.ended, true)
  t.equal(source.reads, 2, 'stopped at end of stream')
  t.equal(reader.next()?.toString(), 'last')
  t.equal(reader.partialBytes, 0)

  const empty = new FrameReader({ maxFrameSize: 1024 })
  t.equal(empty.readFrom(new ScriptedSource([0])), 0)
  t.equal(empty.ended, true)
})

t.test('end of stream in the middle of a frame leaves partialBytes', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 1024 })
  t.equal(reader.readFrom(new ScriptedSource([frame('complete'), frame('truncated').subarray(0, 6), 0])), 18)
  t.equal(reader.ended, true)
  t.equal(reader.next()?.toString(), 'complete')
  t.equal(reader.next(), undefined)
  t.equal(reader.partialBytes, 6)
})

t.test('errors thrown by the source propagate and do not poison', async (t) => {
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
  const reader = new FrameReader({ maxFrameSize: 1024 })
  t.throws(() => reader.readFrom(new ScriptedSource([frame('before'), frame('spl').subarray(0, 5), reset])), {
    code: 'ECONNRESET',
  })
  t.equal(reader.next()?.toString(), 'before', 'bytes read before the error were parsed')
  reader.push(frame('spl').subarray(5))
  t.equal(reader.next()?.toString(), 'spl')
})

t.test('push accepts any Uint8Array view and copies it', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 1024 })
  const backing = new Uint8Array(32).fill(0xee)
  const bytes = frame('view')
  backing.set(bytes, 5)
  const view = backing.subarray(5, 5 + bytes.length)
  reader.push(view)
  view.fill(0) // the reader must not alias the caller's bytes
  t.equal(reader.next()?.toString(), 'view')
  t.throws(() => reader.push('nope' as unknown as Uint8Array), { code: 'ERR_INVALID_ARG_TYPE' })
})

t.test('a source returning a bogus count is rejected', async (t) => {
  for (const bogus of [1.5, -1, 65537, Number.NaN]) {
    const reader = new FrameReader({ maxFrameSize: 1024, bufferSize: 65536 })
    t.throws(() => reader.readFrom({ read: () => bogus }), { code: 'ERR_INVALID_ARG_VALUE' }, String(bogus))
  }
})

t.test('random splits reassemble the same frames', async (t) => {
  const rand = prng(42)
  const payloads = Array.from({ length: 300 }, (_, i) =>
    Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => (i + Math.floor(rand() * 256)) & 0xff)),
  )
  const stream = Buffer.concat(payloads.map(frame))
  const steps: Step[] = []
  for (let i = 0; i < stream.length; ) {
    const n = 1 + Math.floor(rand() * 97)
    steps.push(stream.subarray(i, i + n))
    if (rand() < 0.3) steps.push(null)
    i += n
  }
  const reader = new FrameReader({ maxFrameSize: 300, bufferSize: 64 })
  const source = new ScriptedSource(steps)
  const got: Buffer[] = []
  let total = 0
  do {
    total += reader.readFrom(source)
    got.push(...reader)
  } while (!source.done)
  t.equal(total, stream.length)
  t.same(got, payloads)
})

t.test('iteration picks up frames pushed while iterating', async (t) => {
  const reader = new FrameReader({ maxFrameSize: 16 })
  reader.push(frame('a'))
  const seen: string[] = []
  for (const f of reader) {
    seen.push(f.toString())
    if (seen.length === 1) reader.push(frame('b'))
  }
  t.same(seen, ['a', 'b'])
})

t.test('option validation', async (t) => {
  const make = (options: unknown) => () => new FrameReader(options as { maxFrameSize: number })
  t.throws(make(undefined), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make(null), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make(1024), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make({}), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make({ maxFrameSize: '1024' }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make({ maxFrameSize: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxFrameSize: 1.5 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxFrameSize: Number.NaN }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxFrameSize: 2 ** 31 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxFrameSize: 1024, bufferSize: 0 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxFrameSize: 1024, bufferSize: 2 ** 30 + 1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxFrameSize: 1024, bufferSize: '4096' }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.equal(new FrameReader({ maxFrameSize: 0 }).maxFrameSize, 0)
  t.equal(new FrameReader({ maxFrameSize: 2 ** 31 - 1, bufferSize: 1 }).maxFrameSize, 2 ** 31 - 1)
})
