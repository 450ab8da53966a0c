// The protocol between the main thread and the server's worker threads: every
// message that crosses a MessagePort (or piscina's task/result) is declared
// here, so this one file tells what the threads say to each other.
//
//   main thread                               worker thread
//   ── WorkerTask (pool.run, once) ───────▶   serve(task)
//   ◀── FromWorker: ready | log ──────────
//   ── ToWorker: peers | close ──────────▶
//   ── ToWorker: send | destroy | request | subscribers (each with an id)
//   ◀── FromWorker: reply {id} ───────────   (worker-messages.ts answers)
//   ── ToWorker: message (broadcast) ────▶   handler.message(context, msg)
//   ◀── FromWorker: post ─────────────────   context.postMessage(msg)
//   ◀── WorkerReport (the task's result) ─   after close
//
// Published pub/sub messages do not use these ports: they travel as raw bytes
// over each worker's native channel (format in pubsub-message.ts).
import type { MessagePort } from 'node:worker_threads'
import type { RegistrarHandle, SenderHandle } from '@amy/core'
import type { AddressLimitBuffers } from './address-limit.js'
import type { PubSubAdapterSpec } from './pubsub-adapter.js'
import type { RuntimeOptions } from './runtime.js'

/** The piscina task each worker runs for as long as the server serves. */
export interface WorkerTask {
  worker: number
  threads: number
  handler: string // a file URL
  handlerData: unknown
  options: RuntimeOptions
  logLevel: string
  stats: SharedArrayBuffer
  /** The worker's end of its control channel (transferred). */
  port: MessagePort
  /** Cross-instance pub/sub (only with `options.pubsub`). */
  pubsub?: WorkerPubSubTask | undefined
  /** The per-address counters (only with `maxConnectionsPerAddress`). */
  addressLimit?: AddressLimitBuffers | undefined
  /** For the worker's own listeners (balance 'reuseport'): the server-wide limit. */
  maxConnections: number
}

/** A pub/sub adapter: the main thread's hub, or an adapter in every worker. */
export interface WorkerPubSubTask {
  spec: PubSubAdapterSpec
  instanceId: Uint8Array
  /** Main placement: where this worker forwards its publishes and subscriptions (pubsub-hub.ts). */
  hub?: SenderHandle
  /** Worker placement: PUBSUB_STAT_SLOTS counters per worker. */
  stats?: SharedArrayBuffer
}

/** The task's result, once the worker has drained and stopped. */
export interface WorkerReport {
  worker: number
  connectionsAtClose: number
}

// ---- worker -> main ---------------------------------------------------------

/** The worker serves: the main thread may hand it fds and publish to it. */
export interface ReadyMessage {
  type: 'ready'
  registrar: RegistrarHandle
  pubsub: SenderHandle
}

/** One pino line (JSON) to re-emit through the main thread's logger. */
export interface LogMessage {
  type: 'log'
  line: string
}

/** context.postMessage(message) in a worker: server.emit('message', message, worker). */
export interface PostMessage {
  type: 'post'
  message: unknown
}

/** An Error as it crosses threads (structured clone drops `code`). */
export interface SerializedError {
  name: string
  message: string
  code?: unknown
  stack?: string
}

/** The answer to one request-like message (send, destroy, request, subscribers). */
export type ReplyMessage =
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: SerializedError }

export type FromWorker = ReadyMessage | LogMessage | PostMessage | ReplyMessage

// ---- main -> worker ---------------------------------------------------------

/** The pub/sub channels of every worker (sent again when one is replaced). */
export interface PeersMessage {
  type: 'peers'
  handles: SenderHandle[]
}

/** balance 'reuseport': a listening socket bound for this worker; it accepts from it from now on (and owns it). */
export interface ListenMessage {
  type: 'listen'
  fd: number
  /** The address's TLS context id (0: plain TCP): the worker serves what it accepts there with it. */
  tls: number
}

/** balance 'reuseport', server.setSecureContext(): the listeners serving TLS with context `from` use `to` from now on. */
export interface TlsContextMessage {
  type: 'tls-context'
  from: number
  to: number
}

/** Drain (or with `force`, destroy) the connections, then stop. */
export interface CloseMessage {
  type: 'close'
  force: boolean
  timeout: number
}

/** server.send(conn, bytes): write to that connection if this worker has it; replies whether it did. */
export interface SendMessage {
  type: 'send'
  id: number
  conn: number
  bytes: Uint8Array
}

/** server.destroy(conn): replies whether this worker had the connection. */
export interface DestroyMessage {
  type: 'destroy'
  id: number
  conn: number
}

/** server.broadcast(message): handler.message(context, message), no reply. */
export interface BroadcastMessage {
  type: 'message'
  message: unknown
}

/** server.request(message): replies with what handler.message returns (or its error). */
export interface RequestMessage {
  type: 'request'
  id: number
  message: unknown
}

/** server.subscribers(topic): replies with this worker's count. */
export interface SubscribersMessage {
  type: 'subscribers'
  id: number
  topic: string
}

export type ToWorker = PeersMessage | ListenMessage | TlsContextMessage | CloseMessage | SendMessage | DestroyMessage | BroadcastMessage | RequestMessage | SubscribersMessage

/** The request-like messages: each gets exactly one ReplyMessage with its id. */
export type RequestLike = SendMessage | DestroyMessage | RequestMessage | SubscribersMessage
