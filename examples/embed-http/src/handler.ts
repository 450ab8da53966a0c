// The chat side, in every worker thread: a tiny line chat whose users the
// HTTP side can reach. Each connection is told its id (what the kick
// endpoint takes). Lines: "/join ROOM" joins a room (leaving the last one);
// any other line goes to the others in the room. Joins are reported to the
// main thread (context.postMessage), which the HTTP app lists.
import { defineHandler, type Connection } from '@amy/server'

interface User {
  buf: string
  room: string | undefined
}

/** What a worker tells the main thread (server.on('message')). */
export interface JoinEvent {
  conn: number
  room: string
}

const ROOM = /^[A-Za-z0-9_.-]{1,32}$/
export const topicOf = (room: string): string => `room:${room}`

function line(conn: Connection<User>, text: string): void {
  if (!conn.closed && !conn.ending) conn.write(text + '\n')
}

function onLine(conn: Connection<User>, text: string): void {
  const user = conn.state
  if (text.startsWith('/join ')) {
    const room = text.slice(6).trim()
    if (!ROOM.test(room)) return line(conn, '! usage: /join ROOM')
    if (user.room !== undefined) conn.unsubscribe(topicOf(user.room))
    user.room = room
    conn.subscribe(topicOf(room))
    const event: JoinEvent = { conn: conn.id, room }
    conn.context.postMessage(event)
    return line(conn, `* joined ${room}`)
  }
  if (user.room === undefined) return line(conn, '! /join ROOM first')
  conn.context.publish(topicOf(user.room), `${conn.id}: ${text}\n`, { except: conn })
}

export default defineHandler<User>({
  open(conn) {
    line(conn, `* welcome, you are ${conn.id}`)
    return { buf: '', room: undefined }
  },
  data(conn, bytes) {
    const user = conn.state
    user.buf += bytes.toString('utf8')
    if (user.buf.length > 4096) return conn.end('! line too long\n')
    for (let nl = user.buf.indexOf('\n'); nl >= 0; nl = user.buf.indexOf('\n')) {
      const text = user.buf.slice(0, nl).replace(/\r$/, '')
      user.buf = user.buf.slice(nl + 1)
      if (text.length > 0) onLine(conn, text)
    }
  },
})
