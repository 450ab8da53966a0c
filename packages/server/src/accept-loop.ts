import type { BaseLogger as Logger } from 'pino'

/** Most fds one accept call takes. */
export const ACCEPT_BATCH = 256
// After a failed accept (EMFILE/ENFILE: out of fds; ENOBUFS/ENOMEM) an
// edge-triggered listener gets no new notification for the connections
// already waiting, so a timer retries, backing off from the first to the
// max delay while it keeps failing. One log line per interval at most.
const RETRY_FIRST_MS = 10
const RETRY_MAX_MS = 1000
const LOG_EVERY_MS = 10_000

/**
 * Accepting from edge-triggered listeners, for the main thread's Acceptor
 * (balance 'handoff') and a worker's own listeners (balance 'reuseport'):
 * batches of up to 256 fds per call until the queue is drained, and the
 * retry with backoff after a failed accept.
 */
export class AcceptLoop {
  /** Accept calls that failed (out of fds, ...), since start. */
  failures = 0
  readonly #fds = new Int32Array(ACCEPT_BATCH)
  #retryTimer: NodeJS.Timeout | undefined
  #retryDelay = 0
  #failuresSinceLog = 0
  #lastLog = -Infinity

  constructor(
    readonly log: Logger,
    /** Accepts again from every listener (the retry timer). */
    readonly retry: () => void,
    /** Called on each failed accept (a worker counts it in its stats). */
    readonly failed?: () => void,
  ) {}

  /**
   * Accepts until nothing is waiting (or an accept fails: then the retry
   * timer takes over): `accept(fds)` takes one batch from a listener (say,
   * `listener.acceptFds(fds)`) and returns how many; `serve(fds, n)` takes
   * each batch, whose fds are then its own.
   */
  drain(accept: (fds: Int32Array) => number, serve: (fds: Int32Array, n: number) => void): void {
    const fds = this.#fds
    for (;;) {
      let n: number
      try {
        n = accept(fds)
      } catch (err) {
        this.#acceptFailed(err as Error)
        return
      }
      if (this.#retryDelay > 0) this.#acceptRecovered()
      if (n === 0) return
      serve(fds, n)
      if (n < fds.length) return
    }
  }

  /** The connections stay in the backlog; a timer tries again (nothing else would: edge-triggered). */
  #acceptFailed(err: Error): void {
    this.failures++
    this.failed?.()
    this.#failuresSinceLog++
    this.#retryDelay = Math.min(RETRY_MAX_MS, Math.max(RETRY_FIRST_MS, this.#retryDelay * 2))
    const now = performance.now()
    if (now - this.#lastLog >= LOG_EVERY_MS) {
      this.#lastLog = now
      this.log.error({ err, failures: this.#failuresSinceLog, retryInMs: this.#retryDelay }, 'accept failed; connections wait in the backlog, retrying')
      this.#failuresSinceLog = 0
    }
    if (this.#retryTimer !== undefined) return
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.retry()
    }, this.#retryDelay)
  }

  #acceptRecovered(): void {
    this.log.warn({ failures: this.#failuresSinceLog }, 'accepting again')
    this.#retryDelay = 0
    this.#failuresSinceLog = 0
    this.#lastLog = -Infinity
  }

  /** Stops the retry timer. */
  close(): void {
    clearTimeout(this.#retryTimer)
  }
}
