import { ServerError } from './errors.js'

// Argument checks shared by the worker API and the main thread's Server.
// Each failure is a ServerError with a documented code, never a TypeError
// from deep inside (or a silent default).

/** A UTF-8 topic fits the 16-bit length of the cross-thread message. */
export const MAX_TOPIC_BYTES = 0xffff

export function checkTopic(topic: unknown): string {
  if (typeof topic !== 'string') throw new ServerError('ERR_INVALID_ARG_TYPE', `topic must be a string, got ${describe(topic)}`)
  if (topic.length === 0) throw new ServerError('ERR_INVALID_ARG_VALUE', 'topic must not be empty')
  // A UTF-16 unit is at most 3 UTF-8 bytes: only long topics need counting.
  if (topic.length > MAX_TOPIC_BYTES / 3 && Buffer.byteLength(topic) > MAX_TOPIC_BYTES) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `topic is longer than ${MAX_TOPIC_BYTES} bytes (UTF-8)`)
  }
  return topic
}

/** Bytes to send: a string (UTF-8) or a Uint8Array (Buffer); nothing else. */
export function toBytes(data: unknown, what = 'data'): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data)
  if (data instanceof Uint8Array) return data
  throw invalidBytes(data, what)
}

export function invalidBytes(data: unknown, what = 'data'): ServerError {
  return new ServerError('ERR_INVALID_ARG_TYPE', `${what} must be a string or a Uint8Array (Buffer), got ${describe(data)}`)
}

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return value.constructor?.name ? `an instance of ${value.constructor.name}` : 'an object'
  if (typeof value === 'string') return `a string`
  return `${typeof value} ${String(value)}`
}
