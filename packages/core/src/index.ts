/**
 * amy's event loop for Node.js: Poller, Registrar, Interest, timers,
 * channels, TCP and Unix sockets, TLS, splice pipes and framing over
 * epoll/kqueue. See the README's "The model" and docs/architecture.md.
 *
 * @packageDocumentation
 * @module @amy/core
 */
export { Poller, type PollerOptions, type RawBatchHandler } from './poller.js'
export { Registrar, type RegistrarHandle } from './registrar.js'
export { Interest } from './interest.js'
export type { Notification } from './notification.js'
export { Sender, Receiver, type SenderHandle, type ChannelOptions } from './channel.js'
export { TcpListener, type BindOptions } from './tcp-listener.js'
export { TcpStream, socketError, type ConnectOptions, type ShutdownHow, type FromFdOptions } from './tcp-stream.js'
export { writeMany, writeManyError } from './write-many.js'
export { UnixListener, type UnixBindOptions } from './unix-listener.js'
export type { SocketAddress, UnixSocketAddress } from './address.js'
export type { Source } from './source.js'
export { TlsContext, opensslVersion, type TlsContextOptions, type TlsContextHandle, type TlsIdentity, type TlsVersion, type Pem } from './tls-context.js'
export type { ByteStream } from './byte-stream.js'
export { TlsStream, type TlsClientOptions, type PeerCertificate } from './tls-stream.js'
export { TLS_ERROR_CODES, type TlsErrorCode } from './tls-errors.js'
export { SplicePipe, spliceSupported, type SplicePipeOptions, type TransferResult } from './splice.js'
export { AmyError } from './errors.js'
export { AMY_ERROR_CODES, type AmyErrorCode } from './error-codes.js'
export * from './framing/index.js'
import native from './native.js'

/** The kernel selector this build uses: 'epoll' (Linux) or 'kqueue' (macOS/BSD). */
export const backend: 'epoll' | 'kqueue' = native.backend
