import { Interest, TcpListener, type Poller } from '@amy/core'
import type { Logger } from 'pino'
import { ACCEPT_BATCH, AcceptLoop } from './accept-loop.js'
import { inboundInterest } from './connection.js'
import { STAT, STAT_SLOTS } from './stats.js'

/**
 * `balance: 'reuseport'`: this worker's own SO_REUSEPORT listeners (one per
 * listen() address, bound by the main thread and handed over by message).
 * The kernel spreads new connections over the workers' listeners by a hash
 * of the 4-tuple, and the worker accepts them on its own poller: no main
 * thread accept, no hand-off, no cross-thread wake-up per batch.
 * maxConnections is checked against the open connections of all workers
 * (the shared stats), as the acceptor does.
 */
export class WorkerListeners {
  readonly #listeners = new Map<number, TcpListener>()
  // A TLS address's listener: its context id, what adopt() gets (absent: plain TCP).
  readonly #tls = new Map<TcpListener, number>()
  readonly #all: Float64Array
  readonly #loop: AcceptLoop
  // The registration id of each fd of an accept batch.
  readonly #ids = new Float64Array(ACCEPT_BATCH)

  constructor(
    readonly poller: Poller,
    /** Serves one accepted, non-blocking fd already registered with `poller` under `id` (the runtime opens a Connection; TLS with that context id). */
    readonly adopt: (fd: number, id: number, tlsContextId: number) => void,
    readonly stats: Float64Array,
    /** Every worker's stats (the whole shared buffer). */
    statsBuffer: SharedArrayBuffer,
    readonly maxConnections: number,
    readonly log: Logger,
  ) {
    this.#all = new Float64Array(statsBuffer)
    this.#loop = new AcceptLoop(
      log,
      () => {
        for (const listener of this.#listeners.values()) this.#acceptAll(listener)
      },
      () => {
        this.stats[STAT.acceptFailures] = this.stats[STAT.acceptFailures]! + 1
      },
    )
  }

  /**
   * Takes a listening socket the main thread bound for this worker; this
   * worker's poller owns it from now on. `tlsContextId`: the address's TLS
   * context (0: plain TCP).
   */
  add(fd: number, tlsContextId = 0): void {
    const listener = TcpListener.fromFd(fd)
    const id = this.poller.registrar.register(listener, Interest.Read)
    this.#listeners.set(id, listener)
    if (tlsContextId !== 0) this.#tls.set(listener, tlsContextId)
    // Connections already queued raise no new edge.
    this.accept(id)
  }

  /** True if the notification id is one of these listeners (then it was accepted from). */
  accept(id: number): boolean {
    const listener = this.#listeners.get(id)
    if (listener === undefined) return false
    this.#acceptAll(listener)
    return true
  }

  /** setSecureContext: the listeners with TLS context `from` take `to` for what they accept from now on. */
  switchTls(from: number, to: number): void {
    for (const [listener, id] of this.#tls) if (id === from) this.#tls.set(listener, to)
  }

  #acceptAll(listener: TcpListener): void {
    const tls = this.#tls.get(listener) ?? 0
    const registrar = this.poller.registrar
    const ids = this.#ids
    // Each connection is registered in the accept call itself: one call
    // into the addon per batch, not one register per connection.
    this.#loop.drain(
      fds => listener.acceptRegistered(registrar, fds, ids, inboundInterest(tls !== 0)),
      (fds, n) => {
        this.stats[STAT.accepted] = this.stats[STAT.accepted]! + n
        for (let i = 0; i < n; i++) {
          if (this.maxConnections > 0 && this.#open() >= this.maxConnections) {
            this.stats[STAT.rejected] = this.stats[STAT.rejected]! + 1
            registrar.deregisterAndClose(ids[i]!, fds[i]!)
          } else this.adopt(fds[i]!, ids[i]!, tls)
        }
      },
    )
  }

  #open(): number {
    const all = this.#all
    let open = 0
    for (let i = STAT.connections; i < all.length; i += STAT_SLOTS) open += all[i]!
    return open
  }

  /** Stops accepting (drain, close): the listeners are deregistered and closed; connections still queued on them are reset by the kernel. */
  close(): void {
    this.#loop.close()
    for (const listener of this.#listeners.values()) listener.close() // deregisters it too
    this.#listeners.clear()
  }
}
