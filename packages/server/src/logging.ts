import { pino, type BaseLogger, type Logger } from 'pino'
import type { MessagePort } from 'node:worker_threads'
import type { LogMessage } from './messages.js'

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
