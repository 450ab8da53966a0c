import { MessageChannel, type MessagePort } from 'node:worker_threads'
import { Registrar, Sender } from '@amy/core'
import type { Piscina } from 'piscina'
import { fromStartFailure } from './handler-load.js'
import { relayWorkerLine } from './logging.js'
import type { ResolvedOptions } from './options.js'
import { STAT, STAT_SLOTS } from './stats.js'
import type { FromWorker, ToWorker, WorkerReport, WorkerTask } from './messages.js'

/**
 * One worker of the pool, as the main thread sees it: its registrar (to hand
 * fds over and read its load), its pub/sub sender, its stats slots, and the
 * task that runs as long as it serves. If the worker dies, the slot counts
 * what was lost and starts the task again on piscina's replacement thread.
 */
export class WorkerSlot {
  readonly index: number
  registrar: Registrar | undefined
  pubsub: Sender<never> | undefined
  readonly stats: Float64Array
  crashes = 0
  lostConnections = 0
  #port: MessagePort | undefined
  #task: Promise<WorkerReport | undefined> | undefined

  constructor(
    index: number,
    readonly statsBuffer: SharedArrayBuffer,
    readonly options: ResolvedOptions,
    readonly pool: Piscina,
    readonly onCrash: (slot: WorkerSlot, err: Error) => void,
  ) {
    this.index = index
    this.stats = new Float64Array(statsBuffer, index * STAT_SLOTS * 8, STAT_SLOTS)
  }

  /** Starts the worker's task; resolves once it serves. */
  start(): Promise<void> {
    const { port1, port2 } = new MessageChannel()
    this.#port = port1
    const logger = this.options.logger
    const task: WorkerTask = {
      worker: this.index,
      threads: this.options.threads,
      handler: this.options.handler,
      handlerData: this.options.handlerData,
      options: {
        highWaterMark: this.options.highWaterMark,
        maxBufferedBytes: this.options.maxBufferedBytes,
        allowHalfOpen: this.options.allowHalfOpen,
        idleTimeout: this.options.idleTimeout,
      },
      logLevel: logger.level,
      stats: this.statsBuffer,
      port: port2,
    }
    return new Promise<void>((resolveReady, rejectReady) => {
      let ready = false
      port1.on('message', (msg: FromWorker) => {
        if (msg.type === 'log') {
          relayWorkerLine(logger, msg.line)
        } else if (msg.type === 'ready') {
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
          resolveReady()
        }
      })
      this.#task = this.pool.run(task, { transferList: [port2] }).then(
        report => report as WorkerReport,
        (err: Error) => {
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

  #died(err: Error): void {
    this.crashes++
    // The worker's poller closed its registered fds (ownsRegisteredFds) and
    // the fds still in its inbox; its own count says how many were open.
    const open = this.stats[STAT.connections]!
    this.lostConnections += open
    this.stats[STAT.closed] = this.stats[STAT.closed]! + open
    this.stats[STAT.errors] = this.stats[STAT.errors]! + open
    this.stats[STAT.connections] = 0
    this.registrar = undefined
    this.pubsub = undefined
    this.onCrash(this, err)
  }

  send(message: ToWorker): void {
    this.#port?.postMessage(message)
  }

  /** Asks the worker to drain and stop; resolves when its task ended. */
  async stop(force: boolean, timeout: number): Promise<void> {
    if (!this.#task) return
    this.send({ type: 'close', force, timeout })
    await this.#task
    this.#port?.close()
  }
}
