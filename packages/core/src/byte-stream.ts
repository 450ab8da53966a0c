import type { SysError } from './native.js'

/**
 * What a connection needs from its transport, met by both `TcpStream`
 * (plain TCP) and `TlsStream` (TLS over a TcpStream), so code that moves
 * bytes (a server's connection, a proxy) is written once. Non-blocking,
 * edge-triggered, would-block is `null`:
 *
 * - `read(buf)`: bytes, 0 at end of stream, null.
 * - `write`/`writev`: bytes taken (possibly fewer), null.
 * - `flush()`: sends what the transport itself queued (TLS: at most about
 *   one record); true when nothing is left. Always true for plain TCP.
 * - `shutdown('write')`: end the write side (TLS: close_notify, then FIN).
 */
export interface ByteStream {
  /** The socket's fd (registered with a poller), -1 once closed. */
  readonly fd: number
  /** True once close() was called. */
  readonly closed: boolean
  /** Reads into `buf`: bytes read, 0 at end of stream, null if it would block. */
  read(buf: Uint8Array): number | null
  /** Writes from `buf`: bytes taken (possibly fewer), null if it would block. */
  write(buf: Uint8Array): number | null
  /** Writes several buffers in one call: bytes taken, null if it would block. */
  writev(bufs: readonly Uint8Array[]): number | null
  /** Sends what the stream itself still holds (TLS records); true when nothing is left. */
  flush(): boolean
  /** Half-closes the sending side after what was written. */
  shutdown(how?: 'write'): void
  /** Deregisters and closes the socket; idempotent. */
  close(): void
  /** The pending socket error (e.g. ECONNREFUSED after a failed connect), or null; clears it. */
  takeError(): SysError | null
  /** takeError()'s errno (positive; 0: none) without building the Error (`socketError(errno)` builds it); clears it. */
  takeErrno(): number
  /** The peer's IP address, if known. */
  readonly remoteAddress: string | undefined
  /** The peer's port, if known. */
  readonly remotePort: number | undefined
  /** 'IPv4' or 'IPv6', if known. */
  readonly remoteFamily: 'IPv4' | 'IPv6' | undefined
}
