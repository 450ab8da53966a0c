import type { Connection } from './connection.js'

/**
 * The user's code: one module, loaded by every worker thread, whose default
 * export is a Handler. Every hook is optional. A hook that throws closes
 * that connection (the error is logged and passed to `close`).
 *
 * `bytes` in `data` is a view into a buffer the worker reuses for the next
 * read: use it (or write it) inside the call, copy it to keep it.
 */
export interface Handler<State = unknown> {
  /** Called once in each worker before any connection, with `options.handlerData`. */
  setup?(context: WorkerContext): void | Promise<void>
  /** A connection arrived (accepted, or an outbound `connect()` that succeeded). */
  open?(conn: Connection<State>): void
  /** Bytes arrived. */
  data?(conn: Connection<State>, bytes: Buffer): void
  /** Everything written has been flushed after `write()` returned false. */
  drain?(conn: Connection<State>): void
  /** The peer ended its side. Unless `allowHalfOpen`, the server then ends ours. */
  end?(conn: Connection<State>): void
  /**
   * The connection was idle for its timeout (`conn.setTimeout` or the
   * server's `idleTimeout`). Without this hook it is destroyed with
   * ERR_IDLE_TIMEOUT; with it, what happens is up to you.
   */
  timeout?(conn: Connection<State>): void
  /** The connection is closed; `err` says why if it was not a clean close. */
  close?(conn: Connection<State>, err?: Error): void
}

export interface WorkerContext {
  /** This worker's index, 0 .. threads-1. */
  readonly worker: number
  readonly threads: number
  /** `options.handlerData` from createServer (structured-cloned). */
  readonly data: unknown
}

/** Identity function that types a handler module's default export. */
export function defineHandler<State = unknown>(handler: Handler<State>): Handler<State> {
  return handler
}
