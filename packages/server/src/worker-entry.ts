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
//          ── port: listen {fd} (balance ────▶   own SO_REUSEPORT listener: accept
//             'reuseport' only)                    here, no hand-off (worker-listeners.ts)
//          ── port: peers [pubsub handles] ───▶   publish() reaches other workers
//          ◀── port: log lines (rare) ─────────   pino → main logger
//          ── port: close {force, timeout} ───▶   drain, close poller; task resolves
//   watchdog ◀── stats[heartbeat]++ (timer) ──    liveness.ts: read without a message;
//            ── piscina abort (terminate) ──▶    a silent worker is terminated
//          ── port: send/destroy/request ... ─▶   MainLink (worker-messages.ts) replies
//          ◀── port: post (postMessage) ───────
//
// The task stays pending while the worker serves, so piscina never parks
// this thread in Atomics.wait (the pool also runs with atomics disabled).
import { pathToFileURL } from 'node:url'
import { AddressRelease } from './address-limit.js'
import { loadHandler, toStartFailure } from './handler-load.js'
import { startHeartbeat } from './liveness.js'
import { workerLogger } from './logging.js'
import type { ReadyMessage, ToWorker, WorkerReport, WorkerTask } from './messages.js'
import { connectRemote } from './pubsub-remote.js'
import { WorkerRuntime } from './runtime.js'
import { WorkerListeners } from './worker-listeners.js'
import { MainLink } from './worker-messages.js'
import { STAT_SLOTS } from './stats.js'
import { setThreadContext } from './worker-api.js'

export default async function serve(task: WorkerTask): Promise<WorkerReport> {
  try {
    return await serveUntilClosed(task)
  } catch (err) {
    throw toStartFailure(err) // keeps code, path and cause across the thread boundary
  }
}

async function serveUntilClosed(task: WorkerTask): Promise<WorkerReport> {
  const { port } = task
  const logger = workerLogger(port, task.logLevel, task.worker)
  const stats = new Float64Array(task.stats, task.worker * STAT_SLOTS * 8, STAT_SLOTS)
  const handler = await loadHandler(task.handler.startsWith('file:') ? task.handler : pathToFileURL(task.handler).href)
  const identity = { worker: task.worker, threads: task.threads, data: task.handlerData }
  const runtime = new WorkerRuntime(handler, task.options, stats, logger, identity)
  const link = new MainLink(port, runtime, handler, logger)
  runtime.toMain = message => link.post(message)
  if (task.addressLimit !== undefined) runtime.addressRelease = new AddressRelease(task.addressLimit, task.worker)
  setThreadContext(runtime.context)
  const adapter = await connectRemote(task, runtime, logger)
  await handler.setup?.call(handler, runtime.context)
  // The main thread's watchdog reads it once this worker serves (setup() has setupTimeout).
  const stopHeartbeat = startHeartbeat(stats)
  runtime.listeners = new WorkerListeners(runtime.poller, runtime.adoptRegistered, stats, task.stats, task.maxConnections, logger)
  runtime.start()

  return new Promise<WorkerReport>(resolve => {
    port.on('message', (msg: ToWorker) => {
      if (msg.type === 'peers') {
        runtime.pubsub.setPeers(msg.handles)
      } else if (msg.type === 'listen') {
        runtime.listeners?.add(msg.fd, msg.tls)
      } else if (msg.type === 'tls-context') {
        runtime.listeners?.switchTls(msg.from, msg.to)
      } else if (msg.type === 'message') {
        link.broadcast(msg)
      } else if (msg.type !== 'close') {
        link.request(msg)
      } else {
        const open = runtime.connections
        void runtime.drain(msg.force, msg.timeout).then(async () => {
          runtime.pubsub.setRemote(undefined)
          await adapter?.close().catch((err: unknown) => logger.warn({ err }, 'pub/sub adapter close failed'))
          runtime.close()
          stopHeartbeat()
          setThreadContext(undefined)
          port.close()
          resolve({ worker: task.worker, connectionsAtClose: open })
        })
      }
    })
    const ready: ReadyMessage = { type: 'ready', registrar: runtime.registrarHandle, pubsub: runtime.pubsubHandle }
    port.postMessage(ready)
  })
}
