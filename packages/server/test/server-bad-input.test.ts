// Bad input to every public function of Server (and createServer) on the main thread, table-
// driven: wrong types, out-of-range numbers, unknown options, a closed
// server, worker-only functions called on the main thread. Each must be an
// Error with a documented code (SERVER_ERROR_CODES), thrown by the
// synchronous functions and rejected by the async ones; never a crash, a
// hang or a silent default. The server still works afterwards.
import t, { type Test } from 'tap'
import { connect, createServer, publish, SERVER_ERROR_CODES, type Server } from '@amy/server'
import { fixture } from './helpers'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const bad = <T>(value: unknown): T => value as T
const certDir = join(__dirname, '..', '..', 'native', 'test', 'fixtures', 'tls')
const tlsKey = readFileSync(join(certDir, 'server.key'))
const tlsCert = readFileSync(join(certDir, 'server.crt'))
const handler = fixture('messages.js')

type Case = [what: string, call: () => unknown, code: string]

async function check(t: Test, cases: Case[]): Promise<void> {
  for (const [what, call, code] of cases) {
    let thrown: unknown
    try {
      const result = call()
      if (result instanceof Promise) await result
    } catch (err) {
      thrown = err
    }
    t.ok(thrown instanceof Error, `${what}: an Error`)
    t.equal((thrown as { code?: unknown })?.code, code, `${what}: ${code}`)
    t.ok((SERVER_ERROR_CODES as readonly string[]).includes(code), `${code} is a documented code`)
  }
}

t.test('createServer options', async t => {
  const make = (options: unknown) => () => createServer(bad({ handler, logger: false, ...(options as object) }))
  await check(t, [
    ['no options', () => createServer(bad(undefined)), 'ERR_INVALID_ARG_TYPE'],
    ['no handler', () => createServer(bad({})), 'ERR_INVALID_ARG_TYPE'],
    ['handler a number', make({ handler: 42 }), 'ERR_INVALID_ARG_TYPE'],
    ['an unknown option (typo)', make({ thread: 2 }), 'ERR_UNKNOWN_OPTION'],
    ['threads 0', make({ threads: 0 }), 'ERR_INVALID_ARG_VALUE'],
    ['threads a string', make({ threads: '2' }), 'ERR_INVALID_ARG_TYPE'],
    ['threads 1.5', make({ threads: 1.5 }), 'ERR_INVALID_ARG_VALUE'],
    ['maxConnections -1', make({ maxConnections: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['highWaterMark 0', make({ highWaterMark: 0 }), 'ERR_INVALID_ARG_VALUE'],
    ['maxBufferedBytes below highWaterMark', make({ highWaterMark: 10, maxBufferedBytes: 5 }), 'ERR_INVALID_ARG_VALUE'],
    ['idleTimeout -1', make({ idleTimeout: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['idleTimeout NaN', make({ idleTimeout: NaN }), 'ERR_INVALID_ARG_VALUE'],
    ['allowHalfOpen "yes" (was silently false)', make({ allowHalfOpen: 'yes' }), 'ERR_INVALID_ARG_TYPE'],
    ['signal not an AbortSignal', make({ signal: {} }), 'ERR_INVALID_ARG_TYPE'],
    ['logger an unknown level', make({ logger: 'loud' }), 'ERR_INVALID_ARG_VALUE'],
    ['handlerData a function', make({ handlerData: () => 1 }), 'ERR_INVALID_ARG_VALUE'],
    ['pubsub not an adapter', make({ pubsub: {} }), 'ERR_INVALID_ARG_TYPE'],
    ['stallTimeout 100', make({ stallTimeout: 100 }), 'ERR_INVALID_ARG_VALUE'],
    ['setupTimeout -1', make({ setupTimeout: -1 }), 'ERR_INVALID_ARG_VALUE'],
  ])
})

t.test('Server methods', async t => {
  const server: Server = createServer({ handler, threads: 1, logger: false })
  t.teardown(() => server.close({ force: true }))
  await server.listen(0)
  await check(t, [
    ['listen a string port', () => server.listen(bad('80')), 'ERR_INVALID_ARG_TYPE'],
    ['listen an unknown option', () => server.listen(bad({ prot: 1 })), 'ERR_UNKNOWN_OPTION'],
    ['close("now")', () => server.close(bad('now')), 'ERR_INVALID_ARG_TYPE'],
    ['close timeout -1', () => server.close({ timeout: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['close timeout NaN', () => server.close({ timeout: NaN }), 'ERR_INVALID_ARG_VALUE'],
    ['close force "yes"', () => server.close({ force: bad('yes') }), 'ERR_INVALID_ARG_TYPE'],
    ['close an unknown option', () => server.close(bad({ grace: 1 })), 'ERR_UNKNOWN_OPTION'],
    ['publish a number topic', () => server.publish(bad(42), 'x'), 'ERR_INVALID_ARG_TYPE'],
    ['publish an empty topic', () => server.publish('', 'x'), 'ERR_INVALID_ARG_VALUE'],
    ['publish a topic over 65535 bytes', () => server.publish('t'.repeat(70_000), 'x'), 'ERR_INVALID_ARG_VALUE'],
    ['publish null', () => server.publish('t', bad(null)), 'ERR_INVALID_ARG_TYPE'],
    ['publish a number', () => server.publish('t', bad(123)), 'ERR_INVALID_ARG_TYPE'],
    ['publish an ArrayBuffer', () => server.publish('t', bad(new ArrayBuffer(4))), 'ERR_INVALID_ARG_TYPE'],
    ['send a string id', () => server.send(bad('1'), 'x'), 'ERR_INVALID_ARG_TYPE'],
    ['send id 0', () => server.send(0, 'x'), 'ERR_INVALID_ARG_VALUE'],
    ['send id 1.5', () => server.send(1.5, 'x'), 'ERR_INVALID_ARG_VALUE'],
    ['send null bytes', () => server.send(1, bad(null)), 'ERR_INVALID_ARG_TYPE'],
    ['send an object', () => server.send(1, bad({})), 'ERR_INVALID_ARG_TYPE'],
    ['destroy a string id', () => server.destroy(bad('1')), 'ERR_INVALID_ARG_TYPE'],
    ['destroy id -1', () => server.destroy(-1), 'ERR_INVALID_ARG_VALUE'],
    ['request to worker 5 of 1', () => server.request({}, { worker: 5 }), 'ERR_INVALID_ARG_VALUE'],
    ['request worker "0"', () => server.request({}, { worker: bad('0') }), 'ERR_INVALID_ARG_TYPE'],
    ['request options null', () => server.request({}, bad(null)), 'ERR_INVALID_ARG_TYPE'],
    ['request an unknown option', () => server.request({}, bad({ w: 0 })), 'ERR_UNKNOWN_OPTION'],
    ['request a Symbol (not cloneable)', () => server.request(Symbol('x'), { worker: 0 }), 'ERR_INVALID_ARG_VALUE'],
    ['broadcast a function', () => server.broadcast(() => 1), 'ERR_INVALID_ARG_VALUE'],
    ['subscribers of a number', () => server.subscribers(bad(42)), 'ERR_INVALID_ARG_TYPE'],
    ['subscribers of ""', () => server.subscribers(''), 'ERR_INVALID_ARG_VALUE'],
    ['publish() (a worker function) on the main thread', () => publish('t', 'x'), 'ERR_NOT_IN_WORKER'],
    ['connect() (a worker function) on the main thread', () => connect({ port: 1 }), 'ERR_NOT_IN_WORKER'],
    ['listen tls without cert', () => server.listen(bad<{ port: number }>({ port: 0, tls: { key: 'k' } })), 'ERR_INVALID_ARG_VALUE'],
    ['listen tls with an unknown option', () => server.listen(bad<{ port: number }>({ port: 0, tls: { key: 'k', cert: 'c', sniCallback: 1 } })), 'ERR_UNKNOWN_OPTION'],
    ['listen tls not an object', () => server.listen(bad<{ port: number }>({ port: 0, tls: 'yes' })), 'ERR_INVALID_ARG_TYPE'],
    ['listen tls handshakeTimeout -1', () => server.listen({ port: 0, tls: { key: 'k', cert: 'c', handshakeTimeout: -1 } }), 'ERR_INVALID_ARG_VALUE'],
    ['setSecureContext without a TLS address', () => server.setSecureContext({ key: tlsKey, cert: tlsCert }), 'ERR_NO_TLS_LISTENER'],
  ])
  t.equal(server.listening, true, 'none of it closed the server')
  t.equal(await server.request({ kind: 'worker' }, { worker: 0 }), 0, 'and the worker still answers')
  await server.close()
  await check(t, [
    ['listen after close', () => server.listen(0), 'ERR_SERVER_CLOSED'],
    ['send after close', () => server.send(1, 'x'), 'ERR_SERVER_CLOSED'],
    ['destroy after close', () => server.destroy(1), 'ERR_SERVER_CLOSED'],
    ['request after close', () => server.request({}), 'ERR_SERVER_CLOSED'],
    ['broadcast after close', () => server.broadcast({}), 'ERR_SERVER_CLOSED'],
    ['subscribers after close', () => server.subscribers('t'), 'ERR_SERVER_CLOSED'],
  ])
})
