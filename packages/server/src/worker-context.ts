import type { Logger } from 'pino'
import type { Connection } from './connection.js'
import type { ConnectTlsOptions } from './tls.js'
import { ServerError } from './errors.js'
import type { OutboundOptions, PublishOptions, WorkerContext } from './handler-types.js'
import { checkTopic, describe, toBytes } from './validate.js'

/** What the context needs from the worker runtime. */
export interface ContextHost {
  connect(host: string, port: number, timeoutMs: number, tls: ConnectTlsOptions | true | undefined): Connection
  postMessage(message: unknown): void
}

/** What the context needs from the worker's pub/sub (called directly: publish is a hot path). */
export interface ContextBus {
  /** `except`: the connection not to deliver to (it published). */
  publish(topic: string, payload: Uint8Array, except: Connection | undefined): void
  subscribers(topic: string): number
}

/**
 * The one WorkerContext of a worker thread (see WorkerContext in
 * handler-types.ts for the contract). Its fields are the public API; the
 * runtime and its pub/sub stay behind private fields.
 */
export class RuntimeContext<Data = unknown> implements WorkerContext<Data> {
  readonly worker: number
  readonly threads: number
  readonly data: Data
  readonly log: Logger
  readonly #host: ContextHost
  readonly #bus: ContextBus

  constructor(host: ContextHost, bus: ContextBus, worker: number, threads: number, data: Data, log: Logger) {
    this.#host = host
    this.#bus = bus
    this.worker = worker
    this.threads = threads
    this.data = data
    this.log = log
  }

  publish(topic: string, data: Uint8Array | string, options?: PublishOptions): void {
    checkTopic(topic)
    const payload = toBytes(data)
    let except: Connection | undefined
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw new ServerError('ERR_INVALID_ARG_TYPE', `publish options must be an object, got ${describe(options)}`)
      const conn = options.except
      if (conn !== undefined) {
        if (conn === null || typeof conn !== 'object' || typeof conn.id !== 'number') {
          throw new ServerError('ERR_INVALID_ARG_TYPE', `options.except must be a Connection, got ${describe(conn)}`)
        }
        except = conn as Connection
      }
    }
    this.#bus.publish(topic, payload, except)
  }

  subscribers(topic: string): number {
    return this.#bus.subscribers(checkTopic(topic))
  }

  postMessage(message: unknown): void {
    this.#host.postMessage(message)
  }

  connect(options: OutboundOptions): Connection<any, Data> {
    if (options === null || typeof options !== 'object') throw new ServerError('ERR_INVALID_ARG_TYPE', `connect options must be an object, got ${describe(options)}`)
    const { host = '127.0.0.1', port } = options
    if (typeof host !== 'string') throw new ServerError('ERR_INVALID_ARG_TYPE', `options.host must be a string, got ${describe(host)}`)
    if (typeof port !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `options.port must be a number, got ${describe(port)}`)
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ServerError('ERR_INVALID_ARG_VALUE', `options.port must be an integer in [1, 65535], got ${port}`)
    const { timeout = 0 } = options
    if (typeof timeout !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `options.timeout must be a number of ms, got ${describe(timeout)}`)
    if (!Number.isFinite(timeout) || timeout < 0 || timeout > 2 ** 31 - 1) throw new ServerError('ERR_INVALID_ARG_VALUE', `options.timeout must be a finite number of ms in [0, 2^31), got ${timeout}`)
    return this.#host.connect(host, port, timeout, options.tls) as Connection<any, Data>
  }
}
