import { Piscina } from 'piscina'
import { join } from 'node:path'
import type { SocketAddress } from '@amy/core'
import { Acceptor } from './acceptor.js'
import { ServerError } from './errors.js'
import { resolveOptions, type ResolvedOptions, type ServerOptions } from './options.js'
import { encodePublished } from './pubsub-message.js'
import { readStats, STAT_SLOTS, type WorkerStats } from './stats.js'
import { WorkerSlot } from './worker-slot.js'

export interface ListenOptions {
  host?: string
  port?: number
  backlog?: number
  reusePort?: boolean
  ipv6Only?: boolean
}

export interface CloseOptions {
  /** Destroy connections at once instead of ending them (default false). */
  force?: boolean
  /** Ms to wait for connections to end before destroying them (default 5000). */
  timeout?: number
}

export interface ServerStats {
  /** Open now, over all workers. */
  connections: number
  /** Accepted since start (including rejected). */
  accepted: number
  /** Accepted and closed at once: over maxConnections, or no worker to take them. */
  rejected: number
  bytesIn: number
  bytesOut: number
  /** Workers that died (each was replaced). */
  workerCrashes: number
  /** Connections closed because their worker died. */
  connectionsLostToCrashes: number
  workers: WorkerStats[]
}

type State = 'new' | 'starting' | 'listening' | 'closing' | 'closed'

/**
 * A multithreaded TCP server: listeners and an acceptor on this thread, the
 * connections served by `threads` piscina workers running the handler.
 * Use createServer(); then `await server.listen({ port })`.
 */
export class Server {
  readonly #options: ResolvedOptions
  readonly #pool: Piscina
  readonly #slots: WorkerSlot[]
  #acceptor: Acceptor | undefined
  #state: State = 'new'
  #starting: Promise<void> | undefined
  #closing: Promise<void> | undefined

  constructor(options: ServerOptions) {
    this.#options = resolveOptions(options)
    const { threads } = this.#options
    this.#pool = new Piscina({
      filename: join(__dirname, 'worker-entry.js'),
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: 1,
      idleTimeout: Infinity,
      // The tasks never finish while the server runs; an idle worker must not
      // be parked in Atomics.wait (it would freeze its event loop).
      atomics: 'disabled',
    })
    const stats = new SharedArrayBuffer(threads * STAT_SLOTS * 8)
    this.#slots = Array.from({ length: threads }, (_, i) => new WorkerSlot(i, stats, this.#options, this.#pool, (slot, err) => this.#onCrash(slot, err)))
    this.#options.signal?.addEventListener('abort', () => void this.close(), { once: true })
  }

  /**
   * Starts the workers (first call) and listens on one more address. Port 0
   * picks a free port: read it from the result or address().
   */
  async listen(options: ListenOptions = {}): Promise<SocketAddress> {
    if (this.#state === 'closing' || this.#state === 'closed') throw new ServerError('ERR_SERVER_CLOSED', 'the server is closed')
    if (this.#options.signal?.aborted) throw new ServerError('ERR_SERVER_CLOSED', 'the server was aborted')
    if (!this.#starting) {
      this.#state = 'starting'
      this.#starting = this.#startWorkers()
    }
    await this.#starting
    if (!this.#acceptor) throw new ServerError('ERR_SERVER_CLOSED', 'the server closed while starting')
    const address = this.#acceptor.listen(options)
    this.#state = 'listening'
    this.#options.logger.info({ address: address.address, port: address.port, threads: this.#options.threads }, 'listening')
    return address
  }

  /** The first listener's address (undefined before listen). */
  address(): SocketAddress | undefined {
    return this.#acceptor?.addresses()[0]
  }

  addresses(): SocketAddress[] {
    return this.#acceptor?.addresses() ?? []
  }

  get listening(): boolean {
    return this.#state === 'listening'
  }

  stats(): ServerStats {
    const workers = this.#slots.map(slot => readStats(slot.index, slot.stats))
    const sum = (key: keyof WorkerStats): number => workers.reduce((total, w) => total + w[key], 0)
    return {
      connections: sum('connections'),
      accepted: this.#acceptor?.accepted ?? 0,
      rejected: this.#acceptor?.rejected ?? 0,
      bytesIn: sum('bytesIn'),
      bytesOut: sum('bytesOut'),
      workerCrashes: this.#slots.reduce((total, s) => total + s.crashes, 0),
      connectionsLostToCrashes: this.#slots.reduce((total, s) => total + s.lostConnections, 0),
      workers,
    }
  }

  /** Publishes to the subscribers of `topic` in every worker (see publish() in handlers). */
  publish(topic: string, data: Uint8Array | string): void {
    if (typeof topic !== 'string' || topic.length === 0) throw new ServerError('ERR_INVALID_ARG_TYPE', 'topic must be a non-empty string')
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    const message = encodePublished(topic, bytes, 0)
    for (const slot of this.#slots) slot.pubsub?.sendBytes(message)
  }

  /**
   * Stops accepting, then lets every worker end its connections (each
   * flushes, then half-closes) for up to `timeout` ms before destroying the
   * rest; `force` destroys at once. Resolves when every worker has stopped.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing) return this.#closing
    const force = options.force === true
    const timeout = options.timeout ?? 5000
    if (typeof timeout !== 'number' || !(timeout >= 0)) throw new ServerError('ERR_INVALID_ARG_VALUE', 'timeout must be a number of ms >= 0')
    this.#state = 'closing'
    this.#closing = (async () => {
      await this.#starting?.catch(() => {})
      this.#acceptor?.close()
      await Promise.all(this.#slots.map(slot => slot.stop(force, timeout)))
      await this.#pool.destroy()
      this.#state = 'closed'
      this.#options.logger.info('closed')
    })()
    return this.#closing
  }

  async #startWorkers(): Promise<void> {
    try {
      await Promise.all(this.#slots.map(slot => slot.start()))
    } catch (err) {
      await this.#pool.destroy().catch(() => {})
      this.#state = 'closed'
      throw err
    }
    this.#broadcastPeers()
    this.#acceptor = new Acceptor(this.#slots, this.#options.maxConnections, this.#options.logger)
  }

  #broadcastPeers(): void {
    const handles = this.#slots.flatMap(slot => (slot.pubsub ? [slot.pubsub.handle] : []))
    for (const slot of this.#slots) slot.send({ type: 'peers', handles })
  }

  #onCrash(slot: WorkerSlot, err: Error): void {
    this.#options.logger.error({ worker: slot.index, err, lostConnections: slot.lostConnections }, 'worker died; its connections were closed')
    if (this.#state === 'closing' || this.#state === 'closed') return
    slot.start().then(
      () => {
        this.#options.logger.info({ worker: slot.index }, 'worker replaced')
        this.#broadcastPeers()
      },
      (startErr: Error) => this.#options.logger.error({ worker: slot.index, err: startErr }, 'could not replace a dead worker'),
    )
  }
}

/** Creates a server; nothing starts until listen(). */
export function createServer(options: ServerOptions): Server {
  return new Server(options)
}
