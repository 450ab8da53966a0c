import { SplicePipe, spliceSupported, type TcpStream } from '@amy/core'
import type { Connection } from './connection.js'
import { STAT } from './stats.js'

// As the C splice proxy in the benchmarks: fewer, larger splices for bulk.
const SPLICE_PIPE_SIZE = 256 * 1024
// A pipe that has proven bulk (one pass took at least its whole capacity)
// swaps its kernel pipe for one of this size at the next pass that leaves
// it empty: half the splice calls per MB (10.3 against 20.1) and
// 1.05-1.22x MB per proxy CPU-second against the 256 KiB pipe, loaded
// (docs/benchmarks.md, "Where proxy time goes"). Not from the start: every pipe's size counts against the
// user's pipe pages (fs.pipe-user-pages-soft, 64 MiB: past it Linux gives
// unprivileged processes 8 KiB pipes), and a grown pipe holds up to 1 MiB
// per direction behind a slow reader; hence also the cap per worker.
const SPLICE_BULK_PIPE_SIZE = 1 << 20
export const MAX_GROWN_PIPES = 16
// Per pump call, for fairness between connections of one worker (about
// 2-3 ms of splicing; a turn's read budget is 10 ms). Not 1 MiB: fewer
// packets go out on the proxy's threads per MB. (The likely reason: a pass
// that stops while the source still has bytes lets its receive window
// close, and the next pass's reads send window updates that run the
// sender's queued transmissions, and their loopback delivery, on this
// thread.) With 4 MiB the proxy example ran 27 packets per MB in its own
// threads instead of 39-47, and 1.20-1.41x MB per proxy CPU-second; the CPU
// of proxy + client + upstream together did not change (docs/benchmarks.md,
// "Where proxy time goes").
const SPLICE_MAX_BYTES = 4 << 20
// A pipe copies through the read buffer while reads come back short (two
// syscalls per direction per message, like recv/send proxies) and splices
// once a read fills the buffer (bulk: no copies). splice costs three calls
// per direction for a small message, so it only pays for bulk. It returns
// to copying after SMALL_PASSES_TO_COPY passes in a row, each on the
// source's readable edge, moved less than SPLICE_BACK_TO_COPY and left
// nothing. A pass on the target's edge (it drained) says nothing about the
// source's rate: in bulk, most such passes find the source momentarily
// empty, and each return to copying cost a 64 KiB read and write before
// the next full read switched back (measured: 482 of 496 returns in 2 GB
// through the proxy example moved 0 bytes). Nor does one short edge (the
// tail of a 64 KiB write over loopback's 65483-byte MSS is 53 bytes).
const SPLICE_BACK_TO_COPY = 16 * 1024
const SMALL_PASSES_TO_COPY = 4

/** What a Pipe needs from the worker that owns both connections. */
export interface PipeHost {
  readonly stats: Float64Array
  /** Coarse clock (ms). */
  readonly now: number
  /** Runs `pipe.pump()` on a later turn (the budget of one pump was used). */
  schedulePump(pipe: Pipe): void
  /** The worker's pipes holding a grown (SPLICE_BULK_PIPE_SIZE) kernel pipe; at most MAX_GROWN_PIPES. */
  grownPipes: number
}

/**
 * One direction of `conn.pipe(to)`: the source's bytes go to the target
 * instead of the handler's `data`, with backpressure, and the source's end
 * of stream ends the target. The state machine lives here, nowhere else:
 *
 * - **copy** (start): the source reads into the worker's buffer as usual
 *   and `forward()` writes to the target; a full target pauses the source
 *   until `targetDrained()`.
 * - **splice** (Linux, both ends plain TCP): a read that fills the buffer
 *   means bulk, so the source's readable edges `pump()` socket -> kernel
 *   pipe -> socket instead; a few short passes in a row on the source's
 *   edge return it to copy.
 *   The end of stream is forwarded only once the kernel pipe is empty.
 *
 * The connections call the hooks below; each keeps one reference
 * (`pipeOut` on the source, `pipeIn` on the target).
 */
export class Pipe {
  readonly source: Connection
  readonly target: Connection
  readonly #host: PipeHost
  readonly #canSplice: boolean
  /** Both ends plain TCP: the copy path may relay (one native call per read). */
  readonly #plain: boolean
  /** The kernel pipe, held only while splicing (see #startSplicing). */
  #splice: SplicePipe | undefined
  #splicing = false
  #eofPending = false
  /** Source-edge passes in a row that found the source nearly empty. */
  #smallPasses = 0
  /** A pass took the kernel pipe's whole capacity: grow it once it is empty. */
  #bulk = false
  /** Growing was tried in this splicing spell (once: a refusal stands). */
  #growTried = false
  /** The kernel pipe is a grown one (counted in host.grownPipes). */
  #grown = false

  constructor(source: Connection, target: Connection, host: PipeHost, canSplice: boolean) {
    this.source = source
    this.target = target
    this.#host = host
    this.#plain = canSplice
    this.#canSplice = spliceSupported && canSplice
  }

  /** Bulk mode: the source's readable edges pump() instead of read. */
  get splicing(): boolean {
    return this.#splicing
  }

  /** Copy mode: the source read `bytes`; `full` when the read filled its buffer. */
  forward(bytes: Buffer, full: boolean): void {
    const target = this.target
    if (target.closed || target.ending) return
    const accepted = target.write(bytes)
    // A full read means bulk: splice from now on (its pump waits for the
    // target's queue itself, so the source is not paused).
    if (full && this.#startSplicing()) return
    if (!accepted) this.source.pause() // resumed when the target drains
  }

  /**
   * Copy mode's fast path: the target's stream when the source's next read
   * can go straight to it in the same native call (TcpStream.relay): both
   * plain TCP, the target open, not ending, nothing queued before it (order)
   * and no published bytes owed to it. Undefined: read, then forward().
   * (perf, 64 B through the proxy example: the generic read + write() path
   * spent its user time in the second Node-API call, two `.buffer` reads
   * and a subarray per message.)
   */
  relayTarget(): TcpStream | undefined {
    const target = this.target
    if (!this.#plain || target.bufferedBytes > 0 || target.connecting || target.closed || target.ending || target.feed !== undefined) return undefined
    return target.stream as TcpStream
  }

  /**
   * A relay read `n` bytes into `buf` and the target took all but the last
   * `unsent`: those are queued; a full read switches to splicing, as in
   * forward().
   */
  relayed(buf: Buffer, n: number, unsent: number): void {
    const target = this.target
    const host = this.#host
    host.stats[STAT.bytesOut] = host.stats[STAT.bytesOut]! + n - unsent
    target.lastActive = host.now
    const accepted = unsent === 0 || target.write(buf.subarray(n - unsent, n))
    if (n === buf.length && this.#startSplicing()) return
    if (!accepted) this.source.pause()
  }

  /**
   * Takes a kernel pipe for splicing. Made here, not with the Pipe, and
   * closed when copying resumes: a pipe costs two fds and its pages count
   * against the user's pipe limit (fs.pipe-user-pages-soft: 64 MiB, 256 of
   * these 256 KiB pipes; past it, Linux gives unprivileged processes 8 KiB
   * pipes), so only connections moving bulk hold one, not every proxied
   * connection. False (keep copying) if none can be made now (EMFILE).
   */
  #startSplicing(): boolean {
    if (!this.#canSplice) return false
    try {
      this.#splice ??= new SplicePipe({ capacity: SPLICE_PIPE_SIZE })
    } catch {
      return false
    }
    this.#splicing = true
    return true
  }

  /** The source's peer ended: forward the half-close. */
  sourceEnded(): void {
    if (!this.target.closed) this.target.end()
  }

  /** The source's readable edge while splicing: pump, and count how much came. */
  sourceReadable(): void {
    this.#pump(true)
  }

  /**
   * Moves the source's bytes into the target, in the kernel, on no edge of
   * the source's: the target connected, became writable, drained or emptied
   * its queue, or a pass used up its budget.
   */
  pump(): void {
    this.#pump(false)
  }

  #pump(sourceEdge: boolean): void {
    const { source, target } = this
    const pipe = this.#splice
    // Not splicing: a pump scheduled while it spliced, run after the pipe
    // went back to copying. It must not splice: bytes it left in the kernel
    // pipe would be overtaken by the ones the copy path writes next.
    if (pipe === undefined || !this.#splicing || source.closed) return
    // Bytes the target queued in JavaScript go first; its drain pumps again.
    if (target.closed || target.connecting || target.bufferedBytes > 0) return
    let result
    try {
      result = pipe.buffered > 0 ? pipe.flush(target.stream) : undefined
      if (result === undefined || (result.buffered === 0 && !this.#eofPending)) {
        result = pipe.transfer(source.stream, target.stream, SPLICE_MAX_BYTES)
      }
    } catch (err) {
      source.destroy(err as Error)
      return
    }
    const host = this.#host
    host.stats[STAT.bytesIn] = host.stats[STAT.bytesIn]! + result.movedIn
    host.stats[STAT.bytesOut] = host.stats[STAT.bytesOut]! + result.movedOut
    if (result.movedIn > 0) source.lastActive = host.now
    if (result.movedOut > 0) target.lastActive = host.now
    if (result.sourceEof) this.#eofPending = true
    if (this.#eofPending) {
      // Forward the end only once the pipe has delivered everything.
      if (result.buffered === 0) {
        this.#eofPending = false
        this.#splicing = false
        this.#dropSplice()
        source.endOfStream()
      }
      return
    }
    if (!result.sourceDrained && !result.destBlocked) {
      host.schedulePump(this) // budget used up; no edge will come for the rest
    }
    if (result.movedIn >= SPLICE_BACK_TO_COPY) this.#smallPasses = 0
    else if (sourceEdge && result.sourceDrained && result.buffered === 0 && ++this.#smallPasses >= SMALL_PASSES_TO_COPY) {
      this.#smallPasses = 0
      this.#splicing = false // small again: copying is cheaper
      this.#dropSplice() // empty (buffered 0); the next full read takes a new one
      source.resume()
      return
    }
    if (!this.#growTried && result.movedIn >= pipe.capacity) this.#bulk = true
    if (this.#bulk && result.buffered === 0) this.#grow(pipe)
  }

  /**
   * Swaps the empty kernel pipe for a SPLICE_BULK_PIPE_SIZE one (once per
   * splicing spell). Keeps the old one if the worker has its share of grown
   * pipes, or if the kernel refuses (past the user's pipe pages it grants
   * only the default size).
   */
  #grow(pipe: SplicePipe): void {
    this.#bulk = false
    this.#growTried = true
    const host = this.#host
    if (host.grownPipes >= MAX_GROWN_PIPES) return
    let bigger: SplicePipe
    try {
      bigger = new SplicePipe({ capacity: SPLICE_BULK_PIPE_SIZE })
    } catch {
      return // EMFILE: the current pipe serves
    }
    if (bigger.capacity <= pipe.capacity) {
      bigger.close()
      return
    }
    pipe.close()
    this.#splice = bigger
    this.#grown = true
    host.grownPipes++
  }

  /** Closes the kernel pipe (it is empty, or its bytes are dropped with the source). */
  #dropSplice(): void {
    this.#splice?.close()
    this.#splice = undefined
    this.#bulk = false
    this.#growTried = false
    if (this.#grown) {
      this.#grown = false
      this.#host.grownPipes--
    }
  }

  /** The kernel pipe's capacity in bytes (0: none held). */
  get spliceCapacity(): number {
    return this.#splice?.capacity ?? 0
  }

  /** The target connected: a spliced source has bytes no new edge will announce. */
  targetOpened(): void {
    if (this.#splicing && !this.source.closed) this.pump()
  }

  /** The target is writable with nothing queued in JavaScript. */
  targetWritableIdle(): void {
    if (this.#splice !== undefined && this.#splice.buffered > 0) this.pump()
  }

  /** The target's queue went below the high-water mark. */
  targetDrained(): void {
    if (this.#splicing) this.pump()
    else this.source.resume()
  }

  /** The target's queue emptied (a spliced source waits for it: order). */
  targetFlushed(): void {
    if (this.#splicing) this.pump()
  }

  /** The source is destroyed: the kernel pipe's fds go with it. */
  close(): void {
    this.#dropSplice()
    this.#splicing = false
  }
}
