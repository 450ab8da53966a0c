// End to end: two clients join a room on the compiled server; a line from
// one reaches the other; the stats endpoint counts them; SIGTERM stops it.
import t from 'tap'
import net from 'node:net'
import { startServer } from './helpers.js'

/** A client that collects lines; `until(pattern)` waits for one. */
function client(port: number) {
  const socket = net.connect({ host: '127.0.0.1', port })
  let seen = ''
  const waiters: (() => void)[] = []
  socket.on('data', chunk => {
    seen += chunk.toString()
    for (const w of waiters.splice(0)) w()
  })
  const until = (pattern: RegExp): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${pattern} in ${JSON.stringify(seen)}`)), 10_000)
      const check = (): void => {
        const match = pattern.exec(seen)
        if (match) {
          clearTimeout(timer)
          resolve(match[0])
        } else waiters.push(check)
      }
      check()
    })
  return { send: (line: string) => socket.write(line + '\n'), until, close: () => socket.destroy() }
}

t.test('a line in a room reaches the other member; /stats counts connections', async t => {
  const server = await startServer(t, { STATS_PORT: '0' })
  const statsUrl = await new Promise<string>((resolve, reject) => {
    const deadline = Date.now() + 10_000
    const poll = (): void => {
      const match = /stats on (http:\S+)/.exec(server.output())
      if (match) resolve(match[1]!)
      else if (Date.now() > deadline) reject(new Error('no stats line'))
      else setTimeout(poll, 20)
    }
    poll()
  })
  const ann = client(server.port)
  const bob = client(server.port)
  t.teardown(() => { ann.close(); bob.close() })
  ann.send('/nick ann')
  ann.send('/join lobby')
  await ann.until(/you joined lobby as ann/)
  bob.send('/nick bob')
  bob.send('/join lobby')
  await ann.until(/\* bob joined lobby/)
  bob.send('hello ann')
  t.equal(await ann.until(/bob: hello ann/), 'bob: hello ann')

  const stats = await (await fetch(statsUrl)).json() as { accepted: number }
  t.ok(stats.accepted >= 2, `GET /stats counts both clients as accepted (${stats.accepted})`)

  ann.close()
  bob.close()
  t.equal(await server.stop(), 0, 'exits 0 on SIGTERM')
})
