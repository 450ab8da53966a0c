import native from './native.js'
import { AmyError, checkInteger } from './errors.js'
import { fdOf, type Source } from './source.js'

/**
 * True where SplicePipe moves bytes inside the kernel with splice(2)
 * (Linux). Elsewhere SplicePipe works the same through a native buffer: the
 * bytes still never enter JavaScript.
 */
export const spliceSupported: boolean = native.spliceSupported

/** Options of `new SplicePipe()`. */
export interface SplicePipeOptions {
  /**
   * Bytes the pipe may hold (default: the system's, 64 KiB). Linux rounds
   * up to a power-of-two number of pages; a request above
   * /proc/sys/fs/pipe-max-size keeps the default. Read `capacity` back.
   */
  capacity?: number
}

/**
 * What one `transfer()` or `flush()` did. SplicePipe returns the same object
 * every time, overwritten by the next call: copy the fields you keep.
 */
export interface TransferResult {
  /** Bytes taken from the source by this call. */
  movedIn: number
  /** Bytes given to the destination by this call. */
  movedOut: number
  /** The source reported end of stream. */
  sourceEof: boolean
  /** The source would block: nothing more until its next readable notification. */
  sourceDrained: boolean
  /** The destination would block with bytes left in the pipe: flush() on its writable notification. */
  destBlocked: boolean
  /** Bytes left in the pipe (never more than `capacity`). */
  buffered: number
}

const MAX_CAPACITY = 2147483647

/**
 * Moves bytes from one socket to another without them entering JavaScript:
 * on Linux a kernel pipe between two splice(2) calls; for a TCP proxy.
 * One SplicePipe per direction. It owns two fds until `close()`.
 *
 * Driving it with edge-triggered notifications (register the source for
 * Read and the destination for Write):
 * - source readable: `transfer(source, destination)`.
 * - destination writable: `flush(destination)`; if `buffered` is then 0,
 *   `transfer(...)` again: the source may hold bytes that no new readable
 *   notification will announce.
 * - `sourceEof` and `buffered === 0`: `destination.shutdown('write')` to
 *   forward end of stream.
 * - none of sourceDrained, sourceEof, destBlocked: `maxBytes` was reached;
 *   call again later (e.g. setImmediate), no notification will come.
 *
 * Failures (ECONNRESET, EPIPE, ...) throw Errors with `code`, `errno` and
 * `syscall: 'splice'`. Never raises SIGPIPE. Not for sharing between threads.
 */
export class SplicePipe {
  readonly #native: InstanceType<typeof native.NativeSplicePipe>
  readonly #raw = new Float64Array(6)
  readonly #result: TransferResult = {
    movedIn: 0,
    movedOut: 0,
    sourceEof: false,
    sourceDrained: false,
    destBlocked: false,
    buffered: 0,
  }
  #closed = false

  constructor(options: SplicePipeOptions = {}) {
    if (options === null || typeof options !== 'object') throw new AmyError('ERR_INVALID_ARG_TYPE', 'SplicePipe options must be an object')
    const capacity = checkInteger('capacity', options.capacity ?? 0, 0, MAX_CAPACITY)
    this.#native = new native.NativeSplicePipe(capacity, this.#raw)
  }

  /**
   * Splices from `from` into the pipe and from the pipe into `to`, looping
   * while either moves bytes, until the source would block or ends, the
   * destination would block, or `maxBytes` came in (default 1 MiB, for
   * fairness between connections). Returns the reused result object.
   */
  transfer(from: Source, to: Source, maxBytes: number = 1 << 20): TransferResult {
    this.#check()
    const fromFd = fdOf(from)
    const toFd = fdOf(to)
    if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new AmyError('ERR_INVALID_ARG_VALUE', `maxBytes must be a non-negative integer, got ${String(maxBytes)}`)
    }
    this.#native.transfer(fromFd, toFd, maxBytes)
    return this.#publish()
  }

  /** Pipe → destination only (for its writable notification). Returns the reused result object. */
  flush(to: Source): TransferResult {
    this.#check()
    this.#native.flush(fdOf(to))
    return this.#publish()
  }

  /** Bytes in the pipe: spliced in, not yet out. */
  get buffered(): number {
    return this.#native.buffered
  }

  /** The capacity granted, in bytes. */
  get capacity(): number {
    return this.#native.capacity
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** Closes the pipe's fds; bytes still buffered are dropped. Idempotent. */
  close(): void {
    this.#closed = true
    this.#native.close()
  }

  #check(): void {
    if (this.#closed) throw new AmyError('ERR_PIPE_CLOSED', 'the SplicePipe is closed')
  }

  #publish(): TransferResult {
    const raw = this.#raw
    const r = this.#result
    r.movedIn = raw[0]!
    r.movedOut = raw[1]!
    r.sourceEof = raw[2] === 1
    r.sourceDrained = raw[3] === 1
    r.destBlocked = raw[4] === 1
    r.buffered = raw[5]!
    return r
  }
}
