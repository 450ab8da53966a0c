import { AmyError, checkInteger } from '../errors.js'

/** Default size of a reader's reusable read buffer: one typical socket read. */
export const DEFAULT_BUFFER_SIZE = 64 * 1024

/** Upper bound for `bufferSize`; larger reads gain nothing and risk huge allocations. */
export const MAX_BUFFER_SIZE = 2 ** 30

/**
 * Options come from JavaScript callers too, so check the shape at runtime
 * rather than trusting the static type.
 */
export function checkOptions(name: string, value: unknown): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null) {
    throw new AmyError('ERR_INVALID_ARG_TYPE', `${name} must be an object, got ${value === null ? 'null' : typeof value}`)
  }
  return value as Readonly<Record<string, unknown>>
}

/** `bufferSize` is optional everywhere; validate it the same way for every reader. */
export function checkBufferSize(name: string, value: unknown): number {
  return value === undefined ? DEFAULT_BUFFER_SIZE : checkInteger(name, value, 1, MAX_BUFFER_SIZE)
}
