import { TLS_ERROR_CODES } from './tls-errors.js'

/**
 * Every `code` @amy/core and the native addon (@amy/native) give their own
 * errors, besides errno names (`EADDRINUSE`, `ECONNRESET`, ...) on syscall
 * failures. The one list: `AmyErrorCode` derives from it, and a test
 * (packages/server/test/error-codes.test.ts) checks it against the codes the
 * C++ and TypeScript sources throw and against the README's table.
 */
export const AMY_ERROR_CODES = [
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_ADDRESS',
  'ERR_POLLER_CLOSED',
  'ERR_POLLER_STARTED',
  'ERR_NO_EVENT_LOOP',
  'ERR_UNKNOWN_ID',
  'ERR_CHANNEL_FULL',
  'ERR_CHANNEL_CLOSED',
  'ERR_SOCKET_CLOSED',
  'ERR_PIPE_CLOSED',
  'ERR_FRAME_TOO_LARGE',
  'ERR_LINE_TOO_LONG',
  'ERR_WRITE_QUEUE_FULL',
  'ERR_OUT_OF_MEMORY',
  'ERR_NATIVE_LOAD',
  ...TLS_ERROR_CODES,
] as const

/** The `code` of an AmyError: one of AMY_ERROR_CODES. */
export type AmyErrorCode = (typeof AMY_ERROR_CODES)[number]
