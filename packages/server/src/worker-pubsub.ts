import { Sender, type Receiver, type Registrar, type SenderHandle } from '@amy/core'
import type { Logger } from 'pino'
import type { Connection } from './connection.js'
import { ServerError } from './errors.js'
import type { RemoteBus } from './pubsub-adapter.js'
import { decodePublished, encodePublished } from './pubsub-message.js'
import { STAT } from './stats.js'

// Published records taken from the channel per turn of the event loop, and
// how often the connections they were written to are flushed meanwhile: a
// burst is spread over turns and reaches the sockets as it goes, instead of
// being queued whole and flushed at the end of one long batch.
const PUBLISHED_PER_TURN = 4096
const PUBLISHED_PER_FLUSH = 256
// Records for other workers are gathered per turn into one channel message
// per peer, cut at this size.
const OUTBOX_MESSAGE_BYTES = 64 * 1024
// Each worker's channel holds at most this many messages (from workers at
// most ~64 KiB each: 16 MiB). What a peer's full channel cannot take waits in the publishing
// worker, in order, and is retried on the next turns; while more than
// OUTBOX_PAUSE_BYTES wait, the connections publishing are not read (the
// backpressure reaches the clients that flood, not the memory).
export const PUBSUB_CHANNEL_BOUND = 256
const OUTBOX_PAUSE_BYTES = 4 * 1024 * 1024
// Pausing reaches only publishers driven by their connection's reads. A
// handler that publishes in one synchronous loop, or from a timer, is not
// paused: past this many bytes waiting for the peers, a message for a peer
// that is behind is dropped (counted in pubsubDropped, logged once per
// LOG_EVERY_MS). What is delivered stays in order.
export const BACKLOG_MAX_BYTES = 16 * 1024 * 1024
const LOG_EVERY_MS = 10_000

/** A channel message waiting for a full peer, and how many published records it holds. */
interface Waiting {
  bytes: Buffer
  records: number
}

/** What pub/sub needs from the worker's batch loop (WorkerRuntime). */
export interface PubSubLoop {
  inBatch: boolean
  now: number
  /** The connection whose `data` hook is running (it is paused when peers are behind). */
  readonly publishing: Connection | undefined
  flushDirty(): void
}

/**
 * A worker's publish/subscribe: its local topics, the channels to the other
 * workers (one message per peer per turn; what a full channel refuses waits
 * in a backlog, in order), and the remote bus to other server instances.
 */
export class WorkerPubSub {
  readonly #host: PubSubLoop
  readonly #stats: Float64Array
  readonly #log: Logger
  readonly #topics = new Map<string, Set<Connection>>()
  readonly #receiver: Receiver<never>
  readonly #sender: Sender<never>
  /** The registration id of this worker's channel (its notifications come to receive()). */
  readonly channelId: number
  #peers: Sender<never>[] = []
  #publishedLeft = false
  // The channel message being worked through, and where its next record starts.
  #inbound: Buffer | undefined
  #inboundOffset = 0
  // Records for the peers gathered this turn; messages a full peer channel refused.
  #outbox: Buffer[] = []
  #outboxBytes = 0
  #backlog = new Map<Sender<never>, Waiting[]>()
  #backlogBytes = 0
  #droppedSinceLog = 0
  #lastDropLog = -Infinity
  #backlogRetry = false
  #pausedPublishers = new Set<Connection>()
  // Other instances (a pub/sub adapter), if the server has one.
  #remote: RemoteBus | undefined
  #remoteFlushQueued = false

  constructor(host: PubSubLoop, registrar: Registrar, stats: Float64Array, log: Logger) {
    this.#host = host
    this.#stats = stats
    this.#log = log
    const [sender, receiver] = registrar.channel<never>({ bound: PUBSUB_CHANNEL_BOUND })
    this.#receiver = receiver
    this.#sender = sender
    this.channelId = receiver.id
  }

  /** What the other workers send to: this worker's channel. */
  get handle(): SenderHandle {
    return this.#sender.handle
  }

  /** The pub/sub channels of every other worker. */
  setPeers(handles: SenderHandle[]): void {
    const own = this.#sender.id
    const peers: Sender<never>[] = []
    for (const handle of handles) {
      if (handle.channelId === own) continue
      try {
        peers.push(Sender.from<never>(handle))
      } catch (err) {
        // That worker stopped (the server is closing, or it died and its
        // replacement sends new peers): it is no peer, not a reason to die.
        if ((err as { code?: unknown }).code !== 'ERR_CHANNEL_CLOSED') throw err
      }
    }
    this.#peers = peers
  }

  /** Extends publish/subscribe to other server instances (see pubsub-adapter.ts). */
  setRemote(remote: RemoteBus | undefined): void {
    this.#remote = remote
  }

  subscribe(conn: Connection, topic: string): void {
    let set = this.#topics.get(topic)
    if (set === undefined) {
      set = new Set()
      this.#topics.set(topic, set)
      this.#remote?.subscribed(topic)
    }
    set.add(conn)
    ;(conn.topics ??= new Set()).add(topic)
  }

  unsubscribe(conn: Connection, topic: string): void {
    conn.topics?.delete(topic)
    this.#unsubscribe(conn, topic)
  }

  /** A closed connection leaves every topic it was in. */
  unsubscribeAll(conn: Connection, topics: Set<string>): void {
    for (const topic of topics) this.#unsubscribe(conn, topic)
  }

  #unsubscribe(conn: Connection, topic: string): void {
    const set = this.#topics.get(topic)
    if (set === undefined) return
    set.delete(conn)
    if (set.size === 0) {
      this.#topics.delete(topic)
      this.#remote?.unsubscribed(topic)
    }
  }

  subscribers(topic: string): number {
    return this.#topics.get(topic)?.size ?? 0
  }

  /** Encodes once; one channel message per other worker; local subscribers directly. */
  publish(topic: string, payload: Uint8Array, except: number): void {
    const remote = this.#remote
    if (remote !== undefined && payload.length > remote.maxPayloadBytes) {
      throw new ServerError('ERR_PAYLOAD_TOO_LARGE', `published payload of ${payload.length} bytes is over the pub/sub adapter's maxPayloadBytes (${remote.maxPayloadBytes})`)
    }
    const record = encodePublished(topic, payload, except)
    if (this.#peers.length > 0) {
      this.#outbox.push(record)
      this.#outboxBytes += record.length
      if (!this.#host.inBatch || this.#outboxBytes >= OUTBOX_MESSAGE_BYTES) this.flushOutbox()
      // Peers behind: the connection whose data is publishing stops being read.
      const publisher = this.#host.publishing
      if (publisher !== undefined && this.#backlogBytes >= OUTBOX_PAUSE_BYTES && !publisher.paused) {
        publisher.pause()
        this.#pausedPublishers.add(publisher)
      }
    }
    this.#deliverLocal(topic, record.subarray(record.length - payload.length), except)
    // Other instances: `except` names a connection of this instance only.
    remote?.publish(topic, payload)
  }

  /**
   * A message another instance published (worker placement of the adapter).
   * The Redis client calls this once per message of a socket read: the
   * writes are queued and flushed once, after the read's messages.
   */
  deliverRemote(topic: string, payload: Buffer): void {
    const host = this.#host
    const wasInBatch = host.inBatch
    host.inBatch = true
    this.#deliverLocal(topic, payload, 0)
    host.inBatch = wasInBatch
    if (!wasInBatch && !this.#remoteFlushQueued) {
      this.#remoteFlushQueued = true
      queueMicrotask(this.#flushRemote)
    }
  }

  readonly #flushRemote = (): void => {
    this.#remoteFlushQueued = false
    if (!this.#host.inBatch) this.#host.flushDirty()
  }

  /** The channel is signalled: delivers what the other workers published. */
  receive(): void {
    for (let taken = 1; ; taken++) {
      if (this.#inbound === undefined) {
        this.#inbound = this.#receiver.tryRecvBytes()
        this.#inboundOffset = 0
        if (this.#inbound === undefined) return
      }
      const record = decodePublished(this.#inbound, this.#inboundOffset)
      this.#inboundOffset = record.next
      if (record.next >= this.#inbound.length) this.#inbound = undefined
      this.#deliverLocal(record.topic, record.payload, record.except)
      if (taken % PUBLISHED_PER_FLUSH === 0) this.#host.flushDirty()
      if (taken === PUBLISHED_PER_TURN) {
        // The channel stays signalled while it holds messages: no new
        // notification would come for the rest, so continue on a later turn.
        if (!this.#publishedLeft) {
          this.#publishedLeft = true
          setImmediate(this.#receiveLater)
        }
        return
      }
    }
  }

  readonly #receiveLater = (): void => {
    const host = this.#host
    this.#publishedLeft = false
    host.now = performance.now()
    host.inBatch = true
    this.receive()
    host.inBatch = false
    host.flushDirty()
    this.flushOutbox()
  }

  /** Sends this turn's records to every peer: one channel message each (cut at OUTBOX_MESSAGE_BYTES). */
  flushOutbox(): void {
    if (this.#outbox.length === 0) return
    const records = this.#outbox.length
    const message = records === 1 ? this.#outbox[0]! : Buffer.concat(this.#outbox, this.#outboxBytes)
    this.#outbox = []
    this.#outboxBytes = 0
    for (const peer of this.#peers) this.#sendToPeer(peer, message, records)
  }

  /** A full channel: the message waits here, in order, and is retried on the next turns. */
  #sendToPeer(peer: Sender<never>, message: Buffer, records: number): void {
    const waiting = this.#backlog.get(peer)
    if (waiting !== undefined) {
      this.#wait(waiting, message, records)
      return
    }
    try {
      peer.sendBytes(message)
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_CHANNEL_FULL') {
        const waiting: Waiting[] = []
        this.#backlog.set(peer, waiting)
        this.#wait(waiting, message, records)
        this.#retryBacklogSoon()
        return
      }
      this.#peerGone(peer, err)
    }
  }

  /** Queues for a full peer, or drops past BACKLOG_MAX_BYTES. */
  #wait(waiting: Waiting[], bytes: Buffer, records: number): void {
    if (this.#backlogBytes + bytes.length > BACKLOG_MAX_BYTES) {
      this.#dropped(records)
      return
    }
    waiting.push({ bytes, records })
    this.#backlogBytes += bytes.length
    this.#stats[STAT.pubsubBacklogBytes] = this.#backlogBytes
  }

  #dropped(records: number): void {
    this.#stats[STAT.pubsubDropped] = this.#stats[STAT.pubsubDropped]! + records
    this.#droppedSinceLog += records
    const now = performance.now()
    if (now - this.#lastDropLog < LOG_EVERY_MS) return
    this.#lastDropLog = now
    this.#log.warn({ dropped: this.#droppedSinceLog, backlogBytes: this.#backlogBytes }, 'pub/sub backlog full: records for a worker that is behind are dropped')
    this.#droppedSinceLog = 0
  }

  /**
   * A worker that died: it is no peer until its replacement starts and the
   * main thread sends the new peers. Logged once, not once per publish.
   */
  #peerGone(peer: Sender<never>, err: unknown): void {
    this.#peers = this.#peers.filter(p => p !== peer)
    this.#log.warn({ err }, 'a peer worker is gone; publishing to it stops until its replacement starts')
  }

  #retryBacklogSoon(): void {
    if (this.#backlogRetry) return
    this.#backlogRetry = true
    setImmediate(this.#retryBacklog)
  }

  readonly #retryBacklog = (): void => {
    this.#backlogRetry = false
    for (const [peer, waiting] of this.#backlog) {
      let sent = 0
      try {
        for (; sent < waiting.length; sent++) peer.sendBytes(waiting[sent]!.bytes)
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_CHANNEL_FULL') {
          // A dead peer: what it was owed is dropped with it.
          this.#peerGone(peer, err)
          let lost = 0
          for (let i = sent; i < waiting.length; i++) lost += waiting[i]!.records
          this.#stats[STAT.pubsubDropped] = this.#stats[STAT.pubsubDropped]! + lost
          sent = waiting.length
        }
      }
      for (let i = 0; i < sent; i++) this.#backlogBytes -= waiting[i]!.bytes.length
      this.#stats[STAT.pubsubBacklogBytes] = this.#backlogBytes
      if (sent === waiting.length) this.#backlog.delete(peer)
      else waiting.splice(0, sent)
    }
    if (this.#backlog.size > 0) {
      this.#retryBacklogSoon()
    } else if (this.#pausedPublishers.size > 0 && this.#backlogBytes < OUTBOX_PAUSE_BYTES) {
      for (const conn of this.#pausedPublishers) conn.resume()
      this.#pausedPublishers.clear()
    }
  }

  #deliverLocal(topic: string, payload: Buffer, except: number): void {
    const set = this.#topics.get(topic)
    if (set === undefined) return
    for (const conn of set) {
      if (conn.id === except || conn.closed || conn.ending) continue
      conn.writePublished(payload)
    }
  }
}
