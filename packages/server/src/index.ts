/**
 * amy's multithreaded TCP server: listeners and an acceptor on the main
 * thread, connections served by worker threads running your handler. Start
 * with {@link createServer} and {@link defineHandler}.
 *
 * @packageDocumentation
 * @module @amy/server
 */
export { createServer, Server, type ListenOptions, type CloseOptions, type ServerStats, type RequestOptions, type ServerEvents } from './server.js'
export type { SocketAddress, UnixSocketAddress } from '@amy/core'
export type { ServerOptions, LoggerOption } from './options.js'
export { defineHandler, type Handler, type WorkerContext, type PublishOptions, type OutboundOptions } from './handler-types.js'
export { Connection } from './connection.js'
export { publish, subscribe, unsubscribe, connect, pipe } from './worker-api.js'
export { ServerError, type ServerErrorCode } from './errors.js'
export { SERVER_ERROR_CODES } from './error-codes.js'
export type { WorkerStats } from './stats.js'
export type { ServerTlsOptions, ConnectTlsOptions, ConnectionTls } from './tls.js'
export type { PeerCertificate, TlsIdentity, TlsVersion, Pem } from '@amy/core'
export {
  PUBSUB_STAT,
  type PubSubAdapter,
  type PubSubAdapterSpec,
  type PubSubHost,
  type PubSubStats,
  type PubSubStatName,
} from './pubsub-adapter.js'
