import { STAT } from './stats.js'

// Worker liveness without messages. Each worker's event loop bumps a
// heartbeat counter in its stats slots (the SharedArrayBuffer the main
// thread already reads for stats()); the main thread's watchdog reads the
// counters on a timer. A worker stuck in a loop cannot answer a message,
// but it also cannot bump its counter: silence is the signal.
//
//   worker: setInterval(HEARTBEAT_INTERVAL_MS) ─▶ stats[heartbeat]++
//   main:   setInterval(checkEvery)            ─▶ silentFor(now) per worker
//             >= unresponsiveAfter: no new connections, logged
//             >= stallTimeout:      terminated, replaced, its connections counted lost

/** How often a worker's event loop bumps its heartbeat. */
export const HEARTBEAT_INTERVAL_MS = 100

/** Worker side: bumps the heartbeat from a timer on this thread's loop; returns its stop function. */
export function startHeartbeat(stats: Float64Array): () => void {
  const beat = (): void => {
    stats[STAT.heartbeat] = stats[STAT.heartbeat]! + 1
  }
  beat()
  const timer = setInterval(beat, HEARTBEAT_INTERVAL_MS)
  return () => clearInterval(timer)
}

/**
 * How long the main thread has seen one worker's heartbeat stand still. It
 * measures from its own checks: if the main thread itself was blocked, the
 * counter moved meanwhile and the worker is not blamed.
 */
export class HeartbeatMonitor {
  #last = Number.NaN
  #movedAt = 0

  constructor(readonly stats: Float64Array) {}

  /** Starts watching afresh (a new worker on this slot). */
  reset(now: number): void {
    this.#last = this.stats[STAT.heartbeat]!
    this.#movedAt = now
  }

  silentFor(now: number): number {
    const beat = this.stats[STAT.heartbeat]!
    if (beat !== this.#last) {
      this.#last = beat
      this.#movedAt = now
    }
    return now - this.#movedAt
  }
}

/** A worker that has not beaten for this long gets no new connections (ms). */
export function unresponsiveAfter(stallTimeout: number): number {
  return Math.min(stallTimeout, Math.max(HEARTBEAT_INTERVAL_MS * 5, Math.min(1000, stallTimeout / 2)))
}
