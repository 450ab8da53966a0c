// The soak's handler (soak.mjs): one server serves three kinds of traffic
// and takes fault commands. A connection's first line says what it is:
//
//   echo               every later byte is written back
//   proxy              piped both ways to the upstream echo (handlerData.upstream)
//   chat ID            joins 'room' (answers "joined\n"); each later line is
//                      published to the other members as it is
//   stall MS           this worker's thread spins for MS ms (the watchdog's business)
//   crash              an uncaught exception kills this worker thread
import { defineHandler } from '@amy/server'

let upstreamPort = 0

function firstLine(conn, bytes) {
  const s = conn.state
  s.head = s.head === undefined ? Buffer.from(bytes) : Buffer.concat([s.head, bytes])
  const nl = s.head.indexOf(10)
  if (nl < 0) {
    if (s.head.length > 256) conn.destroy()
    return
  }
  const [mode, arg] = s.head.subarray(0, nl).toString().split(' ')
  const rest = s.head.subarray(nl + 1)
  s.head = undefined
  s.mode = mode
  if (mode === 'echo') {
    if (rest.length > 0) conn.write(rest)
  } else if (mode === 'proxy') {
    const up = conn.context.connect({ host: '127.0.0.1', port: upstreamPort })
    up.state = { mode: 'upstream' }
    if (rest.length > 0) up.write(rest)
    conn.pipe(up)
    up.pipe(conn)
  } else if (mode === 'chat') {
    s.lines = ''
    conn.subscribe('room')
    conn.write('joined\n')
    if (rest.length > 0) chat(conn, rest)
  } else if (mode === 'stall') {
    conn.write('stalling\n')
    setImmediate(() => {
      const end = Date.now() + Number(arg)
      while (Date.now() < end);
    })
  } else if (mode === 'crash') {
    setImmediate(() => {
      throw new Error('soak: worker crashed on purpose')
    })
  } else {
    conn.destroy()
  }
}

function chat(conn, bytes) {
  const s = conn.state
  s.lines += bytes.toString('latin1')
  const last = s.lines.lastIndexOf('\n')
  if (last < 0) return
  // Whole lines go out as one record; a partial one waits for its end.
  conn.context.publish('room', Buffer.from(s.lines.slice(0, last + 1), 'latin1'), { except: conn })
  s.lines = s.lines.slice(last + 1)
}

export default defineHandler({
  setup(context) {
    upstreamPort = context.data.upstream
  },
  open(conn) {
    if (!conn.outbound) conn.state = { mode: undefined, head: undefined, lines: '' }
  },
  data(conn, bytes) {
    const mode = conn.state.mode
    if (mode === 'echo') conn.write(bytes)
    else if (mode === 'chat') chat(conn, bytes)
    else if (mode === undefined) firstLine(conn, bytes)
  },
})
