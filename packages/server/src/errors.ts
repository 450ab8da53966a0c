/** Errors of @amy/server: `Error`s with a stable `code`, like @amy/core's. */
export type ServerErrorCode =
  | 'ERR_BUFFER_LIMIT'
  | 'ERR_CONNECTION_CLOSED'
  | 'ERR_IDLE_TIMEOUT'
  | 'ERR_SERVER_CLOSED'
  | 'ERR_SERVER_NOT_RUNNING'
  | 'ERR_WORKER_DIED'
  | 'ERR_NOT_IN_WORKER'
  | 'ERR_INVALID_HANDLER'
  | 'ERR_HANDLER_LOAD'
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_SETUP_TIMEOUT'
  | 'ERR_WORKER_STALLED'
  | 'ERR_UNKNOWN_OPTION'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_PUBSUB_UNAVAILABLE'

export class ServerError extends Error {
  readonly code: ServerErrorCode

  constructor(code: ServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ServerError'
    this.code = code
  }
}
