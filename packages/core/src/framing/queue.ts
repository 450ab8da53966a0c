/**
 * FIFO with O(1) amortised push/shift. `Array#shift` is O(n) once an array
 * leaves V8's fast path, and a reader can queue thousands of small frames in
 * one `readFrom`, so keep a head index and compact only occasionally.
 */
export class Queue<T> {
  private items: (T | undefined)[] = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  /** The item `i` places from the front, or undefined. */
  at(i: number): T | undefined {
    return this.items[this.head + i]
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    // Drop the reference so a consumed frame can be collected.
    this.items[this.head] = undefined
    this.head++
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }
}
