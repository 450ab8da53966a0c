// Runs in every worker thread: a line-based chat (see README.md).
//
// A room is the pub/sub topic 'room:' + name. Joining subscribes the
// connection; a text line is published once to the topic (except its
// sender) and every worker writes it to its own members, so members on
// different workers see each other, in order per sender.
import { LineReader } from '@amy/core'
import { defineHandler, type Connection } from '@amy/server'

/** Longest line a client may send, in bytes without the "\n". Longer: error line, then the connection is closed. */
export const MAX_LINE_LENGTH = 4096

/** Nick and room names: 1-32 of letters, digits, '_', '-', '.'. */
const NAME = /^[A-Za-z0-9_.-]{1,32}$/

const HELP = [
  '* commands:',
  '*   /nick NAME   set your name (1-32 of A-Z a-z 0-9 _ - .)',
  '*   /join ROOM   leave your room, if any, and join ROOM',
  '*   /leave       leave your room',
  '*   /quit        leave and disconnect',
  '*   /help        this list',
  '* any other line is sent to everyone else in your room as "NAME: text";',
  '* start it with "//" to send a line that begins with "/"',
].join('\n')

interface Member {
  nick: string
  /** The room joined, or undefined (not in a room yet, or left). */
  room: string | undefined
  readonly lines: LineReader
  /** Set once we stop serving this connection (quit, overlong line). */
  done: boolean
}

/** handlerData from main.ts: the instance's name when several run behind a load balancer. */
export interface ChatData {
  instance?: string | undefined
}

type Conn = Connection<Member, ChatData>

const topicOf = (room: string): string => 'room:' + room

/** A line for this connection only; skipped once it is ending or closed. */
function tell(conn: Conn, line: string): void {
  if (!conn.closed && !conn.ending) conn.write(line + '\n')
}

/** A line for everyone else in `room`, on every worker: encoded once. */
function announce(conn: Conn, room: string, line: string): void {
  conn.context.publish(topicOf(room), Buffer.from(line + '\n'), { except: conn })
}

function leaveRoom(conn: Conn, m: Member): void {
  const room = m.room
  if (room === undefined) return
  m.room = undefined
  conn.unsubscribe(topicOf(room))
  announce(conn, room, `* ${m.nick} left ${room}`)
}

/** Stops serving: leaves the room, says `last`, flushes and half-closes. */
function finish(conn: Conn, m: Member, last: string): void {
  if (m.done) return
  m.done = true
  leaveRoom(conn, m)
  tell(conn, last)
  conn.end()
}

function command(conn: Conn, m: Member, line: string): void {
  const space = line.indexOf(' ')
  const name = space === -1 ? line : line.slice(0, space)
  const arg = space === -1 ? '' : line.slice(space + 1).trim()
  switch (name) {
    case '/nick': {
      if (!NAME.test(arg)) return tell(conn, '! usage: /nick NAME (1-32 of A-Z a-z 0-9 _ - .)')
      const old = m.nick
      m.nick = arg
      if (m.room !== undefined && old !== arg) announce(conn, m.room, `* ${old} is now ${arg}`)
      return tell(conn, `* you are now ${arg}`)
    }
    case '/join': {
      if (!NAME.test(arg)) return tell(conn, '! usage: /join ROOM (1-32 of A-Z a-z 0-9 _ - .)')
      if (m.room === arg) return tell(conn, `* you are already in ${arg}`)
      leaveRoom(conn, m)
      m.room = arg
      conn.subscribe(topicOf(arg))
      announce(conn, arg, `* ${m.nick} joined ${arg}`)
      return tell(conn, `* you joined ${arg} as ${m.nick}`)
    }
    case '/leave':
      if (m.room === undefined) return tell(conn, '! you are not in a room')
      tell(conn, `* you left ${m.room}`)
      return leaveRoom(conn, m)
    case '/quit':
      return finish(conn, m, '* bye')
    case '/help':
      return tell(conn, HELP)
    default:
      return tell(conn, `! unknown command ${name.slice(0, 64)} (try /help)`)
  }
}

function onLine(conn: Conn, m: Member, line: string): void {
  if (line.length === 0) return
  if (line.charCodeAt(0) === 0x2f /* '/' */) {
    if (!line.startsWith('//')) return command(conn, m, line)
    line = line.slice(1)
  }
  if (m.room === undefined) return tell(conn, '! you are not in a room: /join ROOM first')
  announce(conn, m.room, `${m.nick}: ${line}`)
}

export default defineHandler<Member, ChatData>({
  open(conn) {
    const nick = `guest-${conn.id}`
    // push() never uses the reader's own read buffer: keep it tiny.
    conn.state = { nick, room: undefined, lines: new LineReader({ maxLineLength: MAX_LINE_LENGTH, bufferSize: 1 }), done: false }
    const instance = conn.context.data?.instance
    tell(conn, `* welcome, ${nick}${instance ? ` on ${instance}` : ''}: /nick NAME, then /join ROOM (/help for more)`)
  },

  data(conn, bytes) {
    const m = conn.state
    if (m.done) return
    let tooLong = false
    try {
      m.lines.push(bytes)
    } catch {
      // ERR_LINE_TOO_LONG: serve the lines completed before it, then close.
      tooLong = true
    }
    for (let line = m.lines.next(); line !== undefined && !m.done; line = m.lines.next()) onLine(conn, m, line)
    if (tooLong) finish(conn, m, `! line longer than ${MAX_LINE_LENGTH} bytes; closing`)
  },

  // The peer ended its side (and we end ours): leave now, not at the close.
  end(conn) {
    const m = conn.state
    if (m !== undefined) leaveRoom(conn, m)
  },

  close(conn) {
    const m = conn.state
    if (m !== undefined) leaveRoom(conn, m)
  },
})
