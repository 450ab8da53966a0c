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
  readonly fd: number
  readonly closed: boolean
  read(buf: Uint8Array): number | null
  write(buf: Uint8Array): number | null
  writev(bufs: readonly Uint8Array[]): number | null
  flush(): boolean
  shutdown(how?: 'write'): void
  close(): void
  takeError(): SysError | null
  readonly remoteAddress: string | undefined
  readonly remotePort: number | undefined
}
