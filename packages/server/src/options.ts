import { availableParallelism } from 'node:os'
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { BaseLogger as Logger } from 'pino'
import { ServerError } from './errors.js'
import { describe } from './validate.js'
import { resolveLogger, type LoggerOption } from './logging.js'
import { isPubSubAdapterSpec, type PubSubAdapterSpec } from './pubsub-adapter.js'

export type { LoggerOption }

/** Options of `createServer()`. Unknown keys are rejected. */
export interface ServerOptions {
  /** The handler module every worker loads: a path or a file: URL. */
  handler: string | URL
  /**
   * Worker threads. Default: one per core but one, at least one
   * (`os.availableParallelism() - 1`): the main thread (accept, hand-off,
   * watchdog) and the kernel's network work keep a core. Measured on two
   * cores, one worker served 1.37x more 64 B echoes and 1.1-2x more
   * connections per CPU-second than two (docs/benchmarks.md, "Default
   * threads").
   */
  threads?: number
  /**
   * Logging, as in fastify: `false` (silent), a level string, pino options
   * or a pino logger. Default: warnings and errors to stderr. Workers log
   * through it with `worker` and `conn` bindings, never per message.
   */
  logger?: LoggerOption
  /** Open connections at most; more are accepted and closed at once, and counted (default: no limit). */
  maxConnections?: number
  /**
   * Open TCP connections from one client address at most; more are
   * accepted and closed at once, counted in `stats().refusedPerAddress`
   * and logged once per 10 s (default 0: no limit). Addresses that hash to
   * the same one of 65,536 counters share it (see docs/reliability.md).
   */
  maxConnectionsPerAddress?: number
  /** write() returns false past this many queued bytes (default 64 KiB). */
  highWaterMark?: number
  /** A connection with more queued bytes than this is destroyed with ERR_BUFFER_LIMIT (default 16 MiB). */
  maxBufferedBytes?: number
  /**
   * All connections' write queues together, over every worker, counted as
   * maxBufferedBytes counts them (default 0: no limit). While they cost
   * more, a connection that is behind (more than highWaterMark queued) is
   * destroyed with ERR_BUFFER_TOTAL_LIMIT when it is written to; counted in
   * `stats().bufferTotalClosed` (see docs/reliability.md).
   */
  maxBufferedBytesTotal?: number
  /** Idle timeout for every connection in ms (default 0: none). conn.setTimeout overrides it. */
  idleTimeout?: number
  /**
   * An accepted connection that has sent no byte this long after it opened
   * (ms) is destroyed with ERR_FIRST_DATA_TIMEOUT: connections opened only to
   * hold fds cannot pile up (default 0: none).
   */
  firstDataTimeout?: number
  /** Keep our side open after the peer ends (default false: end it too). */
  allowHalfOpen?: boolean
  /** Aborting it closes the server (gracefully). */
  signal?: AbortSignal
  /** Passed (structured-cloned) to the handler's setup(context) as context.data. */
  handlerData?: unknown
  /**
   * A worker whose event loop has not turned for this long (ms) is
   * terminated and replaced; its connections are closed and counted. After
   * min(1 s, half of it) of silence it already gets no new connections.
   * Default 10000; 0 turns the watchdog off; otherwise at least 500.
   */
  stallTimeout?: number
  /** listen() rejects with ERR_SETUP_TIMEOUT if a worker's setup() takes longer (ms; default 30000, 0: no limit). */
  setupTimeout?: number
  /**
   * Extends publish/subscribe to the other instances of the application,
   * e.g. `redisPubSub({ url })` from @amy/redis (default: this process only).
   */
  pubsub?: PubSubAdapterSpec
  /**
   * How new TCP connections reach the workers. `'handoff'` (default): this
   * thread accepts them and hands each to the worker with the fewest open
   * connections that is responsive. `'reuseport'` (Linux): every worker
   * accepts from its own SO_REUSEPORT listener and the kernel spreads
   * connections by a hash of their addresses: no hop through this thread,
   * cheaper under connection churn, but blind to load and to a stalled
   * worker (it keeps its share until the watchdog replaces it). Unix
   * sockets and TLS listeners always use 'handoff'. See docs/benchmarks.md
   * for where each wins.
   */
  balance?: 'handoff' | 'reuseport'
}

export interface ResolvedOptions {
  handler: string
  threads: number
  logger: Logger
  maxConnections: number
  maxConnectionsPerAddress: number
  highWaterMark: number
  maxBufferedBytes: number
  maxBufferedBytesTotal: number
  idleTimeout: number
  firstDataTimeout: number
  allowHalfOpen: boolean
  signal: AbortSignal | undefined
  handlerData: unknown
  stallTimeout: number
  setupTimeout: number
  pubsub: PubSubAdapterSpec | undefined
  balance: 'handoff' | 'reuseport'
}

function integer(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `${name} must be a number`)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `${name} must be an integer in [${min}, ${max}], got ${value}`)
  }
  return value
}

// Every key of ServerOptions, checked by the compiler both ways (a new
// option must be listed here, or the build fails), so a misspelt option
// is ERR_UNKNOWN_OPTION instead of silently ignored.
const OPTION_KEYS = [
  'handler', 'threads', 'logger', 'maxConnections', 'highWaterMark', 'maxBufferedBytes', 'idleTimeout',
  'allowHalfOpen', 'signal', 'handlerData', 'stallTimeout', 'setupTimeout', 'pubsub', 'firstDataTimeout',
  'maxConnectionsPerAddress', 'balance', 'maxBufferedBytesTotal',
] as const satisfies ReadonlyArray<keyof ServerOptions>
const allOptionsListed: Exclude<keyof ServerOptions, (typeof OPTION_KEYS)[number]> extends never ? true : never = true
const KNOWN_OPTIONS = new Set<string>(OPTION_KEYS)

function boolean(name: string, value: unknown): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw new ServerError('ERR_INVALID_ARG_TYPE', `${name} must be a boolean, got ${typeof value}`)
  return value
}

/** One worker per core but one, at least one (see ServerOptions.threads). */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism() - 1)
}

export function resolveOptions(options: ServerOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new ServerError('ERR_INVALID_ARG_TYPE', 'createServer options must be an object')
  void allOptionsListed
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new ServerError('ERR_UNKNOWN_OPTION', `createServer: unknown option '${key}' (known: ${OPTION_KEYS.join(', ')})`)
  }
  const { handler } = options
  let handlerUrl: string
  if (handler instanceof URL) handlerUrl = handler.href
  else if (typeof handler === 'string' && handler.startsWith('file:')) handlerUrl = handler
  else if (typeof handler === 'string' && handler.length > 0) handlerUrl = pathToFileURL(isAbsolute(handler) ? handler : resolve(handler)).href
  else throw new ServerError('ERR_INVALID_ARG_TYPE', 'options.handler must be a path or a file: URL of the handler module')
  const logger = resolveLogger(options.logger)
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new ServerError('ERR_INVALID_ARG_TYPE', 'options.signal must be an AbortSignal')
  }
  if (options.pubsub !== undefined && !isPubSubAdapterSpec(options.pubsub)) {
    throw new ServerError('ERR_INVALID_ARG_TYPE', 'options.pubsub must be a pub/sub adapter, e.g. redisPubSub({ url }) from @amy/redis')
  }
  const highWaterMark = integer('highWaterMark', options.highWaterMark, 64 * 1024, 1, 2 ** 31)
  const maxBufferedBytes = integer('maxBufferedBytes', options.maxBufferedBytes, 16 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER)
  if (maxBufferedBytes < highWaterMark) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `maxBufferedBytes (${maxBufferedBytes}) must be >= highWaterMark (${highWaterMark})`)
  }
  const maxBufferedBytesTotal = integer('maxBufferedBytesTotal', options.maxBufferedBytesTotal, 0, 0, Number.MAX_SAFE_INTEGER)
  if (maxBufferedBytesTotal > 0 && maxBufferedBytesTotal < highWaterMark) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `maxBufferedBytesTotal (${maxBufferedBytesTotal}) must be 0 (none) or >= highWaterMark (${highWaterMark})`)
  }
  const stallTimeout = integer('stallTimeout', options.stallTimeout, 10_000, 0, 2 ** 31)
  if (stallTimeout > 0 && stallTimeout < 500) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `stallTimeout must be 0 (off) or at least 500 ms, got ${stallTimeout}`)
  }
  const balance = options.balance ?? 'handoff'
  if (balance !== 'handoff' && balance !== 'reuseport') {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `balance must be 'handoff' or 'reuseport', got ${describe(balance)}`)
  }
  if (balance === 'reuseport' && process.platform !== 'linux') {
    // Elsewhere SO_REUSEPORT does not spread connections (one listener gets them all).
    throw new ServerError('ERR_INVALID_ARG_VALUE', `balance 'reuseport' needs Linux (SO_REUSEPORT spreads connections only there); this is ${process.platform}`)
  }
  const maxConnectionsPerAddress = integer('maxConnectionsPerAddress', options.maxConnectionsPerAddress, 0, 0, 2 ** 31 - 1)
  if (balance === 'reuseport' && maxConnectionsPerAddress > 0) {
    // The per-address counters are kept by the main thread's acceptor, which 'reuseport' bypasses.
    throw new ServerError('ERR_INVALID_ARG_VALUE', "maxConnectionsPerAddress needs balance 'handoff' (the default)")
  }
  return {
    handler: handlerUrl,
    threads: integer('threads', options.threads, defaultThreads(), 1, 1024),
    logger,
    maxConnections: integer('maxConnections', options.maxConnections, 0, 0, 2 ** 31),
    maxConnectionsPerAddress,
    highWaterMark,
    maxBufferedBytes,
    maxBufferedBytesTotal,
    idleTimeout: integer('idleTimeout', options.idleTimeout, 0, 0, 2 ** 31),
    firstDataTimeout: integer('firstDataTimeout', options.firstDataTimeout, 0, 0, 2 ** 31),
    allowHalfOpen: boolean('allowHalfOpen', options.allowHalfOpen),
    signal: options.signal,
    handlerData: cloneable(options.handlerData),
    stallTimeout,
    setupTimeout: integer('setupTimeout', options.setupTimeout, 30_000, 0, 2 ** 31),
    pubsub: options.pubsub,
    balance,
  }
}

/** handlerData crosses to every worker as a structured clone: check it once, here, with a clear error. */
function cloneable(data: unknown): unknown {
  if (data === undefined) return undefined
  try {
    structuredClone(data)
  } catch (err) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `options.handlerData cannot be sent to the workers (structured clone): ${(err as Error).message}`, { cause: err })
  }
  return data
}
