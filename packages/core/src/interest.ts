import { AmyError } from './errors.js'

/**
 * What a registration waits for. Readiness is edge-triggered: after a
 * notification, read (or write) until the call reports it would block.
 */
export const Interest = {
  /** Readable (data, a connection, end of stream, a timer or channel). */
  Read: 1,
  /** Writable (a connect finished, room in the send buffer). */
  Write: 2,
  /** Read and Write. */
  Both: 3,
} as const

export type Interest = (typeof Interest)[keyof typeof Interest]

export function checkInterest(value: unknown): Interest {
  if (value !== Interest.Read && value !== Interest.Write && value !== Interest.Both) {
    throw new AmyError('ERR_INVALID_ARG_VALUE', `interest must be Interest.Read, Interest.Write or Interest.Both, got ${String(value)}`)
  }
  return value
}
