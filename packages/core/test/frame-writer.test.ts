import t from 'tap'
import { type ByteSink, FrameReader, FrameWriter } from '@amy/core'

// Unit tests against the ByteSink contract with fakes that take bytes at
// chosen offsets and would block; real sockets are exercised by the
// TcpStream tests.

/**
 * Records what a writer offers and accepts it like a socket with limited
 * buffer space: at most `allowance` bytes in total until the next `allow`,
 * at most `perCall` bytes per call; with no allowance left it would block.
 */
class Recorder {
  readonly accepted: Buffer[] = []
  /** Per call: which method, and the lengths of the buffers offered. */
  readonly calls: { method: 'write' | 'writev'; lengths: number[] }[] = []
  allowance: number
  perCall = Infinity

  constructor(allowance: number) {
    this.allowance = allowance
  }

  allow(bytes: number, perCall = Infinity): void {
    this.allowance = bytes
    this.perCall = perCall
  }

  get output(): Buffer {
    return Buffer.concat(this.accepted)
  }

  take(method: 'write' | 'writev', bufs: readonly Uint8Array[]): number | null {
    this.calls.push({ method, lengths: bufs.map((b) => b.length) })
    if (this.allowance === 0) return null
    let budget = Math.min(this.allowance, this.perCall)
    let n = 0
    for (const b of bufs) {
      const k = Math.min(b.length, budget)
      this.accepted.push(Buffer.from(b.subarray(0, k)))
      n += k
      budget -= k
      if (budget === 0) break
    }
    this.allowance -= n
    return n
  }
}

/** A sink over `recorder`, with or without `writev`. */
function sinkFor(recorder: Recorder, vectored: boolean): ByteSink {
  const write = (buf: Uint8Array): number | null => recorder.take('write', [buf])
  return vectored
    ? { write, writev: (bufs: readonly Uint8Array[]) => recorder.take('writev', bufs) }
    : { write }
}

/**
 * amy's tests write into a `Cursor` over a fixed slice: it takes what fits
 * and returns 0 once full.
 */
class CursorSink {
  readonly buf: Buffer
  position = 0

  constructor(size: number) {
    this.buf = Buffer.alloc(size)
  }

  take(bufs: readonly Uint8Array[]): number {
    let n = 0
    for (const b of bufs) {
      const k = Math.min(b.length, this.buf.length - this.position)
      this.buf.set(b.subarray(0, k), this.position)
      this.position += k
      n += k
      if (k < b.length) break
    }
    return n
  }

  sink(vectored: boolean): ByteSink {
    const write = (buf: Uint8Array): number => this.take([buf])
    return vectored ? { write, writev: (bufs: readonly Uint8Array[]) => this.take(bufs) } : { write }
  }
}

function frame(payload: Uint8Array | string): Buffer {
  const body = Buffer.from(payload)
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(body.length, 0)
  return Buffer.concat([prefix, body])
}

function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let r = Math.imul(a ^ (a >>> 15), 1 | a)
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296
  }
}

for (const vectored of [false, true]) {
  const mode = vectored ? 'writev' : 'write'

  t.test(`write on an empty frame writer (amy: call_write_on_empty_frame_writer) [${mode}]`, async (t) => {
    const writer = new FrameWriter()
    const recorder = new Recorder(10)
    t.equal(writer.write(sinkFor(recorder, vectored)), true)
    t.equal(writer.queuedBytes, 0)
    t.equal(recorder.calls.length, 0, 'nothing to write, sink untouched')
  })

  t.test(`fill the sink exactly (amy: ..._but_fill_writer_exactly) [${mode}]`, async (t) => {
    const writer = new FrameWriter()
    // Room for the 4-byte prefix and a 10-byte payload.
    const cursor = new CursorSink(14)
    const sink = cursor.sink(vectored)
    const payload = Buffer.alloc(10, 0x5a)
    t.equal(writer.write(sink, payload), true)
    t.equal(writer.queuedBytes, 0)
    t.same(cursor.buf, frame(payload))
    t.equal(writer.write(sink, Buffer.alloc(1)), false, 'full sink: the next frame stays queued')
    t.equal(writer.queuedBytes, 5)
  })

  t.test(`write until full, reset, write some more (amy: write_until_full_reset_and_write_some_more) [${mode}]`, async (t) => {
    const writer = new FrameWriter()
    const cursor = new CursorSink(14)
    const sink = cursor.sink(vectored)
    t.equal(writer.write(sink, Buffer.alloc(11, 0xaa)), false)
    // One byte of the first frame is still queued.
    t.equal(writer.queuedBytes, 1)
    t.same(cursor.buf, frame(Buffer.alloc(11, 0xaa)).subarray(0, 14))

    // Try to write the last byte, but the sink is full.
    t.equal(writer.write(sink), false)
    t.equal(writer.queuedBytes, 1)

    // Make the sink 14 bytes free again: the last byte, plus a 9-byte frame and its prefix, fit exactly.
    cursor.position = 0
    t.equal(writer.write(sink, Buffer.alloc(9, 0xbb)), true)
    t.equal(writer.queuedBytes, 0)
    t.same(cursor.buf, Buffer.concat([Buffer.of(0xaa), frame(Buffer.alloc(9, 0xbb))]))
  })

  t.test(`partial writes at every byte offset, prefix included [${mode}]`, async (t) => {
    const payloads = ['hello', '', 'world!']
    const stream = Buffer.concat(payloads.map(frame))
    for (let k = 0; k <= stream.length; k++) {
      const writer = new FrameWriter()
      const recorder = new Recorder(0)
      const sink = sinkFor(recorder, vectored)
      for (const p of payloads) t.equal(writer.write(sink, Buffer.from(p)), false)
      t.equal(writer.queuedBytes, stream.length)

      recorder.allow(k)
      t.equal(writer.flush(sink), k === stream.length, `flush after ${k} bytes`)
      t.equal(writer.queuedBytes, stream.length - k)
      t.same(recorder.output, stream.subarray(0, k))

      recorder.allow(Infinity)
      t.equal(writer.write(sink), true)
      t.equal(writer.queuedBytes, 0)
      t.same(recorder.output, stream)
    }
  })

  t.test(`small per-call writes resume mid-prefix and mid-payload [${mode}]`, async (t) => {
    for (const perCall of [1, 2, 3, 5, 7]) {
      const writer = new FrameWriter()
      const recorder = new Recorder(Infinity)
      recorder.allow(Infinity, perCall)
      const sink = sinkFor(recorder, vectored)
      t.equal(writer.write(sink, Buffer.from('abcdefgh')), true)
      t.equal(writer.write(sink, Buffer.alloc(0)), true)
      t.same(recorder.output, Buffer.concat([frame('abcdefgh'), frame('')]), `perCall ${perCall}`)
    }
  })

  t.test(`zero-length frame is just its prefix [${mode}]`, async (t) => {
    const writer = new FrameWriter()
    const recorder = new Recorder(Infinity)
    t.equal(writer.write(sinkFor(recorder, vectored), new Uint8Array(0)), true)
    t.same(recorder.output, Buffer.alloc(4))
    t.ok(
      recorder.calls.every((c) => c.lengths.every((n) => n > 0)),
      'never offers an empty buffer',
    )
  })

  t.test(`sink errors propagate with the queue intact [${mode}]`, async (t) => {
    const writer = new FrameWriter()
    const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })
    const broken: ByteSink = vectored
      ? {
          write: () => {
            throw epipe
          },
          writev: () => {
            throw epipe
          },
        }
      : {
          write: () => {
            throw epipe
          },
        }
    t.throws(() => writer.write(broken, Buffer.from('kept')), { code: 'EPIPE' })
    t.equal(writer.queuedBytes, 8)
    const recorder = new Recorder(Infinity)
    t.equal(writer.flush(sinkFor(recorder, vectored)), true)
    t.same(recorder.output, frame('kept'))
  })

  t.test(`a sink accepting 0 bytes counts as would-block [${mode}]`, async (t) => {
    const writer = new FrameWriter()
    let calls = 0
    const zero = (): number => {
      calls++
      return 0
    }
    const sink: ByteSink = vectored ? { write: zero, writev: zero } : { write: zero }
    t.equal(writer.write(sink, Buffer.from('x')), false)
    t.equal(calls, 1, 'does not spin')
    t.equal(writer.queuedBytes, 5)
  })

  t.test(`a sink returning a bogus count is rejected [${mode}]`, async (t) => {
    for (const bogus of [6, 1.5, -1, Number.NaN]) {
      const writer = new FrameWriter()
      const bad = (): number => bogus
      const sink: ByteSink = vectored ? { write: bad, writev: bad } : { write: bad }
      t.throws(() => writer.write(sink, Buffer.from('x')), { code: 'ERR_INVALID_ARG_VALUE' }, String(bogus))
    }
  })

  t.test(`random partial writes round-trip through FrameReader [${mode}]`, async (t) => {
    const rand = prng(vectored ? 7 : 8)
    const writer = new FrameWriter()
    const recorder = new Recorder(0)
    const sink = sinkFor(recorder, vectored)
    const reader = new FrameReader({ maxFrameSize: 500 })
    const sent: Buffer[] = []
    const received: Buffer[] = []
    let delivered = 0
    for (let i = 0; i < 400; i++) {
      recorder.allow(Math.floor(rand() * 600), 1 + Math.floor(rand() * 50))
      const payload = Buffer.alloc(Math.floor(rand() * 500), i & 0xff)
      sent.push(payload)
      writer.write(sink, payload)
      const out = recorder.output
      reader.push(out.subarray(delivered))
      delivered = out.length
      received.push(...reader)
    }
    recorder.allow(Infinity, 3)
    t.equal(writer.flush(sink), true)
    reader.push(recorder.output.subarray(delivered))
    received.push(...reader)
    t.same(received, sent)
  })
}

t.test('writev sends prefixes and payloads of queued frames in one call', async (t) => {
  const writer = new FrameWriter()
  const recorder = new Recorder(0)
  const sink = sinkFor(recorder, true)
  writer.write(sink, Buffer.from('one'))
  writer.write(sink, Buffer.alloc(0))
  writer.write(sink, Buffer.from('three'))
  recorder.calls.length = 0
  recorder.allow(Infinity)
  t.equal(writer.flush(sink), true)
  t.same(recorder.calls, [{ method: 'writev', lengths: [4, 3, 4, 4, 5] }])
  t.same(recorder.output, Buffer.concat([frame('one'), frame(''), frame('three')]))
})

t.test('writev resumes in the middle of a prefix with a sliced first buffer', async (t) => {
  const writer = new FrameWriter()
  const recorder = new Recorder(2)
  const sink = sinkFor(recorder, true)
  t.equal(writer.write(sink, Buffer.from('abc')), false)
  recorder.allow(Infinity)
  t.equal(writer.flush(sink), true)
  // Accepted 2, retried (would block), then resumed from byte 2 of the prefix.
  t.same(
    recorder.calls.map((c) => c.lengths),
    [
      [4, 3],
      [2, 3],
      [2, 3],
    ],
  )
  t.same(recorder.output, frame('abc'))
})

t.test('writev offers at most 1024 buffers per call', async (t) => {
  const writer = new FrameWriter()
  const recorder = new Recorder(0)
  const sink = sinkFor(recorder, true)
  const payloads = Array.from({ length: 600 }, (_, i) => Buffer.from(`p${i}`))
  for (const p of payloads) writer.write(sink, p)
  recorder.calls.length = 0
  recorder.allow(Infinity)
  t.equal(writer.flush(sink), true)
  t.same(
    recorder.calls.map((c) => c.lengths.length),
    [1024, 176],
  )
  t.same(recorder.output, Buffer.concat(payloads.map(frame)))
})

t.test('without writev, write is called once per queued buffer', async (t) => {
  const writer = new FrameWriter()
  const recorder = new Recorder(Infinity)
  t.equal(writer.write(sinkFor(recorder, false), Buffer.from('payload')), true)
  t.same(recorder.calls, [
    { method: 'write', lengths: [4] },
    { method: 'write', lengths: [7] },
  ])
})

t.test('frames longer than 2**32-1 bytes are rejected', async (t) => {
  const writer = new FrameWriter()
  // Allocating 4 GiB in a unit test is not an option; fake the length.
  const huge = new Uint8Array(0)
  Object.defineProperty(huge, 'byteLength', { value: 2 ** 32 })
  const recorder = new Recorder(Infinity)
  t.throws(() => writer.write(sinkFor(recorder, true), huge), { code: 'ERR_FRAME_TOO_LARGE' })
  t.equal(writer.queuedBytes, 0)
  t.equal(recorder.calls.length, 0)
})

t.test('non-Uint8Array frames are rejected', async (t) => {
  const writer = new FrameWriter()
  const recorder = new Recorder(Infinity)
  t.throws(() => writer.write(sinkFor(recorder, true), 'text' as unknown as Uint8Array), {
    code: 'ERR_INVALID_ARG_TYPE',
  })
  t.equal(writer.queuedBytes, 0)
})

t.test('maxQueuedBytes bounds the queue', async (t) => {
  const writer = new FrameWriter({ maxQueuedBytes: 20 })
  t.equal(writer.maxQueuedBytes, 20)
  const recorder = new Recorder(0)
  const sink = sinkFor(recorder, true)
  t.equal(writer.write(sink, Buffer.from('aaaaaa')), false)
  t.equal(writer.write(sink, Buffer.from('bbbbbb')), false)
  t.equal(writer.queuedBytes, 20, 'exactly at the limit is fine')
  t.throws(() => writer.write(sink, Buffer.alloc(0)), { code: 'ERR_WRITE_QUEUE_FULL', name: 'AmyError' })
  t.equal(writer.queuedBytes, 20, 'the refused frame is not queued')

  // Once the sink drains, a write first makes room instead of refusing.
  recorder.allow(Infinity)
  t.equal(writer.write(sink, Buffer.from('c')), true)
  t.same(recorder.output, Buffer.concat([frame('aaaaaa'), frame('bbbbbb'), frame('c')]))

  // A frame that could never fit is refused even with an empty queue.
  t.throws(() => writer.write(sink, Buffer.alloc(17)), { code: 'ERR_WRITE_QUEUE_FULL' })
  t.equal(writer.write(sink, Buffer.alloc(16)), true)
})

t.test('option validation', async (t) => {
  const make = (options: unknown) => () => new FrameWriter(options as { maxQueuedBytes?: number })
  t.equal(new FrameWriter().maxQueuedBytes, Infinity)
  t.equal(new FrameWriter({}).maxQueuedBytes, Infinity)
  t.throws(make(null), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make(5), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make({ maxQueuedBytes: '10' }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make({ maxQueuedBytes: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxQueuedBytes: 1.5 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxQueuedBytes: Infinity }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.equal(new FrameWriter({ maxQueuedBytes: 0 }).maxQueuedBytes, 0)
})
