import type { Registrar } from '@amy/core'
import type { Connection } from './connection.js'
import { ServerError } from './errors.js'

// How often idle timeouts are checked (one amy interval timer per worker).
const IDLE_TICK_MS = 250

/**
 * A worker's idle, first-data and TLS handshake timeouts: one interval timer that runs
 * only while some connection has a timeout, and a scan of the connections
 * on each tick (no timer per connection).
 */
export class IdleTimers {
  readonly #registrar: Registrar
  readonly #idleTimeout: number
  readonly #firstDataTimeout: number
  readonly #timedOut: (conn: Connection) => boolean
  /** The registration id of the tick's timer; 0 while it is not running. */
  timerId = 0

  /** `timedOut` runs the handler's `timeout` hook, false when it has none: the idle connection is destroyed. */
  constructor(registrar: Registrar, idleTimeout: number, firstDataTimeout: number, timedOut: (conn: Connection) => boolean) {
    this.#registrar = registrar
    this.#idleTimeout = idleTimeout
    this.#firstDataTimeout = firstDataTimeout
    this.#timedOut = timedOut
  }

  /** Some connection has a timeout: the tick runs. */
  watch(): void {
    if (this.timerId === 0) this.timerId = this.#registrar.setInterval(IDLE_TICK_MS)
  }

  /** A TLS connection has `timeoutMs` (0: no limit) to finish its handshake. */
  handshaking(conn: Connection, timeoutMs: number, now: number): void {
    if (timeoutMs <= 0) return
    conn.handshakeBy = now + timeoutMs
    this.watch()
  }

  /** A new connection takes the server's timeouts (first data: inbound only). */
  opened(conn: Connection, now: number): void {
    if (this.#idleTimeout > 0) conn.setTimeout(this.#idleTimeout)
    if (this.#firstDataTimeout > 0 && !conn.outbound) {
      conn.firstDataBy = now + this.#firstDataTimeout
      this.watch()
    }
  }

  // The tick runs only while some connection has a timeout: whether any
  // does is found by the scan itself, not kept in a counter.
  check(conns: Iterable<Connection>, now: number): void {
    let watched = 0
    for (const conn of conns) {
      if (conn.handshakeBy > 0) {
        watched++
        if (now >= conn.handshakeBy) conn.destroy(new ServerError('ERR_TLS_HANDSHAKE_TIMEOUT', `connection ${conn.id} did not complete its TLS handshake in time`))
        continue
      }
      if (conn.firstDataBy > 0) {
        watched++
        if (now >= conn.firstDataBy) {
          conn.destroy(new ServerError('ERR_FIRST_DATA_TIMEOUT', `connection ${conn.id} sent nothing within ${this.#firstDataTimeout} ms`))
          continue
        }
      }
      if (conn.idleTimeoutMs <= 0) continue
      watched++
      if (now - conn.lastActive < conn.idleTimeoutMs) continue
      conn.lastActive = now
      if (!this.#timedOut(conn)) {
        conn.destroy(new ServerError('ERR_IDLE_TIMEOUT', `connection ${conn.id} was idle for ${conn.idleTimeoutMs} ms`))
      }
    }
    if (watched === 0) {
      this.#registrar.cancelTimeout(this.timerId)
      this.timerId = 0
    }
  }
}
