/**
 * @amy/redis: publish/subscribe across @amy/server instances over Redis
 * pub/sub.
 *
 *   import { redisPubSub } from '@amy/redis'
 *   createServer({ handler, pubsub: redisPubSub({ url: 'redis://127.0.0.1:6379', prefix: 'chat:' }) })
 *
 * Client: node-redis (`@redis/client`). Semantics, faults and limits: the
 * package README and docs/scaling.md.
 */
import type { PubSubAdapter, PubSubAdapterSpec } from '@amy/server'
import { RedisPubSubAdapter } from './adapter.js'
import { resolveRedisOptions, type RedisPubSubOptions, type ResolvedRedisOptions } from './options.js'

export type { RedisPubSubOptions } from './options.js'

/**
 * The adapter for `createServer({ pubsub })`. Options are checked here:
 * an invalid url, an unknown option or a bad value throws a ServerError
 * with a code (ERR_INVALID_ARG_VALUE, ERR_UNKNOWN_OPTION, ERR_INVALID_ARG_TYPE).
 */
export function redisPubSub(options: RedisPubSubOptions): PubSubAdapterSpec {
  const resolved = resolveRedisOptions(options)
  return {
    kind: 'amy.pubsub-adapter',
    module: __filename,
    options: resolved,
    placement: resolved.placement,
    maxPayloadBytes: resolved.maxPayloadBytes,
  }
}

/** Called by the server on the thread that hosts the adapter (see PubSubAdapterSpec). */
export function createPubSubAdapter(options: unknown): PubSubAdapter {
  return new RedisPubSubAdapter(options as ResolvedRedisOptions)
}
