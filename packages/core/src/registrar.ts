import native, { type NativeRegistrar } from './native.js'
import { AmyError } from './errors.js'
import { checkInterest, type Interest } from './interest.js'
import { fdOf, isTracked, kTrackRegistration, type Source } from './source.js'
import { Receiver, Sender, type ChannelOptions } from './channel.js'

/** A plain, structured-cloneable value that rebuilds a Registrar in any thread. */
export interface RegistrarHandle {
  /** Marks the object as a RegistrarHandle. */
  readonly kind: 'amy.Registrar'
  /** The poller's process-wide id. */
  readonly pollerId: number
}

const MAX_TIMER_MS = 2147483647 * 1000

function checkDuration(name: string, ms: unknown, allowZero: boolean): number {
  if (typeof ms !== 'number') throw new AmyError('ERR_INVALID_ARG_TYPE', `${name} must be a number`)
  if (!Number.isFinite(ms) || ms < 0 || (!allowZero && ms === 0) || ms > MAX_TIMER_MS) {
    throw new AmyError('ERR_INVALID_ARG_VALUE', `${name} must be a finite number of milliseconds ${allowZero ? '>= 0' : '> 0'}, got ${ms}`)
  }
  return ms
}

/**
 * Registers sources, timers and channels into one poller. Thread-safe: any
 * thread may hold a Registrar for any poller (`Registrar.from(handle)`), and
 * registering never wakes the poller — the kernel queue picks it up.
 *
 * Ids are unique in the process and never reused, so a notification can
 * never be mistaken for a later registration of the same fd number. After
 * `deregister(id)` (or `cancelTimeout(id)`) returns on the poller's thread,
 * no later `wait()` or batch carries that id.
 */
export class Registrar {
  readonly #native: NativeRegistrar
  readonly #pollerId: number
  // deregisterAndClose without the addon looking this registrar up per call.
  readonly #close: (id: number, fd: number) => void

  /** @internal use `poller.registrar` or `Registrar.from(handle)`. */
  constructor(pollerId: number) {
    this.#native = new native.NativeRegistrar(pollerId)
    this.#pollerId = pollerId
    this.#close = this.#native.closer()
  }

  /** Rebuilds the registrar of a poller in this thread (throws ERR_POLLER_CLOSED if it is gone). */
  static from(handle: RegistrarHandle): Registrar {
    if (handle === null || typeof handle !== 'object' || handle.kind !== 'amy.Registrar' || typeof handle.pollerId !== 'number') {
      throw new AmyError('ERR_INVALID_ARG_TYPE', 'expected a RegistrarHandle (registrar.handle)')
    }
    return new Registrar(handle.pollerId)
  }

  /** Plain data that rebuilds this registrar on another thread (`Registrar.from`). */
  get handle(): RegistrarHandle {
    return { kind: 'amy.Registrar', pollerId: this.#pollerId }
  }

  /** The poller's process-wide id. */
  get pollerId(): number {
    return this.#pollerId
  }

  /** Registers an fd (or a TcpStream/TcpListener) and returns its id: a fresh one, or `reservedId` (from reserveId()). */
  register(source: Source, interest: Interest, reservedId?: number): number {
    const fd = fdOf(source)
    const id = this.#native.register(fd, checkInterest(interest), reservedId)
    if (isTracked(source)) source[kTrackRegistration](this, id, true)
    return id
  }

  /** Changes what an existing registration waits for. */
  reregister(id: number, source: Source, interest: Interest): void {
    this.#native.reregister(id, fdOf(source), checkInterest(interest))
  }

  /** Removes a registration; false if the id was not registered here. */
  deregister(id: number): boolean {
    return this.#native.deregister(id)
  }

  /**
   * @internal deregister(id), then close `fd`, in one call into the addon
   * (a socket's close: OwnedSocket via Registrations). The fd is closed in
   * every case.
   */
  deregisterAndClose(id: number, fd: number): void {
    this.#close(id, fd)
  }

  /**
   * @internal TcpListener#acceptRegistered: accepts from `listenFd` and
   * registers each connection for `interest` in one call into the addon.
   */
  acceptRegistered(listenFd: number, fds: Int32Array, ids: Float64Array, noDelay: boolean, interest: Interest): number {
    return this.#native.acceptRegistered(listenFd, fds, ids, noDelay, checkInterest(interest))
  }

  /** A one-shot timer: one readable notification for the id after `ms` (never early). */
  setTimeout(ms: number): number {
    return this.#native.setTimer(checkDuration('ms', ms, true), 0)
  }

  /** A repeating timer, every `ms`, scheduled by the kernel so it does not drift. */
  setInterval(ms: number): number {
    const interval = checkDuration('ms', ms, false)
    return this.#native.setTimer(interval, interval)
  }

  /** Stops a timer; false if it already fired (one-shot) or was cancelled. */
  cancelTimeout(id: number): boolean {
    return this.#native.cancelTimer(id)
  }

  /**
   * Hands `fds[0..count)` to the poller's thread (see `poller.openFdInbox`):
   * one call and at most one wake-up for a whole batch. Returns false if the
   * poller is closed or has no inbox: the fds are still yours then. On true
   * they belong to the poller's thread. Each fd carries `tag` (an integer
   * in [0, 2^53), default 0) to `poller.takeFds`: say, which listener it
   * came from.
   */
  handOver(fds: Int32Array, count: number = fds.length, tag = 0): boolean {
    return this.#native.handOver(fds, count, tag)
  }

  /**
   * A fresh process-wide id, registered nowhere yet: pass it as
   * `register(source, interest, id)` later to give a source an id known
   * before the source exists (the server's connections to a host name get
   * their id before the name is resolved). ERR_INVALID_ARG_VALUE for an id
   * not from reserveId() or already registered.
   */
  reserveId(): number {
    return this.#native.reserveId()
  }

  /**
   * Whether a source registered here (not a timer or channel) has this id,
   * from any thread: one mutex and one hash lookup. The server uses it to
   * find the worker that serves a connection id without a message.
   */
  has(id: number): boolean {
    return this.#native.has(id)
  }

  /** Live registrations plus fds waiting in the inbox: a load measure any thread can read. */
  load(): number {
    return this.#native.load()
  }

  /** Whether the poller behind this registrar is closed. */
  get closed(): boolean {
    return this.#native.closed
  }

  /** How many fds the poller closed on its owner's behalf when it closed (ownsRegisteredFds, inbox). */
  get closedOnClose(): number {
    return this.#native.closedOnClose
  }

  /**
   * A channel whose receiver wakes this registrar's poller. The sender works
   * from any thread (`Sender.from(sender.handle)`); N sends before a receive
   * wake the poller once. `bound` limits queued values (0: unbounded).
   */
  channel<T = unknown>(options: ChannelOptions = {}): [Sender<T>, Receiver<T>] {
    const bound = options.bound ?? 0
    if (!Number.isInteger(bound) || bound < 0) {
      throw new AmyError('ERR_INVALID_ARG_VALUE', `bound must be an integer >= 0, got ${String(bound)}`)
    }
    const receiver = new Receiver<T>(this.#native.openChannel(bound))
    return [Sender.from<T>({ kind: 'amy.Sender', channelId: receiver.id }), receiver]
  }
}
