// How server.send/destroy find the worker that owns a connection id:
// a native registrar.has(id) per worker (what the server does) against
// asking every worker (a broadcast). Prints per-call costs; a loaded
// machine's figures are only indicative.  node bench/find-owner.mjs
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import net from 'node:net'
const require = createRequire(import.meta.url)
const { createServer } = require('@amy/server')
const { Poller, TcpListener } = require('@amy/core')

const N = 200_000
const poller = new Poller()
const listener = TcpListener.bind({ port: 0 })
const id = poller.registrar.register(listener, 1)
let t0 = process.hrtime.bigint()
let hits = 0
for (let i = 0; i < N; i++) if (poller.registrar.has(i % 2 === 0 ? id : id + 1)) hits++
const hasNs = Number(process.hrtime.bigint() - t0) / N
poller.close(); listener.close()

const threads = 2
const server = createServer({ handler: fileURLToPath(new URL('../packages/server/test/fixtures/messages.js', import.meta.url)), threads, logger: false })
const { port } = await server.listen(0)
const sock = net.connect({ port, host: '127.0.0.1' })
const connId = await new Promise(resolve => sock.once('data', d => resolve(Number(String(d).split(' ')[1]))))
sock.on('data', () => {})
const R = 5000
async function time(fn) { for (let i = 0; i < 500; i++) await fn(); const s = process.hrtime.bigint(); for (let i = 0; i < R; i++) await fn(); return Number(process.hrtime.bigint() - s) / R / 1000 }
const sendUs = await time(() => server.send(connId, 'x'))
const oneUs = await time(() => server.request({ kind: 'worker' }, { worker: 0 }))
const allUs = await time(() => server.request({ kind: 'worker' }))
console.log(`registrar.has: ${hasNs.toFixed(0)} ns per call (${hits} hits of ${N})`)
console.log(`server.send (native lookup, 1 worker asked): ${sendUs.toFixed(1)} µs per call`)
console.log(`request to 1 worker: ${oneUs.toFixed(1)} µs; to all ${threads} (what a broadcast lookup costs at least): ${allUs.toFixed(1)} µs`)
sock.destroy()
await server.close({ force: true })
