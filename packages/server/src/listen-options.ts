import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { ServerError } from './errors.js'
import { checkServerTlsOptions, type ServerTlsOptions } from './tls.js'

/** Where listen() binds: TCP (`host`, `port`) or a Unix domain socket (`path`). */
export interface ListenOptions {
  /**
   * An IP address or a host name (default '127.0.0.1'; '0.0.0.0' or '::'
   * for every interface). A name is resolved with `dns.lookup` (so
   * /etc/hosts counts) and, as in net.Server, only its first address is
   * listened on; listen again for more.
   */
  host?: string
  /** 0 (default) picks a free port: read it from the result or address(). */
  port?: number
  /**
   * A Unix domain socket instead of TCP: a filesystem path (removed again by
   * close()), or on Linux an abstract name starting with '\0'. Excludes
   * `host`, `port`, `reusePort` and `ipv6Only`.
   */
  path?: string
  /** Listen queue length (default 511). */
  backlog?: number
  /** SO_REUSEPORT: other processes may listen on the same port. */
  reusePort?: boolean
  /** For an IPv6 host: do not also accept IPv4 (default false). */
  ipv6Only?: boolean
  /**
   * Serve TLS on this address: the handler sees plaintext, `open` runs
   * once the handshake is done and `conn.tls` tells its outcome.
   */
  tls?: ServerTlsOptions
}

export type ListenTarget =
  | { kind: 'tcp'; host: string; port: number; backlog: number | undefined; reusePort: boolean; ipv6Only: boolean; tls: ServerTlsOptions | undefined }
  | { kind: 'unix'; path: string; backlog: number | undefined; tls: ServerTlsOptions | undefined }

const KEYS = new Set(['host', 'port', 'path', 'backlog', 'reusePort', 'ipv6Only', 'tls'])
const TCP_ONLY = ['host', 'port', 'reusePort', 'ipv6Only'] as const

function port(value: unknown): number {
  if (value === undefined) return 0
  if (typeof value !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `port must be a number, got ${typeof value}`)
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `port must be an integer in [0, 65535], got ${value}`)
  }
  return value
}

function host(value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw new ServerError('ERR_INVALID_ARG_TYPE', `host must be a string, got ${typeof value}`)
  if (value.length === 0) throw new ServerError('ERR_INVALID_ARG_VALUE', 'host must not be empty')
  return value
}

function flag(name: string, value: unknown): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw new ServerError('ERR_INVALID_ARG_TYPE', `${name} must be a boolean, got ${typeof value}`)
  return value
}

function backlog(value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `backlog must be a number, got ${typeof value}`)
  if (!Number.isInteger(value) || value < 0 || value > 2147483647) {
    throw new ServerError('ERR_INVALID_ARG_VALUE', `backlog must be an integer in [0, 2147483647], got ${value}`)
  }
  return value
}

/**
 * Checks listen()'s arguments — `(port?, host?)` or one options object —
 * synchronously, before anything starts. Unknown option keys are rejected
 * (a typo such as `prot` would otherwise listen on a random port).
 */
export function parseListenArgs(first: unknown, second: unknown): ListenTarget {
  if (first === undefined || typeof first === 'number' || typeof first === 'string') {
    if (typeof first === 'string') {
      throw new ServerError('ERR_INVALID_ARG_TYPE', `listen(port, host): port must be a number, got the string '${first}' (use { path } for a Unix socket)`)
    }
    return { kind: 'tcp', host: host(second) ?? '127.0.0.1', port: port(first), backlog: undefined, reusePort: false, ipv6Only: false, tls: undefined }
  }
  if (first === null || typeof first !== 'object') {
    throw new ServerError('ERR_INVALID_ARG_TYPE', `listen() takes (port, host?) or an options object, got ${first === null ? 'null' : typeof first}`)
  }
  if (second !== undefined) throw new ServerError('ERR_INVALID_ARG_VALUE', 'listen(options) takes no second argument')
  const options = first as Record<string, unknown>
  for (const key of Object.keys(options)) {
    if (!KEYS.has(key)) throw new ServerError('ERR_UNKNOWN_OPTION', `listen: unknown option '${key}' (known: ${[...KEYS].join(', ')})`)
  }
  const tls = options['tls'] === undefined ? undefined : checkServerTlsOptions(options['tls'])
  if (options['path'] !== undefined) {
    const path = options['path']
    if (typeof path !== 'string') throw new ServerError('ERR_INVALID_ARG_TYPE', `path must be a string, got ${typeof path}`)
    if (path.length === 0) throw new ServerError('ERR_INVALID_ARG_VALUE', 'path must not be empty')
    for (const key of TCP_ONLY) {
      if (options[key] !== undefined) throw new ServerError('ERR_INVALID_ARG_VALUE', `listen: '${key}' does not go with 'path' (a Unix socket)`)
    }
    return { kind: 'unix', path, backlog: backlog(options['backlog']), tls }
  }
  return {
    kind: 'tcp',
    host: host(options['host']) ?? '127.0.0.1',
    port: port(options['port']),
    backlog: backlog(options['backlog']),
    reusePort: flag('reusePort', options['reusePort']),
    ipv6Only: flag('ipv6Only', options['ipv6Only']),
    tls,
  }
}

/**
 * An IP literal as it is (brackets of "[::1]" dropped); a name through
 * `dns.lookup` (the system resolver: /etc/hosts, then DNS), whose first
 * answer is taken in the resolver's order, as net.Server.listen and
 * net.connect do. Lookup failures keep their code (ENOTFOUND, EAI_AGAIN)
 * and name the host.
 */
export async function resolveHost(name: string): Promise<string> {
  const bare = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name
  if (isIP(bare) !== 0) return bare
  try {
    return (await lookup(bare)).address
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (typeof e.message === 'string' && !e.message.includes(bare)) e.message += ` (${bare})`
    throw err
  }
}

/** Adds the address to a bind error's message and as `address`/`port` fields, as node:net does. */
export function nameAddress(err: unknown, target: ListenTarget, boundHost?: string): unknown {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number }
  if (e === null || typeof e !== 'object' || typeof e.syscall !== 'string') return err
  if (target.kind === 'tcp') {
    const h = boundHost ?? target.host
    e.address = h
    e.port = target.port
    e.message += ` ${h.includes(':') ? `[${h}]` : h}:${target.port}`
  } else {
    e.address = target.path
  }
  return err
}
