// Small writes are copied into a per-connection write tail (connection.ts):
// order and content must survive partial writes, full tails and a slow reader.
import t from 'tap'
import net from 'node:net'
import { fixture, started } from './helpers'

/** Connects, sends `setup` (then `command` once subscribed), reads nothing for `pauseMs`, and collects `count` lines. */
function collectLines(port: number, setup: string[], command: string | undefined, count: number, pauseMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const lines: string[] = []
    let rest = ''
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      for (const line of setup) s.write(line + '\n')
    })
    s.setEncoding('utf8')
    s.on('data', (chunk: string) => {
      rest += chunk
      const parts = rest.split('\n')
      rest = parts.pop()!
      for (const p of parts) {
        if (p === 'subscribed') {
          if (command !== undefined) s.write(command + '\n')
          continue
        }
        lines.push(p)
      }
      if (lines.length >= count) {
        s.destroy()
        resolve(lines)
      }
    })
    s.on('error', reject)
    // A slow reader: the server's socket buffer fills and its writes come back short.
    if (pauseMs > 0) {
      s.pause()
      setTimeout(() => s.resume(), pauseMs)
    }
  })
}

const numbered = (n: number): string[] => Array.from({ length: n }, (_, i) => String(i))

t.test('100000 small writes in one hook reach a slow reader complete and in order', async t => {
  const [, port] = await started(t, { handler: fixture('small-writes.js'), threads: 1 })
  const lines = await collectLines(port, ['lines 100000'], undefined, 100000, 300)
  t.same(lines, numbered(100000))
})

t.test('50000 small publishes reach every subscriber complete and in order', async t => {
  const [server, port] = await started(t, { handler: fixture('small-writes.js'), threads: 2 })
  const readers = [0, 1, 2].map(() => collectLines(port, ['sub'], undefined, 50000, 300))
  for (let n = 0; n < 3; n = await server.subscribers('all')) await new Promise(resolve => setTimeout(resolve, 20))
  const publisher = collectLines(port, ['sub'], 'pub 50000', 50000, 0)
  for (const lines of await Promise.all([...readers, publisher])) t.same(lines, numbered(50000))
})

t.test('published lines keep their order against direct writes, a second topic and an unsubscribe', async t => {
  // One worker: every member is served from the same topic feeds.
  const [server, port] = await started(t, { handler: fixture('small-writes.js'), threads: 1 })
  const n = 3000
  const direct = collectLines(port, ['as direct', 'sub'], undefined, 2 * n + 2, 0)
  const both = collectLines(port, ['sub2'], undefined, 2 * n + 1, 0)
  const deadline = Date.now() + 10_000
  while ((await server.subscribers('all')) < 2) {
    if (Date.now() > deadline) throw new Error('the two subscriptions did not arrive within 10 s')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  const publisher = collectLines(port, ['sub'], 'mix ' + n, 1, 0)
  const ps = Array.from({ length: n }, (_, i) => `p${i}`)
  t.same((await direct).slice(1), [...ps.flatMap((p, i) => [p, `d${i}`]), 'end'], 'one topic: each published line before the direct write that followed it, none after it left')
  t.same(await both, [...ps.flatMap((p, i) => [p, `o${i}`]), 'gone'], 'two topics: in the order of publishing')
  t.same(await publisher, ['gone'], 'the publisher gets none of its own lines')
})
