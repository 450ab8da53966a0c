import { AmyError } from '../errors.js'

/**
 * Something framing can pull bytes from without blocking. A non-blocking
 * `TcpStream` satisfies it.
 *
 * `read` fills the start of `buf` and returns how many bytes it wrote there:
 * a positive count, `0` for end of stream, or `null` when no data is available
 * right now (EAGAIN). It may throw for real I/O errors (e.g. ECONNRESET); the
 * readers let such errors propagate and stay usable.
 *
 * The source must not keep a reference to `buf`: readers reuse it.
 */
export interface ByteSource {
  /** Reads into `buf`: bytes read, 0 at end of stream, null if it would block. */
  read(buf: Uint8Array): number | null
}

/**
 * Something framing can push bytes into without blocking. A non-blocking
 * `TcpStream` satisfies it.
 *
 * `write` / `writev` return how many bytes were accepted (possibly fewer than
 * offered, at any byte offset), or `null` when nothing can be written right
 * now (EAGAIN). `writev` is optional; when present the writer uses it to send
 * a length prefix and its payload(s) in a single call. The sink must not keep
 * references to the buffers or the array after returning.
 */
export interface ByteSink {
  /** Writes from `buf`: bytes written (possibly fewer), null if it would block. */
  write(buf: Uint8Array): number | null
  /** Writes several buffers in one call, if the sink can: bytes written, null if it would block. */
  writev?(bufs: readonly Uint8Array[]): number | null
}

/**
 * Validates a count returned by a source or sink. A buggy implementation
 * returning NaN, a fraction or more than it was offered would otherwise
 * silently corrupt the framing state, so fail loudly at the boundary.
 */
export function checkTransferred(what: string, n: number, max: number): number {
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new AmyError('ERR_INVALID_ARG_VALUE', `${what} must return null or an integer in [0, ${max}], got ${String(n)}`)
  }
  return n
}

/** `source` has a read(buf) method (a TcpStream, a TlsStream, ...), or ERR_INVALID_ARG_TYPE. */
export function checkSource(source: unknown): ByteSource {
  if (source === null || typeof source !== 'object' || typeof (source as ByteSource).read !== 'function') {
    throw new AmyError('ERR_INVALID_ARG_TYPE', 'source must have a read(buf) method (e.g. a TcpStream)')
  }
  return source as ByteSource
}

/** `sink` has a write(buf) method (a TcpStream, a TlsStream, ...), or ERR_INVALID_ARG_TYPE. */
export function checkSink(sink: unknown): ByteSink {
  if (sink === null || typeof sink !== 'object' || typeof (sink as ByteSink).write !== 'function') {
    throw new AmyError('ERR_INVALID_ARG_TYPE', 'sink must have a write(buf) method (e.g. a TcpStream)')
  }
  return sink as ByteSink
}
