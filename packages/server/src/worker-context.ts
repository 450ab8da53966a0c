import type { WorkerRuntime } from './runtime.js'
import { ServerError } from './errors.js'

// The runtime of the worker thread this module is loaded in (each worker has
// its own module instance), so handler code can call publish/connect/... as
// plain functions.
let current: WorkerRuntime | undefined

export function setRuntime(runtime: WorkerRuntime | undefined): void {
  current = runtime
}

export function runtime(what: string): WorkerRuntime {
  if (current === undefined) {
    throw new ServerError('ERR_NOT_IN_WORKER', `${what}() works in a server worker (inside handler code); on the main thread use server.${what}()`)
  }
  return current
}
