/**
 * `@amy/server/handler`: the lean entry for handler modules. defineHandler
 * and the types a handler needs; nothing that runs on the main thread (no
 * piscina, no pino, no native addon), so a bundled handler stays small and a
 * second copy of this file works (see worker-api.ts).
 *
 * @packageDocumentation
 * @module @amy/server/handler
 */
export { defineHandler, type Handler, type WorkerContext, type PublishOptions, type OutboundOptions } from './handler-types.js'
export type { Connection } from './connection.js'
export { ServerError, type ServerErrorCode } from './errors.js'
export { subscribe, unsubscribe, pipe, publish, connect } from './worker-api.js'
