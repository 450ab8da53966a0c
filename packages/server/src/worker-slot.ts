import { MessageChannel, type MessagePort } from 'node:worker_threads'
import { Registrar, Sender } from '@amy/core'
import type { Piscina } from 'piscina'
import type { AddressLimitBuffers } from './address-limit.js'
import { ServerError } from './errors.js'
import { fromStartFailure } from './handler-load.js'
import { HeartbeatMonitor } from './liveness.js'
import { relayWorkerLine } from './logging.js'
import type { ResolvedOptions } from './options.js'
import { STAT, STAT_SLOTS } from './stats.js'
import type { FromWorker, PostMessage, ReplyMessage, ToWorker, WorkerPubSubTask, WorkerReport, WorkerTask } from './messages.js'

/** How long past its drain timeout a closing worker may take before it is terminated (ms). */
const STOP_GRACE_MS = 500

/** Why a worker's thread ended without finishing its task. */
export type DeathCause = 'crash' | 'stall' | 'close'

/**
 * One worker of the pool, as the main thread sees it: its registrar (to hand
 * fds over and read its load), its pub/sub sender, its stats slots, its
 * heartbeat, and the task that runs as long as it serves. If the worker
 * dies or is terminated (stalled, or too slow to close), the slot counts
 * what was lost and tells the server, which starts the task again on
 * piscina's replacement thread.
 */
export class WorkerSlot {
  readonly index: number
  registrar: Registrar | undefined
  pubsub: Sender<never> | undefined
  readonly stats: Float64Array
  readonly heartbeat: HeartbeatMonitor
  crashes = 0
  stalls = 0
  /** Set by the server with maxConnectionsPerAddress; passed to every start. */
  addressLimit: AddressLimitBuffers | undefined
  /** Set by the server when it has a pub/sub adapter; passed to every start. */
  pubsubTask: WorkerPubSubTask | undefined
  /** The server's receiver of context.postMessage and of replies. */
  onMessage: ((slot: WorkerSlot, msg: PostMessage | ReplyMessage) => void) | undefined
  lostConnections = 0
  /** The longest the watchdog saw this slot's heartbeat stand still (ms): its worst event-loop stall. */
  maxSilentMs = 0
  /** False while the heartbeat is silent: the acceptor routes around this worker. */
  responsive = true
  #serving = false
  #port: MessagePort | undefined
  #task: Promise<WorkerReport | undefined> | undefined
  #abort: AbortController | undefined
  #deathCause: DeathCause = 'crash'

  constructor(
    index: number,
    readonly statsBuffer: SharedArrayBuffer,
    readonly options: ResolvedOptions,
    readonly pool: Piscina,
    readonly onDeath: (slot: WorkerSlot, err: Error, cause: DeathCause) => void,
  ) {
    this.index = index
    this.stats = new Float64Array(statsBuffer, index * STAT_SLOTS * 8, STAT_SLOTS)
    this.heartbeat = new HeartbeatMonitor(this.stats)
  }

  /** True while the worker's task runs and it said it serves. */
  get serving(): boolean {
    return this.#serving
  }

  /**
   * Starts the worker's task; resolves once it serves. Rejects (and
   * terminates the thread) if the handler's setup() does not finish within
   * `setupTimeout` ms: ERR_SETUP_TIMEOUT.
   */
  start(): Promise<void> {
    const { port1, port2 } = new MessageChannel()
    this.#port = port1
    const abort = new AbortController()
    this.#abort = abort
    this.#deathCause = 'crash'
    this.responsive = true
    const logger = this.options.logger
    const task: WorkerTask = {
      worker: this.index,
      threads: this.options.threads,
      handler: this.options.handler,
      handlerData: this.options.handlerData,
      options: {
        highWaterMark: this.options.highWaterMark,
        maxBufferedBytes: this.options.maxBufferedBytes,
        maxBufferedBytesTotal: this.options.maxBufferedBytesTotal,
        allowHalfOpen: this.options.allowHalfOpen,
        idleTimeout: this.options.idleTimeout,
        firstDataTimeout: this.options.firstDataTimeout,
      },
      addressLimit: this.addressLimit,
      logLevel: logger.level,
      stats: this.statsBuffer,
      port: port2,
      pubsub: this.pubsubTask,
      maxConnections: this.options.maxConnections,
    }
    return new Promise<void>((resolveReady, rejectReady) => {
      let ready = false
      const { setupTimeout } = this.options
      const setupTimer =
        setupTimeout > 0
          ? setTimeout(() => {
              const err = new ServerError('ERR_SETUP_TIMEOUT', `worker ${this.index}: the handler's setup() did not finish within ${setupTimeout} ms`)
              rejectReady(err)
              abort.abort(err) // terminates the thread
            }, setupTimeout)
          : undefined
      port1.on('message', (msg: FromWorker) => {
        if (msg.type === 'log') {
          relayWorkerLine(logger, msg.line)
        } else if (msg.type === 'ready') {
          clearTimeout(setupTimer)
          try {
            this.registrar = Registrar.from(msg.registrar)
            this.pubsub = Sender.from<never>(msg.pubsub)
          } catch (err) {
            // The worker died right after saying ready: its task's rejection
            // follows and restarts it; until then it takes no connections.
            logger.warn({ worker: this.index, err }, 'worker gone before it could serve')
            this.registrar = undefined
            this.pubsub = undefined
          }
          ready = true
          this.#serving = true
          this.heartbeat.reset(performance.now())
          resolveReady()
        } else {
          this.onMessage?.(this, msg)
        }
      })
      this.#task = this.pool.run(task, { transferList: [port2], signal: abort.signal }).then(
        report => {
          clearTimeout(setupTimer)
          this.#serving = false
          return report as WorkerReport
        },
        (err: Error) => {
          clearTimeout(setupTimer)
          this.#serving = false
          port1.close()
          if (!ready) {
            rejectReady(fromStartFailure(err))
            return undefined
          }
          this.#died(err)
          return undefined
        },
      )
    })
  }

  /**
   * The watchdog's check (main thread timer): a silent heartbeat first takes
   * the worker out of the acceptor's rotation, then, at `stallTimeout`,
   * terminates it.
   */
  checkLiveness(now: number, stallTimeout: number, unresponsiveAfter: number): void {
    if (!this.#serving) return
    const silent = this.heartbeat.silentFor(now)
    if (silent > this.maxSilentMs) this.maxSilentMs = silent
    const logger = this.options.logger
    if (silent >= stallTimeout) {
      this.stalls++
      logger.error({ worker: this.index, silentMs: Math.round(silent), connections: this.stats[STAT.connections] }, 'worker stalled; terminating it')
      this.terminate(new ServerError('ERR_WORKER_STALLED', `worker ${this.index} did not run its event loop for ${Math.round(silent)} ms`), 'stall')
    } else if (silent >= unresponsiveAfter) {
      if (this.responsive) {
        this.responsive = false
        logger.warn({ worker: this.index, silentMs: Math.round(silent) }, 'worker unresponsive; it gets no new connections until it recovers')
      }
    } else if (!this.responsive) {
      this.responsive = true
      logger.info({ worker: this.index }, 'worker responsive again')
    }
  }

  /** Terminates the worker's thread (piscina aborts its task); the slot then counts what it lost. */
  terminate(reason: Error, cause: DeathCause): void {
    if (!this.#serving && cause !== 'close') return
    this.#serving = false
    this.responsive = false
    this.#deathCause = cause
    this.#abort?.abort(reason)
  }

  #died(err: Error): void {
    const cause = this.#deathCause
    if (cause === 'crash') this.crashes++
    // The worker's poller closed its registered fds (ownsRegisteredFds) and
    // the fds still in its inbox; its own counts say how many were open.
    // (A terminated thread closes them as it is torn down.) Lost are the
    // client connections: a proxied pair's outbound side is not counted.
    const open = this.stats[STAT.connections]!
    this.lostConnections += this.stats[STAT.inbound]!
    this.stats[STAT.closed] = this.stats[STAT.closed]! + open
    this.stats[STAT.errors] = this.stats[STAT.errors]! + open
    this.stats[STAT.connections] = 0
    this.stats[STAT.inbound] = 0
    // Its queues and backlog died with it (maxBufferedBytesTotal counts what lives).
    this.stats[STAT.bufferedBytes] = 0
    this.stats[STAT.pubsubBacklogBytes] = 0
    this.registrar = undefined
    this.pubsub = undefined
    this.onDeath(this, err, cause)
  }

  /** Posts to the worker; throws postMessage's DataCloneError for what cannot be cloned. */
  send(message: ToWorker): void {
    this.#port?.postMessage(message)
  }

  /**
   * Asks the worker to drain and stop; resolves when its task ended. A
   * worker that has not finished `STOP_GRACE_MS` after its drain timeout
   * (stuck in a loop, or a hook that never returns) is terminated.
   */
  async stop(force: boolean, timeout: number): Promise<void> {
    const task = this.#task
    if (!task) return
    this.send({ type: 'close', force, timeout })
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>(resolve => {
      timer = setTimeout(() => resolve('late'), (force ? 0 : timeout) + STOP_GRACE_MS)
    })
    const outcome = await Promise.race([task, late])
    clearTimeout(timer)
    if (outcome === 'late') {
      this.options.logger.warn({ worker: this.index, connections: this.stats[STAT.connections] }, 'worker did not stop in time; terminating it')
      this.terminate(new ServerError('ERR_WORKER_STALLED', `worker ${this.index} did not stop within ${timeout} ms`), 'close')
      await task
    }
    this.#port?.close()
  }
}
