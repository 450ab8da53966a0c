import { Sender, type Receiver, type Registrar, type SenderHandle } from '@amy/core'
import type { Logger } from 'pino'
import type { Connection } from './connection.js'
import { ServerError } from './errors.js'
import type { RemoteBus } from './pubsub-adapter.js'
import { decodePublished, encodePublished } from './pubsub-message.js'
import { STAT } from './stats.js'
import { catchUp, FEED_MESSAGE_MAX_BYTES, reserve, settle, skipOwn, TopicFeed } from './topic-feed.js'
import type { WriteTails } from './write-tails.js'

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
// A turn's records are gathered for the channel (which copies them) in one
// reused buffer of this size, not a new one per message: those were
// ArrayBuffers outside the heap that V8 frees only once enough of them
// pile up (tens of MiB per worker in the issue 7 1-byte-line flood).
const STAGING_BYTES = 2 * OUTBOX_MESSAGE_BYTES
const OUTBOX_PAUSE_BYTES = 4 * 1024 * 1024
// Pausing reaches only publishers driven by their connection's reads. A
// handler that publishes in one synchronous loop, or from a timer, is not
// paused: past this many bytes waiting for the peers, a message for a peer
// that is behind is dropped (counted in pubsubDropped, logged once per
// LOG_EVERY_MS). What is delivered stays in order.
export const BACKLOG_MAX_BYTES = 16 * 1024 * 1024
const LOG_EVERY_MS = 10_000
// Rounds of settling feeds that hooks published to while they were written (see settleFeeds).
const SETTLE_ROUNDS = 8

/** A channel message waiting for a full peer, and how many published records it holds. */
interface Waiting {
  bytes: Buffer
  records: number
}

/** What pub/sub needs from the worker's batch loop (WorkerRuntime). */
export interface PubSubLoop {
  inBatch: boolean
  /** A turn starts: the coarse clock and the read budget (BatchLoop). */
  startTurn(): void
  /** The connection whose `data` hook is running (it is paused when peers are behind). */
  readonly publishing: Connection | undefined
  /** Free write tails: a topic's feed starts in one. */
  readonly writeTails: WriteTails
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
  readonly #topics = new Map<string, TopicFeed>()
  // Feeds with messages this turn, written to their members at its end.
  #feeds: TopicFeed[] = []
  #settleLater = false
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
  readonly #staging = Buffer.allocUnsafeSlow(STAGING_BYTES)
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
    let feed = this.#topics.get(topic)
    if (feed === undefined) {
      feed = new TopicFeed()
      this.#topics.set(topic, feed)
      this.#remote?.subscribed(topic)
    }
    const topics = (conn.topics ??= new Set())
    if (topics.has(topic)) return
    topics.add(topic)
    if (topics.size === 1) {
      feed.lazy.add(conn)
      conn.feed = feed
      conn.feedFrom = feed.end
      conn.feedSkips = undefined
      return
    }
    // A second topic: from now on written per message (the order between topics).
    const single = conn.feed
    if (single !== undefined) this.#makeEager(conn, single)
    feed.eager.add(conn)
  }

  unsubscribe(conn: Connection, topic: string): void {
    const topics = conn.topics
    if (topics === undefined || !topics.delete(topic)) return
    const feed = this.#topics.get(topic)
    if (feed === undefined) return
    if (conn.feed === feed) {
      catchUp(feed, conn) // what was published before it left
      conn.feed = undefined
      feed.lazy.delete(conn)
    } else feed.eager.delete(conn)
    this.#dropIfEmpty(topic, feed)
    if (topics.size === 1 && conn.feed === undefined) {
      // One topic left: back to owing a range of its feed.
      const [other] = topics
      const rest = this.#topics.get(other!)
      if (rest !== undefined && rest.eager.delete(conn)) {
        rest.lazy.add(conn)
        conn.feed = rest
        conn.feedFrom = rest.end
        conn.feedSkips = undefined
      }
    }
  }

  /** A closed connection leaves every topic it was in. */
  unsubscribeAll(conn: Connection, topics: Set<string>): void {
    conn.feed = undefined
    for (const topic of topics) {
      const feed = this.#topics.get(topic)
      if (feed === undefined) continue
      if (!feed.lazy.delete(conn)) feed.eager.delete(conn)
      this.#dropIfEmpty(topic, feed)
    }
  }

  #makeEager(conn: Connection, feed: TopicFeed): void {
    catchUp(feed, conn)
    conn.feed = undefined
    feed.lazy.delete(conn)
    feed.eager.add(conn)
  }

  #dropIfEmpty(topic: string, feed: TopicFeed): void {
    if (feed.size > 0) return
    // A feed still listed is settled (nobody is owed anything) and its buffer freed.
    this.#topics.delete(topic)
    this.#remote?.unsubscribed(topic)
  }

  subscribers(topic: string): number {
    return this.#topics.get(topic)?.size ?? 0
  }

  /** Encodes once for the other workers (if any); local subscribers directly. */
  publish(topic: string, payload: Uint8Array, except: Connection | undefined): void {
    const remote = this.#remote
    if (remote !== undefined && payload.length > remote.maxPayloadBytes) {
      throw new ServerError('ERR_PAYLOAD_TOO_LARGE', `published payload of ${payload.length} bytes is over the pub/sub adapter's maxPayloadBytes (${remote.maxPayloadBytes})`)
    }
    const exceptId = except === undefined ? 0 : except.id
    let own: Buffer | undefined
    if (this.#peers.length > 0) {
      const record = encodePublished(topic, payload, exceptId)
      own = record.subarray(record.length - payload.length)
      this.#outbox.push(record)
      this.#outboxBytes += record.length
      if (!this.#host.inBatch || this.#outboxBytes >= OUTBOX_MESSAGE_BYTES) this.#sendOutbox()
      // Peers behind: the connection whose data is publishing stops being read.
      const publisher = this.#host.publishing
      if (publisher !== undefined && this.#backlogBytes >= OUTBOX_PAUSE_BYTES && !publisher.paused) {
        publisher.pause()
        this.#pausedPublishers.add(publisher)
      }
    }
    this.#deliverLocal(topic, payload, own, exceptId, except)
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
    this.#deliverLocal(topic, payload, payload, 0, undefined)
    host.inBatch = wasInBatch
    if (!wasInBatch && !this.#remoteFlushQueued) {
      this.#remoteFlushQueued = true
      queueMicrotask(this.#flushRemote)
    }
  }

  readonly #flushRemote = (): void => {
    this.#remoteFlushQueued = false
    if (this.#host.inBatch) return
    this.settleFeeds()
    this.#host.flushDirty()
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
      this.#deliverLocal(record.topic, record.payload, record.payload, record.except, undefined)
      if (taken % PUBLISHED_PER_FLUSH === 0) {
        this.settleFeeds()
        this.#host.flushDirty()
      }
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
    host.startTurn()
    host.inBatch = true
    this.receive()
    host.inBatch = false
    this.flushOutbox()
    host.flushDirty()
  }

  /**
   * The end of a turn: sends this turn's records to every peer (one
   * channel message each, cut at OUTBOX_MESSAGE_BYTES), then writes the
   * topics' feeds to their members.
   */
  flushOutbox(): void {
    this.#sendOutbox()
    this.settleFeeds()
  }

  /** Writes every feed with messages to its members (topic-feed.ts). */
  settleFeeds(): void {
    // A hook run by a write (drain, close) may publish again: settled too,
    // a few rounds at most here, the rest on the next turn.
    for (let round = 0; this.#feeds.length > 0; round++) {
      if (round === SETTLE_ROUNDS) {
        if (!this.#settleLater) {
          this.#settleLater = true
          setImmediate(this.#settleNextTurn)
        }
        return
      }
      const feeds = this.#feeds
      this.#feeds = []
      for (const feed of feeds) {
        feed.listed = false
        settle(feed, this.#host.writeTails)
      }
    }
  }

  readonly #settleNextTurn = (): void => {
    this.#settleLater = false
    const host = this.#host
    if (host.inBatch) return // the batch's end settles them
    this.settleFeeds()
    host.flushDirty()
  }

  #sendOutbox(): void {
    if (this.#outbox.length === 0) return
    const records = this.#outbox.length
    const message = records === 1 ? this.#outbox[0]! : this.#gather(this.#outbox, this.#outboxBytes)
    this.#outbox = []
    this.#outboxBytes = 0
    for (const peer of this.#peers) this.#sendToPeer(peer, message, records)
  }

  /** The records as one message: in the staging buffer when they fit (valid until the next flush). */
  #gather(records: Buffer[], bytes: number): Buffer {
    if (bytes > STAGING_BYTES) return Buffer.concat(records, bytes)
    const staging = this.#staging
    let at = 0
    for (const record of records) {
      staging.set(record, at)
      at += record.length
    }
    return staging.subarray(0, bytes)
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
    // The staging buffer is reused by the next flush: what waits is a copy.
    waiting.push({ bytes: bytes.buffer === this.#staging.buffer ? Buffer.from(bytes) : bytes, records })
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

  /**
   * To this worker's members of `topic`: appended to its feed for those
   * with this topic only, queued at once to the others. `owned`: the
   * payload in a buffer the runtime owns (the handler's may change after
   * publish returns), if there is one; `exceptConn`: the publisher, when it
   * is a connection of this worker.
   */
  #deliverLocal(topic: string, payload: Uint8Array, owned: Buffer | undefined, exceptId: number, exceptConn: Connection | undefined): void {
    const feed = this.#topics.get(topic)
    if (feed === undefined) return
    const length = payload.length
    if (feed.eager.size > 0 || length > FEED_MESSAGE_MAX_BYTES) {
      owned ??= Buffer.from(payload)
      for (const conn of feed.eager) {
        if (conn.id === exceptId || conn.closed || conn.ending) continue
        conn.writePublished(owned)
      }
    }
    if (feed.lazy.size === 0) return
    if (length > FEED_MESSAGE_MAX_BYTES) {
      // Too large to copy: what the feed holds goes first, then this as it is.
      settle(feed, this.#host.writeTails)
      for (const conn of feed.lazy) {
        if (conn.id === exceptId || conn.closed || conn.ending) continue
        conn.writePublished(owned!)
      }
      return
    }
    if (!reserve(feed, length, this.#host.writeTails)) {
      settle(feed, this.#host.writeTails)
      reserve(feed, length, this.#host.writeTails)
    }
    const start = feed.end
    feed.bytes!.set(payload, start)
    feed.end = start + length
    if (exceptConn !== undefined && exceptConn.feed === feed) skipOwn(exceptConn, start, feed.end)
    if (!feed.listed) {
      feed.listed = true
      this.#feeds.push(feed)
    }
    if (!this.#host.inBatch) this.settleFeeds()
  }
}
