export { Poller, type PollerOptions, type RawBatchHandler } from './poller.js'
export { Registrar, type RegistrarHandle } from './registrar.js'
export { Interest } from './interest.js'
export type { Notification } from './notification.js'
export { Sender, Receiver, type SenderHandle, type ChannelOptions } from './channel.js'
export { TcpListener, type BindOptions } from './tcp-listener.js'
export { TcpStream, type ConnectOptions, type ShutdownHow, type FromFdOptions } from './tcp-stream.js'
export { UnixListener, type UnixBindOptions } from './unix-listener.js'
export type { SocketAddress, UnixSocketAddress } from './address.js'
export type { Source } from './source.js'
export { SplicePipe, spliceSupported, type SplicePipeOptions, type TransferResult } from './splice.js'
export { AmyError, type AmyErrorCode } from './errors.js'
export * from './framing/index.js'
import native from './native.js'

/** The kernel selector this build uses: 'epoll' (Linux) or 'kqueue' (macOS/BSD). */
export const backend: 'epoll' | 'kqueue' = native.backend
