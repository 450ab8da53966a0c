// What the chat example's tests share: line clients, and chat server
// processes (node dist/main.js) that die with the test file.
import net from 'node:net'
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { startExample, type TestT } from '../../../test/support/example-process'

export { owned, type TestT } from '../../../test/support/example-process'

const WAIT_MS = 5000

/** A line client: collects every line the server sends. */
export class Client {
  readonly lines: string[] = []
  ended = false
  closed = false
  #partial = ''
  #waiters: (() => void)[] = []
  readonly socket: net.Socket

  private constructor(socket: net.Socket) {
    this.socket = socket
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n')
      this.#partial = parts.pop()!
      this.lines.push(...parts)
      this.#wake()
    })
    socket.on('end', () => {
      this.ended = true
      this.#wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.#wake()
    })
    socket.on('error', () => {}) // 'close' follows
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new Client(socket)))
      socket.once('error', reject)
    })
  }

  send(...lines: string[]): void {
    this.socket.write(lines.map(l => l + '\n').join(''))
  }

  /** Resolves once `done()` holds; rejects after `ms` with `what`. */
  until(what: string, done: () => boolean, ms = WAIT_MS): Promise<void> {
    if (done()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}; got: ${JSON.stringify(this.lines.slice(-10))}`)), ms)
      const check = (): void => {
        if (done()) {
          clearTimeout(timer)
          resolve()
        } else this.#waiters.push(check)
      }
      this.#waiters.push(check)
    })
  }

  /** Waits for a line equal to `line` (string) or matching it (RegExp). */
  async expect(line: string | RegExp, ms?: number): Promise<string> {
    const match = (l: string): boolean => (typeof line === 'string' ? l === line : line.test(l))
    await this.until(`line ${String(line)}`, () => this.lines.some(match), ms)
    return this.lines.find(match)!
  }

  /** Joins and waits for the server's confirmation. */
  async enter(nick: string, room: string): Promise<void> {
    this.send(`/nick ${nick}`, `/join ${room}`)
    await this.expect(`* you joined ${room} as ${nick}`)
  }

  texts(): string[] {
    return this.lines.filter(l => !l.startsWith('* ') && !l.startsWith('! '))
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Starts `node dist/main.js` with PORT=0 THREADS=2 and `env`; resolves once it listens. */
export async function startChat(t: TestT, env: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number; exited: Promise<number | string | null> }> {
  const chat = await startExample(t, join(__dirname, '..', 'dist', 'main.js'), /^chat server listening on 127\.0\.0\.1:(\d+)/m, {
    env: { PORT: '0', HOST: '127.0.0.1', THREADS: '2', ...env },
  })
  return { child: chat.child, port: Number(chat.match[1]), exited: chat.exited }
}
