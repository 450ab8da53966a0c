/**
 * Every error amy throws is an `Error` with a stable `code`; errors that come
 * from a failed syscall also carry `errno` (negative, as in node:net) and
 * `syscall`. Branch on `err.code`, never on the message text.
 */
export type AmyErrorCode =
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_LINE_TOO_LONG'
  | 'ERR_WRITE_QUEUE_FULL'
  | 'ERR_POLLER_CLOSED'
  | 'ERR_POLLER_STARTED'
  | 'ERR_CHANNEL_FULL'
  | 'ERR_CHANNEL_CLOSED'
  | 'ERR_SOCKET_CLOSED'
  | 'ERR_PIPE_CLOSED'
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_UNKNOWN_ID'

export class AmyError extends Error {
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
