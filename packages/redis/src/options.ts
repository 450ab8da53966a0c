import { ServerError } from '@amy/server'

export interface RedisPubSubOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://` (TLS). */
  url: string
  /**
   * Prepended to every topic to make the Redis channel name, so several
   * applications can share one Redis (default `'amy:'`; give each
   * application its own).
   */
  prefix?: string
  /**
   * Where the Redis connections live: `'main'` (default: one publisher and
   * one subscriber connection per server instance, on the main thread) or
   * `'worker'` (a pair in every worker thread). See docs/architecture.md
   * for the measurement.
   */
  placement?: 'main' | 'worker'
  /** A publish with a larger payload throws ERR_PAYLOAD_TOO_LARGE (default 1 MiB). */
  maxPayloadBytes?: number
  /**
   * Publishes sent to Redis and not yet acknowledged, at most; past it, new
   * publishes are dropped (delivered locally only) and counted as `dropped`
   * (default 10000 per adapter).
   */
  maxPending?: number
  /** listen() rejects with ERR_PUBSUB_UNAVAILABLE if Redis cannot be reached for this long (ms, default 5000). */
  connectTimeout?: number
  /** First delay between reconnect attempts in ms, doubled per failed attempt (default 50). */
  minReconnectDelay?: number
  /** Longest delay between reconnect attempts in ms (default 5000). */
  maxReconnectDelay?: number
  /** Repeated warnings (drops, outages, malformed messages) are logged at most once per this many ms (default 10000). */
  logInterval?: number
}

export interface ResolvedRedisOptions {
  url: string
  prefix: string
  placement: 'main' | 'worker'
  maxPayloadBytes: number
  maxPending: number
  connectTimeout: number
  minReconnectDelay: number
  maxReconnectDelay: number
  logInterval: number
}

const KNOWN = new Set<string>([
  'url',
  'prefix',
  'placement',
  'maxPayloadBytes',
  'maxPending',
  'connectTimeout',
  'minReconnectDelay',
  'maxReconnectDelay',
  'logInterval',
])

function integer(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `redisPubSub: ${name} must be a number`)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `redisPubSub: ${name} must be an integer in [${min}, ${max}], got ${value}`)
  }
  return value
}

function checkUrl(url: unknown): string {
  if (typeof url !== 'string' || url.length === 0) throw new ServerError('ERR_INVALID_ARG_TYPE', 'redisPubSub: url must be a string like redis://127.0.0.1:6379')
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `redisPubSub: url ${JSON.stringify(url)} is not a URL (redis://host:port)`)
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `redisPubSub: url must start with redis:// or rediss://, got ${parsed.protocol}//`)
  }
  if (parsed.hostname === '') throw new ServerError('ERR_INVALID_ARG_VALUE', `redisPubSub: url ${JSON.stringify(url)} has no host`)
  return url
}

/** Validates at the boundary: every mistake is a ServerError with a code, thrown by redisPubSub(). */
export function resolveRedisOptions(options: RedisPubSubOptions): ResolvedRedisOptions {
  if (options === null || typeof options !== 'object') throw new ServerError('ERR_INVALID_ARG_TYPE', 'redisPubSub options must be an object')
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new ServerError('ERR_UNKNOWN_OPTION', `redisPubSub: unknown option ${JSON.stringify(key)} (known: ${[...KNOWN].join(', ')})`)
  }
  const prefix = options.prefix ?? 'amy:'
  if (typeof prefix !== 'string') throw new ServerError('ERR_INVALID_ARG_TYPE', 'redisPubSub: prefix must be a string')
  const placement = options.placement ?? 'main'
  if (placement !== 'main' && placement !== 'worker') {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `redisPubSub: placement must be 'main' or 'worker', got ${JSON.stringify(placement)}`)
  }
  const minReconnectDelay = integer('minReconnectDelay', options.minReconnectDelay, 50, 1, 60_000)
  const maxReconnectDelay = integer('maxReconnectDelay', options.maxReconnectDelay, 5000, 1, 600_000)
  if (maxReconnectDelay < minReconnectDelay) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `redisPubSub: maxReconnectDelay (${maxReconnectDelay}) must be >= minReconnectDelay (${minReconnectDelay})`)
  }
  return {
    url: checkUrl(options.url),
    prefix,
    placement,
    // Redis' own limit for a bulk string is 512 MiB; past a few MiB pub/sub is the wrong tool.
    maxPayloadBytes: integer('maxPayloadBytes', options.maxPayloadBytes, 1024 * 1024, 1, 512 * 1024 * 1024 - 64),
    maxPending: integer('maxPending', options.maxPending, 10_000, 1, 10_000_000),
    connectTimeout: integer('connectTimeout', options.connectTimeout, 5000, 1, 600_000),
    minReconnectDelay,
    maxReconnectDelay,
    logInterval: integer('logInterval', options.logInterval, 10_000, 0, 3_600_000),
  }
}
