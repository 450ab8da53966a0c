// Runs in every worker thread: a line chat with nicknames and rooms.
//
// A room is the pub/sub topic 'room:' + name. Joining subscribes the
// connection; a line is published once to the room's topic (except to its
// sender) and every worker writes it to its own members, so members served
// by different workers see each other, in order per sender.
import { LineReader } from '@amy/core'
import { defineHandler, type Connection } from '@amy/server/handler'

interface Member {
  nick: string
  room: string | undefined
  lines: LineReader
}
type Conn = Connection<Member>

/** Nick and room names: 1-32 of letters, digits, '_', '-', '.'. */
const NAME = /^[A-Za-z0-9_.-]{1,32}$/
const topic = (room: string): string => 'room:' + room

function tell(conn: Conn, line: string): void {
  if (!conn.closed && !conn.ending) conn.write(line + '\n')
}

function toRoom(conn: Conn, room: string, line: string): void {
  conn.context.publish(topic(room), Buffer.from(line + '\n'), { except: conn })
}

function leave(conn: Conn): void {
  const m = conn.state
  if (m?.room === undefined) return
  toRoom(conn, m.room, `* ${m.nick} left ${m.room}`)
  conn.unsubscribe(topic(m.room))
  m.room = undefined
}

function onLine(conn: Conn, line: string): void {
  const m = conn.state
  const [command, arg = ''] = line.split(/ +(.*)/, 2)
  switch (command) {
    case '/nick':
      if (!NAME.test(arg)) return tell(conn, '! usage: /nick NAME')
      if (m.room !== undefined) toRoom(conn, m.room, `* ${m.nick} is now ${arg}`)
      m.nick = arg
      return tell(conn, `* you are now ${arg}`)
    case '/join':
      if (!NAME.test(arg)) return tell(conn, '! usage: /join ROOM')
      leave(conn)
      m.room = arg
      conn.subscribe(topic(arg))
      toRoom(conn, arg, `* ${m.nick} joined ${arg}`)
      return tell(conn, `* you joined ${arg} as ${m.nick}`)
    case '/quit':
      leave(conn)
      tell(conn, '* bye')
      return conn.end()
    default:
      if (line.startsWith('/')) return tell(conn, '! commands: /nick NAME, /join ROOM, /quit')
      if (m.room === undefined) return tell(conn, '! /join ROOM first')
      return toRoom(conn, m.room, `${m.nick}: ${line}`)
  }
}

export default defineHandler<Member>({
  open(conn) {
    tell(conn, `* welcome, guest-${conn.id}: /nick NAME, then /join ROOM`)
    return { nick: `guest-${conn.id}`, room: undefined, lines: new LineReader({ maxLineLength: 4096, bufferSize: 1 }) }
  },
  data(conn, bytes) {
    try {
      conn.state.lines.push(bytes)
    } catch {
      tell(conn, '! line too long; bye') // ERR_LINE_TOO_LONG
      leave(conn)
      return conn.end()
    }
    for (let line = conn.state.lines.next(); line !== undefined; line = conn.state.lines.next()) {
      if (line.length > 0) onLine(conn, line)
    }
  },
  end: leave,
  close: leave,
})
