import native from './native.js'
import { AmyError, checkInteger } from './errors.js'
import { checkPort, resolveHost, type SocketAddress } from './address.js'
import { OwnedSocket } from './owned-socket.js'
import { TcpStream } from './tcp-stream.js'
import type { Interest } from './interest.js'
import type { Registrar } from './registrar.js'

/** Options of `TcpListener.bind()`. */
export interface BindOptions {
  /** An IP literal or 'localhost' (default '127.0.0.1'; '0.0.0.0' or '::' for every interface). */
  host?: string
  /** 0 (default) picks a free port: read it back with address(). */
  port?: number
  /** Listen queue length (default 511). */
  backlog?: number
  /** SO_REUSEPORT: several listeners share the port, the kernel spreads connections. */
  reusePort?: boolean
  /** For an IPv6 host: do not also accept IPv4 (default false). */
  ipv6Only?: boolean
  /** TCP_NODELAY on accepted streams (default true). */
  noDelay?: boolean
}

// Linux copies TCP_NODELAY from a listening socket to the sockets it
// accepts (checked here), so it is set once on the listener instead of
// with one setsockopt per connection. Elsewhere it is set per connection.
const INHERITS_NODELAY = process.platform === 'linux'

/** A non-blocking, close-on-exec listening TCP socket. */
export class TcpListener extends OwnedSocket {
  readonly #noDelay: boolean
  readonly #peer = new Uint8Array(20)

  private constructor(fd: number, noDelay: boolean) {
    super(fd)
    this.#noDelay = noDelay
  }

  // `override`: a static `bind` shadows Function.prototype.bind on the class.
  static override bind(options: BindOptions = {}): TcpListener {
    if (options === null || typeof options !== 'object') throw new AmyError('ERR_INVALID_ARG_TYPE', 'bind options must be an object')
    const host = resolveHost(options.host, '127.0.0.1')
    const port = checkPort(options.port ?? 0, true)
    const backlog = checkInteger('backlog', options.backlog ?? 511, 0, 2147483647)
    const fd = native.tcpListen(host, port, backlog, options.reusePort === true, options.ipv6Only === true)
    const noDelay = options.noDelay !== false
    if (noDelay && INHERITS_NODELAY) {
      try {
        native.setNoDelay(fd, true)
      } catch (err) {
        native.close(fd)
        throw err
      }
    }
    return new TcpListener(fd, noDelay)
  }

  /** Adopts a listening socket fd (made non-blocking and close-on-exec). */
  static fromFd(fd: number, options: { noDelay?: boolean } = {}): TcpListener {
    if (!Number.isInteger(fd) || fd < 0) throw new AmyError('ERR_INVALID_ARG_VALUE', `fd must be a non-negative integer, got ${fd}`)
    native.adopt(fd)
    return new TcpListener(fd, options.noDelay !== false)
  }

  /** The address it listens on (the port the kernel picked for port 0). */
  address(): SocketAddress {
    return native.localAddress(this.openFd())
  }

  /**
   * Accepts one connection, or returns null when none is waiting. After a
   * readable notification, accept until null (edge-triggered).
   */
  accept(): TcpStream | null {
    const fd = native.tcpAccept(this.openFd(), this.#peer)
    if (fd < 0) return null
    if (this.#noDelay && !INHERITS_NODELAY) {
      try {
        native.setNoDelay(fd, true)
      } catch {
        // The peer may already have reset the connection; reads will say so.
      }
    }
    return new TcpStream(fd, this.#peer.slice())
  }

  /**
   * Gives the fd up without closing it (the listener counts as closed
   * afterwards): for handing the socket to another thread, which adopts it
   * with `TcpListener.fromFd`. Must not be registered anywhere.
   */
  release(): number {
    const fd = this.openFd()
    this.forget()
    return fd
  }

  /**
   * Accepts a batch in one call: raw fds (non-blocking, close-on-exec, with
   * the listener's noDelay) written to `out`; returns how many. For handing
   * connections to other threads (`registrar.handOver`, `TcpStream.fromFd`).
   *
   * With `hosts` (at least as long as `out`), `hosts[i]` receives a 32-bit
   * key of the host `out[i]` came from, taken from accept's own result (no
   * extra syscall): an IPv4 address as a number (also IPv4-mapped IPv6), an
   * IPv6 address hashed. For counting connections per address.
   */
  acceptFds(out: Int32Array, hosts?: Uint32Array): number {
    return native.acceptBatch(this.openFd(), out, this.#noDelay && !INHERITS_NODELAY, hosts)
  }

  /**
   * @internal acceptFds, each connection registered with `registrar` for
   * `interest` in the same call into the addon (churn: one call per batch
   * instead of one register per connection): `fds[i]` under `ids[i]`, the
   * fds then belong to `registrar`'s poller thread (`TcpStream.registered`).
   * A connection that cannot be registered is closed (its peer sees a reset).
   */
  acceptRegistered(registrar: Registrar, fds: Int32Array, ids: Float64Array, interest: Interest): number {
    return registrar.acceptRegistered(this.openFd(), fds, ids, this.#noDelay && !INHERITS_NODELAY, interest)
  }
}
