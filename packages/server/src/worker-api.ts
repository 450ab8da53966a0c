import { ServerError } from './errors.js'
import type { Connection } from './connection.js'
import { runtime } from './worker-context.js'

function checkTopic(topic: unknown): string {
  if (typeof topic !== 'string' || topic.length === 0) throw new ServerError('ERR_INVALID_ARG_TYPE', 'topic must be a non-empty string')
  return topic
}

function toBytes(data: Uint8Array | string): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data)
  if (data instanceof Uint8Array) return data
  throw new ServerError('ERR_INVALID_ARG_TYPE', 'data must be a string or a Uint8Array')
}

/** Delivers `data` on `topic` to every subscriber after this call. */
export function subscribe(conn: Connection, topic: string): void {
  runtime('subscribe').subscribe(conn, checkTopic(topic))
}

export function unsubscribe(conn: Connection, topic: string): void {
  runtime('unsubscribe').unsubscribe(conn, checkTopic(topic))
}

export interface PublishOptions {
  /** A connection that must not receive this message (e.g. its sender). */
  except?: Connection
}

/**
 * Writes `data` to every subscriber of `topic` in every worker, in order per
 * publisher. One message per worker crosses threads, never one per
 * subscriber. Subscribers past their buffer limit are closed, not waited for.
 */
export function publish(topic: string, data: Uint8Array | string, options: PublishOptions = {}): void {
  runtime('publish').publish(checkTopic(topic), toBytes(data), options.except?.id ?? 0)
}

export interface OutboundOptions {
  host?: string
  port: number
}

/**
 * Opens an outbound connection served by this worker. The handler's `open`
 * runs once it is connected (`conn.outbound` is true), or `close(conn, err)`
 * if it fails. Writes before that are queued.
 */
export function connect(options: OutboundOptions): Connection {
  if (options === null || typeof options !== 'object') throw new ServerError('ERR_INVALID_ARG_TYPE', 'connect options must be an object')
  return runtime('connect').connect(options.host ?? '127.0.0.1', options.port)
}

/**
 * Sends everything `from` receives to `to`, with backpressure (when `to`
 * cannot keep up, `from` stops reading), forwarding end-of-stream; when one
 * closes with an error the other is destroyed. Call it both ways for a
 * proxy. Bytes piped do not reach the handler's `data`.
 */
export function pipe(from: Connection, to: Connection): void {
  runtime('pipe').pipe(from, to)
}
