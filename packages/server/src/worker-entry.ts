// The piscina task every server worker runs: it lives as long as the server.
//
//   main thread                                   this worker thread
//   -----------                                   ------------------
//   Server ── pool.run(task, [port]) ──────────▶  serve(task)
//                                                   import the handler module
//                                                   WorkerRuntime: Poller.start on
//                                                   this thread's loop, fd inbox,
//                                                   pub/sub channel
//          ◀── port: ready {registrar, pubsub} ──
//   Acceptor ── registrar.handOver(fds) ──────▶   inbox notification: take fds,
//            (native, batched, 1 wake-up)          register, handler.open(conn) ...
//          ── port: peers [pubsub handles] ───▶   publish() reaches other workers
//          ◀── port: log lines (rare) ─────────   pino → main logger
//          ── port: close {force, timeout} ───▶   drain, close poller; task resolves
//
// The task stays pending while the worker serves, so piscina never parks
// this thread in Atomics.wait (the pool also runs with atomics disabled).
import { pathToFileURL } from 'node:url'
import type { MessagePort } from 'node:worker_threads'
import { ServerError } from './errors.js'
import type { Handler } from './handler.js'
import { workerLogger } from './logging.js'
import type { ReadyMessage, ToWorker, WorkerReport, WorkerTask } from './messages.js'
import { WorkerRuntime } from './runtime.js'
import { STAT_SLOTS } from './stats.js'
import { setRuntime } from './worker-context.js'

async function loadHandler(url: string): Promise<Handler> {
  const mod = (await import(url)) as { default?: unknown }
  const candidate = (mod.default ?? mod) as Record<string, unknown>
  // A CommonJS module compiled from `export default` nests it once more.
  const handler = (typeof candidate === 'object' && candidate !== null && 'default' in candidate && typeof candidate['default'] === 'object'
    ? candidate['default']
    : candidate) as Handler
  if (handler === null || typeof handler !== 'object') {
    throw new ServerError('ERR_INVALID_HANDLER', `${url} must export a handler object (export default defineHandler({...}))`)
  }
  for (const hook of ['setup', 'open', 'data', 'drain', 'end', 'close', 'timeout'] as const) {
    const fn = (handler as Record<string, unknown>)[hook]
    if (fn !== undefined && typeof fn !== 'function') throw new ServerError('ERR_INVALID_HANDLER', `handler.${hook} must be a function`)
  }
  return handler
}

export default async function serve(task: WorkerTask): Promise<WorkerReport> {
  const { port } = task
  const logger = workerLogger(port, task.logLevel, task.worker)
  const stats = new Float64Array(task.stats, task.worker * STAT_SLOTS * 8, STAT_SLOTS)
  const handler = await loadHandler(task.handler.startsWith('file:') ? task.handler : pathToFileURL(task.handler).href)
  const runtime = new WorkerRuntime(handler, task.options, stats, logger)
  setRuntime(runtime)
  await handler.setup?.({ worker: task.worker, threads: task.threads, data: task.handlerData })
  runtime.start()

  return new Promise<WorkerReport>(resolve => {
    port.on('message', (msg: ToWorker) => {
      if (msg.type === 'peers') {
        runtime.setPeers(msg.handles)
      } else if (msg.type === 'close') {
        const open = runtime.connections
        void runtime.drain(msg.force, msg.timeout).then(() => {
          runtime.close()
          setRuntime(undefined)
          port.close()
          resolve({ worker: task.worker, connectionsAtClose: open })
        })
      }
    })
    const ready: ReadyMessage = { type: 'ready', registrar: runtime.registrarHandle, pubsub: runtime.pubsubHandle }
    port.postMessage(ready)
  })
}
