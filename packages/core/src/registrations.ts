import { AmyError } from './errors.js'
import type { Deregisterer } from './source.js'

/**
 * The registrations of one fd, so closing it can deregister first: an fd
 * closed while registered would leave a stale entry in the registrar, and
 * the fd number could be reused under it.
 */
export class Registrations {
  #entries: Array<[Deregisterer, number]> = []

  add(registrar: Deregisterer, id: number): void {
    this.#entries.push([registrar, id])
  }

  /** Deregisters everything; a poller that is already closed is fine. */
  clear(): void {
    const entries = this.#entries
    this.#entries = []
    for (const [registrar, id] of entries) {
      try {
        registrar.deregister(id)
      } catch (err) {
        if (!(err instanceof Error) || (err as AmyError).code !== 'ERR_POLLER_CLOSED') throw err
      }
    }
  }
}
