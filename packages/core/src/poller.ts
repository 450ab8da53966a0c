import native, { type NativePoller } from './native.js'
import { AmyError, checkInteger } from './errors.js'
import type { Notification } from './notification.js'
import { Registrar } from './registrar.js'

/** Options of `new Poller()`. */
export interface PollerOptions {
  /** Most notifications in one batch (default 1024). More wait for the next batch. */
  capacity?: number
  /**
   * close() also closes every fd still registered with this poller (and the
   * poller closes when its thread exits). For a worker that owns its
   * connections: if the thread dies, its sockets are closed, not leaked.
   */
  ownsRegisteredFds?: boolean
}

/**
 * The raw form of a batch, for hot loops that want no objects per event:
 * `ids[i]` and `flags[i]` for i < count (flags: 1 readable, 2 writable,
 * 4 hangup, 8 error). Valid only during the call.
 */
export type RawBatchHandler = (count: number, ids: Float64Array, flags: Uint8Array) => void

// Batches handled per wake-up of the event loop: after each, the selector is
// polled again at once (what arrived meanwhile), up to this many, before
// timers, I/O and microtasks of the thread get their turn.
const ROUNDS_PER_WAKE = 8

const READABLE = 1
const WRITABLE = 2
const HANGUP = 4
const ERROR = 8

/**
 * One kernel selector (epoll on Linux, kqueue on macOS/BSD) and the
 * notifications of everything registered with it. One per thread that does
 * I/O. Two ways to drive it:
 *
 * - `wait(timeoutMs)` blocks this thread and returns a batch (for a thread
 *   that does nothing else);
 * - `start(onBatch)` attaches the selector to this thread's Node event loop
 *   and calls `onBatch` once per batch, never blocking; timers, promises and
 *   messages of the thread keep running.
 *
 * The contract (as in mio): readiness is edge-triggered, so on a
 * notification read or write until the call reports it would block (`null`),
 * or you may not hear about that source again. Notifications can be
 * spurious: a read after one may return `null` at once.
 */
export class Poller {
  /** Registers sources, timers and channels into this poller, from any thread (pass `registrar.handle`). */
  readonly registrar: Registrar
  readonly #native: NativePoller
  readonly #ids: Float64Array
  readonly #flags: Uint8Array
  readonly #id: number
  #closed = false
  #started = false

  constructor(options: PollerOptions = {}) {
    if (options === null || typeof options !== 'object') throw new AmyError('ERR_INVALID_ARG_TYPE', 'Poller options must be an object')
    const capacity = checkInteger('capacity', options.capacity ?? 1024, 1, 1 << 20)
    this.#ids = new Float64Array(capacity)
    this.#flags = new Uint8Array(capacity)
    this.#native = new native.NativePoller(this.#ids, this.#flags)
    this.#id = this.#native.id
    if (options.ownsRegisteredFds === true) this.#native.setOwnsSources(true)
    this.registrar = new Registrar(this.#id)
  }

  /** Process-unique id of this poller. */
  get id(): number {
    return this.#id
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** True while start() attaches it to this thread's event loop. */
  get started(): boolean {
    return this.#started
  }

  /**
   * Blocks until something is ready or `timeoutMs` passes (no timeout: until
   * something arrives; 0: just poll). Returns the batch, possibly empty.
   */
  wait(timeoutMs?: number): Notification[] {
    this.#checkOpen()
    if (this.#started) throw new AmyError('ERR_POLLER_STARTED', 'wait() cannot be used while the poller is started')
    let timeout = -1
    if (timeoutMs !== undefined) {
      if (typeof timeoutMs !== 'number') throw new AmyError('ERR_INVALID_ARG_TYPE', `timeoutMs must be a number, got ${typeof timeoutMs}`)
      if (Number.isNaN(timeoutMs) || timeoutMs < 0) {
        throw new AmyError('ERR_INVALID_ARG_VALUE', `timeoutMs must be a number >= 0, got ${String(timeoutMs)}`)
      }
      timeout = timeoutMs === Infinity ? -1 : timeoutMs
    }
    return this.#batch(this.#native.wait(timeout))
  }

  /**
   * Attaches to this thread's event loop: `onBatch(notifications)` is called
   * once per batch. A started poller keeps the loop alive until `stop()`,
   * `close()` or `unref()`. An exception from onBatch goes to
   * `process.on('uncaughtException')`, like one from any other I/O callback.
   */
  start(onBatch: (notifications: Notification[]) => void): void {
    this.#checkOpen()
    if (typeof onBatch !== 'function') throw new AmyError('ERR_INVALID_ARG_TYPE', 'onBatch must be a function')
    this.startRaw(count => onBatch(this.#batch(count)))
  }

  /** Like start(), but hands over the shared id/flag arrays instead of notification objects. */
  startRaw(onBatch: RawBatchHandler): void {
    this.#checkOpen()
    if (typeof onBatch !== 'function') throw new AmyError('ERR_INVALID_ARG_TYPE', 'onBatch must be a function')
    if (this.#started) throw new AmyError('ERR_POLLER_STARTED', 'the poller is already started')
    const ids = this.#ids
    const flags = this.#flags
    const native = this.#native
    const pollNow = native.pollNowFunction()
    native.start((count: number) => {
      for (let round = 1; count > 0; round++) {
        onBatch(count, ids, flags)
        if (round === ROUNDS_PER_WAKE || !this.#started) break
        count = pollNow()
      }
    })
    this.#started = true
  }

  /**
   * Opens this poller's fd inbox: other threads hand fds over with
   * `registrar.handOver(fds)`, and a readable notification with the
   * returned id means fds wait (take them with `takeFds`). Fds handed over
   * but never taken are closed when the poller closes.
   */
  openFdInbox(): number {
    this.#checkOpen()
    return this.#native.openInbox()
  }

  /**
   * Moves fds handed over to this poller into `out`, and each one's
   * hand-off tag into `tags` (at least as long as `out`) if given; returns
   * how many. Take until 0.
   */
  takeFds(out: Int32Array, tags?: Float64Array): number {
    this.#checkOpen()
    return this.#native.takeHandedOver(out, tags)
  }

  /** Detaches from the event loop; registrations stay. */
  stop(): void {
    if (this.#closed) return
    this.#native.stop()
    this.#started = false
  }

  /** A started poller does not keep the event loop alive after this. */
  unref(): this {
    this.#native.setRef(false)
    return this
  }

  /** Undoes unref(): a started poller keeps the event loop alive again. */
  ref(): this {
    this.#native.setRef(true)
    return this
  }

  /**
   * Closes the selector's fd, its timers and its channels. Idempotent. The
   * fds you registered stay open: they are yours to close. Any later use of
   * the poller or its registrar throws ERR_POLLER_CLOSED.
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#started = false
    this.#native.close()
  }

  #checkOpen(): void {
    if (this.#closed) throw new AmyError('ERR_POLLER_CLOSED', 'the poller is closed')
  }

  #batch(count: number): Notification[] {
    const ids = this.#ids
    const flags = this.#flags
    const out: Notification[] = new Array(count)
    for (let i = 0; i < count; i++) {
      const f = flags[i]!
      out[i] = {
        id: ids[i]!,
        readable: (f & READABLE) !== 0,
        writable: (f & WRITABLE) !== 0,
        hangup: (f & HANGUP) !== 0,
        error: (f & ERROR) !== 0,
      }
    }
    return out
  }
}
