import { socketError } from '@amy/core'
import type { Logger } from 'pino'
import type { Connection } from './connection.js'
import type { Handler } from './handler-types.js'

export type SimpleHook = 'open' | 'end' | 'drain' | 'timeout'

/**
 * Calls a handler's per-connection hooks: a synchronous result is used at
 * once; a promise holds the connection's reads (`open`, `data`) until it
 * settles; a throw or a rejection closes that connection only, logged.
 * (`data` itself is called by the runtime, on the per-message path.)
 */
export class HookCaller {
  readonly #handler: Handler
  readonly #log: Logger

  constructor(handler: Handler, log: Logger) {
    this.#handler = handler
    this.#log = log
  }

  call(conn: Connection, name: SimpleHook): void {
    const fn = this.#handler[name]
    if (fn === undefined) return
    let result
    try {
      result = fn.call(this.#handler, conn)
    } catch (err) {
      this.failed(conn, name, err)
      return
    }
    if (result !== undefined && typeof (result as PromiseLike<unknown>).then === 'function') this.pending(conn, name, result as PromiseLike<unknown>)
    else if (name === 'open' && result !== undefined) conn.state = result
  }

  /** The connection closed: its `close` hook, whose failure is only logged. A number: a socket errno, made an Error here. */
  close(conn: Connection, err: Error | number | undefined): void {
    const close = this.#handler.close
    if (close === undefined) return
    try {
      const result = close.call(this.#handler, conn, typeof err === 'number' ? socketError(err) : err)
      if (result !== undefined && typeof result.then === 'function') {
        result.then(undefined, (hookErr: unknown) => this.#log.error({ conn: conn.id, hook: 'close', err: hookErr }, 'close hook rejected'))
      }
    } catch (hookErr) {
      this.#log.error({ conn: conn.id, hook: 'close', err: hookErr }, 'close hook threw')
    }
  }

  /**
   * An async hook: `open` and `data` hold the connection's reads until it
   * settles (per-connection order); a rejection closes that connection.
   */
  pending(conn: Connection, name: SimpleHook | 'data', promise: PromiseLike<unknown>): void {
    const holds = name === 'open' || name === 'data'
    if (holds) conn.hold()
    promise.then(
      value => {
        if (name === 'open' && value !== undefined && !conn.closed) conn.state = value
        if (holds) conn.release()
      },
      (err: unknown) => {
        if (holds) conn.release()
        this.failed(conn, name, err)
      },
    )
  }

  failed(conn: Connection, hook: string, err: unknown): void {
    if (conn.closed) {
      // A hook still running when its connection closed: its writes fail
      // with ERR_CONNECTION_CLOSED, which is expected, not an error.
      const expected = (err as { code?: unknown } | null)?.code === 'ERR_CONNECTION_CLOSED'
      this.#log[expected ? 'debug' : 'warn']({ conn: conn.id, hook, err }, 'hook failed after its connection closed')
      return
    }
    this.#log.error({ conn: conn.id, hook, err }, 'handler threw; closing the connection')
    conn.destroy(err instanceof Error ? err : new Error(String(err)))
  }
}
