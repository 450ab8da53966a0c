import type { BaseLogger } from 'pino'
import type { WorkerTask } from './messages.js'
import { loadPubSubAdapter, PUBSUB_STAT_SLOTS, type PubSubAdapter } from './pubsub-adapter.js'
import { WorkerForwarder } from './pubsub-hub.js'
import type { WorkerRuntime } from './runtime.js'

/**
 * Connects a worker's runtime to the other server instances: through the
 * main thread's hub (main placement), or through an adapter of its own,
 * returned so the worker closes it when it stops (worker placement).
 */
export async function connectRemote(task: WorkerTask, runtime: WorkerRuntime, logger: BaseLogger): Promise<PubSubAdapter | undefined> {
  const pubsub = task.pubsub
  if (pubsub === undefined) return undefined
  const { maxPayloadBytes } = pubsub.spec
  if (pubsub.hub !== undefined) {
    runtime.pubsub.setRemote(new WorkerForwarder(pubsub.hub, task.worker, maxPayloadBytes))
    return undefined
  }
  const adapter = await loadPubSubAdapter(pubsub.spec)
  await adapter.start({
    instanceId: Buffer.from(pubsub.instanceId),
    stats: new Float64Array(pubsub.stats!, task.worker * PUBSUB_STAT_SLOTS * 8, PUBSUB_STAT_SLOTS),
    logger,
    deliver: (topic, payload) => runtime.pubsub.deliverRemote(topic, payload),
  })
  runtime.pubsub.setRemote({
    maxPayloadBytes,
    publish: (topic, payload) => adapter.publish(topic, payload),
    subscribed: topic => adapter.subscribe(topic),
    unsubscribed: topic => adapter.unsubscribe(topic),
  })
  return adapter
}
