import { pino, type BaseLogger, type Logger, type LoggerOptions } from 'pino'
import type { MessagePort } from 'node:worker_threads'
import { ServerError } from './errors.js'
import type { LogMessage } from './messages.js'
import { describe } from './validate.js'

/**
 * `createServer({ logger })`, like fastify's: `false` (silent), a level
 * (`'info'`, `'debug'`, ...), pino options, or your own pino logger. The
 * default is loud: warnings and errors to stderr.
 */
export type LoggerOption = false | string | LoggerOptions | BaseLogger

const DEFAULT_LEVEL = 'warn'

/** The main thread's logger from the `logger` option. */
export function resolveLogger(option: LoggerOption | undefined): BaseLogger {
  if (option === false) return pino({ level: 'silent' })
  if (option === undefined) return toStderr({ level: DEFAULT_LEVEL })
  if (typeof option === 'string') {
    if (option !== 'silent' && !(option in pino.levels.values)) {
      throw new ServerError('ERR_INVALID_ARG_VALUE', `options.logger: unknown level '${option}' (one of ${Object.keys(pino.levels.values).join(', ')}, silent)`)
    }
    return toStderr({ level: option })
  }
  if (option === null || typeof option !== 'object') {
    throw new ServerError('ERR_INVALID_ARG_TYPE', `options.logger must be false, a level, pino options or a pino logger, got ${describe(option)}`)
  }
  if (typeof (option as BaseLogger).info === 'function') {
    const logger = option as BaseLogger
    if (typeof logger.level !== 'string' || typeof logger.error !== 'function' || typeof logger.warn !== 'function') {
      throw new ServerError('ERR_INVALID_ARG_TYPE', 'options.logger looks like a logger but is not a pino logger (level, error, warn, info)')
    }
    return logger
  }
  const options = option as LoggerOptions
  // pino refuses a destination next to a transport: the transport decides.
  if (options.transport !== undefined) return pino({ level: DEFAULT_LEVEL, ...options })
  return toStderr({ level: DEFAULT_LEVEL, ...options })
}

function toStderr(options: LoggerOptions): Logger {
  // Synchronous: the lines of a crash must not be lost on exit.
  return pino(options, pino.destination({ dest: 2, sync: true }))
}

/**
 * Workers log through pino like the main thread, but their lines travel to
 * the main thread (rarely: connection errors, crashes; never per message)
 * and are re-emitted through the caller's logger with a `worker` binding.
 */
export function workerLogger(port: MessagePort, level: string, worker: number): Logger {
  const destination = {
    write(line: string): void {
      const message: LogMessage = { type: 'log', line }
      port.postMessage(message)
    },
  }
  return pino({ level, base: { worker } }, destination)
}

const DROP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'worker'])

/** Re-emits one worker log line through the main thread's logger. */
export function relayWorkerLine(logger: BaseLogger, line: string): void {
  let record: Record<string, unknown>
  try {
    record = JSON.parse(line) as Record<string, unknown>
  } catch {
    logger.warn({ line }, 'unparseable worker log line')
    return
  }
  const label = pino.levels.labels[record['level'] as number] ?? 'info'
  const bindings: Record<string, unknown> = { worker: record['worker'] }
  for (const [key, value] of Object.entries(record)) if (!DROP.has(key)) bindings[key] = value
  const log = (logger as unknown as Record<string, (obj: object, msg?: string) => void>)[label]
  log?.call(logger, bindings, record['msg'] as string | undefined)
}
