// The chat example's handler, plus a probe for flood-memory.mjs --probe:
// every 100 ms each worker appends one JSON line to $PROBE_FILE with its
// isolate's heap (used, committed), external and ArrayBuffer memory, the
// queued bytes of its connections (sum, largest), its open connections and
// the garbage collections since the last line (kind, ms).
import { appendFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { PerformanceObserver } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const chatModule = require(join(root, 'examples/chat/dist/handler.js'))
const chat = chatModule.default ?? chatModule
const conns = new Set()
const gcs = []
const GC_KIND = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weak', 16: 'minor-ms' }

export default {
  ...chat,
  setup(context) {
    const file = process.env.PROBE_FILE
    if (file) {
      new PerformanceObserver(list => {
        for (const e of list.getEntries()) gcs.push(`${GC_KIND[e.detail?.kind] ?? e.detail?.kind}:${e.duration.toFixed(1)}`)
      }).observe({ entryTypes: ['gc'] })
      setInterval(() => {
        const m = process.memoryUsage()
        let queued = 0
        let largest = 0
        for (const c of conns) {
          queued += c.bufferedBytes
          largest = Math.max(largest, c.bufferedBytes)
        }
        const MiB = x => Math.round((x / 2 ** 20) * 10) / 10
        appendFileSync(file, JSON.stringify({ t: Date.now(), w: context.worker, rss: MiB(m.rss), heapUsed: MiB(m.heapUsed), heapTotal: MiB(m.heapTotal), external: MiB(m.external), arrayBuffers: MiB(m.arrayBuffers), queued: MiB(queued), largest: MiB(largest), conns: conns.size, gc: gcs.splice(0), spaces: Object.fromEntries(getHeapSpaceStatistics().filter(x => x.space_size > 0).map(x => [x.space_name.replace('_space', ''), MiB(x.space_size)])) }) + '\n')
      }, 100).unref()
    }
    return chat.setup?.(context)
  },
  open(conn) {
    conns.add(conn)
    return chat.open(conn)
  },
  close(conn, err) {
    conns.delete(conn)
    return chat.close(conn, err)
  },
}
