/**
 * FIFO with O(1) push/shift, kept in segments of SEGMENT slots. `Array#shift`
 * is O(n) once an array leaves V8's fast path, and a reader can queue tens
 * of thousands of small frames in one `readFrom` (a 64 KiB read of 1-byte
 * lines is 32,768 of them). One growing array would reach V8's large-object
 * space (over 128 KiB), where each discarded copy stays until a full GC: a
 * flood of short lines grew the heap by ~1.5 MiB/s that way (issue 7,
 * flood-memory.mjs). Small segments die young and a scavenge takes them.
 */
const SEGMENT = 1024

export class Queue<T> {
  // Every segment is full but the last, filled up to `end`; the first is
  // taken from `first`. Emptied, the queue keeps its one segment.
  private segments: (T | undefined)[][] = []
  private first = 0
  private end = 0
  private count = 0

  get length(): number {
    return this.count
  }

  push(item: T): void {
    let last = this.segments[this.segments.length - 1]
    if (last === undefined || this.end === SEGMENT) {
      last = []
      this.segments.push(last)
      this.end = 0
    }
    last[this.end++] = item
    this.count++
  }

  /** The item `i` places from the front, or undefined. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined
    const j = this.first + i
    return this.segments[Math.floor(j / SEGMENT)]![j % SEGMENT]
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined
    const segment = this.segments[0]!
    const item = segment[this.first]
    // Drop the reference so a consumed frame can be collected.
    segment[this.first] = undefined
    this.first++
    this.count--
    if (this.count === 0) {
      this.first = 0
      this.end = 0
    } else if (this.first === SEGMENT) {
      this.segments.shift()
      this.first = 0
    }
    return item
  }
}
