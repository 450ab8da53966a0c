import type { Logger } from 'pino'
import type { Connection } from './connection.js'
import type { ConnectTlsOptions } from './tls.js'

/**
 * The user's code: one module, loaded by every worker thread, whose default
 * export (or `module.exports`) is a Handler. Every hook is optional, but a
 * handler needs at least one. Hooks run on the worker's thread with `this`
 * bound to the handler object.
 *
 * **Async hooks.** Any hook may return a promise. Per connection, hooks run
 * in order: `data` does not run while the connection's `open` or previous
 * `data` promise is pending (reads pause, as with backpressure, and resume
 * when it settles), so `end` also comes after them. `drain` and `timeout`
 * are not held back (a `data` hook may be waiting for `drain`); `close`
 * runs when the connection closes, even with a hook pending. A hook that
 * throws or whose promise rejects closes that connection only: the error is
 * logged and passed to `close(conn, err)`.
 */
export interface Handler<State = unknown, Data = unknown> {
  /** Called once in each worker before any connection, with the worker's context. */
  setup?(context: WorkerContext<Data>): void | Promise<void>
  /**
   * A connection arrived (accepted, or an outbound `connect()` that
   * succeeded). What it returns (or its promise resolves to), unless
   * `undefined`, becomes `conn.state`.
   */
  open?(conn: Connection<State, Data>): State | void | Promise<State | void>
  /**
   * Bytes arrived.
   *
   * `bytes` is **borrowed** when `data` is a plain function: a view into the
   * worker's read buffer, valid until the hook returns (write it, parse it,
   * or copy it with `Buffer.from(bytes)`). When `data`
   * is an `async function`, the runtime passes a copy instead, so `bytes`
   * stays this connection's bytes after any `await`. A plain function that
   * returns a promise still gets the borrowed view.
   */
  data?(conn: Connection<State, Data>, bytes: Buffer): void | Promise<void>
  /** Everything written has been flushed after `write()` returned false. */
  drain?(conn: Connection<State, Data>): void | Promise<void>
  /** The peer ended its side. Unless `allowHalfOpen`, the server then ends ours. */
  end?(conn: Connection<State, Data>): void | Promise<void>
  /**
   * The connection was idle for its timeout (`conn.setTimeout` or the
   * server's `idleTimeout`). Without this hook it is destroyed with
   * ERR_IDLE_TIMEOUT; with it, what happens is up to you.
   */
  timeout?(conn: Connection<State, Data>): void | Promise<void>
  /** The connection is closed; `err` says why if it was not a clean close. */
  close?(conn: Connection<State, Data>, err?: Error): void | Promise<void>
  /**
   * A message from the main thread: `server.broadcast(msg)` (to every
   * worker; the result is ignored, an error is logged) or
   * `server.request(msg)` (what this returns, or its promise resolves to, is
   * the reply; a throw or rejection rejects the request with the error's
   * `code`). Messages are structured clones. Use it to kick, mute, reload:
   * state the workers keep.
   */
  message?(context: WorkerContext<Data>, msg: unknown): unknown
}

/** Options of `context.publish()`. */
export interface PublishOptions {
  /** A connection that must not receive this message (e.g. its sender). */
  except?: Connection<any, any>
}

/** Where `context.connect()` connects. */
export interface OutboundOptions {
  /**
   * An IP address or a host name (default `127.0.0.1`). A name is resolved
   * with `dns.lookup` (/etc/hosts, then DNS) and its first address is
   * connected to, as net.connect does; a failed lookup closes the
   * connection with its code (ENOTFOUND, EAI_AGAIN).
   */
  host?: string
  /** The port, 1-65535. */
  port: number
  /**
   * Ms the connect (name lookup included) may take; then the connection
   * closes with ERR_CONNECT_TIMEOUT (`close(conn, err)`). Default 0: no
   * limit but the kernel's (about two minutes on Linux).
   */
  timeout?: number
  /**
   * Speak TLS to the upstream (`true`: the defaults). The server's
   * certificate is verified against `ca` (default: node:tls's root
   * certificates) and `servername` (default: `host`); a failure closes the
   * connection with its code (ERR_TLS_CERT_UNTRUSTED,
   * ERR_TLS_CERT_ALTNAME_INVALID, ...) through `close(conn, err)`. `open`
   * runs after the handshake, with `conn.tls` filled in.
   */
  tls?: ConnectTlsOptions | true
}

/**
 * What a worker gives its handler: `setup(context)` gets it, and every
 * connection has it as `conn.context`. It belongs to the worker thread
 * (calls from elsewhere are impossible: it cannot be sent to another thread).
 */
export interface WorkerContext<Data = unknown> {
  /** This worker's index, 0 .. threads-1. */
  readonly worker: number
  /** How many workers the server runs. */
  readonly threads: number
  /** `options.handlerData` from createServer (structured-cloned). */
  readonly data: Data
  /** This worker's pino logger (a `worker` binding); lines reach the server's logger. */
  readonly log: Logger
  /**
   * Writes `data` to every subscriber of `topic` in every worker, in order
   * per publisher. One message per worker crosses threads, never one per
   * subscriber. Subscribers past their buffer limit are closed, not waited for.
   */
  publish(topic: string, data: Uint8Array | string, options?: PublishOptions): void
  /** Subscribers of `topic` on this worker's connections (not other workers'). */
  subscribers(topic: string): number
  /**
   * Opens an outbound connection served by this worker. The handler's `open`
   * runs once it is connected (`conn.outbound` is true), or `close(conn, err)`
   * if it fails. Writes before that are queued.
   */
  connect(options: OutboundOptions): Connection<any, Data>
  /**
   * Sends `message` (structured-cloned) to the main thread, where
   * `server.on('message', (message, worker) => ...)` receives it. A value
   * that cannot be cloned throws ERR_INVALID_ARG_VALUE.
   */
  postMessage(message: unknown): void
}

/** Identity function that types a handler module's default export. */
export function defineHandler<State = unknown, Data = unknown>(handler: Handler<State, Data>): Handler<State, Data> {
  return handler
}
