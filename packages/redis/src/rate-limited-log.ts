import type { BaseLogger } from 'pino'

/**
 * Warnings about things that repeat per message (drops, an outage) are
 * logged once per interval and key, with how many happened since the last
 * line: a slow or absent Redis must not turn into a log flood.
 */
export class RateLimitedLog {
  readonly #logger: BaseLogger
  readonly #intervalMs: number
  readonly #last = new Map<string, { at: number; suppressed: number }>()

  constructor(logger: BaseLogger, intervalMs: number) {
    this.#logger = logger
    this.#intervalMs = intervalMs
  }

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now()
    const entry = this.#last.get(key)
    if (entry !== undefined && now - entry.at < this.#intervalMs) {
      entry.suppressed++
      return
    }
    const suppressed = entry?.suppressed ?? 0
    this.#last.set(key, { at: now, suppressed: 0 })
    this.#logger.warn({ ...fields, ...(suppressed > 0 && { sinceLastLog: suppressed + 1 }) }, message)
  }
}
