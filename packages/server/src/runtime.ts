import { Interest, Poller, Sender, TcpStream, type Receiver, type SenderHandle } from '@amy/core'
import type { Logger } from 'pino'
import { Pipe, type PipeHost } from './pipe.js'
import { Connection, type ConnectionHost } from './connection.js'
import { ServerError } from './errors.js'
import type { Handler } from './handler-types.js'
import type { RemoteBus } from './pubsub-adapter.js'
import { decodePublished, encodePublished } from './pubsub-message.js'
import { STAT } from './stats.js'
import { RuntimeContext, type ContextHost } from './worker-context.js'
import { armConnectTimeout, ipLiteral, resolveThenConnect, unconnected } from './outbound.js'

export interface RuntimeOptions {
  highWaterMark: number
  maxBufferedBytes: number
  allowHalfOpen: boolean
  idleTimeout: number
  firstDataTimeout: number
}

/** Who this worker is, for its WorkerContext. */
export interface WorkerIdentity {
  worker: number
  threads: number
  data: unknown
}

type SimpleHook = 'open' | 'end' | 'drain' | 'timeout'

// An async function's `bytes` must outlive the read buffer (see Handler.data).
const isAsyncFunction = (fn: unknown): boolean => Object.prototype.toString.call(fn) === '[object AsyncFunction]'

const READ_BUFFER_SIZE = 64 * 1024
const INBOX_BATCH = 256
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
// How often idle timeouts are checked (one amy interval timer per worker).
const IDLE_TICK_MS = 250

/**
 * Serves the connections of one worker thread on one Poller attached to the
 * thread's event loop. One JavaScript call per batch of notifications; a
 * connection is found by its registration id; writes made while a batch is
 * dispatched are flushed once at its end.
 */
export class WorkerRuntime implements ConnectionHost, ContextHost, PipeHost {
  readonly readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE)
  readonly highWaterMark: number
  readonly maxBufferedBytes: number
  readonly allowHalfOpen: boolean
  readonly stats: Float64Array
  inBatch = false
  now = performance.now()
  readonly context: RuntimeContext
  readonly log: Logger

  readonly poller = new Poller({ ownsRegisteredFds: true })
  readonly #inboxId: number
  readonly #pubsub: Receiver<never>
  readonly #pubsubSender: Sender<never>
  readonly #handler: Handler
  readonly #copyData: boolean
  readonly #idleTimeout: number
  readonly #firstDataTimeout: number
  readonly #conns = new Map<number, Connection>()
  readonly #topics = new Map<string, Set<Connection>>()
  readonly #fds = new Int32Array(INBOX_BATCH)
  #dirty: Connection[] = []
  #readLater: Connection[] = []
  #readNextTurn: Connection[] = []
  #publishedLeft = false
  // The channel message being worked through, and where its next record starts.
  #inbound: Buffer | undefined
  #inboundOffset = 0
  // Records for the peers gathered this turn; messages a full peer channel refused.
  #outbox: Buffer[] = []
  #outboxBytes = 0
  #backlog = new Map<Sender<never>, Buffer[]>()
  #backlogBytes = 0
  #backlogRetry = false
  #pausedPublishers = new Set<Connection>()
  #publishing: Connection | undefined
  #pumpLater: Pipe[] = []
  #pumpScheduled = false
  #peers: Sender<never>[] = []
  // Other instances (a pub/sub adapter), if the server has one.
  #remote: RemoteBus | undefined
  #remoteFlushQueued = false
  #idleTimer = 0
  #closing: (() => void) | undefined

  constructor(handler: Handler, options: RuntimeOptions, stats: Float64Array, logger: Logger, identity: WorkerIdentity) {
    this.#handler = handler
    this.#copyData = isAsyncFunction(handler.data)
    this.highWaterMark = options.highWaterMark
    this.maxBufferedBytes = options.maxBufferedBytes
    this.allowHalfOpen = options.allowHalfOpen
    this.#idleTimeout = options.idleTimeout
    this.#firstDataTimeout = options.firstDataTimeout
    this.stats = stats
    this.log = logger
    this.context = new RuntimeContext(this, identity.worker, identity.threads, identity.data, logger)
    this.#inboxId = this.poller.openFdInbox()
    const [sender, receiver] = this.poller.registrar.channel<never>({ bound: PUBSUB_CHANNEL_BOUND })
    this.#pubsub = receiver
    this.#pubsubSender = sender
  }

  /** Set by worker-entry: sends context.postMessage's message to the main thread. */
  toMain: ((message: unknown) => void) | undefined

  /** The open connection with this id on this worker (server.send/destroy). */
  find(id: number): Connection | undefined {
    return this.#conns.get(id)
  }

  postMessage(message: unknown): void {
    if (this.toMain === undefined) throw new ServerError('ERR_NOT_IN_WORKER', 'postMessage(): this worker has no link to the main thread')
    this.toMain(message)
  }

  get registrarHandle() {
    return this.poller.registrar.handle
  }

  get pubsubHandle(): SenderHandle {
    return this.#pubsubSender.handle
  }

  start(): void {
    this.poller.startRaw(this.#onBatch)
  }

  /** The pub/sub channels of every other worker. */
  setPeers(handles: SenderHandle[]): void {
    const own = this.#pubsubSender.id
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

  // ---- ConnectionHost ------------------------------------------------------

  markDirty(conn: Connection): void {
    this.#dirty.push(conn)
  }

  scheduleRead(conn: Connection): void {
    this.#readLater.push(conn)
    if (!this.inBatch && this.#readLater.length === 1) setImmediate(() => this.#runReadLater())
  }

  readNextTurn(conn: Connection): void {
    this.#readNextTurn.push(conn)
    if (this.#readNextTurn.length === 1) setImmediate(this.#runReadNextTurn)
  }

  readonly #runReadNextTurn = (): void => {
    const list = this.#readNextTurn
    this.#readNextTurn = []
    this.now = performance.now()
    this.inBatch = true
    for (const conn of list) if (!conn.closed) conn.readable(false)
    this.inBatch = false
    this.#flushOutbox()
    this.#flushDirty()
  }

  watchIdle(): void {
    if (this.#idleTimer === 0) this.#idleTimer = this.poller.registrar.setInterval(IDLE_TICK_MS)
  }

  opened(conn: Connection): void {
    this.stats[STAT.connections] = this.stats[STAT.connections]! + 1
    if (!conn.outbound) this.stats[STAT.inbound] = this.stats[STAT.inbound]! + 1
    this.stats[STAT.opened] = this.stats[STAT.opened]! + 1
    if (this.#idleTimeout > 0) conn.setTimeout(this.#idleTimeout)
    if (this.#firstDataTimeout > 0 && !conn.outbound) {
      conn.firstDataBy = this.now + this.#firstDataTimeout
      this.watchIdle()
    }
    this.#hook(conn, 'open')
    conn.pipeIn?.targetOpened()
  }

  deliver(conn: Connection, bytes: Buffer): void {
    const pipe = conn.pipeOut
    // Closing: the handler gets no more bytes (its writes would fail on the
    // ended connection). They are read and dropped so that the peer's end is
    // seen and the socket closes with a FIN, not a reset.
    if (this.#closing !== undefined && pipe === undefined) return
    if (pipe !== undefined) {
      pipe.forward(bytes, bytes.length === this.readBuffer.length)
      return
    }
    const data = this.#handler.data
    if (data === undefined) return
    let result
    this.#publishing = conn
    try {
      result = data.call(this.#handler, conn, this.#copyData ? Buffer.from(bytes) : bytes)
    } catch (err) {
      this.#handlerFailed(conn, 'data', err)
      return
    } finally {
      this.#publishing = undefined
    }
    // The synchronous path costs one comparison.
    if (result !== undefined && typeof result.then === 'function') this.#pending(conn, 'data', result)
  }

  peerEnded(conn: Connection): void {
    if (conn.pipeOut !== undefined) {
      conn.pipeOut.sourceEnded()
      return
    }
    this.#hook(conn, 'end')
  }

  drained(conn: Connection): void {
    // A pipe's source paused (or, spliced, held back) until this drain.
    conn.pipeIn?.targetDrained()
    this.#hook(conn, 'drain')
  }

  closed(conn: Connection, err: Error | undefined): void {
    this.#conns.delete(conn.id)
    const opened = !conn.connecting
    if (conn.topics) {
      for (const topic of conn.topics) this.#unsubscribe(conn, topic)
    }
    if (!conn.outbound) this.stats[STAT.inbound] = this.stats[STAT.inbound]! - 1
    if (opened || !conn.outbound) {
      this.stats[STAT.connections] = this.stats[STAT.connections]! - 1
      this.stats[STAT.closed] = this.stats[STAT.closed]! + 1
    }
    if (err) this.stats[STAT.errors] = this.stats[STAT.errors]! + 1
    const target = conn.pipeOut?.target
    if (target !== undefined && !target.closed) {
      // The other side of a pipe: flush what it has, then end it.
      if (err) target.destroy()
      else target.end()
    }
    const source = conn.pipeIn?.source
    if (source !== undefined && source !== target && !source.closed) source.destroy()
    const close = this.#handler.close
    if (close !== undefined) {
      try {
        const result = close.call(this.#handler, conn, err)
        if (result !== undefined && typeof result.then === 'function') {
          result.then(undefined, (hookErr: unknown) => this.log.error({ conn: conn.id, hook: 'close', err: hookErr }, 'close hook rejected'))
        }
      } catch (hookErr) {
        this.log.error({ conn: conn.id, hook: 'close', err: hookErr }, 'close hook threw')
      }
    }
    if (this.#closing && this.#conns.size === 0) this.#closing()
  }

  // ---- the batch loop ------------------------------------------------------

  readonly #onBatch = (count: number, ids: Float64Array, flags: Uint8Array): void => {
    this.inBatch = true
    this.now = performance.now()
    try {
      for (let i = 0; i < count; i++) {
        const id = ids[i]!
        const conn = this.#conns.get(id)
        if (conn !== undefined) conn.onEvent(flags[i]!)
        else if (id === this.#inboxId) this.#takeConnections()
        else if (id === this.#pubsub.id) this.#receivePublished()
        else if (id === this.#idleTimer) this.#checkIdle()
      }
    } finally {
      this.inBatch = false
      this.#flushOutbox()
      this.#flushDirty()
      if (this.#readLater.length > 0) this.#runReadLater()
      if (this.#pumpLater.length > 0 && !this.#pumpScheduled) {
        this.#pumpScheduled = true
        setImmediate(this.#runPumpLater)
      }
    }
  }

  #flushDirty(): void {
    const dirty = this.#dirty
    if (dirty.length === 0) return
    this.#dirty = []
    for (const conn of dirty) if (!conn.closed) conn.flush()
  }

  #runReadLater(): void {
    const list = this.#readLater
    this.#readLater = []
    const wasInBatch = this.inBatch
    this.inBatch = true
    for (const conn of list) if (!conn.closed) conn.readable(false)
    this.inBatch = wasInBatch
    if (!wasInBatch) {
      this.#flushOutbox()
      this.#flushDirty()
    }
  }

  /** @internal (PipeHost) */
  schedulePump(pipe: Pipe): void {
    this.#pumpLater.push(pipe)
    if (!this.inBatch && !this.#pumpScheduled) {
      this.#pumpScheduled = true
      setImmediate(this.#runPumpLater)
    }
  }

  readonly #runPumpLater = (): void => {
    this.#pumpScheduled = false
    const list = this.#pumpLater
    this.#pumpLater = []
    for (const pipe of list) pipe.pump()
  }

  #takeConnections(): void {
    const fds = this.#fds
    for (let n = this.poller.takeFds(fds); n > 0; n = this.poller.takeFds(fds)) {
      for (let i = 0; i < n; i++) {
        const stream = TcpStream.fromFd(fds[i]!, { adopt: false })
        if (this.#closing) {
          stream.close()
          continue
        }
        const id = this.poller.registrar.register(stream, Interest.Both)
        const conn = new Connection(this, id, stream, false)
        this.#conns.set(id, conn)
        this.opened(conn)
      }
    }
  }

  // ---- outbound connections and pipes --------------------------------------

  /** @internal use context.connect(). A host name is resolved first (outbound.ts); timeoutMs 0: none. */
  connect(host: string, port: number, timeoutMs = 0): Connection {
    if (this.#closing) throw new ServerError('ERR_SERVER_CLOSED', 'the server is closing')
    const registrar = this.poller.registrar
    const ip = ipLiteral(host)
    let conn: Connection
    if (ip !== undefined) {
      const stream = TcpStream.connect({ host: ip, port })
      conn = new Connection(this, registrar.register(stream, Interest.Both), stream, true)
    } else {
      const id = registrar.reserveId()
      conn = new Connection(this, id, unconnected(), true)
      resolveThenConnect(conn, host, port, stream => registrar.register(stream, Interest.Both, id))
    }
    this.#conns.set(conn.id, conn)
    if (timeoutMs > 0) armConnectTimeout(conn, host, port, timeoutMs)
    return conn
  }

  pipe(from: Connection, to: Connection): void {
    // Splice needs both ends plain TCP: TLS bytes are copied (decrypted,
    // re-encrypted), never through JavaScript strings or streams.
    const canSplice = from.stream instanceof TcpStream && to.stream instanceof TcpStream
    const pipe = new Pipe(from, to, this, canSplice)
    from.pipeOut = pipe
    to.pipeIn = pipe
    // Bytes may already wait in the source: no new edge would announce them.
    this.scheduleRead(from)
  }

  // ---- pub/sub -------------------------------------------------------------

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
      if (!this.inBatch || this.#outboxBytes >= OUTBOX_MESSAGE_BYTES) this.#flushOutbox()
      // Peers behind: the connection whose data is publishing stops being read.
      const publisher = this.#publishing
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
    const wasInBatch = this.inBatch
    this.inBatch = true
    this.#deliverLocal(topic, payload, 0)
    this.inBatch = wasInBatch
    if (!wasInBatch && !this.#remoteFlushQueued) {
      this.#remoteFlushQueued = true
      queueMicrotask(this.#flushRemote)
    }
  }

  readonly #flushRemote = (): void => {
    this.#remoteFlushQueued = false
    if (!this.inBatch) this.#flushDirty()
  }

  #receivePublished(): void {
    for (let taken = 1; ; taken++) {
      if (this.#inbound === undefined) {
        this.#inbound = this.#pubsub.tryRecvBytes()
        this.#inboundOffset = 0
        if (this.#inbound === undefined) return
      }
      const record = decodePublished(this.#inbound, this.#inboundOffset)
      this.#inboundOffset = record.next
      if (record.next >= this.#inbound.length) this.#inbound = undefined
      this.#deliverLocal(record.topic, record.payload, record.except)
      if (taken % PUBLISHED_PER_FLUSH === 0) this.#flushDirty()
      if (taken === PUBLISHED_PER_TURN) {
        // The channel stays signalled while it holds messages: no new
        // notification would come for the rest, so continue on a later turn.
        if (!this.#publishedLeft) {
          this.#publishedLeft = true
          setImmediate(this.#receivePublishedLater)
        }
        return
      }
    }
  }

  readonly #receivePublishedLater = (): void => {
    this.#publishedLeft = false
    this.now = performance.now()
    this.inBatch = true
    this.#receivePublished()
    this.inBatch = false
    this.#flushDirty()
    this.#flushOutbox()
  }

  /** Sends this turn's records to every peer: one channel message each (cut at OUTBOX_MESSAGE_BYTES). */
  #flushOutbox(): void {
    if (this.#outbox.length === 0) return
    const message = this.#outbox.length === 1 ? this.#outbox[0]! : Buffer.concat(this.#outbox, this.#outboxBytes)
    this.#outbox = []
    this.#outboxBytes = 0
    for (const peer of this.#peers) this.#sendToPeer(peer, message)
  }

  /** A full channel: the message waits here, in order, and is retried on the next turns. */
  #sendToPeer(peer: Sender<never>, message: Buffer): void {
    const waiting = this.#backlog.get(peer)
    if (waiting !== undefined) {
      waiting.push(message)
      this.#backlogBytes += message.length
      return
    }
    try {
      peer.sendBytes(message)
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_CHANNEL_FULL') {
        this.#backlog.set(peer, [message])
        this.#backlogBytes += message.length
        this.#retryBacklogSoon()
        return
      }
      // A worker that died: the acceptor replaces it and sends new peers.
      this.log.warn({ err }, 'publish to a worker failed')
    }
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
        for (; sent < waiting.length; sent++) peer.sendBytes(waiting[sent]!)
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_CHANNEL_FULL') {
          sent = waiting.length // a dead peer: drop what it was owed
          this.stats[STAT.pubsubDropped] = this.stats[STAT.pubsubDropped]! + 1
        }
      }
      for (let i = 0; i < sent; i++) this.#backlogBytes -= waiting[i]!.length
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
      conn.write(payload)
    }
  }

  // ---- idle timeouts -------------------------------------------------------

  // The tick runs only while some connection has a timeout: whether any
  // does is found by the scan itself, not kept in a counter.
  #checkIdle(): void {
    const now = this.now
    let watched = 0
    for (const conn of this.#conns.values()) {
      if (conn.firstDataBy > 0) {
        watched++
        if (now >= conn.firstDataBy) {
          conn.destroy(new ServerError('ERR_FIRST_DATA_TIMEOUT', `connection ${conn.id} sent nothing within ${this.#firstDataTimeout} ms`))
          continue
        }
      }
      if (conn.idleTimeoutMs <= 0) continue
      watched++
      if (now - conn.lastActive < conn.idleTimeoutMs) continue
      if (this.#handler.timeout) {
        conn.lastActive = now
        this.#hook(conn, 'timeout')
      } else {
        conn.destroy(new ServerError('ERR_IDLE_TIMEOUT', `connection ${conn.id} was idle for ${conn.idleTimeoutMs} ms`))
      }
    }
    if (watched === 0) {
      this.poller.registrar.cancelTimeout(this.#idleTimer)
      this.#idleTimer = 0
    }
  }

  // ---- hooks and shutdown --------------------------------------------------

  #hook(conn: Connection, name: SimpleHook): void {
    const fn = this.#handler[name]
    if (fn === undefined) return
    let result
    try {
      result = fn.call(this.#handler, conn)
    } catch (err) {
      this.#handlerFailed(conn, name, err)
      return
    }
    if (result !== undefined && typeof (result as PromiseLike<unknown>).then === 'function') this.#pending(conn, name, result as PromiseLike<unknown>)
    else if (name === 'open' && result !== undefined) conn.state = result
  }

  /**
   * An async hook: `open` and `data` hold the connection's reads until it
   * settles (per-connection order); a rejection closes that connection.
   */
  #pending(conn: Connection, name: SimpleHook | 'data', promise: PromiseLike<unknown>): void {
    const holds = name === 'open' || name === 'data'
    if (holds) conn.hold()
    promise.then(
      value => {
        if (name === 'open' && value !== undefined && !conn.closed) conn.state = value
        if (holds) conn.release()
      },
      (err: unknown) => {
        if (holds) conn.release()
        this.#handlerFailed(conn, name, err)
      },
    )
  }

  #handlerFailed(conn: Connection, hook: string, err: unknown): void {
    if (conn.closed) {
      // A hook still running when its connection closed: its writes fail
      // with ERR_CONNECTION_CLOSED, which is expected, not an error.
      const expected = (err as { code?: unknown } | null)?.code === 'ERR_CONNECTION_CLOSED'
      this.log[expected ? 'debug' : 'warn']({ conn: conn.id, hook, err }, 'hook failed after its connection closed')
      return
    }
    this.log.error({ conn: conn.id, hook, err }, 'handler threw; closing the connection')
    conn.destroy(err instanceof Error ? err : new Error(String(err)))
  }

  get connections(): number {
    return this.#conns.size
  }

  /**
   * Stops taking connections and ends the open ones (each flushes what it
   * has queued, then half-closes); after `timeoutMs`, or at once with
   * `force`, destroys what is left. Resolves when none is open.
   */
  drain(force: boolean, timeoutMs: number): Promise<void> {
    return new Promise(resolve => {
      let timer: NodeJS.Timeout | undefined
      const done = (): void => {
        if (timer) clearTimeout(timer)
        this.#closing = () => {}
        resolve()
      }
      this.#closing = done
      if (force) {
        for (const conn of [...this.#conns.values()]) conn.destroy()
      } else {
        for (const conn of [...this.#conns.values()]) {
          conn.resume() // read (and drop) to the peer's end; see deliver()
          conn.end()
        }
        timer = setTimeout(() => {
          for (const conn of [...this.#conns.values()]) conn.destroy()
        }, timeoutMs)
      }
      if (this.#conns.size === 0) done()
    })
  }

  close(): void {
    this.poller.close()
  }
}
