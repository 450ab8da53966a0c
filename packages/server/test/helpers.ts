import net from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { Test } from 'tap'
import { pino } from 'pino'
import { createServer, type Server } from '@amy/server'

export const fixture = (name: string): string => join(__dirname, 'fixtures', name)

/** A line client over node:net (the peer side of tests). */
export class LineClient {
  readonly socket: net.Socket
  readonly lines: string[] = []
  #buf = ''
  #waiters: Array<() => void> = []
  closed = false
  ended = false

  private constructor(socket: net.Socket) {
    this.socket = socket
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      this.#buf += chunk
      let nl
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        this.lines.push(this.#buf.slice(0, nl))
        this.#buf = this.#buf.slice(nl + 1)
      }
      this.#wake()
    })
    socket.on('end', () => { this.ended = true; this.#wake() })
    socket.on('close', () => { this.closed = true; this.#wake() })
    socket.on('error', () => {})
  }

  /** Connects to 127.0.0.1:port, from `localAddress` if given (any of 127.0.0.0/8 on Linux). */
  static connect(port: number, localAddress?: string): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, ...(localAddress !== undefined && { localAddress }) }, () => resolve(new LineClient(socket)))
      socket.once('error', reject)
    })
  }

  send(line: string): void {
    this.socket.write(line + '\n')
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }

  /** Waits until `predicate` holds (checked on every event), at most `ms`. */
  async until(predicate: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out; lines so far: ${JSON.stringify(this.lines.slice(-5))}`)
      await new Promise<void>(resolve => {
        this.#waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
  }

  async request(line: string): Promise<string> {
    const before = this.lines.length
    this.send(line)
    await this.until(() => this.lines.length > before)
    return this.lines[before]!
  }

  destroy(): void {
    this.socket.destroy()
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Sends `payload`, half-closes, and resolves with everything received until the server's end. */
export function sendAndCollect(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const s = net.connect({ host: '127.0.0.1', port }, () => s.end(payload))
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('end', () => resolve(Buffer.concat(chunks)))
    s.on('error', reject)
  })
}

/** A server listening on a free port, force-closed when the test ends. */
export async function started(t: Test, options: Parameters<typeof createServer>[0]): Promise<[Server, number]> {
  const server = createServer(options)
  t.teardown(() => server.close({ force: true }))
  const address = await server.listen({ port: 0 })
  return [server, address.port]
}

/** A pino logger whose JSON lines land in an array. */
export function captureLogger(level = 'info'): [ReturnType<typeof pino>, Array<Record<string, unknown>>] {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>)
      cb()
    },
  })
  return [pino({ level }, stream), lines]
}

/** Polls `predicate` every 20 ms until it holds; throws after `ms`. */
export async function until(predicate: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(20)
  }
}
