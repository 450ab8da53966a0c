import { Interest, Poller, TcpListener, TcpStream, UnixListener, type SocketAddress, type TlsContext, type UnixSocketAddress } from '@amy/core'
import type { BaseLogger as Logger } from 'pino'
import { ACCEPT_BATCH, AcceptLoop } from './accept-loop.js'
import type { AddressLimit } from './address-limit.js'
import type { ListenTarget } from './listen-options.js'
import type { WorkerSlot } from './worker-slot.js'

// A replaced TLS context stays referenced this long, so fds tagged with its
// id and still waiting in a worker's inbox find it (ms).
const RETIRED_CONTEXT_MS = 60_000

type Listener = TcpListener | UnixListener

/**
 * The main thread's side: listeners on one Poller attached to the main
 * event loop. On a readable listener it accepts a batch (one call), picks
 * the least-loaded worker for each connection (live connections, read from
 * each worker's poller without a message), and hands each worker its share
 * in one call. Past maxConnections, connections are accepted and closed at
 * once, so none waits in the backlog.
 */
export class Acceptor {
  readonly #poller = new Poller()
  readonly #listeners = new Map<number, Listener>()
  // A TLS listener's context: its id tags the fds handed to workers (0: plain TCP).
  readonly #tls = new Map<Listener, TlsContext>()
  readonly #retired = new Set<TlsContext>()
  readonly #retireTimers = new Set<NodeJS.Timeout>()
  readonly #loop: AcceptLoop
  // Peer host keys, filled by accept itself, only with a per-address limit.
  readonly #hosts: Uint32Array | undefined
  readonly #perWorker: Int32Array[]
  readonly #counts: number[]
  readonly #loads: number[]
  accepted = 0
  rejected = 0

  // balance 'reuseport': what each worker's own listener binds (the port
  // resolved by the first bind), for workers that start later.
  readonly #perWorkerTargets: Array<{ target: ListenTarget & { kind: 'tcp' }; address: SocketAddress; tls: TlsContext | undefined }> = []

  constructor(
    readonly slots: WorkerSlot[],
    readonly maxConnections: number,
    readonly logger: Logger,
    readonly addressLimit?: AddressLimit,
    readonly balance: 'handoff' | 'reuseport' = 'handoff',
  ) {
    this.#loop = new AcceptLoop(logger, () => {
      for (const listener of this.#listeners.values()) this.#acceptAll(listener)
    })
    if (addressLimit !== undefined) this.#hosts = new Uint32Array(ACCEPT_BATCH)
    this.#perWorker = slots.map(() => new Int32Array(ACCEPT_BATCH))
    this.#counts = slots.map(() => 0)
    this.#loads = slots.map(() => 0)
    this.#poller.start(batch => {
      for (const n of batch) {
        const listener = this.#listeners.get(n.id)
        if (listener) this.#acceptAll(listener)
      }
    })
  }

  /**
   * Binds (host already resolved to an IP) and starts accepting; Unix
   * sockets are served the same way. With `tls`, workers serve the
   * listener's connections with that context.
   */
  listen(target: ListenTarget, tls?: TlsContext): SocketAddress | UnixSocketAddress {
    if (this.balance === 'reuseport' && target.kind === 'tcp') return this.#listenPerWorker(target, tls)
    const listener: Listener =
      target.kind === 'unix'
        ? UnixListener.bind({ path: target.path, backlog: target.backlog })
        : TcpListener.bind({ host: target.host, port: target.port, backlog: target.backlog, reusePort: target.reusePort, ipv6Only: target.ipv6Only })
    let id: number
    try {
      id = this.#poller.registrar.register(listener, Interest.Read)
    } catch (err) {
      listener.close()
      throw err
    }
    this.#listeners.set(id, listener)
    if (tls !== undefined) this.#tls.set(listener, tls)
    // Connections that arrived between bind and register are already queued.
    this.#acceptAll(listener)
    return listener.address()
  }

  /** Accept calls that failed (out of fds, ...), since start. */
  get acceptFailures(): number {
    return this.#loop.failures
  }

  /** How many listeners serve TLS. */
  get tlsListeners(): number {
    return this.#tls.size + this.#perWorkerTargets.filter(entry => entry.tls !== undefined).length
  }

  /**
   * Every TLS listener's connections accepted from now on use `context`;
   * the old one is kept a while for fds already handed over with its id.
   */
  setSecureContext(context: TlsContext): void {
    const replaced: TlsContext[] = []
    for (const [listener, old] of this.#tls) {
      this.#tls.set(listener, context)
      replaced.push(old)
    }
    // balance 'reuseport': the workers' own listeners switch when the message arrives.
    for (const entry of this.#perWorkerTargets) {
      const old = entry.tls
      if (old === undefined) continue
      entry.tls = context
      replaced.push(old)
      for (const slot of this.slots) if (slot.serving) slot.send({ type: 'tls-context', from: old.id, to: context.id })
    }
    for (const old of replaced) {
      if (this.#retired.has(old)) continue
      this.#retired.add(old)
      const timer = setTimeout(() => {
        this.#retireTimers.delete(timer)
        this.#retired.delete(old)
      }, RETIRED_CONTEXT_MS)
      timer.unref()
      this.#retireTimers.add(timer)
    }
  }

  addresses(): Array<SocketAddress | UnixSocketAddress> {
    return [...this.#listeners.values()].map(l => l.address()).concat(this.#perWorkerTargets.map(t => t.address))
  }

  /**
   * balance 'reuseport': one SO_REUSEPORT listener per worker on the same
   * address, each handed to its worker, which accepts from it itself
   * (worker-listeners.ts). This thread keeps none of them.
   */
  #listenPerWorker(target: ListenTarget & { kind: 'tcp' }, tls: TlsContext | undefined): SocketAddress {
    const first = TcpListener.bind({ host: target.host, port: target.port, backlog: target.backlog, reusePort: true, ipv6Only: target.ipv6Only })
    const address = first.address()
    const entry = { target: { ...target, port: address.port }, address, tls }
    this.#perWorkerTargets.push(entry)
    for (const slot of this.slots) {
      if (slot.serving) this.#giveListener(slot, entry, slot === this.slots[0] ? first : undefined)
    }
    if (!first.closed) first.close() // worker 0 was not serving: the other listeners hold the port
    return address
  }

  /** A worker (re)started: its own listener for every reuseport address. */
  workerStarted(slot: WorkerSlot): void {
    for (const entry of this.#perWorkerTargets) {
      try {
        this.#giveListener(slot, entry)
      } catch (err) {
        this.logger.error({ err, worker: slot.index, port: entry.target.port }, 'could not bind a listener for a restarted worker; it takes no new connections')
      }
    }
  }

  #giveListener(slot: WorkerSlot, { target, tls }: { target: ListenTarget & { kind: 'tcp' }; tls: TlsContext | undefined }, listener?: TcpListener): void {
    listener ??= TcpListener.bind({ host: target.host, port: target.port, backlog: target.backlog, reusePort: true, ipv6Only: target.ipv6Only })
    // If the worker dies before it takes the message, this fd is never
    // closed and connections the kernel hashes to it wait there: a small
    // window (a worker dying in its first moments), accepted.
    slot.send({ type: 'listen', fd: listener.release(), tls: tls?.id ?? 0 })
  }

  #acceptAll(listener: Listener): void {
    const hosts = listener instanceof TcpListener ? this.#hosts : undefined
    const tag = this.#tls.get(listener)?.id ?? 0
    this.#loop.drain(
      fds => (hosts === undefined ? listener.acceptFds(fds) : (listener as TcpListener).acceptFds(fds, hosts)),
      (fds, n) => {
        this.accepted += n
        this.#distribute(fds, n, hosts, tag)
      },
    )
  }

  /** `tag`: the TLS context id of the listener (0: plain TCP), handed over with each fd. */
  #distribute(fds: Int32Array, n: number, hosts: Uint32Array | undefined, tag: number): void {
    const slots = this.slots
    const limit = this.addressLimit
    const loads = this.#loads
    let live = 0
    for (let w = 0; w < slots.length; w++) {
      const slot = slots[w]!
      const registrar = slot.registrar
      // A worker whose heartbeat went silent gets nothing new (see liveness.ts).
      loads[w] = registrar === undefined || registrar.closed || !slot.responsive ? Infinity : registrar.load()
      if (loads[w] !== Infinity) live += loads[w]!
      this.#counts[w] = 0
    }
    for (let i = 0; i < n; i++) {
      const fd = fds[i]!
      if (this.maxConnections > 0 && live >= this.maxConnections) {
        this.#reject(fd)
        continue
      }
      let countSlot = -1 // not counted: no per-address limit, or no address (Unix socket)
      if (hosts !== undefined && limit !== undefined) {
        countSlot = limit.admit(hosts[i]!)
        if (countSlot < 0) {
          limit.refuse(fd)
          continue
        }
      }
      let best = -1
      for (let w = 0; w < slots.length; w++) if (loads[w]! !== Infinity && (best < 0 || loads[w]! < loads[best]!)) best = w
      if (best < 0) {
        this.#reject(fd) // no worker is serving (all restarting)
        continue
      }
      this.#perWorker[best]![this.#counts[best]!++] = fd
      limit?.handedTo(best, fd, countSlot)
      loads[best]!++
      live++
    }
    for (let w = 0; w < slots.length; w++) {
      const count = this.#counts[w]!
      if (count === 0) continue
      const batch = this.#perWorker[w]!
      if (!slots[w]!.registrar?.handOver(batch, count, tag)) {
        // The worker died since we read its load: its fds are still ours.
        for (let i = 0; i < count; i++) {
          limit?.handOffFailed(w, batch[i]!)
          this.#reject(batch[i]!)
        }
      }
    }
  }

  #reject(fd: number): void {
    this.rejected++
    TcpStream.fromFd(fd, { adopt: false }).close()
  }

  /** Stops accepting: listeners closed, the poller detached. */
  close(): void {
    this.#loop.close()
    for (const listener of this.#listeners.values()) listener.close()
    this.#listeners.clear()
    for (const timer of this.#retireTimers) clearTimeout(timer)
    this.#retireTimers.clear()
    this.#poller.close()
  }
}
