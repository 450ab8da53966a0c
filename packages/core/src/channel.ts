import { deserialize, serialize } from 'node:v8'
import native, { type NativeReceiver, type NativeSender } from './native.js'
import { AmyError } from './errors.js'

/** Options of `registrar.channel()`. */
export interface ChannelOptions {
  /** Most values queued at once; a send beyond it fails with ERR_CHANNEL_FULL. 0 (default): unbounded. */
  bound?: number
}

/** A plain, structured-cloneable value that rebuilds a Sender in any thread. */
export interface SenderHandle {
  /** Marks the object as a SenderHandle. */
  readonly kind: 'amy.Sender'
  /** The channel's process-wide id. */
  readonly channelId: number
}

/**
 * The sending end of a channel. Usable from any thread: pass `sender.handle`
 * to a worker (postMessage, workerData) and rebuild it with `Sender.from`.
 * Values are copied with the structured-clone algorithm (node:v8).
 */
export class Sender<T = unknown> {
  readonly #native: NativeSender

  private constructor(nativeSender: NativeSender) {
    this.#native = nativeSender
  }

  /** Rebuilds a Sender from `sender.handle`, on any thread. ERR_INVALID_ARG_TYPE for anything else, ERR_CHANNEL_CLOSED if the channel is gone. */
  static from<T = unknown>(handle: SenderHandle): Sender<T> {
    if (handle === null || typeof handle !== 'object' || handle.kind !== 'amy.Sender' || typeof handle.channelId !== 'number') {
      throw new AmyError('ERR_INVALID_ARG_TYPE', 'expected a SenderHandle (sender.handle)')
    }
    return new Sender<T>(new native.NativeSender(handle.channelId))
  }

  /** The channel's process-wide id. */
  get id(): number {
    return this.#native.id
  }

  /** Plain data that rebuilds this sender on another thread (`Sender.from`). */
  get handle(): SenderHandle {
    return { kind: 'amy.Sender', channelId: this.#native.id }
  }

  /** Queues a value; throws ERR_CHANNEL_FULL (bounded, full) or ERR_CHANNEL_CLOSED. */
  send(value: T): void {
    const result = this.#native.send(cloneBytes(value))
    if (result === 1) throw new AmyError('ERR_CHANNEL_FULL', `channel ${this.id} is full`)
    if (result === 2) throw new AmyError('ERR_CHANNEL_CLOSED', `channel ${this.id} is closed`)
  }

  /**
   * Sends raw bytes (copied), without structured clone: the receiver takes
   * them with `tryRecvBytes`. For protocols that encode their own messages.
   */
  sendBytes(bytes: Uint8Array): void {
    const result = this.#native.send(bytes)
    if (result === 1) throw new AmyError('ERR_CHANNEL_FULL', `channel ${this.id} is full`)
    if (result === 2) throw new AmyError('ERR_CHANNEL_CLOSED', `channel ${this.id} is closed`)
  }

  /** Like send, but returns false instead of throwing when the channel is full. */
  trySend(value: T): boolean {
    const result = this.#native.send(cloneBytes(value))
    if (result === 2) throw new AmyError('ERR_CHANNEL_CLOSED', `channel ${this.id} is closed`)
    return result === 0
  }
}

/**
 * The receiving end, on the poller's thread. A readable notification with
 * `receiver.id` means values wait: call `tryRecv()` until it returns
 * `undefined`; a send after that wakes the poller again.
 */
export class Receiver<T = unknown> {
  readonly #native: NativeReceiver
  readonly #id: number

  /** @internal made by `registrar.channel()`. */
  constructor(nativeReceiver: NativeReceiver) {
    this.#native = nativeReceiver
    this.#id = nativeReceiver.id
  }

  /** The channel's id: notifications for this receiver carry it. */
  get id(): number {
    return this.#id
  }

  /** Values queued now. */
  get size(): number {
    return this.#native.size()
  }

  /** The next value, or undefined when the channel is empty. Throws ERR_CHANNEL_CLOSED after close(). */
  tryRecv(): T | undefined {
    const bytes = this.#native.tryRecv()
    return bytes === undefined ? undefined : (deserialize(bytes) as T)
  }

  /** The next message sent with `sendBytes`, or undefined when the channel is empty. */
  tryRecvBytes(): Buffer | undefined {
    return this.#native.tryRecv()
  }

  /** Closes the channel: senders get ERR_CHANNEL_CLOSED, queued values are dropped. */
  close(): void {
    this.#native.close()
  }
}

/** The value's structured-clone bytes; a value that cannot be cloned (a function, a socket) is ERR_INVALID_ARG_VALUE. */
function cloneBytes(value: unknown): Buffer {
  try {
    return serialize(value)
  } catch (err) {
    throw new AmyError('ERR_INVALID_ARG_VALUE', `a channel value must be structured-cloneable: ${(err as Error).message}`)
  }
}
