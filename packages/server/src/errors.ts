import type { ServerErrorCode } from './error-codes.js'

export type { ServerErrorCode }

/** Errors of @amy/server: `Error`s with a stable `code` (the list: error-codes.ts), like @amy/core's. */
export class ServerError extends Error {
  /** A stable code from SERVER_ERROR_CODES (see the README's table). */
  readonly code: ServerErrorCode

  constructor(code: ServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ServerError'
    this.code = code
  }
}
