import { createClient, type RedisClientType } from '@redis/client'
import { PUBSUB_STAT, ServerError, type PubSubAdapter, type PubSubHost } from '@amy/server'
import type { ResolvedRedisOptions } from './options.js'
import { RateLimitedLog } from './rate-limited-log.js'
import { decodeMessage, encodeMessage } from './wire.js'

type Client = RedisClientType<{}, {}, {}, 3, {}>

/**
 * The Redis side of one server instance (main placement) or of one worker
 * (worker placement): a publisher and a subscriber connection.
 *
 * - Publishes are pipelined; at most `maxPending` wait for Redis' reply.
 *   Past that (Redis slow) they are dropped; while disconnected they are not
 *   sent. Either way the message was already delivered on this instance, and
 *   it is counted, never queued: nothing grows without bound.
 * - The subscriber follows `subscribe`/`unsubscribe` (the first subscriber
 *   of a topic on this instance, the last one leaving). The wanted set is
 *   kept here; after a reconnect, whatever differs from what Redis
 *   confirmed is (un)subscribed again.
 * - Reconnects with exponential backoff (minReconnectDelay doubling up to
 *   maxReconnectDelay, with jitter), for ever once started; at start,
 *   failing to connect for `connectTimeout` ms rejects start().
 */
export class RedisPubSubAdapter implements PubSubAdapter {
  readonly #options: ResolvedRedisOptions
  #host: PubSubHost | undefined
  #pub: Client | undefined
  #sub: Client | undefined
  #log: RateLimitedLog | undefined
  #started = false
  #closed = false
  #pending = 0
  /** Channels with subscribers on this instance / confirmed by Redis / with a command on its way. */
  readonly #want = new Set<string>()
  readonly #confirmed = new Set<string>()
  readonly #busy = new Set<string>()

  constructor(options: ResolvedRedisOptions) {
    this.#options = options
  }

  async start(host: PubSubHost): Promise<void> {
    this.#host = host
    this.#log = new RateLimitedLog(host.logger, this.#options.logInterval)
    const startedAt = Date.now()
    const { connectTimeout, minReconnectDelay, maxReconnectDelay } = this.#options
    const reconnectStrategy = (retries: number, cause: Error): number | Error => {
      if (this.#closed) return new Error('closed')
      if (!this.#started && Date.now() - startedAt >= connectTimeout) return cause
      const delay = Math.min(minReconnectDelay * 2 ** Math.min(retries, 20), maxReconnectDelay)
      return Math.round(delay * (0.75 + Math.random() * 0.5))
    }
    const options = {
      url: this.#options.url,
      // Nothing queues while disconnected: a publish then is counted as not sent.
      disableOfflineQueue: true,
      // No per-command timer: node-redis' default (5 s) makes an
      // AbortSignal.timeout per PUBLISH, 15-20% of the main thread's time at
      // the chat benchmark's maximum (docs/benchmarks.md). A stuck Redis is
      // bounded by maxPending instead (drops counted), a dead one by the socket.
      commandOptions: { timeout: 0 },
      socket: { connectTimeout, reconnectStrategy },
    }
    const pub = createClient(options)
    const sub = createClient(options)
    this.#pub = pub
    this.#sub = sub
    for (const [name, client] of [['publisher', pub], ['subscriber', sub]] as const) {
      client.on('error', (err: Error) => this.#log?.warn(`redis-${name}-error`, { err: err.message }, `Redis ${name} connection: error (reconnecting)`))
      client.on('ready', () => this.#ready())
      client.on('end', () => this.#updateConnected())
      client.on('reconnecting', () => this.#updateConnected())
    }
    try {
      await Promise.all([pub.connect(), sub.connect()])
    } catch (err) {
      this.#closed = true
      for (const client of [pub, sub]) {
        try {
          client.destroy()
        } catch {
          // Never connected: nothing to tear down.
        }
      }
      throw new ServerError('ERR_PUBSUB_UNAVAILABLE', `cannot reach Redis at ${redactedUrl(this.#options.url)} within ${connectTimeout} ms: ${(err as Error).message}`)
    }
    this.#started = true
    this.#updateConnected()
  }

  publish(topic: string, payload: Uint8Array): void {
    const host = this.#host!
    const stats = host.stats
    const pub = this.#pub!
    if (!pub.isReady) {
      bump(stats, PUBSUB_STAT.notSent)
      this.#log!.warn('not-sent', {}, 'Redis is unreachable: publishes are delivered on this instance only')
      return
    }
    if (this.#pending >= this.#options.maxPending) {
      bump(stats, PUBSUB_STAT.dropped)
      this.#log!.warn('dropped', { maxPending: this.#options.maxPending }, 'Redis is slow: publishes dropped (delivered on this instance only)')
      return
    }
    this.#pending++
    pub.publish(this.#options.prefix + topic, encodeMessage(host.instanceId, payload)).then(this.#acked, this.#failed)
  }

  subscribe(topic: string): void {
    const channel = this.#options.prefix + topic
    this.#want.add(channel)
    this.#sync(channel)
  }

  unsubscribe(topic: string): void {
    const channel = this.#options.prefix + topic
    this.#want.delete(channel)
    this.#sync(channel)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const clients = [this.#pub, this.#sub].filter((c): c is Client => c !== undefined)
    // close() lets replies in flight arrive; a client that is not connected has none.
    await Promise.allSettled(clients.map(async c => (c.isReady ? c.close() : c.destroy())))
    this.#updateConnected()
  }

  readonly #acked = (): void => {
    this.#pending--
    bump(this.#host!.stats, PUBSUB_STAT.published)
  }

  readonly #failed = (err: Error): void => {
    this.#pending--
    bump(this.#host!.stats, PUBSUB_STAT.notSent)
    this.#log!.warn('publish-failed', { err: err.message }, 'publish to Redis failed (delivered on this instance only)')
  }

  readonly #onMessage = (message: Buffer, channel: Buffer): void => {
    const host = this.#host!
    const decoded = decodeMessage(message, host.instanceId)
    const prefix = this.#options.prefix
    if (decoded.kind === 'own') {
      bump(host.stats, PUBSUB_STAT.ownEchoes)
    } else if (decoded.kind === 'malformed' || channel.length < Buffer.byteLength(prefix)) {
      bump(host.stats, PUBSUB_STAT.malformed)
      this.#log!.warn('malformed', { channel: channel.toString('utf8', 0, 200) }, 'dropped a message on a Redis channel that was not ours to read')
    } else {
      bump(host.stats, PUBSUB_STAT.received)
      host.deliver(channel.toString('utf8', Buffer.byteLength(prefix)), decoded.payload)
    }
  }

  #ready(): void {
    if (this.#started) bump(this.#host!.stats, PUBSUB_STAT.reconnects)
    this.#updateConnected()
    for (const channel of new Set([...this.#want, ...this.#confirmed])) this.#sync(channel)
  }

  #updateConnected(): void {
    const stats = this.#host?.stats
    if (stats === undefined) return
    const up = !this.#closed && this.#pub?.isReady === true && this.#sub?.isReady === true
    stats[PUBSUB_STAT.connected] = up ? 1 : 0
  }

  /** Brings Redis' subscription of `channel` in line with what this instance wants; one command at a time. */
  #sync(channel: string): void {
    const sub = this.#sub
    if (sub === undefined || !sub.isReady || this.#busy.has(channel)) return
    const want = this.#want.has(channel)
    if (want === this.#confirmed.has(channel)) return
    this.#busy.add(channel)
    const command = want ? sub.subscribe(channel, this.#onMessage, true) : sub.unsubscribe(channel, this.#onMessage, true)
    command.then(
      () => {
        if (want) this.#confirmed.add(channel)
        else this.#confirmed.delete(channel)
        this.#host!.stats[PUBSUB_STAT.subscriptions] = this.#confirmed.size
        this.#busy.delete(channel)
        this.#sync(channel) // wanted otherwise meanwhile?
      },
      (err: Error) => {
        // Disconnected: the next 'ready' syncs every channel again.
        this.#busy.delete(channel)
        this.#log!.warn('subscribe-failed', { err: err.message }, 'Redis (un)subscribe failed; retried after reconnecting')
      },
    )
  }
}

function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.href
  } catch {
    return '(invalid url)'
  }
}

function bump(stats: Float64Array, slot: number): void {
  stats[slot] = stats[slot]! + 1
}
