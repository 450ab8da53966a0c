import { AmyError } from './errors.js'

/** Anything a Registrar can register: an fd number, or an object with an `fd`. */
export type Source =
  | number
  | {
      /** The fd to watch (-1 once closed). */
      readonly fd: number
    }

/**
 * Implemented by TcpStream and TcpListener so that `close()` deregisters them
 * from every registrar they were registered with (deregister before close).
 */
export const kTrackRegistration = Symbol('amy.trackRegistration')

export interface Deregisterer {
  deregister(id: number): boolean
  /** deregister(id), then close `fd` (closed in every case), in one call. */
  deregisterAndClose?(id: number, fd: number): void
}

export interface TrackedSource {
  readonly fd: number
  [kTrackRegistration](registrar: Deregisterer, id: number, registered: boolean): void
}

export function fdOf(source: Source): number {
  const fd = typeof source === 'number' ? source : source?.fd
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new AmyError('ERR_INVALID_ARG_TYPE', 'a source must be an fd number or an object with an fd (is it closed?)')
  }
  return fd
}

export function isTracked(source: Source): source is TrackedSource & Source {
  return typeof source === 'object' && source !== null && kTrackRegistration in source
}
