import { writeMany, writeManyError } from '@amy/core'
import type { Connection } from './connection.js'
import { WRITE_TAIL_BYTES, type WriteTails } from './write-tails.js'

/**
 * A topic's feed: the messages published on it during one turn, copied
 * once, back to back. A member subscribed to this topic only is not written
 * per message: it keeps a cursor into the feed (`Connection.feedFrom`, and
 * `feedSkips`: the ranges of its own messages, which it is not sent), and at
 * the end of the turn gets what it is owed as one view (two around its own
 * message) and one write: a publish costs one copy into the feed whatever
 * the room's size, not one copy and one call per member. The C chat server
 * copies each line into each member's buffer; this does not even do that.
 *
 * A member that is written to otherwise (a direct write, `end()`, another
 * subscription) first catches up: what it is owed is copied into its queue,
 * so its bytes keep the order in which they were written. Members with more
 * than one topic are written per message (`eager`): the order between
 * their topics' messages is the order of publishing.
 */
export class TopicFeed {
  /** Members subscribed to this topic only: owed a range of the feed. */
  readonly lazy = new Set<Connection>()
  /** Members with other topics too: each message is queued to them as it is published. */
  readonly eager = new Set<Connection>()
  /** This turn's messages [0, end); undefined when there are none. */
  bytes: Buffer | undefined
  end = 0
  /** Listed in the pub/sub's feeds to settle at the end of the turn. */
  listed = false

  get size(): number {
    return this.lazy.size + this.eager.size
  }
}

/** A feed's first buffer is a free write tail; it grows (copying) up to this, then is settled and starts again. */
export const FEED_MAX_BYTES = 256 * 1024
/** Larger messages are not copied into the feed: settled, then queued to each member as they are. */
export const FEED_MESSAGE_MAX_BYTES = 8 * 1024

/** Room for `length` more bytes in the feed; false when it is full (settle it first). */
export function reserve(feed: TopicFeed, length: number, tails: WriteTails): boolean {
  const bytes = feed.bytes
  const needed = feed.end + length
  if (bytes === undefined) {
    feed.bytes = needed <= WRITE_TAIL_BYTES ? tails.take() : Buffer.allocUnsafeSlow(needed)
    feed.end = 0
    return true
  }
  if (needed <= bytes.length) return true
  if (needed > FEED_MAX_BYTES) return false
  // No view of the feed lives outside a settle: it can move.
  const grown = Buffer.allocUnsafeSlow(Math.min(FEED_MAX_BYTES, Math.max(needed, bytes.length * 2)))
  grown.set(bytes.subarray(0, feed.end))
  tails.give(bytes)
  feed.bytes = grown
  return true
}

/** The member is sent none of [start, end): its own message. */
export function skipOwn(conn: Connection, start: number, end: number): void {
  const skips = conn.feedSkips
  if (skips === undefined) {
    if (conn.feedFrom === start) conn.feedFrom = end
    else conn.feedSkips = [start, end]
  } else if (skips[skips.length - 1] === start) skips[skips.length - 1] = end
  else skips.push(start, end)
}

/** The runs of the feed `conn` is owed, in order, into `out`; resets its cursor to the feed's end. Runs no handler code. */
function owed(feed: TopicFeed, conn: Connection, out: Buffer[]): void {
  const bytes = feed.bytes
  let from = conn.feedFrom
  const skips = conn.feedSkips
  conn.feedFrom = feed.end
  conn.feedSkips = undefined
  if (bytes === undefined) return
  if (skips !== undefined) {
    for (let i = 0; i < skips.length; i += 2) {
      if (skips[i]! > from) out.push(bytes.subarray(from, skips[i]))
      from = skips[i + 1]!
    }
  }
  if (feed.end > from) out.push(bytes.subarray(from, feed.end))
}

/**
 * Before any other write to a member of `feed` (it is `conn.feed`): what
 * it is owed so far is copied (the feed is reused) and queued, in order.
 */
export function catchUp(feed: TopicFeed, conn: Connection): void {
  if (feed.end <= conn.feedFrom) {
    conn.feedSkips = undefined
    return
  }
  const views: Buffer[] = []
  owed(feed, conn, views)
  if (views.length === 0) return
  // Copied before the connection runs anything that could publish to this feed.
  conn.writePublished(views.length === 1 ? Buffer.from(views[0]!) : Buffer.concat(views))
}

// Views of one member during settle's first pass (which runs no handler code: never re-entered).
const scratch: Buffer[] = []
// Lists of the members written by a settle, reused (one settle per published
// turn would otherwise grow a new one: ~2 KiB of garbage for 99 members).
// More than one is in use when a hook run by settle's second pass publishes
// and a nested settle runs.
const writtenLists: Connection[][] = []

/** Members sent the feed's bytes in one native call (writeMany), their fds and what each took; reused as writtenLists. */
interface DirectSends {
  conns: Connection[]
  fds: Int32Array
  results: Int32Array
}
const directLists: DirectSends[] = []

/**
 * The end of a turn (or a full feed): every member is written what it is
 * owed. In two passes: first every member's views are queued and the feed
 * is emptied, with no handler code running (a member owed the whole feed
 * with nothing queued is instead sent it at the end of this pass, with the
 * others like it, in one native call: `writeMany`); then each member is flushed,
 * which may run hooks (drain, close) that publish or write again: those
 * bytes go to the new feed, or after the views in the queue. What a socket
 * does not take is copied out of the feed, which is then reused.
 */
export function settle(feed: TopicFeed, tails: WriteTails): void {
  const bytes = feed.bytes
  if (bytes === undefined) return
  const end = feed.end
  const written = writtenLists.pop() ?? []
  let direct = directLists.pop()
  if (direct === undefined || direct.fds.length < feed.lazy.size) {
    const size = Math.max(64, feed.lazy.size)
    direct = { conns: direct?.conns ?? [], fds: new Int32Array(size), results: new Int32Array(size) }
  }
  const directConns = direct.conns
  // What a member that published nothing this turn is owed: one view for all of them.
  const whole = bytes.subarray(0, end)
  for (const conn of feed.lazy) {
    if (conn.feedFrom >= end || conn.closed || conn.ending) {
      conn.feedFrom = 0
      conn.feedSkips = undefined
      continue
    }
    if (conn.feedFrom === 0 && conn.feedSkips === undefined) {
      // Nothing queued before it: sent with the others in one native call below.
      const fd = conn.directFd()
      if (fd >= 0) {
        direct.fds[directConns.length] = fd
        directConns.push(conn)
        continue
      }
      conn.queueFeedView(whole)
    } else {
      owed(feed, conn, scratch)
      for (let i = 0; i < scratch.length; i++) conn.queueFeedView(scratch[i]!)
      scratch.length = 0
    }
    conn.feedFrom = 0
    written.push(conn)
  }
  feed.bytes = undefined
  feed.end = 0
  const count = directConns.length
  if (count > 0) {
    const results = direct.results
    writeMany(direct.fds, count, whole, results)
    // What a socket did not take is queued (no handler code runs) before
    // any failed member is destroyed (its close hook may write to the others).
    for (let i = 0; i < count; i++) {
      if (results[i]! >= -1 && directConns[i]!.sentDirect(whole, results[i]!)) written.push(directConns[i]!)
    }
    for (let i = 0; i < count; i++) {
      const conn = directConns[i]!
      if (results[i]! < -1 && !conn.closed) conn.destroy(writeManyError(results[i]!))
    }
    while (directConns.length > 0) directConns.pop()
  }
  directLists.push(direct)
  const buffer = bytes.buffer
  for (let i = 0; i < written.length; i++) {
    const conn = written[i]!
    if (!conn.closed) conn.flushFeed(buffer)
  }
  // Emptied by pop(): `length = 0` would drop the list's backing store.
  while (written.length > 0) written.pop()
  writtenLists.push(written)
  tails.give(bytes)
}
