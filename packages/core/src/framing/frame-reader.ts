import { AmyError, checkInteger } from '../errors.js'
import { type ByteSource, checkSource, checkTransferred } from './io.js'
import { checkBufferSize, checkOptions } from './options.js'
import { Queue } from './queue.js'

/** Size of the big-endian u32 length prefix in front of every frame. */
const PREFIX_SIZE = 4

/** Largest `maxFrameSize` accepted: keeps a single frame within one Buffer on every platform. */
const FRAME_SIZE_LIMIT = 2 ** 31 - 1

/** Options of a FrameReader. */
export interface FrameReaderOptions {
  /** Largest payload accepted, in bytes, prefix excluded. Integer in [0, 2**31-1]. */
  maxFrameSize: number
  /** Size of the reusable buffer handed to `source.read`. Integer in [1, 2**30]; default 64 KiB. */
  bufferSize?: number
}

/**
 * Splits a byte stream into frames, each a 4-byte big-endian length followed
 * by that many payload bytes (the format of amy's `FrameReader`).
 *
 * Every frame returned by {@link FrameReader.next} is a freshly allocated
 * copy owned by the caller: it never aliases the internal read buffer, so it
 * stays valid after later reads. (Small frames come from Node's Buffer pool,
 * as with `Buffer.allocUnsafe`.)
 *
 * Unlike amy, `maxFrameSize` is enforced: a prefix announcing more throws
 * `ERR_FRAME_TOO_LARGE` as soon as its 4 bytes arrive, before any memory of
 * the announced size is allocated. The reader is then poisoned: `readFrom`
 * and `push` throw the same code from then on (the stream position is lost,
 * so nothing after the bad prefix can be trusted). Frames completed before
 * the bad prefix were well-formed and can still be drained with `next`.
 *
 * Memory held per reader is bounded by `bufferSize` + `maxFrameSize` plus the
 * completed frames not yet taken with `next`.
 */
export class FrameReader {
  /** The limit given at construction. */
  readonly maxFrameSize: number

  // Reused for every `source.read` call so steady-state reading allocates
  // nothing but the frames themselves.
  private readonly readBuf: Buffer
  private readonly prefix = Buffer.alloc(PREFIX_SIZE)
  private prefixFilled = 0
  // Payload of a frame that straddles reads; allocated at its exact size once
  // the (already checked) prefix is known, as amy does.
  private current: Buffer | null = null
  private currentFilled = 0
  private readonly completed = new Queue<Buffer>()
  private failure: AmyError | undefined
  private isEnded = false

  constructor(options: FrameReaderOptions) {
    const opts = checkOptions('options', options)
    this.maxFrameSize = checkInteger('options.maxFrameSize', opts['maxFrameSize'], 0, FRAME_SIZE_LIMIT)
    this.readBuf = Buffer.allocUnsafe(checkBufferSize('options.bufferSize', opts['bufferSize']))
  }

  /** True once a `readFrom` call saw end of stream (the source returned 0). */
  get ended(): boolean {
    return this.isEnded
  }

  /** Number of complete frames waiting to be taken with `next`. */
  get pendingFrames(): number {
    return this.completed.length
  }

  /**
   * Bytes of an incomplete frame (prefix included) held internally. Non-zero
   * after `ended` means the peer closed mid-frame.
   */
  get partialBytes(): number {
    return this.current === null ? this.prefixFilled : PREFIX_SIZE + this.currentFilled
  }

  /**
   * Reads from `source` until it would block or ends, queueing every complete
   * frame. Returns the number of bytes read by this call. On end of stream
   * sets `ended` and returns the bytes read before it. Errors thrown by the
   * source propagate; bytes read before them have already been parsed.
   *
   * @throws AmyError `ERR_FRAME_TOO_LARGE` if a prefix exceeds `maxFrameSize`
   *   (now or in an earlier call).
   */
  readFrom(source: ByteSource): number {
    checkSource(source)
    this.throwIfFailed()
    let total = 0
    for (;;) {
      const n = source.read(this.readBuf)
      if (n === null) return total
      if (checkTransferred('source.read', n, this.readBuf.length) === 0) {
        this.isEnded = true
        return total
      }
      total += n
      this.consume(this.readBuf, n)
    }
  }

  /**
   * Feeds bytes the caller already holds. They are copied as needed; `bytes`
   * may be reused as soon as this returns.
   *
   * @throws AmyError `ERR_FRAME_TOO_LARGE` as for `readFrom`.
   */
  push(bytes: Uint8Array): void {
    this.throwIfFailed()
    if (!(bytes instanceof Uint8Array)) {
      throw new AmyError('ERR_INVALID_ARG_TYPE', `bytes must be a Uint8Array, got ${typeof bytes}`)
    }
    const chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.consume(chunk, chunk.length)
  }

  /** The oldest complete frame's payload (prefix stripped), or undefined if none. */
  next(): Buffer | undefined {
    return this.completed.shift()
  }

  /** Yields, and removes, every complete frame, including ones that arrive while iterating. */
  *frames(): Generator<Buffer, void, undefined> {
    for (let frame = this.next(); frame !== undefined; frame = this.next()) {
      yield frame
    }
  }

  /** Iterates the complete frames received so far (as `next()` until undefined). */
  [Symbol.iterator](): Generator<Buffer, void, undefined> {
    return this.frames()
  }

  /** Parses `chunk[0, end)`. Must copy anything it keeps: `chunk` may be the reused read buffer. */
  private consume(chunk: Buffer, end: number): void {
    let i = 0
    while (i < end) {
      if (this.current !== null) {
        const take = Math.min(this.current.length - this.currentFilled, end - i)
        chunk.copy(this.current, this.currentFilled, i, i + take)
        this.currentFilled += take
        i += take
        if (this.currentFilled === this.current.length) {
          this.completed.push(this.current)
          this.current = null
          this.currentFilled = 0
        }
        continue
      }

      let length: number
      if (this.prefixFilled === 0 && end - i >= PREFIX_SIZE) {
        // Fast path: the whole prefix is in this chunk.
        length = chunk.readUInt32BE(i)
        i += PREFIX_SIZE
      } else {
        const take = Math.min(PREFIX_SIZE - this.prefixFilled, end - i)
        chunk.copy(this.prefix, this.prefixFilled, i, i + take)
        this.prefixFilled += take
        i += take
        if (this.prefixFilled < PREFIX_SIZE) return
        this.prefixFilled = 0
        length = this.prefix.readUInt32BE(0)
      }

      // Checked before any allocation: a hostile prefix must cost nothing.
      if (length > this.maxFrameSize) {
        this.failure = new AmyError(
          'ERR_FRAME_TOO_LARGE',
          `frame length ${length} exceeds maxFrameSize ${this.maxFrameSize}`,
        )
        throw this.failure
      }

      if (end - i >= length) {
        // Whole payload present (always true for zero-length frames).
        const frame = Buffer.allocUnsafe(length)
        chunk.copy(frame, 0, i, i + length)
        this.completed.push(frame)
        i += length
      } else {
        this.current = Buffer.allocUnsafe(length)
        this.currentFilled = 0
      }
    }
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) {
      throw new AmyError(this.failure.code, `FrameReader is unusable after an earlier error: ${this.failure.message}`)
    }
  }
}
