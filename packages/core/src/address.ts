import { AmyError } from './errors.js'

/** An IP socket's address. */
export interface SocketAddress {
  /** The IP address, e.g. '127.0.0.1' or '::1'. */
  address: string
  /** The TCP port. */
  port: number
  /** 'IPv4' or 'IPv6'. */
  family: 'IPv4' | 'IPv6'
}

/** A Unix domain socket's address: its path, or an abstract name starting with '\0' (Linux). */
export interface UnixSocketAddress {
  /** The socket's path; an abstract name starts with '\0'. */
  path: string
  /** Always 'Unix'. */
  family: 'Unix'
}

/**
 * Hosts are IP literals: name lookups block, and a non-blocking library must
 * not hide one. 'localhost' is the one name taken, as 127.0.0.1; resolve
 * other names first (node:dns).
 */
export function resolveHost(host: unknown, fallback: string): string {
  if (host === undefined) return fallback
  if (typeof host !== 'string') throw new AmyError('ERR_INVALID_ARG_TYPE', 'host must be a string')
  if (host === 'localhost') return '127.0.0.1'
  // Bracketed IPv6 ("[::1]") as written in URLs.
  if (host.startsWith('[') && host.endsWith(']')) return host.slice(1, -1)
  return host
}

export function checkPort(port: unknown, allowZero: boolean): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new AmyError('ERR_INVALID_ARG_VALUE', `port must be an integer in [${allowZero ? 0 : 1}, 65535], got ${String(port)}`)
  }
  return port
}
