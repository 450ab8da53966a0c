import { Interest, TLS_ERROR_CODES, TlsStream, type ByteStream, type SocketAddress, type TcpStream } from '@amy/core'
import type { Pipe } from './pipe.js'
import type { Logger } from 'pino'
import { ServerError } from './errors.js'
import type { WorkerContext } from './handler-types.js'
import { checkTopic, describe, invalidBytes } from './validate.js'
import { STAT } from './stats.js'
import { connectionTls, type ConnectionTls } from './tls.js'
import { catchUp, type TopicFeed } from './topic-feed.js'
import type { WriteTails } from './write-tails.js'

const READABLE = 1
const WRITABLE = 2
const HANGUP = 4
const ERROR = 8

/** @internal What a Connection needs from the worker runtime that serves it. */
export interface ConnectionHost {
  readonly context: WorkerContext<any>
  readonly log: Logger
  /** The worker's reusable read buffer: `data` views point into it. */
  readonly readBuffer: Buffer
  /** The view of readBuffer's first `n` bytes that `data` gets. */
  readView(n: number): Buffer
  /** Whether `bytes` lies in readBuffer (the next read overwrites it). */
  inReadBuffer(bytes: Uint8Array): boolean
  readonly highWaterMark: number
  readonly maxBufferedBytes: number
  /** maxBufferedBytesTotal (0: none). */
  readonly maxBufferedBytesTotal: number
  /** True while every worker's write queues together cost more than maxBufferedBytesTotal. */
  overBufferedTotal(): boolean
  readonly allowHalfOpen: boolean
  /** Free write tails shared by the worker's connections (and its topics' feeds). */
  readonly writeTails: WriteTails
  /** True while the runtime dispatches a batch: writes are coalesced until its end. */
  readonly inBatch: boolean
  /** Coarse clock (ms), updated once per batch. */
  readonly now: number
  /** True once this turn has used its time budget (reads then wait for the next turn). */
  turnOver(): boolean
  readonly stats: Float64Array
  markDirty(conn: Connection): void
  /** The connection's socket is registered for writable too from now on (it was readable only). */
  watchWritable(conn: Connection): void
  scheduleRead(conn: Connection): void
  /** Reads again on a later turn of the event loop (the read budget was used up). */
  readNextTurn(conn: Connection): void
  watchIdle(): void
  opened(conn: Connection): void
  deliver(conn: Connection, bytes: Buffer): void
  peerEnded(conn: Connection): void
  drained(conn: Connection): void
  /** True if a closed connection's Error is seen by anything (the handler's close hook). */
  readonly closeSeesErrors: boolean
  /**
   * The connection closed; `err`: why, if it failed. A number is the
   * socket's errno (a peer's reset): the Error is built (socketError) only
   * for whatever sees it, a close hook or a log line. UNREAD_ERRNO: a
   * socket error that was not even read, as nothing would see it.
   */
  closed(conn: Connection, err: Error | number | undefined): void
  subscribe(conn: Connection, topic: string): void
  unsubscribe(conn: Connection, topic: string): void
  pipe(from: Connection, to: Connection): void
}

/**
 * What an inbound connection's socket is registered for. Plain TCP: readable
 * only. A new socket is writable at once, so watching writable from the
 * start cost an event per connection, often a batch of its own (churn:
 * 0.28 extra events per connection); the connection watches writable too
 * from the first write the kernel refuses (or when a pipe writes into it).
 * TLS: both, as its handshake writes.
 */
export function inboundInterest(tls: boolean): Interest {
  return tls ? Interest.Both : Interest.Read
}

/** A socket error counted but not read (see ConnectionHost.closed). */
export const UNREAD_ERRNO = -1

const STAT_BYTES_IN = STAT.bytesIn
const STAT_BYTES_OUT = STAT.bytesOut
const STAT_BUFFERED = STAT.bufferedBytes

/**
 * What one queued chunk costs beyond its bytes (the Buffer view, its slot in
 * the queue, GC headroom), counted against maxBufferedBytes so that a flood
 * of tiny writes is bounded by memory, not by payload bytes. Measured with
 * scripts/reliability/flood-memory.mjs: ~280 bytes of RSS per queued 1-byte
 * chat message.
 */
export const QUEUED_CHUNK_COST = 320
/**
 * Writes of at most COPY_MAX_BYTES are copied into the connection's write
 * tail, a buffer taken from the worker's free list, instead of queued one
 * chunk each: a batch of small writes to a connection (a pub/sub fan-out)
 * leaves as one contiguous write. The native writev reads each queued
 * chunk through Node-API, which cost more per chunk than copying 64 bytes
 * (perf: 27% of a chat worker's samples before, in iovecs_from). A tail
 * goes back to the free list when the connection's queue empties.
 */
const COPY_MAX_BYTES = 1024

/**
 * Per connection per turn of the event loop: at most this many reads (x 64
 * KiB), and no further read once the turn has used its time budget
 * (BatchLoop.turnOver). A connection with more waiting continues on the
 * next turn, after the others and the loop's own work (timers, messages,
 * the heartbeat): a flood of tiny messages costs time, not bytes, so the
 * time budget is what bounds lag.
 */
const READS_PER_TURN = 16

/**
 * One TCP connection, as the handler sees it, in the worker that owns it.
 *
 * Writes: `write()` never blocks. Bytes the kernel does not take are
 * queued; past `highWaterMark` it returns false and `drain` follows once
 * the queue is flushed. Past `maxBufferedBytes` the connection is destroyed
 * with ERR_BUFFER_LIMIT (a peer that never reads cannot exhaust memory).
 * Inside a batch, writes of stable buffers are coalesced and flushed with
 * one writev at the end of the batch.
 *
 * Bad arguments throw a ServerError with a code (ERR_INVALID_ARG_TYPE,
 * ERR_INVALID_ARG_VALUE); write, subscribe, pipe and setTimeout on a
 * closed (or, for write, ending) connection throw ERR_CONNECTION_CLOSED,
 * while end, destroy, pause, resume and unsubscribe are no-ops then.
 */
export class Connection<State = unknown, Data = unknown> {
  /** Unique in the process, never reused. */
  readonly id: number
  /** True for connections made with `context.connect()`. */
  readonly outbound: boolean
  /**
   * Your per-connection state: what `open` returned, or what you assign.
   * Typed as the handler's State; it is `undefined` until set.
   */
  state: State = undefined as State

  /** @internal the transport: plain TCP or TLS (both ByteStreams); a connection to a host name gets it once the name resolves (attach) */
  stream: ByteStream
  /** @internal */ idleTimeoutMs = 0
  /** @internal */ lastActive: number
  /** @internal firstDataTimeout: the deadline (host clock) for a first byte; 0 once one came, or none */
  firstDataBy = 0
  /** @internal a TLS handshake's deadline (host clock); 0 once done, or none */
  handshakeBy = 0
  /** @internal */ topics: Set<string> | undefined
  /** @internal maxConnectionsPerAddress: its client address's counter (address-limit.ts); -1: not counted */
  addressSlot = -1
  /** @internal set while this connection's bytes are piped elsewhere instead of delivered */
  pipeOut: Pipe | undefined
  /** @internal the pipe whose bytes come into this connection */
  pipeIn: Pipe | undefined
  /** @internal the feed of its one topic (topic-feed.ts): owed [feedFrom, feed.end) but the feedSkips ranges */
  feed: TopicFeed | undefined
  /** @internal */ feedFrom = 0
  /** @internal pairs [start, end) of its own messages in the feed */
  feedSkips: number[] | undefined

  readonly #host: ConnectionHost
  #queue: Uint8Array[] = []
  #queued = 0
  // The queue's cost as last added to the worker's STAT.bufferedBytes.
  #counted = 0
  // The write tail: bytes [#tailStart, #tailEnd) are queued in it but not
  // yet in #queue (sealed into it as one view before a flush or a large write).
  #tail: Buffer | undefined
  #tailStart = 0
  #tailEnd = 0
  // Earlier tails that filled up while their bytes were still queued, in
  // order, each as the view of its used bytes.
  #fullTails: Buffer[] | undefined
  #needDrain = false
  #ending = false
  #finSent = false
  #peerEnded = false
  #closed = false
  #paused = false
  #readPending = false
  // Not open yet: an outbound TCP connect, or a TLS handshake, under way.
  #connecting: boolean
  #tcpPending: boolean
  #tls: TlsStream | undefined
  #tlsInfo: ConnectionTls | undefined
  #dirty = false
  #remote: SocketAddress | undefined
  // Reads held while an async hook of this connection is pending (not the
  // user's pause: resume() must not release them).
  #held = false
  // close() began while a hook held this connection: end once it settles.
  #endOnRelease = false
  // A hang-up edge was seen: reads go on to end of stream even after a
  // short read (no further edge will come).
  #hangupSeen = false
  // Registered for writable edges too (see inboundInterest).
  #watchingWritable: boolean
  #log: Logger | undefined

  /** @internal made by the worker runtime. */
  constructor(host: ConnectionHost, id: number, stream: ByteStream, outbound: boolean) {
    this.#host = host
    this.id = id
    this.stream = stream
    this.outbound = outbound
    this.#tls = stream instanceof TlsStream ? stream : undefined
    this.#tcpPending = outbound
    this.#connecting = outbound || this.#tls !== undefined
    this.#watchingWritable = outbound || inboundInterest(this.#tls !== undefined) === Interest.Both
    this.lastActive = host.now
  }

  /**
   * @internal Makes sure a writable edge will come (the kernel refused
   * bytes, or a pipe splices into this connection): an inbound plain TCP
   * socket is registered for readable only until then.
   */
  watchWritable(): void {
    if (this.#watchingWritable || this.#closed) return
    this.#watchingWritable = true
    this.#host.watchWritable(this)
  }

  /**
   * The TLS handshake's outcome (protocol, cipher, ALPN, servername,
   * resumption, the peer's certificate); undefined on plain TCP. Known
   * before `open` runs.
   */
  get tls(): ConnectionTls | undefined {
    return this.#tlsInfo
  }

  /** The peer's IP address; undefined on a Unix socket. */
  get remoteAddress(): string | undefined {
    return this.#remoteInfo()?.address
  }

  /** The peer's port; undefined on a Unix socket. */
  get remotePort(): number | undefined {
    return this.#remoteInfo()?.port
  }

  /** 'IPv4' or 'IPv6'; undefined on a Unix socket. */
  get remoteFamily(): string | undefined {
    return this.#remoteInfo()?.family
  }

  /** Bytes written but not yet taken by the kernel. */
  get bufferedBytes(): number {
    return this.#queued
  }

  /** True once the connection is closed (close(conn) has run or is running). */
  get closed(): boolean {
    return this.#closed
  }

  /** True once end() was called (or the server ended it). */
  get ending(): boolean {
    return this.#ending
  }

  /** True between pause() and resume(). */
  get paused(): boolean {
    return this.#paused
  }

  /** True until an outbound connection is established (TLS: its handshake done). */
  get connecting(): boolean {
    return this.#connecting
  }

  /** The worker's context (publish, connect, subscribers, log, data). */
  get context(): WorkerContext<Data> {
    return this.#host.context
  }

  /** A pino child logger with the `worker` and `conn` bindings (made on first use). */
  get log(): Logger {
    return (this.#log ??= this.#host.log.child({ conn: this.id }))
  }

  /** Messages published on `topic` (from any worker or the main thread) are written to this connection. */
  subscribe(topic: string): void {
    checkTopic(topic)
    if (this.#closed) throw this.#closedError('subscribe')
    this.#host.subscribe(this, topic)
  }

  /** Stops delivering `topic`; a no-op when not subscribed or closed. */
  unsubscribe(topic: string): void {
    checkTopic(topic)
    if (this.#closed) return
    this.#host.unsubscribe(this, topic)
  }

  /**
   * Sends everything this connection receives to `to`, with backpressure
   * (when `to` cannot keep up, this one stops reading), forwarding
   * end-of-stream; when one closes with an error the other is destroyed.
   * Call it both ways for a proxy. Bytes piped do not reach `data`.
   */
  pipe(to: Connection<any, any>): void {
    if (!(to instanceof Connection)) throw new ServerError('ERR_INVALID_ARG_TYPE', `pipe() needs a Connection of this worker, got ${describe(to)}`)
    if (to === this) throw new ServerError('ERR_INVALID_ARG_VALUE', 'a connection cannot be piped to itself')
    if (to.#host !== this.#host) throw new ServerError('ERR_INVALID_ARG_VALUE', 'both connections of a pipe must belong to the same worker')
    if (this.pipeOut !== undefined) throw new ServerError('ERR_INVALID_ARG_VALUE', `connection ${this.id} is already piped`)
    if (this.#closed) throw this.#closedError('pipe')
    if (to.#closed) throw to.#closedError('pipe to')
    this.#host.pipe(this, to)
  }

  /**
   * Queues bytes for the peer. Returns false once `highWaterMark` bytes wait
   * (`drain` follows). Throws ERR_CONNECTION_CLOSED after end()/destroy().
   */
  write(data: Uint8Array | string): boolean {
    if (this.#closed || this.#ending) throw this.#closedError('write')
    if (!this.#owedFirst()) return false
    let bytes: Uint8Array
    if (typeof data === 'string') bytes = Buffer.from(data)
    else if (data instanceof Uint8Array) bytes = data
    else throw invalidBytes(data)
    const length = bytes.length
    if (length === 0) return this.#queued < this.#host.highWaterMark
    if (this.#queued === 0 && !this.#connecting && this.#host.inReadBuffer(bytes)) {
      // The bytes live in the buffer the next read overwrites: hand them to
      // the kernel now (no copy); copy only what it does not take.
      const written = this.#writeNow(bytes)
      if (written < 0) return false // destroyed
      if (written === length) return true
      bytes = Buffer.from(bytes.subarray(written))
    } else if (length > COPY_MAX_BYTES && this.#host.inReadBuffer(bytes)) {
      bytes = Buffer.from(bytes)
    }
    return this.#enqueue(bytes)
  }

  /**
   * @internal pub/sub delivery from the worker: `bytes` is a Buffer the
   * runtime owns (never the read buffer) and the connection is open and
   * not ending (the caller checked), so write()'s checks are skipped.
   */
  writePublished(bytes: Buffer): void {
    if (!this.#owedFirst()) return
    this.#enqueue(bytes)
  }

  /** Published bytes it is still owed (topic-feed.ts) are queued first; false if that closed it. */
  #owedFirst(): boolean {
    const feed = this.feed
    if (feed === undefined || feed.end <= this.feedFrom) return true
    catchUp(feed, this)
    return !this.#closed
  }

  /**
   * @internal a topic feed's settle, first pass: the fd to send the feed's
   * bytes to now, in the feed's one writeMany call, or -1: then it takes the
   * queued path. Only a plain TCP socket, open, with nothing queued before
   * them (order) and no pipe into it.
   */
  directFd(): number {
    if (this.#tls !== undefined || this.#connecting || this.#closed || this.#queued > 0 || this.pipeIn !== undefined) return -1
    return (this.stream as TcpStream).fd
  }

  /**
   * @internal after writeMany sent `view` to directFd(): `result` as it gives
   * it. What the socket did not take is queued as flush() would; true if so
   * (the settle's second pass then flushes it). A failed send is returned
   * (the caller destroys the connection with it once no view is pending).
   */
  sentDirect(view: Buffer, result: number): boolean {
    const host = this.#host
    if (result >= 0) {
      host.stats[STAT_BYTES_OUT] = host.stats[STAT_BYTES_OUT]! + result
      this.lastActive = host.now
      if (result === view.length) return false
    }
    this.queueFeedView(result > 0 ? view.subarray(result) : view)
    return true
  }

  /** @internal a topic feed's settle, first pass: a view of the feed it is owed, queued in order (topic-feed.ts). */
  queueFeedView(view: Buffer): void {
    this.#sealTail()
    this.#queue.push(view)
    this.#queued += view.length
  }

  /**
   * @internal a topic feed's settle, second pass: writes what is queued;
   * what the socket does not take and still lies in the feed (`feed`, its
   * memory) is copied out, as the feed is reused.
   */
  flushFeed(feed: ArrayBufferLike): void {
    if (!this.#connecting && this.flush()) return
    if (this.#closed) return
    const queue = this.#queue
    let last = queue.length
    if (this.#tailEnd === this.#tailStart) {
      // The usual case, the views at the end: copied into the tail (a slow
      // reader's queue then grows by tails, not by a chunk per turn).
      while (last > 0 && queue[last - 1]!.buffer === feed) last--
      for (const view of queue.splice(last)) this.#fillTails(view)
    }
    for (let i = 0; i < last; i++) if (queue[i]!.buffer === feed) queue[i] = Buffer.from(queue[i]!)
    if (!this.#withinLimit()) return
    if (this.#queued >= this.#host.highWaterMark) this.#needDrain = true
  }

  #enqueue(bytes: Uint8Array): boolean {
    const length = bytes.length
    if (length <= COPY_MAX_BYTES) this.#copyToTail(bytes)
    else {
      this.#sealTail()
      this.#queue.push(bytes)
    }
    this.#queued += length
    if (!this.#withinLimit()) return false
    if (!this.#connecting) {
      if (this.#host.inBatch) this.#markDirty()
      else this.flush()
    }
    if (this.#queued >= this.#host.highWaterMark) {
      this.#needDrain = true
      return false
    }
    return true
  }

  /**
   * Past maxBufferedBytes, or over highWaterMark while the server-wide
   * budget is spent: destroyed (ERR_BUFFER_LIMIT, ERR_BUFFER_TOTAL_LIMIT), false.
   */
  #withinLimit(): boolean {
    const host = this.#host
    const cost = this.#account()
    if (cost > host.maxBufferedBytes) {
      this.destroy(new ServerError('ERR_BUFFER_LIMIT', `connection ${this.id} has more than ${host.maxBufferedBytes} bytes (counting ${QUEUED_CHUNK_COST} per queued write) waiting to be written`))
      return false
    }
    // Server-wide budget: a reader that is behind (over highWaterMark) whose
    // write finds every worker's queues over it is closed; one that keeps
    // up is not (its queue leaves at the end of the batch).
    if (host.maxBufferedBytesTotal > 0 && cost > host.highWaterMark && host.overBufferedTotal()) {
      host.stats[STAT.bufferTotalClosed] = host.stats[STAT.bufferTotalClosed]! + 1
      this.destroy(new ServerError('ERR_BUFFER_TOTAL_LIMIT', `connection ${this.id} has ${cost} bytes waiting to be written while the server's write queues cost more than maxBufferedBytesTotal (${host.maxBufferedBytesTotal})`))
      return false
    }
    return true
  }

  /** Brings the worker's STAT.bufferedBytes up to date with this queue's cost; returns the cost. */
  #account(): number {
    const cost = this.#queued + this.#queue.length * QUEUED_CHUNK_COST
    const stats = this.#host.stats
    stats[STAT_BUFFERED] = stats[STAT_BUFFERED]! + cost - this.#counted
    this.#counted = cost
    return cost
  }

  #copyToTail(bytes: Uint8Array): void {
    let tail = this.#tail
    if (tail === undefined || this.#tailEnd + bytes.length > tail.length) tail = this.#nextTail()
    tail.set(bytes, this.#tailEnd)
    this.#tailEnd += bytes.length
  }

  /** Copies `bytes` into the tail, filling it up before taking the next (a slow reader's queue is then nearly all bytes). */
  #fillTails(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length; ) {
      let tail = this.#tail
      if (tail === undefined || this.#tailEnd === tail.length) tail = this.#nextTail()
      const n = Math.min(tail.length - this.#tailEnd, bytes.length - at)
      tail.set(bytes.subarray(at, at + n), this.#tailEnd)
      this.#tailEnd += n
      at += n
    }
  }

  /** Seals the tail and takes a new one; the old stays referenced by its queued views until they are written. */
  #nextTail(): Buffer {
    this.#sealTail()
    const full = this.#tail
    if (full !== undefined) (this.#fullTails ??= []).push(full.subarray(0, this.#tailEnd))
    const tail = this.#host.writeTails.take()
    this.#tail = tail
    this.#tailStart = 0
    this.#tailEnd = 0
    return tail
  }

  /** Moves the tail's unsealed bytes into the queue (one view), keeping write order. */
  #sealTail(): void {
    if (this.#tailEnd > this.#tailStart) {
      this.#queue.push(this.#tail!.subarray(this.#tailStart, this.#tailEnd))
      this.#tailStart = this.#tailEnd
    }
  }

  /**
   * The queue is empty (written, or dropped): nothing refers to the tails
   * any more. The current one goes back to the free list; those that
   * filled up are freed now rather than at the worker's next full GC (a
   * queue behind by megabytes holds hundreds, long promoted to the old
   * generation: a non-reader's would stay in memory next to the new
   * traffic until V8 felt the pressure).
   */
  #releaseTail(): void {
    const tail = this.#tail
    if (tail !== undefined) {
      this.#tail = undefined
      this.#tailStart = 0
      this.#tailEnd = 0
      this.#host.writeTails.give(tail)
    }
    const full = this.#fullTails
    if (full === undefined) return
    this.#fullTails = undefined
    for (const buffer of full) freeNow(buffer)
  }

  /** Half-closes after everything queued is flushed; optionally writes `data` first. */
  end(data?: Uint8Array | string): void {
    if (this.#closed || this.#ending) return
    if (!this.#owedFirst()) return
    if (data !== undefined) this.write(data)
    if (this.#closed) return
    this.#ending = true
    if (this.#queued === 0 && !this.#connecting) this.#sendFin()
  }

  /** Closes now: queued bytes are dropped. `close(conn, err)` follows. */
  destroy(err?: Error): void {
    this.#close(err)
  }

  /** destroy(), also with a socket errno for an Error nobody may need (see ConnectionHost.closed). */
  #close(err: Error | number | undefined): void {
    if (this.#closed) return
    this.#closed = true
    if (this.#tls !== undefined && err && (this.#handshaking || (typeof err === 'object' && isTlsError(err)))) {
      this.#host.stats[STAT.tlsFailures] = this.#host.stats[STAT.tlsFailures]! + 1
    }
    this.#queue = []
    this.#queued = 0
    this.#account()
    this.#releaseTail()
    this.pipeOut?.close()
    try {
      this.stream.close() // deregisters from the poller, then closes the fd
    } finally {
      this.#host.closed(this, err)
    }
  }

  /** Stops reading (the kernel's buffers then push back on the peer). */
  pause(): void {
    this.#paused = true
  }

  /** Reads again after pause(); bytes that waited are delivered. */
  resume(): void {
    if (!this.#paused) return
    this.#paused = false
    this.#readAgain()
  }

  /** @internal an async hook of this connection is pending: hold reads. */
  hold(): void {
    this.#held = true
  }

  /** @internal the pending hook settled. */
  release(): void {
    this.#held = false
    if (this.#endOnRelease) {
      this.#endOnRelease = false
      this.end()
    }
    this.#readAgain()
  }

  /**
   * @internal the server is closing: end now, or, while an `open`/`data`
   * hook's promise is pending, once it settles, so that what the hook
   * writes meanwhile is delivered before the FIN.
   */
  endAfterHook(): void {
    if (this.#held) this.#endOnRelease = true
    else this.end()
  }

  #readAgain(): void {
    if (this.#readPending && !this.#paused && !this.#held && !this.#closed) {
      this.#readPending = false
      this.#host.scheduleRead(this)
    }
  }

  /**
   * Idle timeout: after `ms` without bytes in or out, the handler's
   * `timeout(conn)` runs if it has one; otherwise the connection is
   * destroyed with ERR_IDLE_TIMEOUT. 0 turns it off.
   */
  setTimeout(ms: number): void {
    if (typeof ms !== 'number') throw new ServerError('ERR_INVALID_ARG_TYPE', `timeout must be a number of ms, got ${describe(ms)}`)
    if (!Number.isFinite(ms) || ms < 0) throw new ServerError('ERR_INVALID_ARG_VALUE', `timeout must be a finite number of ms >= 0, got ${ms}`)
    if (this.#closed) throw this.#closedError('setTimeout')
    this.idleTimeoutMs = ms
    this.lastActive = this.#host.now
    if (ms > 0) this.#host.watchIdle()
  }

  /** @internal dispatches one notification's flags. */
  onEvent(flags: number): void {
    if (this.#closed) return
    if (this.#connecting) {
      if (!this.#establish(flags)) return
      // The handshake may have read records past its end: no edge will
      // announce them, so read now.
      if (this.#tls !== undefined) flags |= READABLE
    }
    if (flags & ERROR) {
      // Churn: every client that closes with a reset comes here. A pending
      // error on a TCP socket is fatal (the kernel sets it only for a dead
      // connection). It is read (getsockopt) and made an Error (perf: a
      // fifth of a churning worker's JavaScript) only if something will
      // see it: a close hook, or TLS's failure count and log.
      if (this.#tls === undefined && !this.#host.closeSeesErrors) {
        this.#close(UNREAD_ERRNO)
        return
      }
      const errno = this.stream.takeErrno()
      if (errno !== 0) {
        this.#close(errno)
        return
      }
    }
    if (flags & WRITABLE) {
      // TLS keeps what the socket refused (at most about a record) itself:
      // it goes first, and until it has, nothing else can.
      if (this.#tls !== undefined && !this.#flushTls()) {
        // still waiting for the socket (or destroyed)
      } else if (this.#queued > 0) this.flush()
      else this.pipeIn?.targetWritableIdle()
    }
    if (flags & (READABLE | HANGUP) && !this.#closed) this.readable((flags & HANGUP) !== 0)
  }

  /** @internal the socket of an outbound connection whose host name resolved (registered under this.id). */
  attach(stream: ByteStream): void {
    this.stream = stream
    this.#tls = stream instanceof TlsStream ? stream : undefined
  }

  /**
   * Connecting: the TCP connect, then the TLS handshake. True once open
   * (the `open` hook has run), false while it goes on or if it failed.
   */
  #establish(flags: number): boolean {
    if (this.#tcpPending) {
      if (flags & (ERROR | HANGUP)) {
        this.destroy(this.stream.takeError() ?? new ServerError('ERR_CONNECTION_CLOSED', 'connect failed'))
        return false
      }
      if (!(flags & WRITABLE)) return false
      this.#tcpPending = false
    }
    const tls = this.#tls
    if (tls !== undefined) {
      try {
        if (!tls.handshake()) return false
      } catch (err) {
        this.destroy(err as Error)
        return false
      }
      this.handshakeBy = 0
      this.#tlsInfo = connectionTls(tls)
      this.#host.stats[STAT.tlsHandshakes] = this.#host.stats[STAT.tlsHandshakes]! + 1
    }
    this.#connecting = false
    this.#host.opened(this)
    if (this.#closed) return false
    if (this.#queued > 0) this.flush()
    else if (this.#ending) this.#sendFin()
    return !this.#closed
  }

  /** A TLS handshake is under way (the TCP connection is up). */
  get #handshaking(): boolean {
    return this.#connecting && !this.#tcpPending
  }

  /** Sends what TLS holds; true when nothing is left. Both ends done and all out: closes. */
  #flushTls(): boolean {
    let done: boolean
    try {
      done = this.#tls!.flush()
    } catch (err) {
      this.destroy(err as Error)
      return false
    }
    if (done && this.#finSent && this.#peerEnded) {
      this.destroy()
      return false
    }
    return done
  }

  /** @internal the source side of a splice saw end of stream. */
  endOfStream(): void {
    this.#onPeerEnd()
  }

  /**
   * @internal Reads until the socket is drained. A short read means it is:
   * edge-triggered epoll reports any later data as a new edge. Unless a
   * hang-up came with this edge: then read on until end of stream.
   */
  readable(hangup: boolean): void {
    // A spliced source is pumped, never read: also when this read was
    // deferred (a later turn, a resume) and the pipe went to splicing since,
    // as copied bytes would overtake those in the kernel pipe.
    const out = this.pipeOut
    if (out !== undefined && out.splicing) {
      out.sourceReadable()
      return
    }
    // Nothing to read before the connect completes (an outbound connection
    // to a name may have no socket yet); its first edge reads.
    if (this.#connecting) return
    if (hangup) this.#hangupSeen = true
    if (this.#paused || this.#held) {
      this.#readPending = true
      return
    }
    const host = this.#host
    if (host.turnOver()) {
      host.readNextTurn(this) // this turn has run long enough: the others, and the loop, first
      return
    }
    const buf = host.readBuffer
    for (let reads = 1; ; reads++) {
      // A pipe copying to a target that can take the bytes now: read and
      // send in one native call (Pipe.relayTarget).
      const relayTo = out?.relayTarget()
      let n: number | null
      try {
        n = relayTo === undefined ? this.stream.read(buf) : (this.stream as TcpStream).relay(relayTo, buf)
      } catch (err) {
        // A failed send is the target's error (the pipe then closes this side too).
        if (relayTo !== undefined && (err as { syscall?: unknown }).syscall === 'write') out!.target.destroy(err as Error)
        else this.destroy(err as Error)
        return
      }
      if (n === null) return
      if (n === 0) {
        this.#onPeerEnd()
        return
      }
      host.stats[STAT_BYTES_IN] = host.stats[STAT_BYTES_IN]! + n
      this.lastActive = host.now
      this.firstDataBy = 0
      if (relayTo === undefined) host.deliver(this, host.readView(n))
      else out!.relayed(buf, n, (this.stream as TcpStream).relayUnsent)
      if (this.#closed) return
      if (this.pipeOut?.splicing) {
        // A full read switched this pipe to splice: the rest goes in-kernel.
        this.pipeOut.sourceReadable()
        return
      }
      if (this.#paused || this.#held) {
        this.#readPending = true
        return
      }
      // TLS may have stopped at a record with more in the socket: it reads
      // on until the socket would block.
      if (n < buf.length && !this.#hangupSeen && this.#tls === undefined) return
      if (reads === READS_PER_TURN || host.turnOver()) {
        host.readNextTurn(this) // fairness: the others, and the loop, first
        return
      }
    }
  }

  /** @internal Writes what is queued; true when nothing is left. */
  flush(): boolean {
    this.#dirty = false
    this.#sealTail()
    while (this.#queue.length > 0) {
      let n: number | null
      try {
        n = this.#queue.length === 1 ? this.stream.write(this.#queue[0]!) : this.stream.writev(this.#queue)
      } catch (err) {
        this.destroy(err as Error)
        return false
      }
      if (n === null) {
        this.#account()
        this.watchWritable()
        return false // the writable edge will call us again
      }
      this.#host.stats[STAT_BYTES_OUT] = this.#host.stats[STAT_BYTES_OUT]! + n
      this.lastActive = this.#host.now
      this.#queued -= n
      this.#consume(n)
    }
    this.#account()
    this.#releaseTail()
    if (this.#needDrain) {
      this.#needDrain = false
      this.#host.drained(this)
      if (this.#closed) return true
    } else if (this.pipeIn?.splicing) {
      // A spliced source waits for this queue to empty (order), drain or not.
      this.pipeIn.targetFlushed()
      if (this.#closed) return true
    }
    if (this.#ending && !this.#finSent) this.#sendFin()
    return true
  }

  #closedError(what: string): ServerError {
    return new ServerError('ERR_CONNECTION_CLOSED', `${what}(): connection ${this.id} is ${this.#closed ? 'closed' : 'ending'}`)
  }

  #writeNow(bytes: Uint8Array): number {
    let n: number | null
    try {
      n = this.stream.write(bytes)
    } catch (err) {
      this.destroy(err as Error)
      return -1
    }
    if (n === null) return 0
    this.#host.stats[STAT_BYTES_OUT] = this.#host.stats[STAT_BYTES_OUT]! + n
    this.lastActive = this.#host.now
    return n
  }

  #consume(n: number): void {
    const queue = this.#queue
    let i = 0
    while (n > 0) {
      const head = queue[i]!
      if (head.length <= n) {
        n -= head.length
        i++
        // The last bytes of the oldest full tail are written: it is done.
        const full = this.#fullTails
        if (full !== undefined && head.buffer === full[0]!.buffer && head.byteOffset + head.length === full[0]!.length) {
          freeNow(full.shift()!)
          if (full.length === 0) this.#fullTails = undefined
        }
      } else {
        queue[i] = head.subarray(n)
        n = 0
      }
    }
    // Emptied by pop(), not `length = 0`: V8 drops the array's backing store
    // on `length = 0` and the next write grows a new one, ~150 bytes of
    // garbage per flush (at chat d, ~190 bytes per delivery: a scavenge
    // every 0.7 s); pop() keeps it.
    if (i === queue.length) while (queue.length > 0) queue.pop()
    else if (i > 0) queue.splice(0, i)
  }

  #markDirty(): void {
    if (this.#dirty) return
    this.#dirty = true
    this.#host.markDirty(this)
  }

  #sendFin(): void {
    // Idempotent: on connect, opened() may already have ended this side (a
    // pipe forwarding a quick EOF), and a second shutdown() of a connection
    // both sides already finished fails with ENOTCONN.
    if (this.#finSent) return
    this.#finSent = true
    // Both sides done: close() sends the FIN itself (after what the kernel
    // still holds), so the shutdown() call would be one syscall too many.
    // TLS first sends its close_notify (and what it still holds).
    if (this.#peerEnded && this.#tls === undefined) {
      this.destroy()
      return
    }
    try {
      this.stream.shutdown('write')
    } catch (err) {
      this.destroy(err as Error)
      return
    }
    if (this.#peerEnded && this.#tls!.pendingOutput === 0) this.destroy()
  }

  #onPeerEnd(): void {
    if (this.#peerEnded) return
    this.#peerEnded = true
    this.#host.peerEnded(this)
    if (this.#closed) return
    // (TLS: once its close_notify is out; see #flushTls.)
    if (this.#finSent) {
      if (this.#tls === undefined || this.#tls.pendingOutput === 0) this.destroy()
    }
    // A pipe's destination ends when its source does (the pipe forwards
    // it), not when its own peer stops sending.
    else if (!this.#host.allowHalfOpen && this.pipeIn === undefined) this.end()
  }

  #remoteInfo(): SocketAddress | undefined {
    if (this.#remote) return this.#remote
    const address = this.stream.remoteAddress
    if (address === undefined) return undefined
    this.#remote = { address, port: this.stream.remotePort!, family: this.stream.remoteFamily! }
    return this.#remote
  }
}

/**
 * Frees a write tail's memory now: its ArrayBuffer's store moves to a new,
 * young ArrayBuffer (the old one is detached), which the next scavenge
 * collects, instead of waiting for a full GC. Only for buffers nothing else
 * refers to.
 */
function freeNow(buffer: Buffer): void {
  structuredClone(buffer.buffer, { transfer: [buffer.buffer as ArrayBuffer] })
}

const TLS_CODES = new Set<unknown>([...TLS_ERROR_CODES, 'ERR_TLS_HANDSHAKE_TIMEOUT'])

function isTlsError(err: Error): boolean {
  return TLS_CODES.has((err as { code?: unknown }).code)
}
