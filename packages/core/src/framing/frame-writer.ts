import { AmyError, checkInteger } from '../errors.js'
import { type ByteSink, checkSink, checkTransferred } from './io.js'
import { checkOptions } from './options.js'
import { Queue } from './queue.js'

/** Size of the big-endian u32 length prefix in front of every frame. */
const PREFIX_SIZE = 4

/** Largest payload a u32 prefix can describe. */
const MAX_PAYLOAD = 2 ** 32 - 1

/** Buffers offered per `writev` call; Linux and macOS reject more than IOV_MAX (1024). */
const MAX_IOV = 1024

/** Options of a FrameWriter. */
export interface FrameWriterOptions {
  /**
   * Most bytes (length prefixes included) allowed to wait in the queue; a
   * `write` that would exceed it throws `ERR_WRITE_QUEUE_FULL`. Integer in
   * [0, Number.MAX_SAFE_INTEGER]; default unlimited. Must be at least
   * 4 + the largest frame you send.
   */
  maxQueuedBytes?: number
}

/**
 * Writes frames, each a 4-byte big-endian length followed by the payload,
 * to a non-blocking sink (amy's `FrameWriter`), queueing whatever the sink
 * does not take yet.
 *
 * Frames are queued by reference, not copied: do not modify a frame's bytes
 * until a `write`/`flush` call returns true (or `queuedBytes` is 0).
 *
 * Unlike amy's writer this one keeps no "writable" flag: every call tries the
 * sink, and a `false` result means "wait for a writable notification, then
 * call `flush`".
 */
export class FrameWriter {
  /** The limit given at construction (Infinity when unlimited). */
  readonly maxQueuedBytes: number

  // Prefixes and payloads in send order; `offset` bytes of the first chunk
  // are already written. Empty payloads are never queued, so no chunk is empty.
  private readonly chunks = new Queue<Uint8Array>()
  private offset = 0
  private queued = 0

  constructor(options: FrameWriterOptions = {}) {
    const opts = checkOptions('options', options)
    const max = opts['maxQueuedBytes']
    this.maxQueuedBytes =
      max === undefined ? Infinity : checkInteger('options.maxQueuedBytes', max, 0, Number.MAX_SAFE_INTEGER)
  }

  /** Bytes (prefixes included) queued and not yet accepted by the sink. */
  get queuedBytes(): number {
    return this.queued
  }

  /**
   * Queues `frame` (if given) behind its length prefix, then writes as much of
   * the queue as `sink` accepts. Returns true when the queue is empty, false
   * when bytes remain because the sink would block. Errors thrown by the sink
   * propagate with the queue intact (including `frame`).
   *
   * @throws AmyError `ERR_FRAME_TOO_LARGE` if `frame` is longer than 2**32-1
   *   bytes; `ERR_WRITE_QUEUE_FULL` if queueing it would exceed
   *   `maxQueuedBytes` even after flushing (the frame is then not queued and
   *   the writer stays usable); `ERR_INVALID_ARG_TYPE` if it is not a Uint8Array.
   */
  write(sink: ByteSink, frame?: Uint8Array): boolean {
    checkSink(sink)
    if (frame !== undefined) {
      if (!(frame instanceof Uint8Array)) {
        throw new AmyError('ERR_INVALID_ARG_TYPE', `frame must be a Uint8Array, got ${typeof frame}`)
      }
      if (frame.byteLength > MAX_PAYLOAD) {
        throw new AmyError('ERR_FRAME_TOO_LARGE', `frame length ${frame.byteLength} exceeds ${MAX_PAYLOAD}`)
      }
      const size = PREFIX_SIZE + frame.byteLength
      if (this.queued + size > this.maxQueuedBytes) {
        // The queue may only be full because nobody flushed since the sink
        // became writable again; make room before refusing.
        this.flush(sink)
        if (this.queued + size > this.maxQueuedBytes) {
          throw new AmyError(
            'ERR_WRITE_QUEUE_FULL',
            `queueing ${size} bytes would exceed maxQueuedBytes ${this.maxQueuedBytes} (${this.queued} queued)`,
          )
        }
      }
      this.enqueue(frame)
    }
    return this.flush(sink)
  }

  /**
   * Writes as much of the queue as `sink` accepts. Returns true when the queue
   * is empty, false when the sink would block (or accepted 0 bytes).
   */
  flush(sink: ByteSink): boolean {
    checkSink(sink)
    while (this.queued > 0) {
      let written: number | null
      let offered: number
      if (sink.writev !== undefined) {
        const bufs: Uint8Array[] = []
        offered = 0
        for (let k = 0; k < this.chunks.length && k < MAX_IOV; k++) {
          const chunk = this.chunks.at(k)
          if (chunk === undefined) break
          const buf = k === 0 ? this.unwritten(chunk) : chunk
          bufs.push(buf)
          offered += buf.byteLength
        }
        written = sink.writev(bufs)
      } else {
        const first = this.chunks.at(0)
        if (first === undefined) break
        const buf = this.unwritten(first)
        offered = buf.byteLength
        written = sink.write(buf)
      }
      if (written === null) return false
      // 0 for a non-empty offer means the sink is full; retrying would spin.
      if (checkTransferred(sink.writev !== undefined ? 'sink.writev' : 'sink.write', written, offered) === 0) {
        return false
      }
      this.advance(written)
    }
    return true
  }

  private enqueue(frame: Uint8Array): void {
    const prefix = Buffer.allocUnsafe(PREFIX_SIZE)
    prefix.writeUInt32BE(frame.byteLength, 0)
    this.chunks.push(prefix)
    if (frame.byteLength > 0) this.chunks.push(frame)
    this.queued += PREFIX_SIZE + frame.byteLength
  }

  private unwritten(chunk: Uint8Array): Uint8Array {
    return this.offset === 0 ? chunk : chunk.subarray(this.offset)
  }

  /** Drops `n` written bytes from the front of the queue, possibly mid-chunk. */
  private advance(n: number): void {
    this.queued -= n
    let left = n
    while (left > 0) {
      const chunk = this.chunks.at(0)
      if (chunk === undefined) return
      const rest = chunk.byteLength - this.offset
      if (left < rest) {
        this.offset += left
        return
      }
      left -= rest
      this.chunks.shift()
      this.offset = 0
    }
  }
}
