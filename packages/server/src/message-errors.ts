import { ServerError } from './errors.js'
import type { SerializedError } from './messages.js'

// Errors crossing the main <-> worker port. Structured clone keeps an
// Error's name, message and stack but drops `code`, so replies carry a plain
// object and the receiving side rebuilds the Error with its code.

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const out: SerializedError = { name: err.name, message: err.message }
    const code = (err as { code?: unknown }).code
    if (typeof code === 'string' || typeof code === 'number') out.code = code
    if (err.stack !== undefined) out.stack = err.stack
    return out
  }
  return { name: 'Error', message: `a non-Error was thrown: ${String(err)}` }
}

/** The worker's error as an Error here, with its code and the worker's index. */
export function reviveError(e: SerializedError, worker: number): Error {
  const err = new Error(e.message) as Error & { code?: unknown; worker?: number }
  err.name = e.name
  if (e.code !== undefined) err.code = e.code
  err.worker = worker
  if (e.stack !== undefined) err.stack = `${e.stack}\n    (in worker ${worker})`
  return err
}

/** postMessage's DataCloneError (a DOMException without a string code) as ERR_INVALID_ARG_VALUE. */
export function cloneFailure(err: unknown, what: string): unknown {
  if (err instanceof Error && err.name === 'DataCloneError') {
    return new ServerError('ERR_INVALID_ARG_VALUE', `${what} cannot be sent to another thread (structured clone): ${err.message}`, { cause: err })
  }
  return err
}
