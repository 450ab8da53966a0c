import { Piscina } from 'piscina'
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { SocketAddress, UnixSocketAddress } from '@amy/core'
import { Acceptor } from './acceptor.js'
import { AddressLimit } from './address-limit.js'
import { ServerError } from './errors.js'
import { nameAddress, parseListenArgs, resolveHost, type ListenOptions } from './listen-options.js'
import { resolveOptions, type ResolvedOptions, type ServerOptions } from './options.js'
import { unresponsiveAfter } from './liveness.js'
import { loadPubSubAdapter, PUBSUB_STAT_SLOTS, readPubSubStats, type PubSubStats } from './pubsub-adapter.js'
import { PubSubHub } from './pubsub-hub.js'
import { encodePublished } from './pubsub-message.js'
import { readStats, STAT, STAT_SLOTS, type WorkerStats } from './stats.js'
import { WorkerSlot, type DeathCause } from './worker-slot.js'
import { cloneFailure } from './message-errors.js'
import type { PostMessage, ReplyMessage } from './messages.js'
import { checkTopic, describe, toBytes } from './validate.js'
import { WorkerRequests } from './worker-requests.js'
import { serverContext, type ServerTlsOptions } from './tls.js'

// A worker that could not be replaced is tried again after this, doubling up to the max (ms).
const REPLACE_RETRY_MS = 100
const REPLACE_RETRY_MAX_MS = 10_000

export type { ListenOptions }

/** Options of `server.request()`. */
export interface RequestOptions {
  /** The worker (0 .. threads-1) to ask; without it every worker is asked and the replies come as an array. */
  worker?: number
  /**
   * Milliseconds to wait for the reply (each worker's, when asking all):
   * past it the request rejects with ERR_REQUEST_TIMEOUT and a late reply
   * is dropped. Without it the request waits as long as the worker lives.
   */
  timeout?: number
}

/** The events a Server emits. */
export interface ServerEvents {
  /** A worker's `context.postMessage(message)`; `worker` is its index. */
  message: [message: unknown, worker: number]
}

/** Options of `server.close()`. */
export interface CloseOptions {
  /** Destroy connections at once instead of ending them (default false). */
  force?: boolean
  /** Ms to wait for connections to end before destroying them (default 5000). */
  timeout?: number
}

/** What `server.stats()` returns: counters over all workers (read without messages). */
export interface ServerStats {
  /** Open now, over all workers. */
  connections: number
  /** Accepted since start (including rejected). */
  accepted: number
  /** Accepted and closed at once: over maxConnections, or no worker to take them. */
  rejected: number
  /** Accepted and closed at once because their client address had maxConnectionsPerAddress open. */
  refusedPerAddress: number
  /** Bytes read from connections. */
  bytesIn: number
  /** Bytes written to connections. */
  bytesOut: number
  /** TLS handshakes completed (inbound and outbound). */
  tlsHandshakes: number
  /** TLS connections closed by an ERR_TLS_* error (handshake timeout included) or lost before their handshake completed. */
  tlsFailures: number
  /** accept() calls that failed (EMFILE, ENFILE, ...); each is retried with backoff. */
  acceptFailures: number
  /** Workers that died (each was replaced). */
  workerCrashes: number
  /** Workers terminated by the watchdog because their event loop stood still for stallTimeout (each was replaced). */
  workerStalls: number
  /** Client connections closed because their worker died, stalled, or had to be terminated at close (a proxied pair counts once). */
  connectionsLostToCrashes: number
  /**
   * Published messages dropped for a worker that could not keep up: a
   * `server.publish` that found its channel full, or, in a worker, a publish
   * past the 16 MiB backlog for a peer whose channel was full (a handler
   * publishing in a synchronous loop or from a timer), or owed to a worker that died.
   */
  pubsubDropped: number
  /**
   * The longest any worker's event loop stood still since start, as the
   * watchdog saw it (ms; its heartbeat ticks every 100 ms and is read every
   * 250 ms at most, so short stalls read as 0-350). 0 with stallTimeout 0.
   */
  maxWorkerStallMs: number
  /**
   * Now: what every write queue costs together (queued bytes + 320 per
   * queued chunk), the figure maxBufferedBytesTotal bounds.
   */
  bufferedBytes: number
  /** Connections destroyed with ERR_BUFFER_TOTAL_LIMIT (behind while the queues were over maxBufferedBytesTotal). */
  bufferTotalClosed: number
  /** Now: published bytes waiting in the workers for a peer worker that is behind. */
  pubsubBacklogBytes: number
  /** Each worker's own counters. */
  workers: WorkerStats[]
  /** The pub/sub adapter's counters (only with `options.pubsub`). */
  pubsub?: PubSubStats
}

type State = 'new' | 'starting' | 'listening' | 'closing' | 'closed'

/**
 * A multithreaded TCP server: listeners and an acceptor on this thread, the
 * connections served by `threads` piscina workers running the handler.
 * Use createServer(); then `await server.listen({ port })`.
 */
export class Server extends EventEmitter<ServerEvents> {
  readonly #options: ResolvedOptions
  readonly #pool: Piscina
  readonly #slots: WorkerSlot[]
  #acceptor: Acceptor | undefined
  readonly #addressLimit: AddressLimit | undefined
  #state: State = 'new'
  #starting: Promise<void> | undefined
  #closing: Promise<void> | undefined
  #watchdog: NodeJS.Timeout | undefined
  readonly #retryTimers = new Set<NodeJS.Timeout>()
  #pubsubDropped = 0
  #outbox: Buffer[] = []
  // Cross-instance pub/sub: the hub (main placement) or per-worker counters (worker placement).
  #hub: PubSubHub | undefined
  #pubsubStats: Float64Array[] = []

  readonly #requests = new WorkerRequests()

  constructor(options: ServerOptions) {
    super()
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
    this.#slots = Array.from({ length: threads }, (_, i) => new WorkerSlot(i, stats, this.#options, this.#pool, (slot, err, cause) => this.#onDeath(slot, err, cause)))
    const pubsub = this.#options.pubsub
    if (pubsub !== undefined) {
      const instanceId = randomBytes(8)
      if (pubsub.placement === 'worker') {
        const buffer = new SharedArrayBuffer(threads * PUBSUB_STAT_SLOTS * 8)
        this.#pubsubStats = this.#slots.map(slot => new Float64Array(buffer, slot.index * PUBSUB_STAT_SLOTS * 8, PUBSUB_STAT_SLOTS))
        for (const slot of this.#slots) slot.pubsubTask = { spec: pubsub, instanceId, stats: buffer }
      } else {
        for (const slot of this.#slots) slot.pubsubTask = { spec: pubsub, instanceId }
      }
    }
    for (const slot of this.#slots) slot.onMessage = (from, msg) => this.#fromWorker(from, msg)
    const { maxConnectionsPerAddress, logger } = this.#options
    if (maxConnectionsPerAddress > 0) {
      this.#addressLimit = new AddressLimit(maxConnectionsPerAddress, threads, logger)
      for (const slot of this.#slots) slot.addressLimit = this.#addressLimit.buffers
    }
    this.#options.signal?.addEventListener('abort', () => void this.close(), { once: true })
  }

  /**
   * Starts the workers (first call) and listens on one more address, as
   * net.Server.listen: `listen(port?, host?)` or `listen({ host, port,
   * backlog, reusePort, ipv6Only })` for TCP, `listen({ path })` for a Unix
   * domain socket. Port 0 picks a free port: read it from the result or
   * address(). A host name is resolved with dns.lookup (its first address).
   * With `tls: { key, cert, ... }` the address serves TLS (one TLS context
   * for the address, shared by every worker).
   *
   * Errors: bad arguments reject with ERR_INVALID_ARG_TYPE /
   * ERR_INVALID_ARG_VALUE before anything starts; bind errors keep their
   * errno code (EADDRINUSE, EACCES, ...) and name the address. If the first
   * listen fails (a bind error, a handler that does not load), the server
   * closes — its workers stop, so the process can exit — and later calls
   * reject with ERR_SERVER_CLOSED.
   */
  listen(port?: number, host?: string): Promise<SocketAddress>
  listen(options: ListenOptions & { path: string }): Promise<UnixSocketAddress>
  listen(options: ListenOptions): Promise<SocketAddress>
  async listen(first?: number | ListenOptions, second?: string): Promise<SocketAddress | UnixSocketAddress> {
    const target = parseListenArgs(first, second)
    this.#checkOpen()
    // Built before anything starts: bad certificates reject here.
    const tls = target.tls === undefined ? undefined : serverContext(target.tls)
    const bindTarget = target.kind === 'tcp' ? { ...target, host: await resolveHost(target.host) } : target
    this.#checkOpen()
    if (!this.#starting) {
      this.#state = 'starting'
      this.#starting = this.#startWorkers()
    }
    await this.#starting
    if (!this.#acceptor || this.#state === 'closing' || this.#state === 'closed') {
      throw new ServerError('ERR_SERVER_CLOSED', 'the server closed while starting')
    }
    let address: SocketAddress | UnixSocketAddress
    try {
      address = this.#acceptor.listen(bindTarget, tls)
    } catch (err) {
      nameAddress(err, target, bindTarget.kind === 'tcp' ? bindTarget.host : undefined)
      if (this.#acceptor.addresses().length === 0) {
        // Nothing listens: keeping the workers would hold the process open
        // for a server that cannot serve.
        this.#options.logger.error({ err }, 'the first listen failed; closing the server')
        await this.close({ force: true })
      }
      throw err
    }
    this.#state = 'listening'
    this.#options.logger.info({ ...address, threads: this.#options.threads, tls: tls !== undefined }, 'listening')
    return address
  }

  /**
   * Replaces the certificate (and every other TLS setting: `options` are
   * listen's `tls` options, whole) of every address listening with TLS,
   * without a restart: connections accepted from now on use it, open ones
   * keep theirs. Synchronous, as node:tls's; bad options throw
   * (ERR_INVALID_ARG_*, ERR_TLS_INVALID_*, ERR_TLS_KEY_MISMATCH) and change
   * nothing. ERR_NO_TLS_LISTENER if no address listens with TLS.
   */
  setSecureContext(options: ServerTlsOptions): void {
    const context = serverContext(options)
    this.#checkRunning()
    const acceptor = this.#acceptor
    if (acceptor === undefined || acceptor.tlsListeners === 0) throw new ServerError('ERR_NO_TLS_LISTENER', 'setSecureContext(): no address listens with tls')
    acceptor.setSecureContext(context)
    this.#options.logger.info({ listeners: acceptor.tlsListeners }, 'TLS context replaced')
  }

  #checkOpen(): void {
    if (this.#state === 'closing' || this.#state === 'closed') throw new ServerError('ERR_SERVER_CLOSED', 'the server is closed')
    if (this.#options.signal?.aborted) throw new ServerError('ERR_SERVER_CLOSED', 'the server was aborted')
  }

  /** The first listener's address (undefined before listen). */
  address(): SocketAddress | UnixSocketAddress | undefined {
    return this.#acceptor?.addresses()[0]
  }

  /** Every address listened on, in the order listen() added them. */
  addresses(): Array<SocketAddress | UnixSocketAddress> {
    return this.#acceptor?.addresses() ?? []
  }

  /** True once a listen() succeeded, until close(). */
  get listening(): boolean {
    return this.#state === 'listening'
  }

  /** The server's counters, summed over its workers; read from shared memory, no message. */
  stats(): ServerStats {
    const workers = this.#slots.map(slot => readStats(slot.index, slot.stats))
    const sum = (key: keyof WorkerStats): number => workers.reduce((total, w) => total + w[key], 0)
    return {
      connections: sum('connections'),
      // balance 'reuseport': the workers accept and count; 'handoff': the acceptor.
      accepted: (this.#acceptor?.accepted ?? 0) + this.#workerSum(STAT.accepted),
      rejected: (this.#acceptor?.rejected ?? 0) + this.#workerSum(STAT.rejected),
      refusedPerAddress: this.#addressLimit?.refused ?? 0,
      acceptFailures: (this.#acceptor?.acceptFailures ?? 0) + this.#workerSum(STAT.acceptFailures),
      bytesIn: sum('bytesIn'),
      bytesOut: sum('bytesOut'),
      tlsHandshakes: sum('tlsHandshakes'),
      tlsFailures: sum('tlsFailures'),
      workerCrashes: this.#slots.reduce((total, s) => total + s.crashes, 0),
      workerStalls: this.#slots.reduce((total, s) => total + s.stalls, 0),
      connectionsLostToCrashes: this.#slots.reduce((total, s) => total + s.lostConnections, 0),
      maxWorkerStallMs: Math.round(Math.max(0, ...this.#slots.map(slot => slot.maxSilentMs))),
      pubsubDropped: this.#pubsubDropped + this.#workerSum(STAT.pubsubDropped),
      bufferedBytes: sum('bufferedBytes'),
      bufferTotalClosed: this.#workerSum(STAT.bufferTotalClosed),
      pubsubBacklogBytes: sum('pubsubBacklogBytes'),
      workers,
      ...(this.#options.pubsub !== undefined && { pubsub: readPubSubStats(this.#pubsubStats) }),
    }
  }

  #workerSum(slot: number): number {
    return this.#slots.reduce((total, s) => total + s.stats[slot]!, 0)
  }

  /** Publishes to the subscribers of `topic` in every worker (as `context.publish` in handlers). */
  publish(topic: string, data: Uint8Array | string): void {
    checkTopic(topic)
    const bytes = toBytes(data)
    // Gathered until this synchronous run ends: one channel message per worker.
    this.#outbox.push(encodePublished(topic, bytes, 0))
    if (this.#outbox.length === 1) queueMicrotask(this.#flushOutbox)
    this.#hub?.publish(topic, bytes)
  }

  readonly #flushOutbox = (): void => {
    const records = this.#outbox
    this.#outbox = []
    const message = records.length === 1 ? records[0]! : Buffer.concat(records)
    for (const slot of this.#slots) {
      try {
        slot.pubsub?.sendBytes(message)
      } catch (err) {
        // A full channel: that worker is behind; the messages are dropped for it (see PUBSUB_CHANNEL_BOUND).
        if ((err as { code?: string }).code === 'ERR_CHANNEL_FULL') this.#pubsubDropped += records.length
        else if ((err as { code?: string }).code !== 'ERR_CHANNEL_CLOSED') throw err
      }
    }
  }

  // ---- reaching the workers from this thread ---------------------------------
  //
  // A connection id is its registration id in its worker's poller, so the
  // owner is found natively (registrar.has: a mutex and a hash lookup per
  // worker, no message) and only that worker is asked.

  /**
   * Writes `data` to connection `connId` (from `conn.id`), in whichever
   * worker serves it. Resolves to whether the connection was found open
   * (false once it closed or is ending). Bytes are copied to the worker.
   */
  async send(connId: number, data: Uint8Array | string): Promise<boolean> {
    const id = checkConnId(connId)
    const bytes = toBytes(data)
    this.#checkRunning()
    const owner = this.#owner(id)
    if (owner === undefined) return false
    return this.#requests.ask<boolean>(owner, rid => ({ type: 'send', id: rid, conn: id, bytes }))
  }

  /** Destroys connection `connId` (its `close` hook runs without an error). Resolves to whether it was found. */
  async destroy(connId: number): Promise<boolean> {
    const id = checkConnId(connId)
    this.#checkRunning()
    const owner = this.#owner(id)
    if (owner === undefined) return false
    return this.#requests.ask<boolean>(owner, rid => ({ type: 'destroy', id: rid, conn: id }))
  }

  /**
   * Runs the handler's `message(context, message)` hook in every serving
   * worker (a worker being replaced misses it). `message` is
   * structured-cloned: one that cannot be throws ERR_INVALID_ARG_VALUE and
   * reaches no worker. Fire and forget: a failing hook is logged.
   */
  broadcast(message: unknown): void {
    this.#checkRunning()
    const serving = this.#slots.filter(slot => slot.registrar !== undefined)
    if (serving.length > 0) {
      // The first send clones: if that throws, nothing was sent.
      try {
        serving[0]!.send({ type: 'message', message })
      } catch (err) {
        throw cloneFailure(err, 'the message')
      }
    }
    for (const slot of serving.slice(1)) slot.send({ type: 'message', message })
  }

  /**
   * Runs the handler's `message(context, message)` hook in one worker
   * (`{ worker: n }`) and resolves with what it returned; without `worker`,
   * in every worker, resolving with the replies in worker order. A hook that
   * throws (or rejects) rejects this with an Error carrying its `code` and
   * `worker`; a worker that dies meanwhile rejects with ERR_WORKER_DIED.
   */
  request<R = unknown>(message: unknown, options: RequestOptions & { worker: number }): Promise<R>
  request<R = unknown>(message: unknown, options?: RequestOptions): Promise<R[]>
  async request(message: unknown, options: RequestOptions = {}): Promise<unknown> {
    if (options === null || typeof options !== 'object') throw new ServerError('ERR_INVALID_ARG_TYPE', `request options must be an object, got ${describe(options)}`)
    for (const key of Object.keys(options)) {
      if (key !== 'worker' && key !== 'timeout') throw new ServerError('ERR_UNKNOWN_OPTION', `request: unknown option '${key}'`)
    }
    const { worker, timeout } = options
    if (timeout !== undefined) {
      if (typeof timeout !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `options.timeout must be a number, got ${describe(timeout)}`)
      if (!(timeout > 0 && timeout <= 2 ** 31 - 1)) throw new ServerError('ERR_INVALID_ARG_VALUE', `options.timeout must be in (0, 2147483647] ms, got ${timeout}`)
    }
    if (worker !== undefined) {
      if (typeof worker !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `options.worker must be a number, got ${describe(worker)}`)
      if (!Number.isInteger(worker) || worker < 0 || worker >= this.#slots.length) {
        throw new ServerError('ERR_INVALID_ARG_VALUE', `options.worker must be an integer in [0, ${this.#slots.length - 1}], got ${worker}`)
      }
    }
    this.#checkRunning()
    const ask = (slot: WorkerSlot): Promise<unknown> => this.#requests.ask(slot, id => ({ type: 'request', id, message }), timeout)
    if (worker !== undefined) return ask(this.#slots[worker]!)
    return Promise.all(this.#slots.map(ask))
  }

  /** How many connections are subscribed to `topic`, over every worker. */
  async subscribers(topic: string): Promise<number> {
    checkTopic(topic)
    this.#checkRunning()
    const counts = await Promise.all(this.#slots.map(slot => this.#requests.ask<number>(slot, id => ({ type: 'subscribers', id, topic }))))
    return counts.reduce((sum, n) => sum + n, 0)
  }

  #owner(connId: number): WorkerSlot | undefined {
    return this.#slots.find(slot => {
      const registrar = slot.registrar
      return registrar !== undefined && !registrar.closed && registrar.has(connId)
    })
  }

  #checkRunning(): void {
    if (this.#state === 'closing' || this.#state === 'closed') throw new ServerError('ERR_SERVER_CLOSED', 'the server is closed')
    if (this.#state !== 'listening') throw new ServerError('ERR_SERVER_NOT_RUNNING', 'the workers are not running yet: await server.listen() first')
  }

  #fromWorker(slot: WorkerSlot, msg: PostMessage | ReplyMessage): void {
    if (msg.type === 'reply') this.#requests.settle(msg)
    else if (this.listenerCount('message') > 0) this.emit('message', msg.message, slot.index)
    else this.#options.logger.debug({ worker: slot.index }, "a worker's postMessage had no server.on('message') listener")
  }

  /**
   * Stops accepting, then lets every worker end its connections (each
   * flushes, then half-closes) for up to `timeout` ms before destroying the
   * rest; `force` destroys at once. Resolves when every worker has stopped:
   * a worker still running 0.5 s after that (stuck in a loop) is terminated.
   */
  close(options: CloseOptions = {}): Promise<void> {
    let force: boolean
    let timeout: number
    try {
      ;({ force, timeout } = checkCloseOptions(options))
    } catch (err) {
      return Promise.reject(err) // an async method: bad input rejects, as listen() does
    }
    if (this.#closing) return this.#closing
    this.#state = 'closing'
    this.#closing = (async () => {
      // A setup() that hangs is not waited for beyond the timeout: stop()
      // terminates that worker.
      if (this.#starting) {
        let timer: NodeJS.Timeout | undefined
        const late = new Promise(resolve => { timer = setTimeout(resolve, force ? 0 : timeout) })
        await Promise.race([this.#starting.catch(() => {}), late])
        clearTimeout(timer) // or it would hold the process open for the whole timeout
      }
      this.#acceptor?.close()
      for (const timer of this.#retryTimers) clearTimeout(timer)
      this.#retryTimers.clear()
      await Promise.all(this.#slots.map(slot => slot.stop(force, timeout)))
      clearInterval(this.#watchdog)
      await this.#pool.destroy()
      await this.#hub?.close().catch((err: unknown) => this.#options.logger.warn({ err }, 'pub/sub adapter close failed'))
      this.#state = 'closed'
      this.#requests.failAll(new ServerError('ERR_SERVER_CLOSED', 'the server closed before the worker replied'))
      this.#options.logger.info('closed')
    })()
    return this.#closing
  }

  async #startWorkers(): Promise<void> {
    try {
      await this.#startHub()
      await Promise.all(this.#slots.map(slot => slot.start()))
    } catch (err) {
      await this.#pool.destroy().catch(() => {})
      await this.#hub?.close().catch(() => {})
      this.#state = 'closed'
      throw err
    }
    if (this.#state === 'closing' || this.#state === 'closed') return // close() came first: listen() rejects
    this.#broadcastPeers()
    this.#acceptor = new Acceptor(this.#slots, this.#options.maxConnections, this.#options.logger, this.#addressLimit, this.#options.balance)
    this.#startWatchdog()
  }

  /** Reads every worker's heartbeat on a timer of this thread (see liveness.ts). */
  #startWatchdog(): void {
    const { stallTimeout } = this.#options
    if (stallTimeout === 0) return
    const quiet = unresponsiveAfter(stallTimeout)
    this.#watchdog = setInterval(() => {
      const now = performance.now()
      for (const slot of this.#slots) slot.checkLiveness(now, stallTimeout, quiet)
    }, Math.max(25, Math.min(250, quiet / 4)))
    this.#watchdog.unref()
  }

  /** Main placement: the instance's one adapter, before the workers (they need its channel). */
  async #startHub(): Promise<void> {
    const pubsub = this.#options.pubsub
    if (pubsub === undefined || pubsub.placement !== 'main') return
    const adapter = await loadPubSubAdapter(pubsub)
    const instanceId = Buffer.from(this.#slots[0]!.pubsubTask!.instanceId)
    this.#hub = new PubSubHub(adapter, () => this.#slots, this.#options.logger, instanceId)
    this.#pubsubStats = [this.#hub.stats]
    await this.#hub.start()
    for (const slot of this.#slots) slot.pubsubTask = { ...slot.pubsubTask!, hub: this.#hub.handle }
  }

  #broadcastPeers(): void {
    const handles = this.#slots.flatMap(slot => (slot.pubsub ? [slot.pubsub.handle] : []))
    for (const slot of this.#slots) slot.send({ type: 'peers', handles })
  }

  #onDeath(slot: WorkerSlot, err: Error, cause: DeathCause): void {
    this.#requests.failWorker(slot.index, new ServerError('ERR_WORKER_DIED', `worker ${slot.index} died before it replied`, { cause: err }))
    const message = cause === 'crash' ? 'worker died; its connections were closed' : cause === 'stall' ? 'stalled worker terminated; its connections were closed' : 'worker terminated at close'
    this.#options.logger.error({ worker: slot.index, err, lostConnections: slot.lostConnections }, message)
    this.#hub?.workerGone(slot.index)
    this.#addressLimit?.workerDied(slot.index)
    if (this.#state === 'closing' || this.#state === 'closed') return
    this.#replace(slot, 0)
  }

  /** Starts the slot's task again; a failed start is retried with a doubling delay. */
  #replace(slot: WorkerSlot, attempt: number): void {
    slot.start().then(
      () => {
        this.#options.logger.info({ worker: slot.index, attempt }, 'worker replaced')
        this.#acceptor?.workerStarted(slot)
        this.#broadcastPeers()
      },
      (startErr: Error) => {
        if (this.#state === 'closing' || this.#state === 'closed') return
        const delay = Math.min(REPLACE_RETRY_MAX_MS, REPLACE_RETRY_MS * 2 ** attempt)
        this.#options.logger.error({ worker: slot.index, err: startErr, attempt, retryInMs: delay }, 'could not replace a dead worker; retrying')
        const timer = setTimeout(() => {
          this.#retryTimers.delete(timer)
          this.#replace(slot, attempt + 1)
        }, delay)
        this.#retryTimers.add(timer)
      },
    )
  }
}

function checkCloseOptions(options: unknown): { force: boolean; timeout: number } {
  if (options === null || typeof options !== 'object') throw new ServerError('ERR_INVALID_ARG_TYPE', `close options must be an object, got ${describe(options)}`)
  const { force = false, timeout = 5000, ...rest } = options as CloseOptions
  const unknown = Object.keys(rest)[0]
  if (unknown !== undefined) throw new ServerError('ERR_UNKNOWN_OPTION', `close: unknown option '${unknown}' (known: force, timeout)`)
  if (typeof force !== 'boolean') throw new ServerError('ERR_INVALID_ARG_TYPE', `options.force must be a boolean, got ${describe(force)}`)
  if (typeof timeout !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `options.timeout must be a number of ms, got ${describe(timeout)}`)
  if (!Number.isFinite(timeout) || timeout < 0 || timeout > 2 ** 31 - 1) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `options.timeout must be a finite number of ms in [0, 2^31), got ${timeout}`)
  }
  return { force, timeout }
}

function checkConnId(value: unknown): number {
  if (typeof value !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `connId must be a number (conn.id), got ${describe(value)}`)
  if (!Number.isInteger(value) || value < 1 || value > Number.MAX_SAFE_INTEGER) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `connId must be a positive integer (conn.id), got ${value}`)
  }
  return value
}

/** Creates a server; nothing starts until listen(). */
export function createServer(options: ServerOptions): Server {
  return new Server(options)
}
