import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { defineHandler, type Connection, type Handler } from '@amy/server'

const DIST = join(__dirname, '..', 'dist')
// The declaration files a user's code reaches from '@amy/server' and '@amy/server/handler'.
const PUBLIC = ['index', 'handler', 'handler-types', 'connection', 'server', 'options', 'logging', 'errors', 'stats', 'worker-api']
const INTERNAL = ['stream', 'pipedTo', 'pipedFrom', 'splice', 'spliceActive', 'spliceEofPending', 'onEvent', 'endOfStream', 'readable', 'flush', 'hold', 'release', 'idleTimeoutMs', 'lastActive', 'topics', 'ConnectionHost', 'setThreadContext']

const withoutComments = (text: string): string => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')

t.test('the published .d.ts files name no internal member', async t => {
  for (const name of PUBLIC) {
    const code = withoutComments(readFileSync(join(DIST, `${name}.d.ts`), 'utf8'))
    const found = INTERNAL.filter(word => new RegExp(`\\b${word}\\b`).test(code))
    t.same(found, [], `${name}.d.ts`)
  }
})

// Type-level checks: this file is typechecked by the build against the
// published declarations; each @ts-expect-error fails the build if the
// line compiles.
interface Room { name: string; members: number }
interface Config { greeting: string }

const typed = defineHandler<Room, Config>({
  setup(context) {
    const greeting: string = context.data.greeting
    void greeting
  },
  open: () => ({ name: 'lobby', members: 0 }),
  data(conn, bytes) {
    conn.state.members++ // State, not State | undefined
    const greeting: string = conn.context.data.greeting
    conn.write(`${greeting} ${conn.state.name} ${bytes.length}`)
    // @ts-expect-error internal members are not in the published types
    void conn.stream
    // @ts-expect-error internal members are not in the published types
    void conn.pipedTo
    // @ts-expect-error a number is not bytes
    conn.write(123)
  },
})

// State inferred from what open returns.
const inferred = defineHandler({
  open: () => ({ count: 0 }),
  async data(conn) {
    conn.state.count++
    // @ts-expect-error count is a number
    conn.state.count = 'x'
  },
})

// @ts-expect-error open must return the declared State
defineHandler<Room>({ open: () => ({ name: 1 }) })

const asHandler: Handler<Room, Config> = typed
const conn = undefined as unknown as Connection<Room>
const room: Room = conn?.state ?? { name: '', members: 0 }

t.test('typed handlers are plain objects at run time', async t => {
  t.type(asHandler.data, 'function')
  t.type(inferred.open, 'function')
  t.equal(room.name, '')
})
