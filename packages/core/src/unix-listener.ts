import { unlinkSync } from 'node:fs'
import native from './native.js'
import { AmyError, checkInteger } from './errors.js'
import type { UnixSocketAddress } from './address.js'
import { OwnedSocket } from './owned-socket.js'
import { TcpStream } from './tcp-stream.js'

/** Options of `UnixListener.bind()`. */
export interface UnixBindOptions {
  /**
   * A filesystem path, or on Linux an abstract name: a string starting with
   * '\0' (nothing is created on disk). A path that exists already (even a
   * stale socket file) fails with EADDRINUSE, as in node:net.
   */
  path: string
  /** Listen queue length (default 511). */
  backlog?: number
}

/**
 * A non-blocking, close-on-exec listening Unix domain stream socket. The
 * connections it accepts are `TcpStream`s (reads, writes and half-close
 * work the same on any stream socket); their remote address, port and
 * family are undefined (a Unix client is usually unnamed).
 */
export class UnixListener extends OwnedSocket {
  readonly #path: string

  private constructor(fd: number, path: string) {
    super(fd)
    this.#path = path
  }

  // `override`: a static `bind` shadows Function.prototype.bind on the class.
  static override bind(options: UnixBindOptions): UnixListener {
    if (options === null || typeof options !== 'object') throw new AmyError('ERR_INVALID_ARG_TYPE', 'bind options must be an object')
    const { path } = options
    if (typeof path !== 'string') throw new AmyError('ERR_INVALID_ARG_TYPE', 'path must be a string')
    if (path.length === 0) throw new AmyError('ERR_INVALID_ARG_VALUE', 'path must not be empty')
    if (path.startsWith('\0') && process.platform !== 'linux') {
      throw new AmyError('ERR_INVALID_ARG_VALUE', 'abstract Unix socket names (a path starting with \\0) are Linux only')
    }
    const backlog = checkInteger('backlog', options.backlog ?? 511, 0, 2147483647)
    let fd: number
    try {
      fd = native.unixListen(path, backlog)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.syscall !== undefined) e.message += ` (${printable(path)})`
      throw err
    }
    return new UnixListener(fd, path)
  }

  /** The path (or abstract name) it listens on. */
  address(): UnixSocketAddress {
    this.openFd()
    return { path: this.#path, family: 'Unix' }
  }

  /** Accepts one connection, or returns null when none is waiting (accept until null). */
  accept(): TcpStream | null {
    const fd = native.tcpAccept(this.openFd())
    return fd < 0 ? null : new TcpStream(fd)
  }

  /** Accepts a batch in one call (raw non-blocking, close-on-exec fds in `out`); returns how many. */
  acceptFds(out: Int32Array): number {
    return native.acceptBatch(this.openFd(), out, false)
  }

  /** Closes the socket and, for a filesystem path, removes its file (as node:net does). Idempotent. */
  override close(): void {
    if (this.closed) return
    super.close()
    if (!this.#path.startsWith('\0')) {
      try {
        unlinkSync(this.#path)
      } catch {
        // Removed by someone else already: nothing of ours is left behind.
      }
    }
  }
}

/** An abstract name shown with its NUL as "\0", so messages stay printable. */
function printable(path: string): string {
  return path.startsWith('\0') ? `\\0${path.slice(1)}` : path
}
