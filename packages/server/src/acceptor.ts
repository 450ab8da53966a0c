import { Interest, Poller, TcpListener, TcpStream, UnixListener, type SocketAddress, type UnixSocketAddress } from '@amy/core'
import type { BaseLogger as Logger } from 'pino'
import type { ListenTarget } from './listen-options.js'
import type { WorkerSlot } from './worker-slot.js'

const ACCEPT_BATCH = 256

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
  readonly #fds = new Int32Array(ACCEPT_BATCH)
  readonly #perWorker: Int32Array[]
  readonly #counts: number[]
  readonly #loads: number[]
  accepted = 0
  rejected = 0

  constructor(
    readonly slots: WorkerSlot[],
    readonly maxConnections: number,
    readonly logger: Logger,
  ) {
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

  /** Binds (host already resolved to an IP) and starts accepting; Unix sockets are served the same way. */
  listen(target: ListenTarget): SocketAddress | UnixSocketAddress {
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
    // Connections that arrived between bind and register are already queued.
    this.#acceptAll(listener)
    return listener.address()
  }

  addresses(): Array<SocketAddress | UnixSocketAddress> {
    return [...this.#listeners.values()].map(l => l.address())
  }

  #acceptAll(listener: Listener): void {
    const fds = this.#fds
    for (;;) {
      let n: number
      try {
        n = listener.acceptFds(fds)
      } catch (err) {
        // EMFILE/ENFILE: the connection stays in the backlog until fds free up.
        this.logger.error({ err }, 'accept failed')
        return
      }
      if (n === 0) return
      this.accepted += n
      this.#distribute(fds, n)
      if (n < fds.length) return
    }
  }

  #distribute(fds: Int32Array, n: number): void {
    const slots = this.slots
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
      let best = -1
      for (let w = 0; w < slots.length; w++) if (loads[w]! !== Infinity && (best < 0 || loads[w]! < loads[best]!)) best = w
      if (best < 0) {
        this.#reject(fd) // no worker is serving (all restarting)
        continue
      }
      this.#perWorker[best]![this.#counts[best]!++] = fd
      loads[best]!++
      live++
    }
    for (let w = 0; w < slots.length; w++) {
      const count = this.#counts[w]!
      if (count === 0) continue
      const batch = this.#perWorker[w]!
      if (!slots[w]!.registrar?.handOver(batch, count)) {
        // The worker died since we read its load: its fds are still ours.
        for (let i = 0; i < count; i++) this.#reject(batch[i]!)
      }
    }
  }

  #reject(fd: number): void {
    this.rejected++
    TcpStream.fromFd(fd, { adopt: false }).close()
  }

  /** Stops accepting: listeners closed, the poller detached. */
  close(): void {
    for (const listener of this.#listeners.values()) listener.close()
    this.#listeners.clear()
    this.#poller.close()
  }
}
