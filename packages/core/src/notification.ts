/**
 * What a poller delivers for a registration, a timer or a channel.
 *
 * - `readable`: data (or a connection, or end of stream) can be read; for a
 *   timer it means the timer fired, for a channel receiver that values wait.
 * - `writable`: a write would not block; for a connecting stream, the
 *   connect finished (check `stream.takeError()`).
 * - `hangup`: the peer closed its side (reads will end with 0) or the
 *   connection is fully closed. Reported on its own, not disguised as a read.
 * - `error`: an error is pending on the socket (`stream.takeError()`).
 *
 * Notifications can be spurious: a read after one may report would-block.
 */
export interface Notification {
  /** The registration, timer or channel id it is for. */
  readonly id: number
  /** See above. */
  readonly readable: boolean
  /** See above. */
  readonly writable: boolean
  /** See above. */
  readonly hangup: boolean
  /** See above. */
  readonly error: boolean
}
