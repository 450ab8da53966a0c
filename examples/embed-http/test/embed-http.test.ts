// The embed-http example, driven from both sides: real HTTP requests to
// the node:http app and real TCP line clients on its chat. In-process
// (startApp with an AbortSignal), then as `npm start` does (node
// dist/main.js) stopped with SIGTERM.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import { join } from 'node:path'
import type * as AppModule from '../src/app'

// The built app: its workers load dist/handler.js.
const { startApp } = require('../dist/app.js') as typeof AppModule

const WAIT_MS = 10_000

/** A TCP line client of the chat. */
class LineClient {
  readonly lines: string[] = []
  ended = false
  closed = false
  #partial = ''
  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n')
      this.#partial = parts.pop()!
      this.lines.push(...parts)
    })
    socket.on('end', () => (this.ended = true))
    socket.on('close', () => (this.closed = true))
    socket.on('error', () => {})
  }
  static async connect(t: Test, port: number): Promise<LineClient> {
    const socket = net.connect({ host: '127.0.0.1', port })
    t.teardown(() => socket.destroy())
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    return new LineClient(socket)
  }
  send(line: string): void {
    this.socket.write(line + '\n')
  }
  async until(what: string, done: () => boolean): Promise<void> {
    const deadline = Date.now() + WAIT_MS
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; lines: ${JSON.stringify(this.lines)}`)
      await new Promise(r => setTimeout(r, 10))
    }
  }
  async expect(line: string): Promise<void> {
    await this.until(JSON.stringify(line), () => this.lines.includes(line))
  }
  /** Waits for the welcome line and returns the connection id it names. */
  async id(): Promise<number> {
    await this.until('the welcome line', () => this.lines.length > 0)
    const m = /^\* welcome, you are (\d+)$/.exec(this.lines[0]!)
    if (!m) throw new Error(`unexpected welcome ${this.lines[0]}`)
    return Number(m[1])
  }
}

function request(port: number, method: string, path: string, body?: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function poll<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    const value = await get()
    if (ok(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`)
    await new Promise(r => setTimeout(r, 20))
  }
}

t.test('HTTP publishes to a room, kicks by id and reads stats; the AbortSignal shuts both down', async t => {
  const controller = new AbortController()
  const app = await startApp({ httpPort: 0, chatPort: 0, threads: 2, signal: controller.signal })
  t.teardown(() => app.close())
  const [alice, bob, carol] = await Promise.all([0, 1, 2].map(() => LineClient.connect(t, app.chatPort)))
  const [aliceId, bobId, carolId] = (await Promise.all([alice!, bob!, carol!].map(c => c.id()))) as [number, number, number]
  alice!.send('/join lounge')
  bob!.send('/join lounge')
  carol!.send('/join kitchen')
  await Promise.all([alice!.expect('* joined lounge'), bob!.expect('* joined lounge'), carol!.expect('* joined kitchen')])

  const published = await request(app.httpPort, 'POST', '/rooms/lounge/messages', 'hello from http')
  t.same(published, { status: 200, json: { room: 'lounge', subscribers: 2 } }, 'publish reached the two lounge members')
  await alice!.expect('[http] hello from http')
  await bob!.expect('[http] hello from http')
  // A sentinel after it: carol's worker delivers in order, so had the lounge
  // line reached her, it would be before this one.
  await request(app.httpPort, 'POST', '/rooms/kitchen/messages', 'kitchen only')
  await carol!.expect('[http] kitchen only')
  t.notOk(carol!.lines.includes('[http] hello from http'), 'the kitchen did not get the lounge message')
  t.notOk(alice!.lines.includes('[http] kitchen only'), 'the lounge did not get the kitchen message')

  const joins = await request(app.httpPort, 'GET', '/joins')
  t.same(
    [...joins.json].sort((a: { conn: number }, b: { conn: number }) => a.conn - b.conn),
    [{ conn: aliceId, room: 'lounge' }, { conn: bobId, room: 'lounge' }, { conn: carolId, room: 'kitchen' }].sort((a, b) => a.conn - b.conn),
    "the workers' postMessage reached the HTTP app",
  )

  t.same(await request(app.httpPort, 'POST', `/users/${bobId}/kick`), { status: 200, json: { kicked: true } })
  await bob!.expect('* you were kicked')
  await bob!.until('the kicked connection to close', () => bob!.closed)
  t.same(await request(app.httpPort, 'POST', `/users/${bobId}/kick`), { status: 200, json: { kicked: false } }, 'kicking again: not found')
  alice!.send('still here?')
  t.notOk(bob!.lines.includes(`${aliceId}: still here?`))

  const stats = await poll('stats to show 2 connections', () => request(app.httpPort, 'GET', '/stats'), r => r.json.connections === 2)
  t.equal(stats.status, 200)
  t.equal(stats.json.workers.length, 2)
  t.equal(stats.json.accepted, 3)

  t.equal((await request(app.httpPort, 'POST', '/rooms/bad%20room/messages', 'x')).status, 400)
  t.equal((await request(app.httpPort, 'POST', '/users/abc/kick')).status, 400)
  t.equal((await request(app.httpPort, 'GET', '/nope')).status, 404)

  controller.abort()
  await app.closed
  await alice!.until('the chat to end the connection', () => alice!.ended)
  t.pass('aborting the signal closed the chat (its clients got end-of-stream) and the HTTP server')
  await t.rejects(request(app.httpPort, 'GET', '/stats'), { code: 'ECONNREFUSED' }, 'nobody listens on the HTTP port')
  t.equal(app.chat.listening, false)
})

t.test('npm start (node dist/main.js): SIGTERM ends both servers and the process exits 0', async t => {
  const child: ChildProcess = spawn(process.execPath, [join(__dirname, '..', 'dist', 'main.js')], {
    env: { ...process.env, HTTP_PORT: '0', CHAT_PORT: '0', THREADS: '2' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const deadline = Date.now() + WAIT_MS
  let m: RegExpExecArray | null
  while (!(m = /http listening on [^:]+:(\d+), chat on port (\d+)/.exec(out))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`did not start; output: ${out}`)
    await new Promise(r => setTimeout(r, 20))
  }
  const [httpPort, chatPort] = [Number(m[1]), Number(m[2])]
  const client = await LineClient.connect(t, chatPort)
  await client.id()
  client.send('/join lounge')
  await client.expect('* joined lounge')
  t.equal((await request(httpPort, 'POST', '/rooms/lounge/messages', 'before shutdown')).json.subscribers, 1)
  await client.expect('[http] before shutdown')

  child.kill('SIGTERM')
  const code = await Promise.race([exited, new Promise<'timeout'>(r => setTimeout(() => r('timeout'), 20_000))])
  t.equal(code, 0, 'the process exited by itself, with 0')
  t.match(out, /closed\n/, 'after saying closed')
  await client.until('end-of-stream from the chat', () => client.ended || client.closed)
})
