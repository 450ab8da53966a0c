/**
 * Pub/sub across server instances. Inside one process, `publish` always
 * reaches every worker over the in-process bus (raw channels between the
 * workers' pollers): that is the default and needs no adapter. An adapter
 * extends it to the other instances (processes, machines) of an application,
 * e.g. `@amy/redis`:
 *
 *   createServer({ handler, pubsub: redisPubSub({ url, prefix }) })
 *
 * What the server promises an adapter, and what it expects back:
 * - `publish(topic, payload)` is called once per message published on this
 *   instance, after it was delivered here; the adapter sends it to the other
 *   instances and must never hand it back to this one (`deliver` of a message
 *   this instance published would reach its subscribers twice).
 * - `subscribe(topic)` when the first subscriber of the topic appears
 *   anywhere on this instance, `unsubscribe(topic)` when the last one leaves:
 *   topics nobody here listens to cost nothing per message.
 * - `deliver(topic, payload)` (given to `start`) takes a message published by
 *   another instance; the server writes it to its local subscribers.
 * - Nothing here throws per message: what cannot be sent is counted.
 *
 * The adapter runs on the main thread (`placement: 'main'`: one adapter per
 * instance, its workers' publishes and subscriptions forwarded over a raw
 * channel) or in every worker (`placement: 'worker'`: one adapter per
 * worker, all sharing the instance id). docs/architecture.md has the
 * measurement behind each adapter's default.
 */
import type { BaseLogger } from 'pino'

/** Counters every adapter keeps; `server.stats().pubsub` sums them over the instance. */
export const PUBSUB_STAT = {
  /** 1 while the adapter can send (summed over adapters in worker placement). */
  connected: 0,
  /** Messages sent to the other instances. */
  published: 1,
  /** Messages not sent because the adapter was disconnected (delivered locally only). */
  notSent: 2,
  /** Messages dropped because a queue was full: publishes waiting for a slow broker (maxPending), or a worker's channel (main placement). */
  dropped: 3,
  /** Messages received from other instances and delivered here. */
  received: 4,
  /** This instance's own messages coming back, dropped (already delivered). */
  ownEchoes: 5,
  /** Messages received that were not ours to read (another app, corrupt), dropped. */
  malformed: 6,
  /** Topics subscribed at the broker now. */
  subscriptions: 7,
  /** Times the connection to the broker was re-established. */
  reconnects: 8,
} as const

/** The name of one adapter counter (a key of PUBSUB_STAT). */
export type PubSubStatName = keyof typeof PUBSUB_STAT
/** Adapter counters by name, as in `server.stats().pubsub`. */
export type PubSubStats = Record<PubSubStatName, number>
export const PUBSUB_STAT_SLOTS = 16

export const PUBSUB_STAT_NAMES = Object.keys(PUBSUB_STAT) as PubSubStatName[]

/** What the server hands an adapter when it starts it. */
export interface PubSubHost {
  /** Same for every adapter of one server instance; differs between instances. */
  readonly instanceId: Buffer
  /** Counters (indexed by PUBSUB_STAT) the adapter updates; the server reads them. */
  readonly stats: Float64Array
  /** The server's logger, for the adapter's own lines. */
  readonly logger: BaseLogger
  /** A message another instance published: write it to the local subscribers. */
  deliver(topic: string, payload: Buffer): void
}

/** A pub/sub adapter (see the module comment above for the contract). */
export interface PubSubAdapter {
  /**
   * Connects. Rejecting makes `server.listen()` reject: an instance that
   * cannot reach its peers at start is not started half-connected.
   */
  start(host: PubSubHost): Promise<void>
  /** Sends one message published on this instance to the other instances (never back to this one). */
  publish(topic: string, payload: Uint8Array): void
  /** The first subscriber of `topic` on this instance appeared. */
  subscribe(topic: string): void
  /** The last subscriber of `topic` on this instance left. */
  unsubscribe(topic: string): void
  /** Disconnects; called by `server.close()`. */
  close(): Promise<void>
}

/**
 * What `createServer({ pubsub })` takes: where the adapter runs and how to
 * make it. Plain data, so it reaches worker threads (`workerData` is a
 * structured clone): the module is imported and `createPubSubAdapter(options)`
 * called on the thread that hosts the adapter.
 */
export interface PubSubAdapterSpec {
  /** Marks the object as an adapter spec. */
  readonly kind: 'amy.pubsub-adapter'
  /** Absolute path or file: URL of a module exporting createPubSubAdapter(options). */
  readonly module: string
  /** Passed (structured-cloned) to `createPubSubAdapter(options)`. */
  readonly options: unknown
  /** Where the adapter runs: one on the main thread, or one per worker. */
  readonly placement: 'main' | 'worker'
  /** publish() with a larger payload throws ERR_PAYLOAD_TOO_LARGE in the worker. */
  readonly maxPayloadBytes: number
}

export interface PubSubAdapterModule {
  createPubSubAdapter(options: unknown): PubSubAdapter
}

export function isPubSubAdapterSpec(value: unknown): value is PubSubAdapterSpec {
  if (value === null || typeof value !== 'object') return false
  const spec = value as Record<string, unknown>
  return (
    spec['kind'] === 'amy.pubsub-adapter' &&
    typeof spec['module'] === 'string' &&
    (spec['placement'] === 'main' || spec['placement'] === 'worker') &&
    typeof spec['maxPayloadBytes'] === 'number'
  )
}

export async function loadPubSubAdapter(spec: PubSubAdapterSpec): Promise<PubSubAdapter> {
  const mod = (await import(spec.module)) as Partial<PubSubAdapterModule> & { default?: Partial<PubSubAdapterModule> }
  const create = mod.createPubSubAdapter ?? mod.default?.createPubSubAdapter
  if (typeof create !== 'function') throw new TypeError(`${spec.module} does not export createPubSubAdapter(options)`)
  return create(spec.options)
}

export function readPubSubStats(slots: Float64Array[]): PubSubStats {
  const out = {} as PubSubStats
  for (const name of PUBSUB_STAT_NAMES) out[name] = slots.reduce((sum, s) => sum + s[PUBSUB_STAT[name]]!, 0)
  return out
}

/**
 * The worker's view of the cross-instance side: the adapter itself (worker
 * placement) or a forwarder to the main thread's adapter (main placement).
 */
export interface RemoteBus {
  readonly maxPayloadBytes: number
  publish(topic: string, payload: Uint8Array): void
  subscribed(topic: string): void
  unsubscribed(topic: string): void
}
