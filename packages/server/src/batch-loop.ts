import { Poller } from '@amy/core'
import type { Connection } from './connection.js'
import type { Pipe } from './pipe.js'

/** A turn's time budget (ms): past it, reads wait for the next turn (Connection.readable). */
const TURN_BUDGET_MS = 10
// turnOver() reads the clock once per this many calls: a clock read costs
// ~0.1 us on this VM, 3-4% of a 64 B echo's CPU when it was read per message.
const CLOCK_EVERY = 16

/**
 * One worker's turn of the event loop: the Poller's batch of notifications
 * is dispatched in one JavaScript call, writes made meanwhile are queued and
 * each dirty connection is flushed once at the end; reads that must wait
 * (a pipe opened, the per-turn budget used up) and pipe pumps are scheduled
 * here. The read budget itself is counted by Connection.readable.
 *
 * WorkerRuntime extends this class rather than holding it: `markDirty`,
 * `inBatch` and `now` are called and read by every connection on the
 * per-message path, and inheriting keeps them one direct call or field load.
 */
export abstract class BatchLoop {
  readonly poller = new Poller({ ownsRegisteredFds: true })
  /** The connections of this worker, by registration id. */
  readonly conns = new Map<number, Connection>()
  /** True while a batch is dispatched: writes are coalesced until its end. */
  inBatch = false
  /** Coarse clock (ms), updated once per batch. */
  now = performance.now()
  #sinceClock = 0
  #turnOver = false
  #dirty: Connection[] = []
  #readLater: Connection[] = []
  #readNextTurn: Connection[] = []
  #pumpLater: Pipe[] = []
  #pumpScheduled = false

  /** A notification for an id that is no connection (inbox, channel, timer). */
  protected abstract signalled(id: number): void

  /** Sends what was published for other workers this turn (called before the flush). */
  protected abstract flushOutbox(): void

  start(): void {
    this.poller.startRaw(this.#onBatch)
  }

  close(): void {
    this.poller.close()
  }

  /** A turn starts (a batch, reads continued from an earlier turn, published records): the coarse clock is read, the time budget restarts. */
  startTurn(): void {
    this.now = performance.now()
    this.#sinceClock = 0
    this.#turnOver = false
  }

  /**
   * True once this turn has run TURN_BUDGET_MS (then it stays true until the
   * next turn). The clock is read every CLOCK_EVERY calls, so up to that
   * many more reads may run past the budget.
   */
  turnOver(): boolean {
    if (++this.#sinceClock < CLOCK_EVERY) return this.#turnOver
    this.#sinceClock = 0
    return (this.#turnOver = performance.now() - this.now > TURN_BUDGET_MS)
  }

  readonly #onBatch = (count: number, ids: Float64Array, flags: Uint8Array): void => {
    this.inBatch = true
    this.startTurn()
    try {
      for (let i = 0; i < count; i++) {
        const id = ids[i]!
        const conn = this.conns.get(id)
        if (conn !== undefined) conn.onEvent(flags[i]!)
        else this.signalled(id)
      }
    } finally {
      this.inBatch = false
      this.flushOutbox()
      this.flushDirty()
      if (this.#readLater.length > 0) this.#runReadLater()
    }
  }

  /** The connection has writes queued: flushed at the end of this batch. */
  markDirty(conn: Connection): void {
    this.#dirty.push(conn)
  }

  flushDirty(): void {
    const dirty = this.#dirty
    if (dirty.length === 0) return
    this.#dirty = []
    for (const conn of dirty) if (!conn.closed) conn.flush()
  }

  /** Reads the connection at the end of this batch (or on the next turn, outside one). */
  scheduleRead(conn: Connection): void {
    this.#readLater.push(conn)
    if (!this.inBatch && this.#readLater.length === 1) setImmediate(() => this.#runReadLater())
  }

  #runReadLater(): void {
    const list = this.#readLater
    this.#readLater = []
    const wasInBatch = this.inBatch
    this.inBatch = true
    for (const conn of list) if (!conn.closed) conn.readable(false)
    this.inBatch = wasInBatch
    if (!wasInBatch) {
      this.flushOutbox()
      this.flushDirty()
    }
  }

  /** Reads again on a later turn of the event loop (the read budget was used up). */
  readNextTurn(conn: Connection): void {
    this.#readNextTurn.push(conn)
    if (this.#readNextTurn.length === 1) setImmediate(this.#runReadNextTurn)
  }

  readonly #runReadNextTurn = (): void => {
    const list = this.#readNextTurn
    this.#readNextTurn = []
    this.startTurn()
    this.inBatch = true
    for (const conn of list) if (!conn.closed) conn.readable(false)
    this.inBatch = false
    this.flushOutbox()
    this.flushDirty()
  }

  /**
   * @internal (PipeHost) Runs `pipe.pump()` on a later turn. Scheduled at
   * once, in a batch or not: a pump asked for on a turn that is no batch
   * (a read continued from an earlier turn) has no batch end to wait for.
   */
  schedulePump(pipe: Pipe): void {
    this.#pumpLater.push(pipe)
    if (!this.#pumpScheduled) {
      this.#pumpScheduled = true
      setImmediate(this.#runPumpLater)
    }
  }

  readonly #runPumpLater = (): void => {
    this.#pumpScheduled = false
    const list = this.#pumpLater
    this.#pumpLater = []
    for (const pipe of list) pipe.pump()
  }
}
