import native, { type SysError } from './native.js'
import { AmyError } from './errors.js'
import { checkPort, resolveHost, type SocketAddress } from './address.js'
import { OwnedSocket } from './owned-socket.js'
import type { ByteStream } from './byte-stream.js'
import { kTrackRegistration, type Deregisterer } from './source.js'

/** Options of `TcpStream.connect()`. */
export interface ConnectOptions {
  /** An IP literal or 'localhost' (default '127.0.0.1'). */
  host?: string
  /** The port to connect to, 1-65535. */
  port: number
  /** TCP_NODELAY (default true): small writes go out at once. */
  noDelay?: boolean
}

/** Options of `TcpStream.fromFd()`. */
export interface FromFdOptions {
  /**
   * Make the fd non-blocking and close-on-exec (default true). Pass false
   * for fds that already are, e.g. from `TcpListener#acceptFds`: it saves
   * two syscalls per connection.
   */
  adopt?: boolean
}

/** Which direction `shutdown()` closes. */
export type ShutdownHow = 'read' | 'write' | 'both'

// relay()'s partial-send encoding (hot_io.cc).
const RELAY_SPLIT = 2 ** 26

const SHUTDOWN: Record<ShutdownHow, 0 | 1 | 2> = { read: 0, write: 1, both: 2 }

// A peer's reset (churn: every client closing with RST) makes one of these
// per connection. Built here from a template made once per errno by the
// addon (same message, code, errno, syscall), and without a captured stack:
// it would only show the event loop's dispatch. perf, churn: capturing the
// stack was a quarter of a worker's time, the addon's Error and its three
// properties (Node-API calls) another 15%.
const errorTemplates = new Map<number, SysError>()
/**
 * The Error of a socket errno (positive, as `takeErrno()` returns it), as
 * `takeError()` builds it: message, `code`, `errno` and `syscall` from the
 * addon, no captured stack (it would only show the event loop's dispatch).
 * For code that takes the errno first and builds the Error only when
 * something will see it.
 */
export function socketError(errno: number): SysError {
  let template = errorTemplates.get(errno)
  if (template === undefined) {
    template = native.errnoError(errno, 'connect')
    errorTemplates.set(errno, template)
  }
  const limit = Error.stackTraceLimit
  // A non-number limit skips the capture (0 still walks the first frame).
  ;(Error as { stackTraceLimit: unknown }).stackTraceLimit = undefined
  const err = new Error(template.message) as SysError
  Error.stackTraceLimit = limit
  err.stack = `Error: ${template.message}`
  err.code = template.code
  err.errno = template.errno
  err.syscall = template.syscall
  return err
}

/**
 * A non-blocking, close-on-exec TCP connection. Would-block is a return
 * value (`null`), not an exception; other failures throw Errors with `code`,
 * `errno` and `syscall`.
 */
export class TcpStream extends OwnedSocket implements ByteStream {
  #peer: Uint8Array | undefined
  #remote: SocketAddress | undefined
  // An error connect() saw at once (errno), given out by takeError/takeErrno.
  #pendingErrno = 0
  #relayUnsent = 0

  /** @internal use connect(), fromFd() or TcpListener#accept(). */
  constructor(fd: number, peer?: Uint8Array) {
    super(fd)
    this.#peer = peer
  }

  /**
   * Starts a non-blocking connect. Register the stream for Write: it becomes
   * writable once connected; a refused connect shows as `error`/`hangup` and
   * `takeError()` returns the ECONNREFUSED.
   */
  static connect(options: ConnectOptions): TcpStream {
    if (options === null || typeof options !== 'object') throw new AmyError('ERR_INVALID_ARG_TYPE', 'connect options must be an object')
    const host = resolveHost(options.host, '127.0.0.1')
    const port = checkPort(options.port, false)
    const [fd, immediateErrno] = native.tcpConnect(host, port)
    const stream = new TcpStream(fd)
    if (immediateErrno !== 0) {
      // Refused before connect() returned: keep one path for the caller, the
      // error comes from takeError() after the (hangup) notification.
      stream.#pendingErrno = immediateErrno
    } else if (options.noDelay !== false) {
      native.setNoDelay(fd, true)
    }
    return stream
  }

  /**
   * Starts a non-blocking connect to a Unix domain socket: a path, or (Linux)
   * an abstract name starting with '\0'. As connect(): writable once
   * connected, `takeError()` after an error/hangup. A full listen queue is an
   * immediate EAGAIN (Unix sockets do not queue a connect in progress).
   */
  static connectUnix(path: string): TcpStream {
    if (typeof path !== 'string') throw new AmyError('ERR_INVALID_ARG_TYPE', 'path must be a string')
    if (path.length === 0) throw new AmyError('ERR_INVALID_ARG_VALUE', 'path must not be empty')
    const [fd, immediateErrno] = native.unixConnect(path)
    const stream = new TcpStream(fd)
    if (immediateErrno !== 0) stream.#pendingErrno = immediateErrno
    return stream
  }

  /**
   * Adopts a connected socket fd handed over from another thread or module.
   * It is made non-blocking and close-on-exec; the stream now owns it.
   */
  static fromFd(fd: number, options: FromFdOptions = {}): TcpStream {
    if (!Number.isInteger(fd) || fd < 0) throw new AmyError('ERR_INVALID_ARG_VALUE', `fd must be a non-negative integer, got ${fd}`)
    if (options.adopt !== false) native.adopt(fd)
    return new TcpStream(fd)
  }

  /**
   * @internal An accepted fd that `registrar` already registered under `id`
   * (TcpListener#acceptRegistered): close() deregisters it from there.
   */
  static registered(fd: number, registrar: Deregisterer, id: number): TcpStream {
    const stream = new TcpStream(fd)
    stream[kTrackRegistration](registrar, id)
    return stream
  }

  /** Reads into buf: bytes read, 0 at end of stream, null if it would block. */
  read(buf: Uint8Array): number | null {
    const n = native.read(this.openFd(), buf)
    return n < 0 ? null : n
  }

  /** Writes from buf: bytes written (possibly fewer), null if it would block. */
  write(buf: Uint8Array): number | null {
    const n = native.write(this.openFd(), buf)
    return n < 0 ? null : n
  }

  /**
   * Reads into `buf` and sends what it read to `to`, in one native call
   * instead of two (a proxy's copy path). Returns the bytes read: 0 at end
   * of stream, null if the read would block. `to` took all of them unless
   * `relayUnsent` > 0: then the last `relayUnsent` bytes of buf[0, n) are
   * still to be sent. A failed read throws this stream's error (`syscall`
   * 'read'), a failed send `to`'s (`syscall` 'write'); the bytes read are
   * lost then.
   */
  relay(to: TcpStream, buf: Uint8Array): number | null {
    const r = native.relay(this.openFd(), to.openFd(), buf)
    if (r >= 0) {
      this.#relayUnsent = 0
      return r
    }
    if (r === -1) return null
    // Sent only w of n: the native side returns -2 - (n + w * 2^26).
    const code = -2 - r
    const n = code % RELAY_SPLIT
    this.#relayUnsent = n - (code - n) / RELAY_SPLIT
    return n
  }

  /** After relay(): how many of the bytes it read were not sent (0: all were). */
  get relayUnsent(): number {
    return this.#relayUnsent
  }

  /** Writes several buffers in one syscall: bytes written, null if it would block. */
  writev(bufs: readonly Uint8Array[]): number | null {
    const n = native.writev(this.openFd(), bufs)
    return n < 0 ? null : n
  }

  /** Plain TCP queues nothing of its own: always true (see ByteStream). */
  flush(): boolean {
    return true
  }

  /** Half-closes: 'write' (default) sends FIN after queued bytes. */
  shutdown(how: ShutdownHow = 'write'): void {
    const code = SHUTDOWN[how]
    if (code === undefined) throw new AmyError('ERR_INVALID_ARG_VALUE', `how must be 'read', 'write' or 'both'`)
    native.shutdown(this.openFd(), code)
  }

  /** The pending socket error (e.g. ECONNREFUSED after a failed connect), or null. Clears it. */
  takeError(): SysError | null {
    const errno = this.takeErrno()
    return errno === 0 ? null : socketError(errno)
  }

  /**
   * takeError() without the Error: the pending errno (positive), 0 if none;
   * clears it. `socketError(errno)` builds the Error later if it is needed.
   */
  takeErrno(): number {
    const pending = this.#pendingErrno
    if (pending !== 0) {
      this.#pendingErrno = 0
      return pending
    }
    return native.takeErrno(this.openFd())
  }

  /** Sets or clears TCP_NODELAY (Nagle's algorithm off when set). */
  setNoDelay(on = true): void {
    native.setNoDelay(this.openFd(), on)
  }

  /** Whether TCP_NODELAY is set (read from the socket). */
  get noDelay(): boolean {
    return native.getNoDelay(this.openFd())
  }

  /** The peer's IP address; undefined for Unix sockets or once it cannot be read. */
  get remoteAddress(): string | undefined {
    return this.#remoteInfo()?.address
  }

  /** The peer's port; undefined for Unix sockets. */
  get remotePort(): number | undefined {
    return this.#remoteInfo()?.port
  }

  /** 'IPv4' or 'IPv6'; undefined for Unix sockets. */
  get remoteFamily(): 'IPv4' | 'IPv6' | undefined {
    return this.#remoteInfo()?.family
  }

  /** This side's address (IP sockets). */
  localAddress(): SocketAddress {
    return native.localAddress(this.openFd())
  }

  // Accepted streams carry the peer address from accept(); format it only
  // when asked. Others ask the kernel (which fails once the peer is gone).
  #remoteInfo(): SocketAddress | undefined {
    if (this.#remote) return this.#remote
    if (this.#peer) {
      this.#remote = native.formatAddress(this.#peer)
      this.#peer = undefined
    } else if (!this.closed) {
      try {
        this.#remote = native.peerAddress(this.fd)
      } catch {
        return undefined
      }
    }
    return this.#remote
  }
}
