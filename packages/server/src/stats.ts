/**
 * Per-worker counters in a SharedArrayBuffer: the worker writes its slots,
 * the main thread reads them for server.stats() without a message. Plain
 * Float64 stores; a reader may see a value one update old, never a torn one
 * on the 64-bit platforms amy supports.
 */
export const STAT = {
  connections: 0, // open now
  opened: 1, // total opened (accepted or outbound)
  closed: 2,
  bytesIn: 3,
  bytesOut: 4,
  errors: 5, // connections closed by an error (reset, handler threw, limits)
  heartbeat: 6, // bumped by the worker's event loop (see liveness.ts)
  pubsubDropped: 7, // published records this worker dropped for a peer worker: its channel full and the backlog at BACKLOG_MAX_BYTES, or the peer dead
  inbound: 8, // accepted (client) connections open now: what a crash loses, a proxied pair once
  // balance 'reuseport': the worker accepts itself (with 'handoff' the acceptor counts these)
  accepted: 9,
  rejected: 10, // over maxConnections: accepted and closed at once
  acceptFailures: 11,
  tlsHandshakes: 12, // TLS handshakes completed (inbound and outbound)
  tlsFailures: 13, // TLS connections closed by an ERR_TLS_* error or lost before their handshake completed
  bufferedBytes: 14, // now: the write queues' cost (bytes + QUEUED_CHUNK_COST per queued chunk), what maxBufferedBytesTotal bounds
  pubsubBacklogBytes: 15, // now: published bytes waiting in this worker for a peer whose channel is full
  bufferTotalClosed: 16, // connections destroyed with ERR_BUFFER_TOTAL_LIMIT
} as const

export const STAT_SLOTS = 17

/** One worker's counters (see ServerStats). */
export interface WorkerStats {
  /** The worker's index. */
  worker: number
  /** Open now. */
  connections: number
  /** Opened since start (accepted or outbound). */
  opened: number
  /** Closed since start. */
  closed: number
  /** Bytes read. */
  bytesIn: number
  /** Bytes written. */
  bytesOut: number
  /** Connections closed by an error (reset, handler threw, limits). */
  errors: number
  /** TLS handshakes completed (inbound and outbound). */
  tlsHandshakes: number
  /**
   * TLS connections closed by a TLS error (an ERR_TLS_* code, the handshake
   * timeout included) or lost (reset, FIN) before their handshake completed.
   */
  tlsFailures: number
  /**
   * Now: what this worker's write queues cost (queued bytes + 320 per queued
   * chunk, as maxBufferedBytes counts them).
   */
  bufferedBytes: number
  /** Now: published bytes waiting in this worker for a peer worker that is behind (at most 16 MiB). */
  pubsubBacklogBytes: number
}

export function readStats(worker: number, slots: Float64Array): WorkerStats {
  return {
    worker,
    connections: slots[STAT.connections]!,
    opened: slots[STAT.opened]!,
    closed: slots[STAT.closed]!,
    bytesIn: slots[STAT.bytesIn]!,
    bytesOut: slots[STAT.bytesOut]!,
    errors: slots[STAT.errors]!,
    tlsHandshakes: slots[STAT.tlsHandshakes]!,
    tlsFailures: slots[STAT.tlsFailures]!,
    bufferedBytes: slots[STAT.bufferedBytes]!,
    pubsubBacklogBytes: slots[STAT.pubsubBacklogBytes]!,
  }
}
