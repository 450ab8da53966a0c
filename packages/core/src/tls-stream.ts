import native, { type NativePeerCertificate, type NativeTlsInfo } from './native.js'
import { AmyError } from './errors.js'
import { kTrackRegistration, type Deregisterer } from './source.js'
import type { TcpStream } from './tcp-stream.js'
import type { ByteStream } from './byte-stream.js'
import type { SysError } from './native.js'
import type { TlsContext } from './tls-context.js'

/** Client-side options of a TLS connection. */
export interface TlsClientOptions {
  /**
   * SNI and the name the server's certificate must carry (default: none;
   * `TlsStream.connect` passes the host). An IP address is checked
   * against the certificate's IP addresses and not sent as SNI.
   */
  servername?: string
  /** A `getSession()` of an earlier connection to the same server, to resume it. */
  session?: Uint8Array
}

/** The peer's certificate, named as node:tls's `getPeerCertificate()` fields. */
export type PeerCertificate = NativePeerCertificate

const WANT_READ = -1
const WANT_WRITE = -2

/**
 * TLS over a TcpStream, with TcpStream's contract: non-blocking calls,
 * would-block is `null`, edge-triggered notifications. Register the
 * TlsStream itself (its `fd` is the TCP socket's) for Read and Write:
 *
 * - readable: `read(buf)` until `null` (0 is end of stream: close_notify
 *   or FIN). Plaintext lands straight in `buf`.
 * - writable: `flush()`; while it returns false output is still queued
 *   (at most about one TLS record) and `write()` returns `null`.
 * - `write(buf)` returns how many plaintext bytes it took (possibly fewer,
 *   then wait for writable): the bytes need not be offered again. A
 *   `null` before the handshake completed means "not yet": retry after
 *   the next `read()` as well, since the handshake completes inside a
 *   read and no writable notification need follow.
 *
 * `read`/`write` drive the handshake; `handshake()` drives it alone and
 * returns true once complete (then `alpnProtocol`, `servername`,
 * `getPeerCertificate()` … are known). Failures throw an Error with a stable
 * `code` (`ERR_TLS_HANDSHAKE`, `ERR_TLS_CERT_UNTRUSTED`, `ERR_TLS_PROTOCOL`,
 * `ERR_TLS_RENEGOTIATION`, …, or the errno's name for a socket failure
 * after the handshake) and OpenSSL's `reason`; every later call throws the
 * same. `close()` frees the OpenSSL state and closes the TCP stream.
 */
export class TlsStream implements ByteStream {
  /** The TCP connection underneath (owned: `close()` closes it). */
  readonly tcp: TcpStream
  readonly #session: InstanceType<typeof native.NativeTlsSession>
  #info: NativeTlsInfo | undefined
  #finPending = false
  #closed = false

  private constructor(tcp: TcpStream, session: InstanceType<typeof native.NativeTlsSession>) {
    this.tcp = tcp
    this.#session = session
  }

  /** The server side of an accepted TCP connection. */
  static server(tcp: TcpStream, context: TlsContext): TlsStream {
    if (!context.isServer) throw new AmyError('ERR_INVALID_ARG_VALUE', 'TlsStream.server needs a server TlsContext')
    return new TlsStream(tcp, new native.NativeTlsSession(context.id, openFd(tcp)))
  }

  /** The client side of a connected (or connecting) TCP stream. */
  static client(tcp: TcpStream, context: TlsContext, options: TlsClientOptions = {}): TlsStream {
    if (context.isServer) throw new AmyError('ERR_INVALID_ARG_VALUE', 'TlsStream.client needs a client TlsContext')
    if (options === null || typeof options !== 'object') throw new AmyError('ERR_INVALID_ARG_TYPE', 'TLS client options must be an object')
    const servername = options.servername ?? ''
    if (typeof servername !== 'string') throw new AmyError('ERR_INVALID_ARG_TYPE', 'servername must be a string')
    if (options.session !== undefined && !(options.session instanceof Uint8Array))
      throw new AmyError('ERR_INVALID_ARG_TYPE', 'session must be a Uint8Array')
    return new TlsStream(tcp, new native.NativeTlsSession(context.id, openFd(tcp), servername, options.session))
  }

  /** The socket's fd, or -1 once closed. */
  get fd(): number {
    return this.tcp.fd
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** @internal registering the TlsStream registers its TCP socket (and close() deregisters it). */
  [kTrackRegistration](registrar: Deregisterer, id: number): void {
    this.tcp[kTrackRegistration](registrar, id)
  }

  /** Drives the handshake: true once complete, false while it waits for the peer or for writable. */
  handshake(): boolean {
    return this.#session.handshake() === 1
  }

  /** True once the TLS handshake finished. */
  get handshakeComplete(): boolean {
    return this.#session.handshakeComplete
  }

  /** Reads plaintext into buf: bytes read, 0 at end of stream, null if it would block. */
  read(buf: Uint8Array): number | null {
    const n = this.#session.read(buf)
    return n < 0 ? null : n
  }

  /** Takes plaintext from buf: bytes taken (possibly fewer), null while output is pending or the handshake waits. */
  write(buf: Uint8Array): number | null {
    const n = this.#session.write(buf)
    return n < 0 ? null : n
  }

  /** Several buffers; small ones share one TLS record. Bytes taken, or null. */
  writev(bufs: readonly Uint8Array[]): number | null {
    const n = this.#session.writev(bufs)
    return n < 0 ? null : n
  }

  /** Sends queued output (and a pending FIN after shutdown()); true when nothing is left. */
  flush(): boolean {
    if (this.#session.flush() > 0) return false
    if (this.#finPending) {
      this.#finPending = false
      this.tcp.shutdown('write')
    }
    return true
  }

  /** Encrypted bytes queued for the socket (the write side's backpressure). */
  get pendingOutput(): number {
    return this.#session.pendingOutput
  }

  /** The peer sent close_notify (or FIN): read() returns 0. */
  get peerClosed(): boolean {
    return this.#session.peerClosed
  }

  /**
   * Ends the write side: close_notify, then FIN once it is out (at once, or
   * by the flush() that empties the queue). Reading may go on.
   */
  shutdown(how: 'write' = 'write'): void {
    if (how !== 'write') throw new AmyError('ERR_INVALID_ARG_VALUE', "a TlsStream shuts down its write side only ('write')")
    if (this.#session.shutdown()) this.tcp.shutdown('write')
    else this.#finPending = true
  }

  /** Frees the TLS state and closes (deregisters) the TCP stream. Idempotent; sends nothing more. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    try {
      this.#session.close()
    } finally {
      this.tcp.close()
    }
  }

  #handshakeInfo(): NativeTlsInfo | undefined {
    if (this.#info) return this.#info
    if (this.#closed || !this.#session.handshakeComplete) return undefined
    this.#info = this.#session.info()
    return this.#info
  }

  /** The agreed ALPN protocol, or false. */
  get alpnProtocol(): string | false {
    return this.#handshakeInfo()?.alpnProtocol ?? false
  }

  /** The servername the client asked for (SNI), or false. */
  get servername(): string | false {
    return this.#handshakeInfo()?.servername ?? false
  }

  /** 'TLSv1.2' or 'TLSv1.3' once the handshake completed, else null. */
  get protocol(): string | null {
    return this.#handshakeInfo()?.protocol ?? null
  }

  /** The negotiated cipher's name, or null before the handshake. */
  get cipher(): string | null {
    return this.#handshakeInfo()?.cipher ?? null
  }

  /** The handshake resumed an earlier session (ticket). */
  isSessionReused(): boolean {
    return this.#handshakeInfo()?.resumed ?? false
  }

  /** The peer's certificate verified (client side: and matched the servername). */
  get authorized(): boolean {
    return this.#handshakeInfo()?.authorized ?? false
  }

  /** Why the peer is not authorized (OpenSSL's words), or null. */
  get authorizationError(): string | null {
    return this.#handshakeInfo()?.authorizationError ?? null
  }

  /** The peer's certificate (servers see one only with requestCert), or null. */
  getPeerCertificate(): PeerCertificate | null {
    return this.#handshakeInfo()?.peerCertificate ?? null
  }

  /** Client: the session to pass as `session` to resume later (TLS 1.3: after the first read), or undefined. */
  getSession(): Buffer | undefined {
    if (this.#closed) return undefined
    return this.#session.session()
  }

  /** The TCP socket's pending error (e.g. ECONNREFUSED after a failed connect), or null. */
  takeError(): SysError | null {
    return this.tcp.takeError()
  }

  /** The TCP socket's pending errno (0: none), without building an Error; see TcpStream#takeErrno. */
  takeErrno(): number {
    return this.tcp.takeErrno()
  }

  /** The peer's IP address. */
  get remoteAddress(): string | undefined {
    return this.tcp.remoteAddress
  }

  /** The peer's port. */
  get remotePort(): number | undefined {
    return this.tcp.remotePort
  }

  /** 'IPv4' or 'IPv6'. */
  get remoteFamily(): 'IPv4' | 'IPv6' | undefined {
    return this.tcp.remoteFamily
  }
}

function openFd(tcp: TcpStream): number {
  if (tcp === null || typeof tcp !== 'object' || typeof tcp.fd !== 'number') throw new AmyError('ERR_INVALID_ARG_TYPE', 'expected a TcpStream')
  if (tcp.fd < 0) throw new AmyError('ERR_SOCKET_CLOSED', 'the TcpStream is closed')
  return tcp.fd
}
