import { ServerError } from './errors.js'
import { cloneFailure, reviveError } from './message-errors.js'
import type { ReplyMessage, RequestLike } from './messages.js'
import type { WorkerSlot } from './worker-slot.js'

type Pending = { worker: number; resolve: (value: unknown) => void; reject: (err: unknown) => void }

/**
 * The main thread's requests in flight to workers, by id. Each request-like
 * message gets exactly one reply; a worker that dies or a server that
 * closes rejects what it still owes, so no caller waits forever.
 */
export class WorkerRequests {
  #next = 1
  readonly #pending = new Map<number, Pending>()

  /** Sends `make(id)` to the slot's worker; resolves with its reply's value. */
  ask<T>(slot: WorkerSlot, make: (id: number) => RequestLike): Promise<T> {
    if (slot.registrar === undefined) {
      return Promise.reject(new ServerError('ERR_WORKER_DIED', `worker ${slot.index} is not serving (it died and is being replaced)`))
    }
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { worker: slot.index, resolve: resolve as (v: unknown) => void, reject })
      try {
        slot.send(make(id))
      } catch (err) {
        this.#pending.delete(id)
        reject(cloneFailure(err, 'the message'))
      }
    })
  }

  settle(reply: ReplyMessage): void {
    const pending = this.#pending.get(reply.id)
    if (pending === undefined) return
    this.#pending.delete(reply.id)
    if (reply.ok) pending.resolve(reply.value)
    else pending.reject(reviveError(reply.error, pending.worker))
  }

  /** Rejects what `worker` still owes (it died: its replies will not come). */
  failWorker(worker: number, err: Error): void {
    for (const [id, pending] of this.#pending) {
      if (pending.worker !== worker) continue
      this.#pending.delete(id)
      pending.reject(err)
    }
  }

  failAll(err: Error): void {
    for (const pending of this.#pending.values()) pending.reject(err)
    this.#pending.clear()
  }
}
