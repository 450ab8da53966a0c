// Hand-written declaration of every export of the addon. Only @amy/core
// imports this package; users see the typed API there.

/** Notification flag bits written into NativePoller's flags array:
 * 1 readable, 2 writable, 4 hangup, 8 error. (Plain numbers, not a const
 * enum: transpile-only loaders cannot inline an ambient const enum.) */
export type EventFlags = number

/** An Error from a failed syscall: code is the errno name ("ECONNREFUSED"), errno is negative. */
export interface SysError extends Error {
  code: string
  errno: number
  syscall: string
}

export interface SocketAddressInfo {
  address: string
  port: number
  family: 'IPv4' | 'IPv6'
}

export declare class NativePoller {
  /** ids and flags have the same length, the most events one batch carries. */
  constructor(ids: Float64Array, flags: Uint8Array)
  /** Process-unique id; 0 once closed. */
  readonly id: number
  /** The selector's fd; -1 once closed. */
  readonly fd: number
  /** Blocks up to timeoutMs (-1: until an event); returns how many events were written. */
  wait(timeoutMs: number): number
  /** Watches the selector from this thread's libuv loop; onBatch(count) per batch. */
  start(onBatch: (count: number) => void): void
  stop(): void
  close(): void
  setRef(ref: boolean): void
  /** Inside onBatch of a started poller: the next batch now (0 if none). */
  pollNow(): number
  /** pollNow as a plain function holding the poller (no lookup of the NativePoller per call). */
  pollNowFunction(): () => number
  /** Opens the fd hand-off inbox; returns the id its notifications carry. */
  openInbox(): number
  /** Moves handed-over fds into out (and each one's hand-off tag into tags); returns how many. */
  takeHandedOver(out: Int32Array, tags?: Float64Array): number
  /** close() also closes every fd still registered (and always the unclaimed inbox). */
  setOwnsSources(owns: boolean): void
}

export declare class NativeRegistrar {
  constructor(pollerId: number)
  readonly pollerId: number
  /** reservedId: from reserveId(), not registered yet; the registration takes it. */
  register(fd: number, interest: number, reservedId?: number): number
  /** A fresh process-wide id for a later register(fd, interest, id). */
  reserveId(): number
  reregister(id: number, fd: number, interest: number): void
  deregister(id: number): boolean
  /** deregister(id), then close(fd) (always closed; a failed deregistration throws after it). */
  deregisterAndClose(id: number, fd: number): void
  /** deregisterAndClose as a plain function holding the poller (no lookup of the registrar per call). */
  closer(): (id: number, fd: number) => void
  /**
   * Accepts from listenFd until it would block or the arrays are full, each
   * connection registered for `interest` in the same call: fds[i] under
   * ids[i]. Returns how many. A connection that cannot be registered is closed.
   */
  acceptRegistered(listenFd: number, fds: Int32Array, ids: Float64Array, noDelay: boolean, interest: number): number
  /** intervalMs 0 means one-shot. */
  setTimer(delayMs: number, intervalMs: number): number
  cancelTimer(id: number): boolean
  /** bound 0 means unbounded. */
  openChannel(bound: number): NativeReceiver
  /** Hands fds[0..count) to the poller's thread, each with `tag` (default 0); false if it is closed (they stay the caller's). */
  handOver(fds: Int32Array, count: number, tag?: number): boolean
  /** Live registrations plus fds waiting in the inbox. */
  load(): number
  /** Whether a live source registration has this id. */
  has(id: number): boolean
  /** How many fds the poller closed for its owner when it closed. */
  readonly closedOnClose: number
  readonly closed: boolean
}

export declare class NativeReceiver {
  readonly id: number
  tryRecv(): Buffer | undefined
  size(): number
  close(): void
}

/** Result of NativeSender.send: 0 sent, 1 full (bounded channel), 2 closed. */
export type SendResult = 0 | 1 | 2

export declare class NativeSender {
  constructor(channelId: number)
  readonly id: number
  send(bytes: Uint8Array): SendResult
}

export declare const backend: 'epoll' | 'kqueue'

export declare function tcpListen(host: string, port: number, backlog: number, reusePort: boolean, ipv6Only: boolean): number
/** A listening Unix domain socket: a path, or (Linux) an abstract name starting with '\0'. */
export declare function unixListen(path: string, backlog: number): number
/** [fd, immediateErrno], as tcpConnect. */
export declare function unixConnect(path: string): [number, number]
/** The socket's own path (peer false) or its peer's; "" when unnamed. */
export declare function unixPath(fd: number, peer: boolean): string
/** Returns the accepted fd, or -1 when it would block; peer (20 bytes) receives the peer address. */
export declare function tcpAccept(listenFd: number, peer?: Uint8Array): number
/**
 * Accepts until it would block or out (or hosts) is full; returns how many fds
 * were written. hosts[i], if given, receives a 32-bit key of fds[i]'s peer
 * host: an IPv4 address as a number (IPv4-mapped too), an IPv6 address hashed.
 */
export declare function acceptBatch(listenFd: number, out: Int32Array, noDelay: boolean, hosts?: Uint32Array): number
export declare function formatAddress(peer: Uint8Array): SocketAddressInfo
/** [fd, immediateErrno]: a non-zero errno means the kernel refused at once. */
export declare function tcpConnect(host: string, port: number): [number, number]
/** Bytes read, 0 at end of stream, -1 when it would block. */
export declare function read(fd: number, buf: Uint8Array): number
/** Bytes written, -1 when it would block. */
export declare function write(fd: number, buf: Uint8Array): number
/**
 * Reads fromFd into buf and sends what it read to toFd, in one call (a
 * proxy's copy path): -1 when the read would block, 0 at end of stream, n
 * when n bytes were read and all sent; when the send took only w < n
 * (0 if it would block), -2 - (n + w * 2 ** 26). Throws the read's or the
 * send's SysError (syscall 'read' or 'write').
 */
export declare function relay(fromFd: number, toFd: number, buf: Uint8Array): number
/**
 * Sends the same bytes to fds[0, count) in one call. results[i]: bytes
 * fds[i] took (>= 0, maybe fewer than all), -1 if it would block, -1 - errno
 * if its send failed (the others are still sent). Throws only a TypeError
 * for bad arguments.
 */
export declare function writeMany(fds: Int32Array, count: number, bytes: Uint8Array, results: Int32Array): void
export declare function writev(fd: number, bufs: readonly Uint8Array[]): number
export declare function shutdown(fd: number, how: 0 | 1 | 2): void
export declare function takeError(fd: number): SysError | null
/** SO_ERROR of the socket (0: none), cleared: as takeError without building the Error. */
export declare function takeErrno(fd: number): number
export declare function errnoError(errno: number, syscall: string): SysError
export declare function setNoDelay(fd: number, on: boolean): void
export declare function getNoDelay(fd: number): boolean
export declare function localAddress(fd: number): SocketAddressInfo
export declare function peerAddress(fd: number): SocketAddressInfo
export declare function adopt(fd: number): void
export declare function close(fd: number): void

/**
 * A kernel pipe between two splice(2) calls (Linux), or a user-space buffer
 * elsewhere: bytes move between two fds without entering JavaScript. Each
 * call writes [movedIn, movedOut, sourceEof, sourceDrained, destBlocked,
 * buffered] (flags as 0/1) into the `result` array given at construction.
 * Errors: SysError with syscall 'splice'; ERR_PIPE_CLOSED after close().
 */
export declare class NativeSplicePipe {
  /** capacityBytes 0: the system default (64 KiB); result: a Float64Array of at least 6 elements. */
  constructor(capacityBytes: number, result: Float64Array)
  /** Source → pipe → destination until the source drains or ends, the destination blocks, or maxBytes came in. Returns movedOut. */
  transfer(fromFd: number, toFd: number, maxBytes: number): number
  /** Pipe → destination only. Returns movedOut. */
  flush(toFd: number): number
  /** Bytes in the pipe (spliced in, not yet out); 0 once closed. */
  readonly buffered: number
  /** The capacity granted (Linux rounds up to a power-of-two number of pages). */
  readonly capacity: number
  readonly closed: boolean
  /** Closes the pipe's two fds; idempotent. Buffered bytes are dropped. */
  close(): void
}

/** True where NativeSplicePipe uses splice(2) (Linux); false for the read/write fallback. */
export declare const spliceSupported: boolean

/**
 * Options of NativeTlsContext, normalized by @amy/core's TlsContext (which
 * takes node:tls names). PEM texts as strings or bytes.
 */
export interface NativeTlsContextOptions {
  isServer: boolean
  key?: string | Uint8Array
  cert?: string | Uint8Array
  passphrase?: string
  /** One PEM bundle; empty: OpenSSL's default verify paths. */
  ca?: string | Uint8Array
  /** OpenSSL version numbers (TLS1_2_VERSION, TLS1_3_VERSION). */
  minVersion?: number
  maxVersion?: number
  /** node:tls syntax: names starting with TLS_ are TLS 1.3 suites. */
  ciphers?: string
  alpn?: string[]
  requestCert?: boolean
  rejectUnauthorized?: boolean
  sni?: Array<{ servername: string; key: string | Uint8Array; cert: string | Uint8Array; passphrase?: string }>
  /** 48 bytes: 16 name, 16 HMAC key, 16 AES key (node:tls's layout). */
  ticketKeys?: Uint8Array
  /** Ms, integer in [0, 2^31): stored for whoever drives the sessions (0: none). */
  handshakeTimeout?: number
}

/**
 * A TLS context (an SSL_CTX and its settings), shared by every thread of the
 * process: `new NativeTlsContext(id)` on another thread takes a reference to
 * the one built with options. Errors: `ERR_TLS_INVALID_KEY`,
 * `ERR_TLS_INVALID_CERT`, `ERR_TLS_KEY_MISMATCH`, `ERR_TLS_INVALID_CA`,
 * `ERR_TLS_INVALID_CIPHERS`, `ERR_TLS_INVALID_OPTION` (with `reason`);
 * `ERR_UNKNOWN_ID` for an id no live context has.
 */
export declare class NativeTlsContext {
  constructor(optionsOrId: NativeTlsContextOptions | number)
  readonly id: number
  readonly isServer: boolean
  /** The 48 ticket keys (servers); empty for clients. */
  readonly ticketKeys: Buffer
  /** As given in the options (ms; 0: none). */
  readonly handshakeTimeout: number
}

export interface NativePeerCertificate {
  subject: string
  issuer: string
  subjectaltname: string
  valid_from: string
  valid_to: string
  fingerprint256: string
  raw: Buffer
}

export interface NativeTlsInfo {
  protocol: string
  cipher: string
  alpnProtocol: string | false
  servername: string | false
  resumed: boolean
  authorized: boolean
  authorizationError: string | null
  peerCertificate: NativePeerCertificate | null
}

/** An Error of the TLS layer: a stable `code`, OpenSSL's `reason`, and `errno`/`syscall` when a socket failed underneath. */
export interface TlsError extends Error {
  code: string
  reason?: string
  errno?: number
  syscall?: string
}

/**
 * One TLS connection over a non-blocking socket fd (not owned). Return
 * values: bytes (> 0); 0 at end of stream (read); -1 wants read; -2 wants
 * write (output pending: flush on writable). Failures throw TlsError and
 * every later call throws the same.
 */
export declare class NativeTlsSession {
  /** A servername (string, may be empty) makes a client session; session resumes an earlier one. */
  constructor(contextId: number, fd: number, servername?: string, session?: Uint8Array)
  /** 1 when complete, -1 / -2 while it waits. */
  handshake(): number
  read(buf: Uint8Array): number
  write(buf: Uint8Array): number
  writev(bufs: readonly Uint8Array[]): number
  /** Bytes still pending after sending what the socket takes. */
  flush(): number
  /** Queues close_notify and flushes; true when nothing is pending. */
  shutdown(): boolean
  info(): NativeTlsInfo
  /** The session to resume later (client), or undefined. */
  session(): Buffer | undefined
  /** Frees the SSL now; later calls throw ERR_SOCKET_CLOSED. */
  close(): void
  readonly pendingOutput: number
  readonly handshakeComplete: boolean
  readonly peerClosed: boolean
}

export declare const TLS1_2_VERSION: number
export declare const TLS1_3_VERSION: number
/** The OpenSSL the addon runs on (the node binary's own). */
export declare const opensslVersion: string
