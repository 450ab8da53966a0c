/**
 * Main-thread placement of a pub/sub adapter: one adapter (one pair of
 * broker connections) per server instance.
 *
 *   worker thread                           main thread
 *   -------------                           -----------
 *   publish ─ local + other workers (bus)
 *           └ WorkerForwarder ─ raw channel ─▶ PubSubHub ─▶ adapter.publish ─▶ broker
 *   first/last subscriber of a topic ───────▶   counts workers per topic:
 *                                                first worker: adapter.subscribe
 *                                                last worker gone: adapter.unsubscribe
 *   pub/sub receiver ◀── encoded once ──────── adapter's deliver(topic, payload):
 *     (the bus's own channel)                    only to workers with subscribers,
 *                                                one channel message per socket read
 *
 * One channel carries every worker's operations in order, so a worker's
 * publishes reach the adapter in the order they were made.
 */
import { Poller, Sender, type Receiver, type SenderHandle } from '@amy/core'
import type { BaseLogger } from 'pino'
import { PUBSUB_STAT, PUBSUB_STAT_SLOTS, type PubSubAdapter, type RemoteBus } from './pubsub-adapter.js'
import { encodePublished } from './pubsub-message.js'

// A channel message to a worker carries records up to about this size (as the workers' own).
const OUTBOX_MESSAGE_BYTES = 64 * 1024

const OP_SUBSCRIBE = 1
const OP_UNSUBSCRIBE = 2
const OP_PUBLISH = 3

//   [u8 op][u16 worker][u16 topic length][topic utf8][payload (publish only)]
function encodeOp(op: number, worker: number, topic: string, payload?: Uint8Array): Buffer {
  const topicBytes = Buffer.byteLength(topic)
  if (topicBytes > 0xffff) throw new RangeError('topic is longer than 65535 bytes')
  const out = Buffer.allocUnsafe(5 + topicBytes + (payload?.length ?? 0))
  out.writeUInt8(op, 0)
  out.writeUInt16LE(worker, 1)
  out.writeUInt16LE(topicBytes, 3)
  out.write(topic, 5, 'utf8')
  if (payload !== undefined) out.set(payload, 5 + topicBytes)
  return out
}

/** The worker's side: every cross-instance operation goes to the main thread's hub. */
export class WorkerForwarder implements RemoteBus {
  readonly #hub: Sender<never>
  readonly #worker: number

  constructor(
    hub: SenderHandle,
    worker: number,
    readonly maxPayloadBytes: number,
  ) {
    this.#hub = Sender.from<never>(hub)
    this.#worker = worker
  }

  publish(topic: string, payload: Uint8Array): void {
    this.#send(encodeOp(OP_PUBLISH, this.#worker, topic, payload))
  }

  subscribed(topic: string): void {
    this.#send(encodeOp(OP_SUBSCRIBE, this.#worker, topic))
  }

  unsubscribed(topic: string): void {
    this.#send(encodeOp(OP_UNSUBSCRIBE, this.#worker, topic))
  }

  #send(bytes: Buffer): void {
    try {
      this.#hub.sendBytes(bytes)
    } catch {
      // The hub is closed: the server is shutting down.
    }
  }
}

export interface HubWorker {
  readonly index: number
  readonly pubsub: Sender<never> | undefined
}

/** The main thread's side: one adapter for the instance, fed by every worker. */
export class PubSubHub {
  readonly stats = new Float64Array(PUBSUB_STAT_SLOTS)
  readonly #poller = new Poller()
  readonly #receiver: Receiver<never>
  readonly #sender: Sender<never>
  readonly #adapter: PubSubAdapter
  readonly #workers: () => readonly HubWorker[]
  readonly #logger: BaseLogger
  readonly #instanceId: Buffer
  /** Topic -> indexes of the workers with local subscribers. */
  readonly #topics = new Map<string, Set<number>>()
  /** Worker index -> records from other instances, sent at the end of the current run. */
  readonly #outbox = new Map<number, Buffer[]>()
  #flushQueued = false
  #closed = false

  constructor(adapter: PubSubAdapter, workers: () => readonly HubWorker[], logger: BaseLogger, instanceId: Buffer) {
    this.#adapter = adapter
    this.#workers = workers
    this.#logger = logger
    this.#instanceId = instanceId
    const [sender, receiver] = this.#poller.registrar.channel<never>()
    this.#sender = sender
    this.#receiver = receiver
  }

  get handle(): SenderHandle {
    return this.#sender.handle
  }

  async start(): Promise<void> {
    await this.#adapter.start({
      instanceId: this.#instanceId,
      stats: this.stats,
      logger: this.#logger,
      deliver: (topic, payload) => this.#deliver(topic, payload),
    })
    this.#poller.startRaw(this.#onBatch)
  }

  /** server.publish(): the main thread publishing to the other instances. */
  publish(topic: string, payload: Uint8Array): void {
    this.#adapter.publish(topic, payload)
  }

  /** A worker died: its subscriptions went with it (its replacement starts empty). */
  workerGone(index: number): void {
    // Its last operations may still wait in the channel: apply them first,
    // or a late "subscribe" would outlive it. Nothing more can come from it.
    if (!this.#closed) this.#onBatch()
    for (const [topic, workers] of this.#topics) this.#leave(topic, workers, index)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#poller.close()
    await this.#adapter.close()
  }

  readonly #onBatch = (): void => {
    for (let op = this.#receiver.tryRecvBytes(); op !== undefined; op = this.#receiver.tryRecvBytes()) {
      const code = op.readUInt8(0)
      const worker = op.readUInt16LE(1)
      const topicEnd = 5 + op.readUInt16LE(3)
      const topic = op.toString('utf8', 5, topicEnd)
      if (code === OP_PUBLISH) {
        this.#adapter.publish(topic, op.subarray(topicEnd))
      } else if (code === OP_SUBSCRIBE) {
        let workers = this.#topics.get(topic)
        if (workers === undefined) {
          workers = new Set()
          this.#topics.set(topic, workers)
          this.#adapter.subscribe(topic)
        }
        workers.add(worker)
      } else if (code === OP_UNSUBSCRIBE) {
        const workers = this.#topics.get(topic)
        if (workers !== undefined) this.#leave(topic, workers, worker)
      }
    }
  }

  #leave(topic: string, workers: Set<number>, worker: number): void {
    if (!workers.delete(worker) || workers.size > 0) return
    this.#topics.delete(topic)
    this.#adapter.unsubscribe(topic)
  }

  /**
   * Records for the workers are gathered while the Redis client hands over
   * one socket read's messages (synchronously), then sent as one channel
   * message per worker: the workers' channels are bounded (a burst of single
   * records would fill them), and one native queue entry per read is cheaper.
   */
  #deliver(topic: string, payload: Buffer): void {
    const workers = this.#topics.get(topic)
    if (workers === undefined) return // the last subscriber left while the message was on its way
    const record = encodePublished(topic, payload, 0)
    for (const index of workers) {
      let records = this.#outbox.get(index)
      if (records === undefined) this.#outbox.set(index, (records = []))
      records.push(record)
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true
      queueMicrotask(this.#flushOutbox)
    }
  }

  readonly #flushOutbox = (): void => {
    this.#flushQueued = false
    const slots = this.#workers()
    for (const [index, records] of this.#outbox) {
      for (let start = 0; start < records.length; ) {
        let end = start
        let bytes = 0
        while (end < records.length && (end === start || bytes + records[end]!.length <= OUTBOX_MESSAGE_BYTES)) bytes += records[end++]!.length
        const message = end - start === 1 ? records[start]! : Buffer.concat(records.slice(start, end), bytes)
        try {
          slots[index]?.pubsub?.sendBytes(message)
        } catch (err) {
          // A full channel: that worker is behind by thousands of messages; they are dropped for it and counted.
          // A closed one: the worker just died and is being replaced.
          if ((err as { code?: string }).code === 'ERR_CHANNEL_FULL') this.stats[PUBSUB_STAT.dropped] = this.stats[PUBSUB_STAT.dropped]! + end - start
        }
        start = end
      }
    }
    this.#outbox.clear()
  }
}
