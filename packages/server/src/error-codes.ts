/**
 * Every `code` @amy/server (and its pub/sub adapters) gives its own errors;
 * errors from @amy/core and syscalls pass through with theirs. The one
 * list: `ServerErrorCode` derives from it, and a test
 * (test/error-codes.test.ts) checks it against the codes the sources throw
 * and against the README's table.
 */
export const SERVER_ERROR_CODES = [
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_UNKNOWN_OPTION',
  'ERR_INVALID_HANDLER',
  'ERR_HANDLER_LOAD',
  'ERR_SETUP_TIMEOUT',
  'ERR_NOT_IN_WORKER',
  'ERR_SERVER_NOT_RUNNING',
  'ERR_SERVER_CLOSED',
  'ERR_WORKER_DIED',
  'ERR_REQUEST_TIMEOUT',
  'ERR_WORKER_STALLED',
  'ERR_CONNECTION_CLOSED',
  'ERR_CONNECT_TIMEOUT',
  'ERR_BUFFER_LIMIT',
  'ERR_BUFFER_TOTAL_LIMIT',
  'ERR_IDLE_TIMEOUT',
  'ERR_FIRST_DATA_TIMEOUT',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
  'ERR_NO_TLS_LISTENER',
  'ERR_PAYLOAD_TOO_LARGE',
  'ERR_PUBSUB_UNAVAILABLE',
] as const

/** The `code` of a ServerError: one of SERVER_ERROR_CODES. */
export type ServerErrorCode = (typeof SERVER_ERROR_CODES)[number]
