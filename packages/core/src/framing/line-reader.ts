import { constants } from 'node:buffer'
import { AmyError, checkInteger } from '../errors.js'
import { type ByteSource, checkSource, checkTransferred } from './io.js'
import { checkBufferSize, checkOptions } from './options.js'
import { Queue } from './queue.js'

const LF = 0x0a
const CR = 0x0d

/** Smallest allocation for the partial-line buffer, so tiny tails don't reallocate on every byte. */
const MIN_PARTIAL_CAPACITY = 256

/** Options of a LineReader. */
export interface LineReaderOptions {
  /**
   * Longest line accepted, in bytes of UTF-8, excluding the "\n" or "\r\n"
   * terminator. Integer in [0, buffer.constants.MAX_STRING_LENGTH] (a longer
   * line could not become a JavaScript string anyway).
   */
  maxLineLength: number
  /** Size of the reusable buffer handed to `source.read`. Integer in [1, 2**30]; default 64 KiB. */
  bufferSize?: number
}

/**
 * Splits a byte stream into "\n"-terminated UTF-8 lines (amy's `LineReader`).
 * Lines are returned without the "\n" and without one "\r" just before it.
 *
 * Lines are decoded only once complete, so a multi-byte character split
 * across reads decodes correctly. Invalid UTF-8 becomes U+FFFD, as with
 * `Buffer#toString`. An unterminated tail is held until its "\n" arrives; it
 * is never returned at end of stream (check `partialBytes` after `ended` to
 * detect a truncated last line).
 *
 * `maxLineLength` is enforced as bytes arrive: once the buffered partial line
 * is longer than the limit the reader throws `ERR_LINE_TOO_LONG` without
 * buffering more, and is poisoned: `readFrom` and `push` throw the same code
 * from then on. Lines completed before the bad one can still be drained.
 */
export class LineReader {
  /** The limit given at construction. */
  readonly maxLineLength: number

  // Reused for every `source.read` call.
  private readonly readBuf: Buffer
  // Bytes of the line not yet terminated. Grows on demand, capped at
  // maxLineLength + 1 (room for a '\r' whose '\n' has not arrived yet).
  private partial: Buffer | null = null
  private partialLength = 0
  private readonly completed = new Queue<string>()
  private failure: AmyError | undefined
  private isEnded = false

  constructor(options: LineReaderOptions) {
    const opts = checkOptions('options', options)
    this.maxLineLength = checkInteger('options.maxLineLength', opts['maxLineLength'], 0, constants.MAX_STRING_LENGTH)
    this.readBuf = Buffer.allocUnsafe(checkBufferSize('options.bufferSize', opts['bufferSize']))
  }

  /** True once a `readFrom` call saw end of stream (the source returned 0). */
  get ended(): boolean {
    return this.isEnded
  }

  /** Number of complete lines waiting to be taken with `next`. */
  get pendingLines(): number {
    return this.completed.length
  }

  /** Bytes of an unterminated line held internally. */
  get partialBytes(): number {
    return this.partialLength
  }

  /**
   * Reads from `source` until it would block or ends, queueing every complete
   * line. Returns the number of bytes read by this call. On end of stream sets
   * `ended` and returns the bytes read before it. Errors thrown by the source
   * propagate; bytes read before them have already been parsed.
   *
   * @throws AmyError `ERR_LINE_TOO_LONG` if a line exceeds `maxLineLength`
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
      // A view bounded at n, so the newline search never scans stale bytes.
      this.consume(this.readBuf.subarray(0, n))
    }
  }

  /**
   * Feeds bytes the caller already holds. They are copied as needed; `bytes`
   * may be reused as soon as this returns.
   *
   * @throws AmyError `ERR_LINE_TOO_LONG` as for `readFrom`.
   */
  push(bytes: Uint8Array): void {
    this.throwIfFailed()
    if (!(bytes instanceof Uint8Array)) {
      throw new AmyError('ERR_INVALID_ARG_TYPE', `bytes must be a Uint8Array, got ${typeof bytes}`)
    }
    this.consume(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  }

  /** The oldest complete line (terminator stripped), or undefined if none. */
  next(): string | undefined {
    return this.completed.shift()
  }

  /** Yields, and removes, every complete line, including ones that arrive while iterating. */
  *lines(): Generator<string, void, undefined> {
    for (let line = this.next(); line !== undefined; line = this.next()) {
      yield line
    }
  }

  /** Iterates the complete lines received so far (as `next()` until undefined). */
  [Symbol.iterator](): Generator<string, void, undefined> {
    return this.lines()
  }

  /** Parses all of `chunk`. Must copy anything it keeps: `chunk` may view the reused read buffer. */
  private consume(chunk: Buffer): void {
    let start = 0
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start)
      if (lf === -1) {
        this.appendTail(chunk, start)
        return
      }
      this.completeLine(chunk, start, lf)
      start = lf + 1
    }
  }

  /** `chunk[start, lf)` ends the current line (after any buffered partial bytes). */
  private completeLine(chunk: Buffer, start: number, lf: number): void {
    if (this.partialLength === 0 || this.partial === null) {
      // Common case: the whole line is in this chunk; decode straight from it.
      const stop = lf > start && chunk[lf - 1] === CR ? lf - 1 : lf
      this.checkLength(stop - start)
      this.completed.push(chunk.toString('utf8', start, stop))
      return
    }
    const total = this.partialLength + (lf - start)
    const last = lf > start ? chunk[lf - 1] : this.partial[this.partialLength - 1]
    const contentLength = last === CR ? total - 1 : total
    this.checkLength(contentLength)
    // total <= maxLineLength + 1 here, so this stays within the cap.
    const partial = this.reserve(total)
    chunk.copy(partial, this.partialLength, start, lf)
    this.completed.push(partial.toString('utf8', 0, contentLength))
    this.partialLength = 0
    // Don't pin a buffer sized for one unusually long line forever.
    if (partial.length > this.readBuf.length) this.partial = null
  }

  /** `chunk[start, end)` has no "\n": hold it until the rest of the line arrives. */
  private appendTail(chunk: Buffer, start: number): void {
    const total = this.partialLength + (chunk.length - start)
    // One byte over is fine if it is a '\r': it may be the start of "\r\n",
    // which does not count toward the limit.
    if (total > this.maxLineLength && !(total === this.maxLineLength + 1 && chunk[chunk.length - 1] === CR)) {
      this.checkLength(total)
    }
    chunk.copy(this.reserve(total), this.partialLength, start)
    this.partialLength = total
  }

  /** Returns the partial buffer with room for `needed` bytes, keeping its contents. */
  private reserve(needed: number): Buffer {
    const old = this.partial
    if (old !== null && old.length >= needed) return old
    const cap = this.maxLineLength + 1
    const size = Math.min(cap, Math.max(needed, MIN_PARTIAL_CAPACITY, old === null ? 0 : old.length * 2))
    const grown = Buffer.allocUnsafe(size)
    if (old !== null) old.copy(grown, 0, 0, this.partialLength)
    this.partial = grown
    return grown
  }

  private checkLength(length: number): void {
    if (length > this.maxLineLength) {
      this.failure = new AmyError('ERR_LINE_TOO_LONG', `line longer than maxLineLength ${this.maxLineLength} bytes`)
      throw this.failure
    }
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) {
      throw new AmyError(this.failure.code, `LineReader is unusable after an earlier error: ${this.failure.message}`)
    }
  }
}
