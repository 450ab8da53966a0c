import { AmyError } from './errors.js'
import { Registrations } from './registrations.js'
import { kTrackRegistration, type Deregisterer } from './source.js'

/**
 * What TcpStream and TcpListener share: they own an fd, remember where it is
 * registered, and deregister it everywhere before closing it.
 */
export abstract class OwnedSocket {
  #fd: number
  readonly #registrations = new Registrations()

  protected constructor(fd: number) {
    this.#fd = fd
  }

  /** The fd, or -1 once closed. */
  get fd(): number {
    return this.#fd
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#fd < 0
  }

  /** Deregisters from every registrar it was registered with, then closes the fd. Idempotent. */
  close(): void {
    if (this.#fd < 0) return
    const fd = this.#fd
    this.#fd = -1
    this.#registrations.clearAndClose(fd)
  }

  /** Marks the fd as no longer ours, without closing it (see TcpListener.release). */
  protected forget(): void {
    this.#registrations.clear()
    this.#fd = -1
  }

  /** @internal called by Registrar.register */
  [kTrackRegistration](registrar: Deregisterer, id: number): void {
    this.#registrations.add(registrar, id)
  }

  /** The fd, or ERR_SOCKET_CLOSED. */
  protected openFd(): number {
    if (this.#fd < 0) throw new AmyError('ERR_SOCKET_CLOSED', `the ${this.constructor.name} is closed`)
    return this.#fd
  }
}
