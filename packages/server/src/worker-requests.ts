import { ServerError } from './errors.js'
import { cloneFailure, reviveError } from './message-errors.js'
import type { ReplyMessage, RequestLike } from './messages.js'
import type { WorkerSlot } from './worker-slot.js'

type Pending = { worker: number; resolve: (value: unknown) => void; reject: (err: unknown) => void; timer: NodeJS.Timeout | undefined }

/**
 * The main thread's requests in flight to workers, by id. Each request-like
 * message gets exactly one reply; a worker that dies or a server that
 * closes rejects what it still owes, so no caller waits forever.
 */
export class WorkerRequests {
  #next = 1
  readonly #pending = new Map<number, Pending>()

  /**
   * Sends `make(id)` to the slot's worker; resolves with its reply's value,
   * or rejects with ERR_REQUEST_TIMEOUT after `timeoutMs` (the late reply is
   * then dropped by `settle`).
   */
  ask<T>(slot: WorkerSlot, make: (id: number) => RequestLike, timeoutMs?: number): Promise<T> {
    if (slot.registrar === undefined) {
      return Promise.reject(new ServerError('ERR_WORKER_DIED', `worker ${slot.index} is not serving (it died and is being replaced)`))
    }
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.#pending.delete(id)
              reject(Object.assign(new ServerError('ERR_REQUEST_TIMEOUT', `worker ${slot.index} did not reply within ${timeoutMs} ms`), { worker: slot.index }))
            }, timeoutMs)
      this.#pending.set(id, { worker: slot.index, resolve: resolve as (v: unknown) => void, reject, timer })
      try {
        slot.send(make(id))
      } catch (err) {
        this.#take(id)
        reject(cloneFailure(err, 'the message'))
      }
    })
  }

  settle(reply: ReplyMessage): void {
    const pending = this.#take(reply.id)
    if (pending === undefined) return
    if (reply.ok) pending.resolve(reply.value)
    else pending.reject(reviveError(reply.error, pending.worker))
  }

  /** Rejects what `worker` still owes (it died: its replies will not come). */
  failWorker(worker: number, err: Error): void {
    for (const [id, pending] of this.#pending) {
      if (pending.worker !== worker) continue
      this.#take(id)
      pending.reject(err)
    }
  }

  failAll(err: Error): void {
    for (const id of [...this.#pending.keys()]) this.#take(id)!.reject(err)
  }

  #take(id: number): Pending | undefined {
    const pending = this.#pending.get(id)
    if (pending === undefined) return undefined
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    return pending
  }
}
