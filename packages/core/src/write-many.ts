import native, { type SysError } from './native.js'

/**
 * Sends the same `bytes` to the sockets `fds[0, count)` in one native call
 * instead of one per socket (a pub/sub topic's members with nothing
 * queued: the JavaScript and Node-API cost of a write, paid once).
 * `results[i]` says what `fds[i]` did: the bytes it took (>= 0; fewer than
 * `bytes.length` when its send buffer filled), -1 if it would block, or
 * below -1 if its send failed: `writeManyError(results[i])` is that error.
 * One failed socket does not stop the others. Plain sockets only (a TLS
 * stream's fd would get the bytes unencrypted).
 */
export function writeMany(fds: Int32Array, count: number, bytes: Uint8Array, results: Int32Array): void {
  native.writeMany(fds, count, bytes, results)
}

/** The Error of a failed `writeMany` result (< -1): `code`, `errno`, `syscall` 'write', as `TcpStream#write` throws it. */
export function writeManyError(result: number): SysError {
  return native.errnoError(-1 - result, 'write')
}
