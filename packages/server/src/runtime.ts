import { Interest, TcpStream, TlsStream, socketError, type ByteStream, type SenderHandle } from '@amy/core'
import type { Logger } from 'pino'
import type { AddressRelease } from './address-limit.js'
import { BatchLoop } from './batch-loop.js'
import { Connection, inboundInterest, type ConnectionHost } from './connection.js'
import { ServerError } from './errors.js'
import type { WorkerListeners } from './worker-listeners.js'
import type { Handler } from './handler-types.js'
import { HookCaller } from './hooks.js'
import { IdleTimers } from './idle-timers.js'
import { armConnectTimeout, ipLiteral, resolveThenConnect, unconnected } from './outbound.js'
import { Pipe, type PipeHost } from './pipe.js'
import { STAT, STAT_SLOTS } from './stats.js'
import { ClientContextCache, TlsContextCache, type ConnectTlsOptions } from './tls.js'
import { RuntimeContext, type ContextHost } from './worker-context.js'
import { WorkerPubSub, type PubSubLoop } from './worker-pubsub.js'
import { WriteTails } from './write-tails.js'

export interface RuntimeOptions {
  highWaterMark: number
  maxBufferedBytes: number
  /** 0: none. */
  maxBufferedBytesTotal: number
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

// An async function's `bytes` must outlive the read buffer (see Handler.data).
const isAsyncFunction = (fn: unknown): boolean => Object.prototype.toString.call(fn) === '[object AsyncFunction]'

const READ_BUFFER_SIZE = 64 * 1024
const INBOX_BATCH = 256

/**
 * Serves the connections of one worker thread: the batch loop it extends
 * (batch-loop.ts), its pub/sub (worker-pubsub.ts) and its idle timers
 * (idle-timers.ts) and its handler's hooks (hooks.ts), plus what happens to a connection — taken from the
 * acceptor or connected out, its bytes given to the handler or a pipe, its
 * hooks called, closed — and the worker's shutdown.
 */
export class WorkerRuntime extends BatchLoop implements ConnectionHost, ContextHost, PipeHost, PubSubLoop {
  readonly readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE)
  readonly #readMemory = this.readBuffer.buffer
  // The last view readView() made, reused while reads keep the same length
  // (churn and echo). perf, churn: a new view per read (Builtins_CreateTypedArray)
  // and write()'s two `.buffer` loads (a C++ builtin call each) were ~1.5%
  // of a worker; the handler writing back the view it got is now known by
  // identity.
  #readView = this.readBuffer.subarray(0, 0)
  readonly writeTails = new WriteTails()
  readonly highWaterMark: number
  readonly maxBufferedBytes: number
  readonly maxBufferedBytesTotal: number
  readonly allowHalfOpen: boolean
  readonly stats: Float64Array
  /** @internal (PipeHost) Pipes of this worker holding a grown kernel pipe. */
  grownPipes = 0
  readonly context: RuntimeContext
  readonly log: Logger
  readonly pubsub: WorkerPubSub
  /** The connection whose `data` hook is running (pub/sub pauses it when peers are behind). */
  publishing: Connection | undefined

  readonly #inboxId: number
  /** Every worker's counters (this worker's `stats` is one row of them). */
  readonly #allStats: Float64Array
  readonly #handler: Handler
  readonly #copyData: boolean
  readonly #hooks: HookCaller
  readonly #idle: IdleTimers
  readonly #fds = new Int32Array(INBOX_BATCH)
  readonly #tags = new Float64Array(INBOX_BATCH)
  readonly #tlsContexts = new TlsContextCache()
  readonly #clientContexts = new ClientContextCache()
  #closing: (() => void) | undefined
  /** balance 'reuseport': this worker's own listeners (set by worker-entry). */
  listeners: WorkerListeners | undefined

  constructor(handler: Handler, options: RuntimeOptions, stats: Float64Array, logger: Logger, identity: WorkerIdentity) {
    super()
    this.#handler = handler
    this.#copyData = isAsyncFunction(handler.data)
    this.#hooks = new HookCaller(handler, logger)
    this.highWaterMark = options.highWaterMark
    this.maxBufferedBytes = options.maxBufferedBytes
    this.maxBufferedBytesTotal = options.maxBufferedBytesTotal
    this.allowHalfOpen = options.allowHalfOpen
    this.stats = stats
    this.#allStats = new Float64Array(stats.buffer)
    this.log = logger
    this.#inboxId = this.poller.openFdInbox()
    this.pubsub = new WorkerPubSub(this, this.poller.registrar, stats, logger)
    this.#idle = new IdleTimers(this.poller.registrar, options.idleTimeout, options.firstDataTimeout, this.#timedOut)
    this.context = new RuntimeContext(this, this.pubsub, identity.worker, identity.threads, identity.data, logger)
  }

  /** Set by worker-entry: sends context.postMessage's message to the main thread. */
  toMain: ((message: unknown) => void) | undefined
  /** Set by worker-entry with maxConnectionsPerAddress: gives each client address's count back on close. */
  addressRelease: AddressRelease | undefined

  /**
   * Sums every worker's queue cost from shared memory (another worker's
   * figure may be one update old). Asked only by a connection that is
   * behind, on a write, when maxBufferedBytesTotal is set.
   */
  overBufferedTotal(): boolean {
    const all = this.#allStats
    let total = 0
    for (let i = STAT.bufferedBytes; i < all.length; i += STAT_SLOTS) total += all[i]!
    return total > this.maxBufferedBytesTotal
  }

  readView(n: number): Buffer {
    const view = this.#readView
    return view.length === n ? view : (this.#readView = this.readBuffer.subarray(0, n))
  }

  inReadBuffer(bytes: Uint8Array): boolean {
    return bytes === this.#readView || bytes.buffer === this.#readMemory
  }

  /** The open connection with this id on this worker (server.send/destroy). */
  find(id: number): Connection | undefined {
    return this.conns.get(id)
  }

  postMessage(message: unknown): void {
    if (this.toMain === undefined) throw new ServerError('ERR_NOT_IN_WORKER', 'postMessage(): this worker has no link to the main thread')
    this.toMain(message)
  }

  get registrarHandle() {
    return this.poller.registrar.handle
  }

  get pubsubHandle(): SenderHandle {
    return this.pubsub.handle
  }

  get connections(): number {
    return this.conns.size
  }

  // ---- BatchLoop -----------------------------------------------------------

  protected signalled(id: number): void {
    if (id === this.#inboxId) this.#takeConnections()
    else if (id === this.pubsub.channelId) this.pubsub.receive()
    else if (id === this.#idle.timerId) this.#idle.check(this.conns.values(), this.now)
    else this.listeners?.accept(id)
  }

  protected flushOutbox(): void {
    this.pubsub.flushOutbox()
  }

  // ---- ConnectionHost ------------------------------------------------------

  get closeSeesErrors(): boolean {
    return this.#handler.close !== undefined
  }

  watchWritable(conn: Connection): void {
    try {
      this.poller.registrar.reregister(conn.id, conn.stream, Interest.Both)
    } catch (err) {
      conn.destroy(err as Error)
    }
  }

  watchIdle(): void {
    this.#idle.watch()
  }

  subscribe(conn: Connection, topic: string): void {
    this.pubsub.subscribe(conn, topic)
  }

  unsubscribe(conn: Connection, topic: string): void {
    this.pubsub.unsubscribe(conn, topic)
  }

  opened(conn: Connection): void {
    this.stats[STAT.connections] = this.stats[STAT.connections]! + 1
    if (!conn.outbound) this.stats[STAT.inbound] = this.stats[STAT.inbound]! + 1
    this.stats[STAT.opened] = this.stats[STAT.opened]! + 1
    this.#idle.opened(conn, this.now)
    this.#hooks.call(conn, 'open')
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
    this.publishing = conn
    try {
      result = data.call(this.#handler, conn, this.#copyData ? Buffer.from(bytes) : bytes)
    } catch (err) {
      this.#hooks.failed(conn, 'data', err)
      return
    } finally {
      this.publishing = undefined
    }
    // The synchronous path costs one comparison.
    if (result !== undefined && typeof result.then === 'function') this.#hooks.pending(conn, 'data', result)
  }

  peerEnded(conn: Connection): void {
    if (conn.pipeOut !== undefined) {
      conn.pipeOut.sourceEnded()
      return
    }
    this.#hooks.call(conn, 'end')
  }

  drained(conn: Connection): void {
    // A pipe's source paused (or, spliced, held back) until this drain.
    conn.pipeIn?.targetDrained()
    this.#hooks.call(conn, 'drain')
  }

  closed(conn: Connection, err: Error | number | undefined): void {
    this.conns.delete(conn.id)
    const opened = !conn.connecting
    if (conn.topics) this.pubsub.unsubscribeAll(conn, conn.topics)
    if (conn.addressSlot >= 0) this.addressRelease?.release(conn.addressSlot)
    if (opened) {
      if (!conn.outbound) this.stats[STAT.inbound] = this.stats[STAT.inbound]! - 1
      this.stats[STAT.connections] = this.stats[STAT.connections]! - 1
      this.stats[STAT.closed] = this.stats[STAT.closed]! + 1
    }
    if (err) this.stats[STAT.errors] = this.stats[STAT.errors]! + 1
    if (!opened && !conn.outbound) {
      // A TLS client that never finished its handshake: the handler never
      // saw it, so no close hook; the count (tlsFailures) and this line tell.
      if (err) this.log.debug({ conn: conn.id, err: typeof err === 'number' ? socketError(err) : err, remoteAddress: conn.remoteAddress }, 'TLS handshake failed')
      if (this.#closing && this.conns.size === 0) this.#closing()
      return
    }
    const target = conn.pipeOut?.target
    if (target !== undefined && !target.closed) {
      // The other side of a pipe: flush what it has, then end it.
      if (err) target.destroy()
      else target.end()
    }
    const source = conn.pipeIn?.source
    if (source !== undefined && source !== target && !source.closed) source.destroy()
    this.#hooks.close(conn, err)
    if (this.#closing && this.conns.size === 0) this.#closing()
  }

  #takeConnections(): void {
    const fds = this.#fds
    const tags = this.#tags
    for (let n = this.poller.takeFds(fds, tags); n > 0; n = this.poller.takeFds(fds, tags)) {
      for (let i = 0; i < n; i++) this.adopt(fds[i]!, this.addressRelease?.slotOf(fds[i]!) ?? -1, tags[i]!)
    }
  }

  /**
   * Serves an accepted connection's fd (non-blocking, from the acceptor);
   * `addressSlot`: its per-address counter, or -1; `tlsContextId`: its
   * listener's TLS context (the hand-off's tag), 0 for plain TCP.
   */
  readonly adopt = (fd: number, addressSlot = -1, tlsContextId = 0): void => {
    this.#serve(TcpStream.fromFd(fd, { adopt: false }), 0, addressSlot, tlsContextId)
  }

  /** balance 'reuseport': serves a connection this worker's listener accepted and registered under `id` (WorkerListeners). */
  readonly adoptRegistered = (fd: number, id: number, tlsContextId: number): void => {
    this.#serve(TcpStream.registered(fd, this.poller.registrar, id), id, -1, tlsContextId)
  }

  /** `id`: the socket's registration, or 0 to register it now. */
  #serve(tcp: TcpStream, id: number, addressSlot: number, tlsContextId: number): void {
    const stream = this.#closing ? undefined : tlsContextId === 0 ? tcp : this.#serverTls(tcp, tlsContextId)
    if (stream === undefined) {
      tcp.close() // deregisters it first if it was registered
      if (addressSlot >= 0) this.addressRelease?.release(addressSlot)
      return
    }
    const conn = new Connection(this, id !== 0 ? id : this.poller.registrar.register(stream, inboundInterest(stream !== tcp)), stream, false)
    conn.addressSlot = addressSlot
    this.conns.set(conn.id, conn)
    // TLS: opened (the open hook, the counters) once its handshake is done.
    if (stream === tcp) this.opened(conn)
    else this.#idle.handshaking(conn, this.#tlsContexts.get(tlsContextId).handshakeTimeout, this.now)
  }

  /** The server side of a TLS listener's connection; undefined (counted) if its context is gone. */
  #serverTls(tcp: TcpStream, contextId: number): TlsStream | undefined {
    try {
      return TlsStream.server(tcp, this.#tlsContexts.get(contextId))
    } catch (err) {
      this.stats[STAT.tlsFailures] = this.stats[STAT.tlsFailures]! + 1
      this.log.error({ err }, "TLS connection dropped: its listener's context is gone")
      return undefined
    }
  }

  // ---- outbound connections and pipes --------------------------------------

  /** @internal use context.connect(). A host name is resolved first (outbound.ts); timeoutMs 0: none. */
  connect(host: string, port: number, timeoutMs = 0, tls?: ConnectTlsOptions | true): Connection {
    if (this.#closing) throw new ServerError('ERR_SERVER_CLOSED', 'the server is closing')
    const registrar = this.poller.registrar
    const ip = ipLiteral(host)
    // Bad tls options throw here, before any socket exists.
    const secure = tls === undefined ? undefined : this.#clientContexts.get(tls, ip ?? host)
    const wrap = (tcp: TcpStream): ByteStream => (secure === undefined ? tcp : TlsStream.client(tcp, secure.context, { servername: secure.servername }))
    let conn: Connection
    if (ip !== undefined) {
      const tcp = TcpStream.connect({ host: ip, port })
      let stream: ByteStream
      try {
        stream = wrap(tcp)
      } catch (err) {
        tcp.close()
        throw err
      }
      conn = new Connection(this, registrar.register(stream, Interest.Both), stream, true)
    } else {
      const id = registrar.reserveId()
      conn = new Connection(this, id, unconnected(), true)
      resolveThenConnect(conn, host, port, tcp => {
        const stream = wrap(tcp)
        registrar.register(stream, Interest.Both, id)
        return stream
      })
    }
    this.conns.set(conn.id, conn)
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
    // A spliced pass that fills the target waits for its writable edge.
    to.watchWritable()
    // Bytes may already wait in the source: no new edge would announce them.
    this.scheduleRead(from)
  }

  /** An idle connection: its `timeout` hook runs; false when the handler has none. */
  readonly #timedOut = (conn: Connection): boolean => {
    if (!this.#handler.timeout) return false
    this.#hooks.call(conn, 'timeout')
    return true
  }

  // ---- shutdown ------------------------------------------------------------

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
      this.listeners?.close()
      if (force) {
        for (const conn of [...this.conns.values()]) conn.destroy()
      } else {
        for (const conn of [...this.conns.values()]) {
          // A TLS client still in its handshake was never handed to the handler.
          if (conn.connecting && !conn.outbound) {
            conn.destroy()
            continue
          }
          conn.resume() // read (and drop) to the peer's end; see deliver()
          conn.endAfterHook() // a pending hook's writes are still delivered
        }
        timer = setTimeout(() => {
          for (const conn of [...this.conns.values()]) conn.destroy()
        }, timeoutMs)
      }
      if (this.conns.size === 0) done()
    })
  }
}
