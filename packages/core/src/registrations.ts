import native from './native.js'
import { AmyError } from './errors.js'
import type { Deregisterer } from './source.js'

/**
 * The registrations of one fd, so closing it can deregister first: an fd
 * closed while registered would leave a stale entry in the registrar, and
 * the fd number could be reused under it. Nearly every socket is
 * registered once: that registration is kept in two fields (no array per
 * socket), any others in a list.
 */
export class Registrations {
  #registrar: Deregisterer | undefined
  #id = 0
  #more: Array<[Deregisterer, number]> | undefined

  add(registrar: Deregisterer, id: number): void {
    if (this.#registrar === undefined) {
      this.#registrar = registrar
      this.#id = id
    } else (this.#more ??= []).push([registrar, id])
  }

  /** Deregisters everything; a poller that is already closed is fine. */
  clear(): void {
    const registrar = this.#registrar
    const more = this.#more
    this.#registrar = undefined
    this.#more = undefined
    if (registrar !== undefined) deregister(registrar, this.#id)
    if (more !== undefined) for (const [other, id] of more) deregister(other, id)
  }

  /** clear(), then closes `fd` (in every case); one registration: one call into the addon for both. */
  clearAndClose(fd: number): void {
    const registrar = this.#registrar
    if (registrar?.deregisterAndClose !== undefined && this.#more === undefined) {
      this.#registrar = undefined
      registrar.deregisterAndClose(this.#id, fd)
      return
    }
    try {
      this.clear()
    } finally {
      native.close(fd)
    }
  }
}

function deregister(registrar: Deregisterer, id: number): void {
  try {
    registrar.deregister(id)
  } catch (err) {
    if (!(err instanceof Error) || (err as AmyError).code !== 'ERR_POLLER_CLOSED') throw err
  }
}
