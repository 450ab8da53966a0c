// The soak's server process (started by soak.mjs, over an IPC channel):
// createServer with soak-handler.mjs and the limits from SOAK_CONFIG (JSON).
// Answers { type: 'probe' } with its RSS, open fds and stats(), and
// { type: 'close', timeout } with how long close() took, then exits.
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { createServer } = require('@amy/server')
const here = dirname(fileURLToPath(import.meta.url))
const config = JSON.parse(process.env.SOAK_CONFIG ?? '{}')

const server = createServer({
  handler: join(here, 'soak-handler.mjs'),
  threads: config.threads,
  maxBufferedBytes: config.maxBufferedBytes,
  stallTimeout: config.stallTimeout,
  maxConnectionsPerAddress: config.maxConnectionsPerAddress,
  handlerData: { upstream: config.upstream },
  logger: config.logLevel ?? 'warn',
})
const { port } = await server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })

// Reading /proc takes an fd: at the fd limit (the EMFILE fault) a figure is NaN for that probe.
const attempt = (read, fallback) => {
  try {
    return read()
  } catch {
    return fallback
  }
}

function probe() {
  const status = attempt(() => readFileSync('/proc/self/status', 'utf8'), '')
  const kb = key => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN)
  return { rssKiB: kb('VmRSS'), peakKiB: kb('VmHWM'), fds: attempt(() => readdirSync('/proc/self/fd').length, NaN), stats: server.stats() }
}

process.on('message', msg => {
  if (msg.type === 'probe') {
    process.send({ type: 'probe', ...probe() })
  } else if (msg.type === 'close') {
    const start = performance.now()
    void server.close({ timeout: msg.timeout }).then(() => {
      process.send({ type: 'closed', closeMs: performance.now() - start, ...probe() }, () => process.disconnect())
    })
  }
})
process.send({ type: 'listening', port, ...probe() })
