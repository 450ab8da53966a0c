// Fuzzing FrameReader and LineReader against reference decoders that see
// the whole stream at once. Seeded (the seed is printed: AMY_FUZZ_SEED=N
// replays a failure; AMY_FUZZ_ROUNDS=N runs longer), bounded, byte streams
// cut into random chunks and fed through both push() and readFrom() (a
// source that also returns "would block" between chunks).
import t from 'tap'
import { type ByteSource, FrameReader, LineReader } from '@amy/core'

const SEED = Number(process.env['AMY_FUZZ_SEED'] ?? Date.now() % 2 ** 31)
const ROUNDS = Number(process.env['AMY_FUZZ_ROUNDS'] ?? 400)

/** mulberry32: small, seedable, good enough to pick lengths and bytes. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0
  return (n: number): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return (((x ^ (x >>> 14)) >>> 0) / 4294967296) * n | 0
  }
}

/** Cuts `stream` into chunks of 1 .. maxChunk bytes (sometimes tiny, sometimes large). */
function chunk(rand: (n: number) => number, stream: Buffer): Buffer[] {
  const chunks: Buffer[] = []
  const maxChunk = [1, 3, 7, 64, 1000, 70_000][rand(6)]!
  for (let at = 0; at < stream.length; ) {
    const n = 1 + rand(maxChunk)
    chunks.push(stream.subarray(at, at + n))
    at += n
  }
  return chunks
}

/** A source that hands out the chunks, with "would block" (null) between some of them, then 0. */
class ChunkSource implements ByteSource {
  #i = 0
  #offset = 0
  constructor(readonly chunks: Buffer[], readonly rand: (n: number) => number) {}
  read(buf: Uint8Array): number | null {
    if (this.rand(4) === 0) return null
    const c = this.chunks[this.#i]
    if (c === undefined) return 0
    const n = Math.min(buf.length, c.length - this.#offset)
    buf.set(c.subarray(this.#offset, this.#offset + n))
    this.#offset += n
    if (this.#offset === c.length) {
      this.#i++
      this.#offset = 0
    }
    return n
  }
}

interface Outcome<T> {
  items: T[]
  error: string | undefined
}

/** Feeds `chunks` through push() or readFrom(), draining as it goes; stops at the first error. */
function feed<T>(reader: { push(b: Uint8Array): void; readFrom(s: ByteSource): number; next(): T | undefined; ended: boolean }, chunks: Buffer[], rand: (n: number) => number, viaSource: boolean): Outcome<T> {
  const items: T[] = []
  const drain = (): void => {
    for (let x = reader.next(); x !== undefined; x = reader.next()) items.push(x)
  }
  try {
    if (viaSource) {
      const source = new ChunkSource(chunks, rand)
      for (let guard = 0; !reader.ended; guard++) {
        if (guard > 10_000_000) throw new Error('readFrom never reached the end')
        reader.readFrom(source)
        drain()
      }
    } else {
      for (const c of chunks) {
        reader.push(c)
        if (rand(3) === 0) drain()
      }
    }
  } catch (err) {
    drain()
    return { items, error: (err as { code?: string }).code ?? String(err) }
  }
  drain()
  return { items, error: undefined }
}

// ---- frames ----------------------------------------------------------------

function referenceFrames(stream: Buffer, maxFrameSize: number): Outcome<Buffer> {
  const items: Buffer[] = []
  let at = 0
  while (stream.length - at >= 4) {
    const length = stream.readUInt32BE(at)
    if (length > maxFrameSize) return { items, error: 'ERR_FRAME_TOO_LARGE' }
    if (stream.length - at - 4 < length) break
    items.push(stream.subarray(at + 4, at + 4 + length))
    at += 4 + length
  }
  return { items, error: undefined }
}

// Payload bytes come from one random pool (cheap), at a random offset.
const POOL = Buffer.from(new Uint8Array(150_000).map((_, i) => (Math.imul(i + 1, 2654435761) >>> 24) ^ (i & 0xff)))

function randomFrameStream(rand: (n: number) => number, maxFrameSize: number): Buffer {
  const parts: Buffer[] = []
  const frames = rand(40)
  for (let i = 0; i < frames; i++) {
    // Mostly valid sizes, some at the limit, rarely one over it.
    const pick = rand(20)
    const length = pick === 0 ? maxFrameSize + 1 + rand(1000) : pick === 1 ? maxFrameSize : rand(Math.min(maxFrameSize, 5000) + 1)
    const prefix = Buffer.alloc(4)
    prefix.writeUInt32BE(length)
    parts.push(prefix)
    if (length <= maxFrameSize) {
      const from = rand(POOL.length - length)
      parts.push(POOL.subarray(from, from + length))
    }
  }
  if (rand(3) === 0) parts.push(Buffer.from(Array.from({ length: rand(8) }, () => rand(256)))) // a truncated tail
  return Buffer.concat(parts)
}

t.test(`FrameReader matches the reference decoder (seed ${SEED}, ${ROUNDS} rounds)`, async t => {
  const rand = prng(SEED)
  let frames = 0
  let errors = 0
  for (let round = 0; round < ROUNDS; round++) {
    const maxFrameSize = [0, 1, 10, 300, 70_000][rand(5)]!
    const stream = randomFrameStream(rand, maxFrameSize)
    const expected = referenceFrames(stream, maxFrameSize)
    for (const viaSource of [false, true]) {
      const reader = new FrameReader({ maxFrameSize, bufferSize: 1 + rand(3000) })
      const got = feed<Buffer>(reader, chunk(rand, stream), rand, viaSource)
      const same = got.error === expected.error && got.items.length === expected.items.length && got.items.every((f, i) => f.equals(expected.items[i]!))
      if (!same) {
        t.fail(`round ${round} (${viaSource ? 'readFrom' : 'push'}): got ${got.items.length} frames, error ${got.error}; expected ${expected.items.length}, error ${expected.error} (AMY_FUZZ_SEED=${SEED})`)
        return
      }
      if (!expected.error && reader.partialBytes !== stream.length - expected.items.reduce((n, f) => n + 4 + f.length, 0)) {
        t.fail(`round ${round}: partialBytes ${reader.partialBytes} (AMY_FUZZ_SEED=${SEED})`)
        return
      }
    }
    frames += expected.items.length
    if (expected.error) errors++
  }
  t.pass(`${ROUNDS} streams, ${frames} frames, ${errors} oversized prefixes: identical to the reference`)
})

// ---- lines -----------------------------------------------------------------

const CR = 0x0d
const LF = 0x0a

function referenceLines(stream: Buffer, maxLineLength: number): Outcome<string> {
  const items: string[] = []
  let at = 0
  for (;;) {
    const lf = stream.indexOf(LF, at)
    if (lf < 0) break
    const end = lf > at && stream[lf - 1] === CR ? lf - 1 : lf
    if (end - at > maxLineLength) return { items, error: 'ERR_LINE_TOO_LONG' }
    items.push(stream.toString('utf8', at, end))
    at = lf + 1
  }
  // An unterminated tail is never returned, but one that is already too
  // long fails (one byte over is allowed when it is a '\r').
  const tail = stream.length - at
  if (tail > maxLineLength + 1 || (tail === maxLineLength + 1 && stream[stream.length - 1] !== CR)) return { items, error: 'ERR_LINE_TOO_LONG' }
  return { items, error: undefined }
}

const PIECES = ['a', 'hello', ' ', '\r', '\r\n', '\n', 'é', '€', '😀', '\xff', '\u0000']

function randomLineStream(rand: (n: number) => number): Buffer {
  const parts: Buffer[] = []
  const n = rand(200)
  for (let i = 0; i < n; i++) {
    const piece = PIECES[rand(PIECES.length)]!
    // '\xff' as a raw byte: invalid UTF-8 (U+FFFD in both decoders).
    parts.push(piece === '\xff' ? Buffer.from([0xff]) : Buffer.from(piece))
    if (rand(50) === 0) parts.push(Buffer.alloc(rand(3000), 0x62)) // a long run
    if (rand(60) === 0) parts.push(Buffer.from('€').subarray(0, 1 + rand(2))) // a cut character
  }
  return Buffer.concat(parts)
}

t.test(`LineReader matches the reference decoder (seed ${SEED}, ${ROUNDS} rounds)`, async t => {
  const rand = prng(SEED ^ 0x5bd1e995)
  let lines = 0
  let errors = 0
  for (let round = 0; round < ROUNDS; round++) {
    const maxLineLength = [0, 1, 4, 16, 100, 5000][rand(6)]!
    const stream = randomLineStream(rand)
    const expected = referenceLines(stream, maxLineLength)
    for (const viaSource of [false, true]) {
      const reader = new LineReader({ maxLineLength, bufferSize: 1 + rand(3000) })
      const got = feed<string>(reader, chunk(rand, stream), rand, viaSource)
      const same = got.error === expected.error && got.items.length === expected.items.length && got.items.every((l, i) => l === expected.items[i])
      if (!same) {
        t.fail(`round ${round} (${viaSource ? 'readFrom' : 'push'}, max ${maxLineLength}): got ${got.items.length} lines, error ${got.error}; expected ${expected.items.length}, error ${expected.error} (AMY_FUZZ_SEED=${SEED})`)
        return
      }
    }
    lines += expected.items.length
    if (expected.error) errors++
  }
  t.pass(`${ROUNDS} streams, ${lines} lines, ${errors} over the limit: identical to the reference`)
})
