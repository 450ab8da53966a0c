import { rootCertificates } from 'node:tls'
import native, { type NativeTlsContextOptions } from './native.js'
import { AmyError } from './errors.js'

/** A PEM text, as a string or its bytes (e.g. from `readFileSync`). */
export type Pem = string | Uint8Array

/** A TLS protocol version amy supports. */
export type TlsVersion = 'TLSv1.2' | 'TLSv1.3'

/** A key and certificate, e.g. one SNI name's. */
export interface TlsIdentity {
  /** PEM private key. */
  key: Pem
  /** PEM certificate, optionally followed by its chain. */
  cert: Pem
  /** The key's passphrase, if it is encrypted. */
  passphrase?: string
}

/**
 * Options of a TLS context, named as in node:tls where node:tls has the
 * option (`key`, `cert`, `ca`, `passphrase`, `minVersion`, `maxVersion`,
 * `ciphers`, `ALPNProtocols`, `requestCert`, `rejectUnauthorized`,
 * `ticketKeys`).
 */
export interface TlsContextOptions {
  /** PEM private key (servers: required; clients: for mTLS). */
  key?: Pem
  /** PEM certificate, optionally followed by its chain. */
  cert?: Pem
  /** The key's passphrase, if it is encrypted. */
  passphrase?: string
  /**
   * Trusted CAs. Clients default to node:tls's `rootCertificates` (the
   * Mozilla bundle Node ships); servers use it for client certificates.
   */
  ca?: Pem | readonly Pem[]
  /** Lowest protocol version (default TLSv1.2). */
  minVersion?: TlsVersion
  /** Highest protocol version (default TLSv1.3). */
  maxVersion?: TlsVersion
  /** OpenSSL cipher string; `TLS_*` names are TLS 1.3 suites (node:tls's syntax). */
  ciphers?: string
  /** ALPN protocols in preference order (`ALPNProtocols` is accepted too). */
  alpn?: readonly string[]
  /** node:tls's name for `alpn`. */
  ALPNProtocols?: readonly string[]
  /** Server: ask the client for a certificate. */
  requestCert?: boolean
  /** Fail the handshake when the peer's certificate does not verify (default true). */
  rejectUnauthorized?: boolean
  /** Server: a certificate per servername; `*.example.com` covers one label. */
  sni?: Readonly<Record<string, TlsIdentity>>
  /** Server: 48 bytes (16 name, 16 HMAC, 16 AES) sealing session tickets; default random per context. */
  ticketKeys?: Uint8Array
  /**
   * Server: ms a connection may take to complete its handshake (0, the
   * default: no limit). TlsStream does not enforce it (it has no timers):
   * it travels with the context to every thread for whoever serves the
   * connections — @amy/server closes late ones with ERR_TLS_HANDSHAKE_TIMEOUT.
   */
  handshakeTimeout?: number
}

/** A TlsContext as plain data, for `postMessage`/`workerData`: `TlsContext.from(handle)` on another thread. */
export interface TlsContextHandle {
  /** Marks the object as a TlsContextHandle. */
  readonly kind: 'amy:tls-context'
  /** The context's process-wide id. */
  readonly id: number
}

/** The OpenSSL TLS runs on: the node binary's own (e.g. "OpenSSL 3.0.19 27 Jan 2026"). */
export const opensslVersion: string = native.opensslVersion

const VERSIONS: Record<TlsVersion, number> = { 'TLSv1.2': native.TLS1_2_VERSION, 'TLSv1.3': native.TLS1_3_VERSION }

/**
 * The configuration every TLS connection of a server (or of a client)
 * shares: certificates, trust, versions, ciphers, ALPN, SNI and the
 * session-ticket keys, built once into OpenSSL — the OpenSSL inside the
 * node binary, so there is no second copy.
 *
 * One context serves every thread of the process: pass `handle` to a worker
 * and call `TlsContext.from(handle)` there. Tickets are sealed with the
 * context's `ticketKeys`, so a session resumes on any worker; give other
 * processes the same `ticketKeys` to resume across them.
 *
 * Bad options throw synchronously: `ERR_INVALID_ARG_TYPE`/`_VALUE`, or from
 * OpenSSL `ERR_TLS_INVALID_KEY`, `ERR_TLS_INVALID_CERT`,
 * `ERR_TLS_KEY_MISMATCH`, `ERR_TLS_INVALID_CA`, `ERR_TLS_INVALID_CIPHERS`,
 * `ERR_TLS_INVALID_OPTION` with OpenSSL's `reason`.
 */
export class TlsContext {
  readonly #native: InstanceType<typeof native.NativeTlsContext>

  private constructor(nativeContext: InstanceType<typeof native.NativeTlsContext>) {
    this.#native = nativeContext
  }

  /** A context for accepting connections: `key` and `cert` required. */
  static createServer(options: TlsContextOptions): TlsContext {
    return new TlsContext(new native.NativeTlsContext(normalize(options, true)))
  }

  /** A context for outbound connections (verifies servers against `ca`, default node:tls's roots). */
  static createClient(options: TlsContextOptions = {}): TlsContext {
    return new TlsContext(new native.NativeTlsContext(normalize(options, false)))
  }

  /** The context a handle names, from any thread of the process, while its creator keeps it alive. */
  static from(handle: TlsContextHandle): TlsContext {
    if (handle === null || typeof handle !== 'object' || handle.kind !== 'amy:tls-context')
      throw new AmyError('ERR_INVALID_ARG_TYPE', 'not a TlsContext handle')
    return new TlsContext(new native.NativeTlsContext(handle.id))
  }

  /** Plain data that rebuilds this context on another thread (`TlsContext.from`). */
  get handle(): TlsContextHandle {
    return { kind: 'amy:tls-context', id: this.#native.id }
  }

  /** Process-unique id (what the handle carries). */
  get id(): number {
    return this.#native.id
  }

  /** True for a server context. */
  get isServer(): boolean {
    return this.#native.isServer
  }

  /** The `handshakeTimeout` option (ms; 0: none), also on contexts taken by handle. */
  get handshakeTimeout(): number {
    return this.#native.handshakeTimeout
  }

  /** The 48 bytes sealing this server context's session tickets (a copy). */
  get ticketKeys(): Buffer {
    return this.#native.ticketKeys
  }
}

function pem(name: string, value: unknown): string | Uint8Array | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'string' || value instanceof Uint8Array) return value
  throw new AmyError('ERR_INVALID_ARG_TYPE', `${name} must be a PEM string or Uint8Array`)
}

function bool(name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'boolean') throw new AmyError('ERR_INVALID_ARG_TYPE', `${name} must be a boolean`)
  return value
}

function version(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined
  const v = VERSIONS[value as TlsVersion]
  if (v === undefined) throw new AmyError('ERR_INVALID_ARG_VALUE', `${name} must be 'TLSv1.2' or 'TLSv1.3', got ${String(value)}`)
  return v
}

function caBundle(value: unknown): string | Uint8Array | undefined {
  if (Array.isArray(value)) {
    return value.map((item, i) => {
      const p = pem(`ca[${i}]`, item)
      return typeof p === 'string' ? p : Buffer.from(p ?? '').toString('latin1')
    }).join('\n')
  }
  return pem('ca', value)
}

function normalize(options: TlsContextOptions, isServer: boolean): NativeTlsContextOptions {
  if (options === null || typeof options !== 'object') throw new AmyError('ERR_INVALID_ARG_TYPE', 'TLS options must be an object')
  const out: NativeTlsContextOptions = { isServer }
  out.key = pem('key', options.key)
  out.cert = pem('cert', options.cert)
  if (options.passphrase !== undefined) {
    if (typeof options.passphrase !== 'string') throw new AmyError('ERR_INVALID_ARG_TYPE', 'passphrase must be a string')
    out.passphrase = options.passphrase
  }
  if (isServer && (out.key === undefined || out.cert === undefined))
    throw new AmyError('ERR_INVALID_ARG_VALUE', 'a TLS server needs key and cert')
  out.ca = caBundle(options.ca) ?? (isServer ? undefined : rootCertificates.join('\n'))
  out.minVersion = version('minVersion', options.minVersion)
  out.maxVersion = version('maxVersion', options.maxVersion)
  if (options.ciphers !== undefined) {
    if (typeof options.ciphers !== 'string') throw new AmyError('ERR_INVALID_ARG_TYPE', 'ciphers must be a string')
    out.ciphers = options.ciphers
  }
  const alpn = options.alpn ?? options.ALPNProtocols
  if (alpn !== undefined) {
    if (!Array.isArray(alpn) || alpn.some(p => typeof p !== 'string'))
      throw new AmyError('ERR_INVALID_ARG_TYPE', 'alpn must be an array of strings')
    out.alpn = [...alpn]
  }
  out.requestCert = bool('requestCert', options.requestCert)
  out.rejectUnauthorized = bool('rejectUnauthorized', options.rejectUnauthorized)
  if (options.sni !== undefined) {
    if (options.sni === null || typeof options.sni !== 'object') throw new AmyError('ERR_INVALID_ARG_TYPE', 'sni must be an object')
    out.sni = Object.entries(options.sni).map(([servername, id]) => {
      if (id === null || typeof id !== 'object') throw new AmyError('ERR_INVALID_ARG_TYPE', `sni['${servername}'] must be { key, cert }`)
      const key = pem(`sni['${servername}'].key`, id.key)
      const cert = pem(`sni['${servername}'].cert`, id.cert)
      if (key === undefined || cert === undefined) throw new AmyError('ERR_INVALID_ARG_VALUE', `sni['${servername}'] needs key and cert`)
      return { servername, key, cert, passphrase: id.passphrase }
    })
  }
  if (options.ticketKeys !== undefined) {
    if (!(options.ticketKeys instanceof Uint8Array) || options.ticketKeys.length !== 48)
      throw new AmyError('ERR_INVALID_ARG_VALUE', 'ticketKeys must be 48 bytes')
    out.ticketKeys = options.ticketKeys
  }
  if (options.handshakeTimeout !== undefined) {
    const ms = options.handshakeTimeout
    if (typeof ms !== 'number') throw new AmyError('ERR_INVALID_ARG_TYPE', 'handshakeTimeout must be a number of ms')
    if (!Number.isInteger(ms) || ms < 0 || ms > 2 ** 31 - 1) throw new AmyError('ERR_INVALID_ARG_VALUE', `handshakeTimeout must be an integer number of ms in [0, 2^31), got ${ms}`)
    out.handshakeTimeout = ms
  }
  return out
}
