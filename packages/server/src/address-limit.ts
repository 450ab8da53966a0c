// The per-address connection limit (`maxConnectionsPerAddress`), counted in
// shared memory so that a worker gives a count back on close without a
// message:
//
//   acceptor (main thread)                      worker w
//   ──────────────────────                      ────────
//   acceptFds(fds, hosts): host key per fd      (accept's own address: no getpeername)
//   slot = hash(key) % ADDRESS_SLOTS
//   Σ_w counts[w][slot] >= max ─▶ closed at once, counted, logged once per 10 s
//   else counts[w][slot] += 1 (Atomics), fdSlot[fd] = slot + 1, hand over
//                                               take fd: slot = fdSlot[fd] - 1
//                                               close:   counts[w][slot] -= 1 (Atomics)
//
// One row of counters per worker: the acceptor adds to it, only that
// worker takes away. A worker that dies loses all its connections at once,
// and its row is zeroed, so a crash leaks no count.
//
// Collisions: addresses whose keys hash to the same slot share one count
// (ADDRESS_SLOTS = 65536; with 1,000 addresses connected, an address shares
// its slot with another about 1.5% of the time). Such an address can be
// refused before it holds `max` connections itself; none is ever admitted
// past its own limit. IPv6 addresses count each /128 apart (a host that
// rotates through its /64 is not limited as one).

import { TcpStream } from '@amy/core'
import type { BaseLogger as Logger } from 'pino'

/** Count slots per worker (a power of two). */
export const ADDRESS_SLOTS = 1 << 16
// fd → slot + 1. Linux caps fd numbers below nr_open (1,048,576 by
// default); an fd past the table is not counted. Its pages are committed
// only where fds land (low numbers), so the 4 MiB costs a few KiB.
const FD_SLOTS = 1 << 20
const LOG_EVERY_MS = 10_000

/** What crosses to each worker (structured clone shares the memory). */
export interface AddressLimitBuffers {
  counts: SharedArrayBuffer
  fdSlots: SharedArrayBuffer
}

/** A host key (from acceptFds) to its count slot: Fibonacci hashing, so consecutive IPv4 addresses spread. */
function slotOf(hostKey: number): number {
  return Math.imul(hostKey, 0x9e3779b1) >>> 16
}

/** The main thread's side: decides, counts up, zeroes a dead worker's row. */
export class AddressLimit {
  readonly buffers: AddressLimitBuffers
  readonly #counts: Int32Array
  readonly #fdSlots: Int32Array
  /** Connections closed at once because their address held `max` already. */
  refused = 0
  #refusedSinceLog = 0
  #lastLog = -Infinity

  constructor(
    readonly max: number,
    readonly threads: number,
    readonly logger: Logger,
  ) {
    this.buffers = {
      counts: new SharedArrayBuffer(threads * ADDRESS_SLOTS * 4),
      fdSlots: new SharedArrayBuffer(FD_SLOTS * 4),
    }
    this.#counts = new Int32Array(this.buffers.counts)
    this.#fdSlots = new Int32Array(this.buffers.fdSlots)
  }

  /** The count slot of `hostKey` if it may open one more connection, else -1 (the caller refuses it). */
  admit(hostKey: number): number {
    const slot = slotOf(hostKey)
    let open = 0
    for (let w = 0, i = slot; w < this.threads; w++, i += ADDRESS_SLOTS) open += this.#counts[i]!
    return open < this.max ? slot : -1
  }

  /** The connection on `fd` goes to `worker`: counted there (slot -1: a connection with no address, not counted). */
  handedTo(worker: number, fd: number, slot: number): void {
    if (fd >= FD_SLOTS) return
    this.#fdSlots[fd] = slot + 1
    if (slot >= 0) Atomics.add(this.#counts, worker * ADDRESS_SLOTS + slot, 1)
  }

  /** The hand-off of `fd` failed (the worker died): the fd is closed here, so its count goes. */
  handOffFailed(worker: number, fd: number): void {
    if (fd >= FD_SLOTS) return
    const slot = this.#fdSlots[fd]! - 1
    this.#fdSlots[fd] = 0
    if (slot >= 0) Atomics.sub(this.#counts, worker * ADDRESS_SLOTS + slot, 1)
  }

  /** Closes a refused connection; one log line per interval says how many and the latest address. */
  refuse(fd: number): void {
    this.refused++
    this.#refusedSinceLog++
    const stream = TcpStream.fromFd(fd, { adopt: false })
    const now = performance.now()
    if (now - this.#lastLog >= LOG_EVERY_MS) {
      this.#lastLog = now
      // getpeername only here, for the one refusal logged per interval.
      this.logger.warn({ address: stream.remoteAddress, refused: this.#refusedSinceLog, maxConnectionsPerAddress: this.max }, 'connections refused: per-address limit reached')
      this.#refusedSinceLog = 0
    }
    stream.close()
  }

  /** A worker died: every connection it held is closed, so its row starts from zero for its replacement. */
  workerDied(worker: number): void {
    this.#counts.fill(0, worker * ADDRESS_SLOTS, (worker + 1) * ADDRESS_SLOTS)
  }
}

/** The worker's side: learns each taken fd's slot, gives the count back on close. */
export class AddressRelease {
  readonly #row: Int32Array
  readonly #fdSlots: Int32Array

  constructor(buffers: AddressLimitBuffers, worker: number) {
    this.#row = new Int32Array(buffers.counts, worker * ADDRESS_SLOTS * 4, ADDRESS_SLOTS)
    this.#fdSlots = new Int32Array(buffers.fdSlots)
  }

  /** The count slot of a connection just taken from the inbox (-1: not counted). */
  slotOf(fd: number): number {
    return fd < this.#fdSlots.length ? this.#fdSlots[fd]! - 1 : -1
  }

  /** The connection closed. */
  release(slot: number): void {
    Atomics.sub(this.#row, slot, 1)
  }
}
