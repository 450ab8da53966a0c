// The main-thread pub/sub hub on its own, driven through its real channel
// (the same native channel the workers write to), with an in-memory adapter
// that records what the hub asks of the broker.
import t from 'tap'
import { pino } from 'pino'
import type { PubSubAdapter, PubSubHost } from '@amy/server'
import { PubSubHub, WorkerForwarder } from '../dist/pubsub-hub.js'
import { until } from './helpers'

class RecordingAdapter implements PubSubAdapter {
  readonly subscribed = new Set<string>()
  readonly calls: string[] = []
  async start(_host: PubSubHost): Promise<void> {}
  publish(topic: string): void {
    this.calls.push(`publish ${topic}`)
  }
  subscribe(topic: string): void {
    this.calls.push(`subscribe ${topic}`)
    this.subscribed.add(topic)
  }
  unsubscribe(topic: string): void {
    this.calls.push(`unsubscribe ${topic}`)
    this.subscribed.delete(topic)
  }
  async close(): Promise<void> {}
}

t.test("a dead worker's subscribe still in the channel does not outlive it at the broker", async t => {
  const adapter = new RecordingAdapter()
  const hub = new PubSubHub(adapter, () => [], pino({ level: 'silent' }), Buffer.from('instance'))
  t.teardown(() => hub.close())
  await hub.start()
  const dying = new WorkerForwarder(hub.handle, 0, 1024)
  const living = new WorkerForwarder(hub.handle, 1, 1024)

  // The worker's last operation is in the channel, not yet read by the hub,
  // when the main thread learns that the worker is gone.
  dying.subscribed('room')
  hub.workerGone(0)

  // A sentinel from another worker, sent after: once the hub has applied it,
  // everything sent before it has been applied too.
  living.subscribed('sentinel')
  await until(() => adapter.subscribed.has('sentinel'), 10_000, 'the sentinel subscription')
  t.notOk(adapter.subscribed.has('room'), `room is not subscribed at the broker (calls: ${adapter.calls.join(', ')})`)
  t.same(adapter.calls, ['subscribe room', 'unsubscribe room', 'subscribe sentinel'])
})
