import type { AmyErrorCode } from './error-codes.js'

export type { AmyErrorCode }

/**
 * Every error amy throws is an `Error` with a stable `code`; errors that come
 * from a failed syscall also carry `errno` (negative, as in node:net) and
 * `syscall`. Branch on `err.code`, never on the message text.
 */
export class AmyError extends Error {
  /** A stable code from AMY_ERROR_CODES (see the README's table). */
  readonly code: AmyErrorCode

  constructor(code: AmyErrorCode, message: string) {
    super(message)
    this.name = 'AmyError'
    this.code = code
  }
}

/** Throws ERR_INVALID_ARG_VALUE unless `value` is an integer in [min, max]. */
export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') {
    throw new AmyError('ERR_INVALID_ARG_TYPE', `${name} must be a number, got ${typeof value}`)
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new AmyError('ERR_INVALID_ARG_VALUE', `${name} must be an integer in [${min}, ${max}], got ${value}`)
  }
  return value
}
