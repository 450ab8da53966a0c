/** The size of a write tail (connection.ts), and of a topic feed's first buffer (topic-feed.ts). */
export const WRITE_TAIL_BYTES = 16 * 1024
/** Free tails kept per worker (16 MiB); more go to the garbage collector. */
const FREE_TAILS_MAX = 1024

/** A worker's free 16 KiB buffers: the write tails of its connections and the feeds of its topics. */
export class WriteTails {
  readonly #free: Buffer[] = []

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(WRITE_TAIL_BYTES)
  }

  /** Back to the free list (nothing may refer to it any more); other sizes are dropped. */
  give(buffer: Buffer): void {
    if (buffer.length === WRITE_TAIL_BYTES && this.#free.length < FREE_TAILS_MAX) this.#free.push(buffer)
  }
}
