import { TlsContext, type Pem, type PeerCertificate, type TlsContextHandle, type TlsContextOptions, type TlsStream, type TlsVersion } from '@amy/core'
import { ServerError } from './errors.js'
import { describe } from './validate.js'

// TLS in the server. The main thread builds one core TlsContext per
// listen({ tls }) (and per setSecureContext); the acceptor tags every fd it
// hands to a worker with the context's id (0: plain TCP), and the worker
// takes the context by id from the process-wide registry (TlsContextCache).
// No message is needed, so a swapped certificate applies to exactly the
// connections accepted after the swap, and a replaced worker needs no state.

/**
 * `listen({ tls })` and `server.setSecureContext()`: node:tls's option
 * names. Bad options reject listen() (throw from setSecureContext) with
 * ERR_INVALID_ARG_TYPE/_VALUE, ERR_UNKNOWN_OPTION or OpenSSL's verdict
 * (ERR_TLS_INVALID_KEY, ERR_TLS_INVALID_CERT, ERR_TLS_KEY_MISMATCH,
 * ERR_TLS_INVALID_CA, ERR_TLS_INVALID_CIPHERS, ERR_TLS_INVALID_OPTION).
 */
export interface ServerTlsOptions extends Omit<TlsContextOptions, 'key' | 'cert' | 'handshakeTimeout'> {
  /** PEM private key. */
  key: Pem
  /** PEM certificate, optionally followed by its chain. */
  cert: Pem
  /**
   * Ms a client may take from accept to the end of its handshake; then the
   * connection is closed with ERR_TLS_HANDSHAKE_TIMEOUT and counted
   * (default 10000; 0: no limit).
   */
  handshakeTimeout?: number
}

/** `context.connect({ tls })`: TLS to the upstream, verified by default. */
export interface ConnectTlsOptions {
  /** SNI and the name the certificate must carry (default: `host` when it is a name; an IP is checked against the certificate's IPs). */
  servername?: string
  /** Trusted CAs (default: node:tls's `rootCertificates`). */
  ca?: Pem | readonly Pem[]
  /** Refuse a server whose certificate does not verify (default true): the connection closes with ERR_TLS_CERT_*. */
  rejectUnauthorized?: boolean
  /** ALPN protocols to offer. */
  alpn?: readonly string[]
  /** Client certificate (mTLS). */
  cert?: Pem
  /** Its key. */
  key?: Pem
  /** The key's passphrase. */
  passphrase?: string
  /** Lowest protocol version (default TLSv1.2). */
  minVersion?: TlsVersion
  /** Highest protocol version (default TLSv1.3). */
  maxVersion?: TlsVersion
}

/** What `conn.tls` tells once the handshake is done (before `open`). */
export interface ConnectionTls {
  /** 'TLSv1.2' or 'TLSv1.3'. */
  protocol: string
  /** The cipher suite's OpenSSL name. */
  cipher: string
  /** The ALPN protocol agreed, if any. */
  alpn: string | undefined
  /** Server side: the name the client asked for (SNI), if any. */
  servername: string | undefined
  /** The session resumed an earlier one (a ticket). */
  resumed: boolean
  /** The peer's certificate verified (client side: and matched the servername). */
  authorized: boolean
  /** Why it did not, in OpenSSL's words. */
  authorizationError: string | undefined
  /** The peer's certificate: the server's, or a client's when `requestCert` asked for one. */
  peerCertificate: PeerCertificate | undefined
}

// Contexts a worker keeps (server contexts by id, client ones by options).
const CACHED_CONTEXTS = 16

/** The handshake timeout when listen's tls options give none (ms). */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000

const SERVER_KEYS = new Set([
  'key', 'cert', 'passphrase', 'ca', 'minVersion', 'maxVersion', 'ciphers', 'alpn', 'ALPNProtocols',
  'requestCert', 'rejectUnauthorized', 'sni', 'ticketKeys', 'handshakeTimeout',
])
const CLIENT_KEYS = new Set(['servername', 'ca', 'rejectUnauthorized', 'alpn', 'cert', 'key', 'passphrase', 'minVersion', 'maxVersion'])

function checkKeys(what: string, options: unknown, known: Set<string>): Record<string, unknown> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ServerError('ERR_INVALID_ARG_TYPE', `${what} must be an object, got ${describe(options)}`)
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new ServerError('ERR_UNKNOWN_OPTION', `${what}: unknown option '${key}' (known: ${[...known].join(', ')})`)
  }
  return options as Record<string, unknown>
}

/** Checks listen's (or setSecureContext's) tls options synchronously; the context is built later (serverContext). */
export function checkServerTlsOptions(options: unknown): ServerTlsOptions {
  const checked = checkKeys('tls', options, SERVER_KEYS)
  if (checked['key'] === undefined || checked['cert'] === undefined) throw new ServerError('ERR_INVALID_ARG_VALUE', 'tls needs key and cert')
  return checked as unknown as ServerTlsOptions
}

/** The one context of a TLS listener: its id tags the listener's connections. */
export function serverContext(options: ServerTlsOptions): TlsContext {
  const { handshakeTimeout = DEFAULT_HANDSHAKE_TIMEOUT, ...rest } = checkServerTlsOptions(options)
  return TlsContext.createServer({ ...rest, handshakeTimeout })
}

/**
 * Worker side: the client context of `context.connect({ tls })`. Building
 * one parses the CA bundle (node:tls's ~150 roots by default), so equal
 * options share one context, the last CACHED_CONTEXTS kept.
 */
export class ClientContextCache {
  readonly #contexts = new Map<string, TlsContext>()

  /** The context and servername (default: `host`, an IP or a name) for these options; bad ones throw. */
  get(options: unknown, host: string): { context: TlsContext; servername: string } {
    const checked = checkKeys('tls', options === true ? {} : options, CLIENT_KEYS) as ConnectTlsOptions
    const { servername = host, ...rest } = checked
    if (typeof servername !== 'string') throw new ServerError('ERR_INVALID_ARG_TYPE', `tls.servername must be a string, got ${describe(servername)}`)
    const key = JSON.stringify(rest, (_name, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value))
    let context = this.#contexts.get(key)
    if (context === undefined) {
      context = TlsContext.createClient(rest)
      if (this.#contexts.size >= CACHED_CONTEXTS) this.#contexts.delete(this.#contexts.keys().next().value!)
      this.#contexts.set(key, context)
    }
    return { context, servername }
  }
}

/** conn.tls, read once after the handshake. */
export function connectionTls(stream: TlsStream): ConnectionTls {
  return {
    protocol: stream.protocol ?? '',
    cipher: stream.cipher ?? '',
    alpn: stream.alpnProtocol || undefined,
    servername: stream.servername || undefined,
    resumed: stream.isSessionReused(),
    authorized: stream.authorized,
    authorizationError: stream.authorizationError ?? undefined,
    peerCertificate: stream.getPeerCertificate() ?? undefined,
  }
}

// A worker keeps the contexts it met by id; a certificate reload brings a
// new id, so the oldest entries go (their live sessions hold OpenSSL's own
// reference to what they use).

/** Worker side: the TlsContext a hand-off tag names. */
export class TlsContextCache {
  readonly #contexts = new Map<number, TlsContext>()

  /** Throws ERR_UNKNOWN_ID if no live context has the id (the main thread let it go). */
  get(id: number): TlsContext {
    const cached = this.#contexts.get(id)
    if (cached !== undefined) return cached
    const handle: TlsContextHandle = { kind: 'amy:tls-context', id }
    const context = TlsContext.from(handle)
    if (this.#contexts.size >= CACHED_CONTEXTS) this.#contexts.delete(this.#contexts.keys().next().value!)
    this.#contexts.set(id, context)
    return context
  }
}
