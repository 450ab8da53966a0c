import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Interest, Poller, TcpListener, TcpStream, TlsStream, type TlsContext } from '@amy/core'

/** The test-only certificates (packages/native/test/fixtures/tls, remade by make-certs.sh). */
export const certDir = join(__dirname, '..', '..', 'native', 'test', 'fixtures', 'tls')
export const pem = (name: string): string => readFileSync(join(certDir, name), 'utf8')
export const serverIdentity = () => ({ key: pem('server.key'), cert: pem('server.crt') })

export interface ConnError {
  code: string
  reason?: string
  errno?: number
  message: string
}

/**
 * Echoes plaintext on one TlsStream with TcpStream's edge-triggered
 * contract: flush queued output first, read only while nothing is queued
 * (backpressure), answer end of stream with shutdown (close_notify + FIN).
 */
export class TlsEcho {
  readonly #queue: Buffer[] = []
  readonly #buf = Buffer.allocUnsafe(65536)
  ended = false
  done = false
  error: ConnError | undefined
  received = 0

  /**
   * onData returns the reply (default: the chunk, an echo). An echo stops
   * reading while replies are queued (backpressure); a collector
   * (`collect: true`) reads on while its own sends are queued, else two
   * peers that both wait to write would deadlock.
   */
  constructor(
    readonly stream: TlsStream,
    readonly onData?: (chunk: Buffer) => Buffer | undefined,
    readonly collect = false,
  ) {}

  service(): void {
    if (this.done) return
    try {
      if (!this.#drain() && !this.collect) return
      while (!this.ended && (this.collect || this.#queue.length === 0)) {
        const n = this.stream.read(this.#buf)
        if (n === null) break
        if (n === 0) {
          this.ended = true
          break
        }
        this.received += n
        const chunk = Buffer.from(this.#buf.subarray(0, n))
        const reply = this.onData ? this.onData(chunk) : chunk
        if (reply && reply.length > 0) this.#queue.push(reply)
        if (!this.#drain() && !this.collect) return
      }
      if (this.ended && this.#queue.length === 0) {
        this.stream.shutdown()
        if (this.stream.flush()) this.finish()
      }
    } catch (err) {
      const e = err as ConnError
      this.error = { code: e.code, reason: e.reason, errno: e.errno, message: e.message }
      this.finish()
    }
  }

  send(data: Buffer): void {
    this.#queue.push(data)
    this.service()
  }

  finish(): void {
    this.done = true
    this.stream.close()
  }

  #drain(): boolean {
    if (!this.stream.flush()) return false
    for (let head = this.#queue[0]; head !== undefined; head = this.#queue[0]) {
      const n = this.stream.write(head)
      if (n === null) return false
      if (n < head.length) this.#queue[0] = head.subarray(n)
      else this.#queue.shift()
    }
    return this.stream.flush()
  }
}

export interface EchoServer {
  readonly port: number
  readonly connections: TlsEcho[]
  readonly errors: ConnError[]
  close(): void
}

/** A TLS echo server on 127.0.0.1:0 driven by a started Poller in this thread. */
export function startTlsEchoServer(context: TlsContext, onData?: (chunk: Buffer) => Buffer | undefined): EchoServer {
  const poller = new Poller()
  const listener = TcpListener.bind({ host: '127.0.0.1', port: 0 })
  const listenerId = poller.registrar.register(listener, Interest.Read)
  const byId = new Map<number, TlsEcho>()
  const connections: TlsEcho[] = []
  const errors: ConnError[] = []
  const service = (id: number, echo: TlsEcho) => {
    echo.service()
    if (echo.done) {
      byId.delete(id)
      if (echo.error) errors.push(echo.error)
    }
  }
  poller.start(batch => {
    for (const n of batch) {
      if (n.id === listenerId) {
        for (let tcp = listener.accept(); tcp !== null; tcp = listener.accept()) {
          const echo = new TlsEcho(TlsStream.server(tcp, context), onData)
          const id = poller.registrar.register(echo.stream, Interest.Both)
          byId.set(id, echo)
          connections.push(echo)
          service(id, echo)
        }
      } else {
        const echo = byId.get(n.id)
        if (echo) service(n.id, echo)
      }
    }
  })
  return {
    port: listener.address().port,
    connections,
    errors,
    close() {
      for (const echo of byId.values()) echo.finish()
      byId.clear()
      poller.close()
      listener.close()
    },
  }
}

/** Resolves when check() holds, polling every 5 ms; rejects after timeoutMs. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

export interface TlsClient {
  readonly conn: TlsEcho
  readonly received: Buffer[]
  text(): string
  close(): void
}

/** A TlsStream client to 127.0.0.1:port driven by its own started Poller; it collects what it reads. */
export function startTlsClient(context: TlsContext, port: number, options: { servername?: string; session?: Uint8Array } = {}): TlsClient {
  const poller = new Poller()
  const received: Buffer[] = []
  const tcp = TcpStream.connect({ host: '127.0.0.1', port })
  const conn = new TlsEcho(TlsStream.client(tcp, context, { servername: 'localhost', ...options }), chunk => {
    received.push(chunk)
    return undefined
  }, true)
  poller.registrar.register(conn.stream, Interest.Both)
  poller.start(() => conn.service())
  return {
    conn,
    received,
    text: () => Buffer.concat(received).toString(),
    close() {
      if (!conn.done) conn.finish()
      poller.close()
    },
  }
}
