import type { MessagePort } from 'node:worker_threads'
import type { Logger } from 'pino'
import { ServerError } from './errors.js'
import type { Handler } from './handler-types.js'
import { cloneFailure, serializeError } from './message-errors.js'
import type { BroadcastMessage, FromWorker, PostMessage, ReplyMessage, RequestLike } from './messages.js'
import type { WorkerRuntime } from './runtime.js'

/**
 * A worker's end of the main thread's requests: server.send/destroy reach a
 * connection by id, server.broadcast/request run the handler's `message`
 * hook, server.subscribers counts, and context.postMessage goes the other
 * way. Every request-like message gets exactly one reply with its id.
 */
export class MainLink {
  constructor(
    readonly port: MessagePort,
    readonly runtime: WorkerRuntime,
    readonly handler: Handler,
    readonly log: Logger,
  ) {}

  /** context.postMessage: structured-cloned to the main thread's server.on('message'). */
  post(message: unknown): void {
    const post: PostMessage = { type: 'post', message }
    try {
      this.port.postMessage(post)
    } catch (err) {
      throw cloneFailure(err, 'the message')
    }
  }

  broadcast(msg: BroadcastMessage): void {
    const hook = this.handler.message
    if (hook === undefined) {
      this.log.warn('server.broadcast() reached a handler without a message hook; ignored')
      return
    }
    const failed = (err: unknown): void => void this.log.error({ err }, 'the message hook failed on a broadcast')
    try {
      const result = hook.call(this.handler, this.runtime.context, msg.message)
      if (isPromise(result)) result.then(undefined, failed)
    } catch (err) {
      failed(err)
    }
  }

  request(msg: RequestLike): void {
    let value: unknown
    try {
      value = this.#answer(msg)
    } catch (err) {
      this.#reply({ type: 'reply', id: msg.id, ok: false, error: serializeError(err) })
      return
    }
    if (isPromise(value)) {
      value.then(
        v => this.#reply({ type: 'reply', id: msg.id, ok: true, value: v }),
        (err: unknown) => this.#reply({ type: 'reply', id: msg.id, ok: false, error: serializeError(err) }),
      )
    } else {
      this.#reply({ type: 'reply', id: msg.id, ok: true, value })
    }
  }

  #answer(msg: RequestLike): unknown {
    switch (msg.type) {
      case 'send': {
        const conn = this.runtime.find(msg.conn)
        if (conn === undefined || conn.closed || conn.ending) return false
        conn.write(Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength))
        return true
      }
      case 'destroy': {
        const conn = this.runtime.find(msg.conn)
        if (conn === undefined || conn.closed) return false
        conn.destroy()
        return true
      }
      case 'subscribers':
        return this.runtime.pubsub.subscribers(msg.topic)
      case 'request': {
        const hook = this.handler.message
        if (hook === undefined) throw new ServerError('ERR_INVALID_HANDLER', 'server.request(): the handler has no message hook')
        return hook.call(this.handler, this.runtime.context, msg.message)
      }
    }
  }

  #reply(reply: ReplyMessage): void {
    try {
      this.port.postMessage(reply satisfies FromWorker)
    } catch (err) {
      // The hook's result could not be cloned: say so instead of never answering.
      const failure = cloneFailure(err, "the message hook's result")
      this.port.postMessage({ type: 'reply', id: reply.id, ok: false, error: serializeError(failure) } satisfies ReplyMessage)
    }
  }
}

function isPromise(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
}
