// An existing node:http app that starts a chat server (@amy/server) next
// to its HTTP server. The HTTP side reaches the chat's users:
//
//   POST /rooms/ROOM/messages  (body: text)  publish "[http] text" to ROOM
//                                            -> { subscribers }
//   POST /users/ID/kick                      tell connection ID it was
//                                            kicked, then close it -> { kicked }
//   GET  /stats                              server.stats()
//   GET  /joins                              the last joins the workers reported
//
// Both servers share one graceful shutdown: abort the AbortSignal given to
// startApp (main.ts does on SIGTERM/SIGINT) or call app.close().
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createServer, type Server } from '@amy/server'
import { topicOf, type JoinEvent } from './handler.js'

export interface AppOptions {
  host?: string
  /** HTTP port (0: a free one). */
  httpPort?: number
  /** Chat (TCP) port (0: a free one). */
  chatPort?: number
  threads?: number
  /** Aborting it shuts both servers down gracefully. */
  signal?: AbortSignal
}

export interface App {
  httpPort: number
  chatPort: number
  chat: Server
  /** Both servers closed: HTTP stops accepting and idle keep-alive sockets close; chat connections are ended (destroyed after 2 s). */
  closed: Promise<void>
  close(): Promise<void>
}

const ROOM = /^[A-Za-z0-9_.-]{1,32}$/
const MAX_BODY = 64 * 1024

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

async function route(chat: Server, joins: JoinEvent[], req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const parts = url.pathname.split('/').filter(Boolean)
  if (req.method === 'GET' && url.pathname === '/stats') return reply(res, 200, chat.stats())
  if (req.method === 'GET' && url.pathname === '/joins') return reply(res, 200, joins)
  if (req.method === 'POST' && parts.length === 3 && parts[0] === 'rooms' && parts[2] === 'messages') {
    const room = decodeURIComponent(parts[1]!)
    if (!ROOM.test(room)) return reply(res, 400, { error: 'bad room name' })
    const text = await readBody(req)
    if (text === undefined) return reply(res, 413, { error: 'body too large' })
    const topic = topicOf(room)
    chat.publish(topic, `[http] ${text.replace(/\n+$/, '')}\n`)
    return reply(res, 200, { room, subscribers: await chat.subscribers(topic) })
  }
  if (req.method === 'POST' && parts.length === 3 && parts[0] === 'users' && parts[2] === 'kick') {
    const id = Number(parts[1])
    if (!Number.isSafeInteger(id) || id < 1) return reply(res, 400, { error: 'bad connection id' })
    // Say why first (written at once if the socket has room), then close.
    const found = await chat.send(id, '* you were kicked\n')
    return reply(res, 200, { kicked: found && (await chat.destroy(id)) })
  }
  reply(res, 404, { error: 'not found' })
}

export async function startApp(options: AppOptions = {}): Promise<App> {
  const host = options.host ?? '127.0.0.1'
  const chat = createServer({ handler: join(__dirname, 'handler.js'), threads: options.threads })
  const joins: JoinEvent[] = []
  chat.on('message', msg => {
    joins.push(msg as JoinEvent)
    if (joins.length > 100) joins.shift()
  })
  const httpServer = http.createServer((req, res) => {
    route(chat, joins, req, res).catch((err: Error & { code?: string }) => reply(res, 500, { error: err.message, code: err.code }))
  })

  let resolveClosed!: () => void
  const closed = new Promise<void>(resolve => (resolveClosed = resolve))
  let closing: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const httpClosed = httpServer.listening ? once(httpServer, 'close') : Promise.resolve()
      httpServer.close()
      httpServer.closeIdleConnections()
      await Promise.all([httpClosed, chat.close({ timeout: 2000 })])
      resolveClosed()
    })())
  const { signal } = options
  if (signal?.aborted) throw signal.reason
  signal?.addEventListener('abort', () => void close(), { once: true })

  try {
    const { port: chatPort } = await chat.listen({ host, port: options.chatPort ?? 7003 })
    httpServer.listen(options.httpPort ?? 8080, host)
    await once(httpServer, 'listening')
    const httpPort = (httpServer.address() as AddressInfo).port
    return { httpPort, chatPort, chat, closed, close }
  } catch (err) {
    await close()
    throw err
  }
}
