// The module-level functions of the first API, kept as thin deprecated
// wrappers over the objects a handler is given (conn, conn.context).
//
// They hold no module state: a bundled handler (esbuild inlines its own
// copy of this file) or a second install of @amy/server finds the same
// worker through the thread's global object, under a registered symbol.
import type { Connection } from './connection.js'
import { ServerError } from './errors.js'
import type { OutboundOptions, PublishOptions, WorkerContext } from './handler-types.js'
import { describe } from './validate.js'

const CONTEXT = Symbol.for('@amy/server.workerContext')

/** @internal set by the worker runtime of this thread (undefined when it stops). */
export function setThreadContext(context: WorkerContext | undefined): void {
  ;(globalThis as Record<symbol, unknown>)[CONTEXT] = context
}

function threadContext(what: string, instead: string): WorkerContext {
  const context = (globalThis as Record<symbol, unknown>)[CONTEXT] as WorkerContext | undefined
  if (context === undefined) {
    throw new ServerError('ERR_NOT_IN_WORKER', `${what}() works only in a server worker, in handler code (there, prefer ${instead}); this thread runs no server worker`)
  }
  return context
}

function checkConnection(conn: unknown, what: string): Connection {
  const candidate = conn as Connection | null
  if (candidate === null || typeof candidate !== 'object' || typeof candidate.subscribe !== 'function' || typeof candidate.id !== 'number') {
    throw new ServerError('ERR_INVALID_ARG_TYPE', `${what} must be a Connection, got ${describe(conn)}`)
  }
  return candidate
}

/** @deprecated Use `conn.subscribe(topic)`. */
export function subscribe(conn: Connection<any, any>, topic: string): void {
  checkConnection(conn, 'conn').subscribe(topic)
}

/** @deprecated Use `conn.unsubscribe(topic)`. */
export function unsubscribe(conn: Connection<any, any>, topic: string): void {
  checkConnection(conn, 'conn').unsubscribe(topic)
}

/** @deprecated Use `from.pipe(to)`. */
export function pipe(from: Connection<any, any>, to: Connection<any, any>): void {
  checkConnection(from, 'from').pipe(to)
}

/** @deprecated Use `conn.context.publish(...)` in hooks, `server.publish(...)` on the main thread. */
export function publish(topic: string, data: Uint8Array | string, options?: PublishOptions): void {
  threadContext('publish', 'conn.context.publish(); on the main thread use server.publish()').publish(topic, data, options)
}

/** @deprecated Use `conn.context.connect(...)` (or the context given to `setup`). */
export function connect(options: OutboundOptions): Connection {
  return threadContext('connect', 'conn.context.connect() or the context given to setup()').connect(options)
}
