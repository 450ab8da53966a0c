// server.listen() like net.Server.listen: (port, host?) or options, Unix
// sockets, host names, coded errors, and a failed first listen that lets
// the process exit.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { lookup } from 'node:dns/promises'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type Server } from '@amy/server'
import { fixture } from './helpers'

function server(t: Test, threads = 1): Server {
  const s = createServer({ handler: fixture('echo.js'), threads })
  t.teardown(() => s.close({ force: true }))
  return s
}

/** Sends one line over `options` (TCP or a Unix path) and resolves with the echo. */
function echo(options: net.NetConnectOpts, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(options, () => s.end(text))
    let got = ''
    s.setEncoding('utf8')
    s.on('data', (d: string) => { got += d })
    s.on('end', () => resolve(got))
    s.on('error', reject)
  })
}

t.test('listen(port) and listen(port, host) as in net.Server', async t => {
  const s = server(t)
  const a = await s.listen(0)
  t.equal(a.address, '127.0.0.1', 'the default host is loopback')
  t.ok(a.port > 0)
  t.equal(await echo({ port: a.port, host: '127.0.0.1' }, 'one'), 'one')
  const b = await s.listen(0, '::1')
  t.equal(b.family, 'IPv6')
  t.equal(await echo({ port: b.port, host: '::1' }, 'two'), 'two')
  const c = await s.listen()
  t.ok(c.port > 0, 'listen() with no argument picks a free port on loopback')
})

t.test('host names resolve with dns.lookup: the first address is listened on', async t => {
  const s = server(t)
  const expected = await lookup('localhost')
  const a = await s.listen({ host: 'localhost', port: 0 })
  t.equal(a.address, expected.address, `localhost -> ${expected.address}`)
  t.equal(await echo({ port: a.port, host: expected.address }, 'by name'), 'by name')
  // A name only /etc/hosts knows (the machine's host name resolves there on
  // most systems; skipped where it does not).
  const hostname = (await import('node:os')).hostname()
  const found = await lookup(hostname).catch(() => undefined)
  if (found && (found.address === '127.0.0.1' || found.address === '::1')) {
    const b = await s.listen(0, hostname)
    t.equal(b.address, found.address, `${hostname} -> ${found.address}`)
  } else {
    t.comment(`${hostname} does not resolve to loopback here; not tested`)
  }
})

t.test('listen({ path }) serves a Unix socket with the same workers; close() removes the file', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'amy-listen-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'echo.sock')
  const s = createServer({ handler: fixture('echo.js'), threads: 2 })
  t.teardown(() => s.close({ force: true }))
  const address = await s.listen({ path })
  t.same(address, { path, family: 'Unix' })
  const tcp = await s.listen(0)
  const replies = await Promise.all(Array.from({ length: 4 }, (_, i) => echo({ path }, `unix ${i}`)))
  t.same(replies, ['unix 0', 'unix 1', 'unix 2', 'unix 3'])
  t.equal(await echo({ port: tcp.port, host: '127.0.0.1' }, 'tcp'), 'tcp', 'TCP next to it')
  t.same(s.stats().workers.map(w => w.opened > 0), [true, true], 'both workers served')
  t.same(s.addresses(), [address, tcp])
  await s.close()
  t.notOk(existsSync(path), 'the socket file is gone after close()')
})

t.test('listen({ path }) with an abstract name (Linux)', { skip: process.platform !== 'linux' && 'Linux only' }, async t => {
  const s = server(t)
  // Node 20's node:net (libuv < 1.48) pads abstract names to 108 bytes.
  const [major, minor] = process.versions.uv.split('.').map(Number) as [number, number]
  const base = `\0amy-listen-${process.pid}`
  const path = major > 1 || minor >= 48 ? base : base.padEnd(108, '\0')
  const address = await s.listen({ path })
  t.equal(address.path, path)
  t.equal(await echo({ path }, 'abstract'), 'abstract')
})

t.test('bad listen arguments are coded errors, and start nothing', async t => {
  const s = server(t)
  const cases: Array<[string, () => Promise<unknown>, string]> = [
    ['an unknown option', () => s.listen({ prot: 7000 } as never), 'ERR_UNKNOWN_OPTION'],
    ['a string port', () => s.listen('7000' as never), 'ERR_INVALID_ARG_TYPE'],
    ['a port out of range', () => s.listen(70000), 'ERR_INVALID_ARG_VALUE'],
    ['a fractional port', () => s.listen(1.5), 'ERR_INVALID_ARG_VALUE'],
    ['a negative port', () => s.listen({ port: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['a host that is not a string', () => s.listen(0, 42 as never), 'ERR_INVALID_ARG_TYPE'],
    ['an empty host', () => s.listen(0, ''), 'ERR_INVALID_ARG_VALUE'],
    ['path with port', () => s.listen({ path: '/tmp/x.sock', port: 1 }), 'ERR_INVALID_ARG_VALUE'],
    ['path with host', () => s.listen({ path: '/tmp/x.sock', host: '::1' }), 'ERR_INVALID_ARG_VALUE'],
    ['an empty path', () => s.listen({ path: '' }), 'ERR_INVALID_ARG_VALUE'],
    ['a path that is not a string', () => s.listen({ path: 1 as never }), 'ERR_INVALID_ARG_TYPE'],
    ['a backlog out of range', () => s.listen({ port: 0, backlog: -1 }), 'ERR_INVALID_ARG_VALUE'],
    ['reusePort not a boolean', () => s.listen({ port: 0, reusePort: 'yes' as never }), 'ERR_INVALID_ARG_TYPE'],
    ['options null', () => s.listen(null as never), 'ERR_INVALID_ARG_TYPE'],
  ]
  for (const [what, call, code] of cases) await t.rejects(call(), { code }, what)
  t.equal(s.listening, false, 'nothing listens')
  t.same(s.stats().workers.map(w => w.opened), [0], 'and it still works afterwards')
  const ok = await s.listen(0)
  t.equal(await echo({ port: ok.port, host: '127.0.0.1' }, 'fine'), 'fine')
})

t.test('EADDRINUSE names the address it failed on', async t => {
  const taken = net.createServer()
  t.teardown(() => taken.close())
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
  const { port } = taken.address() as net.AddressInfo
  const s = server(t)
  await s.listen(0)
  const err = (await s.listen(port).catch((e: unknown) => e)) as NodeJS.ErrnoException & { address?: string; port?: number }
  t.equal(err.code, 'EADDRINUSE')
  t.equal(err.syscall, 'bind')
  t.match(err.message, `127.0.0.1:${port}`, 'the message names host:port')
  t.equal(err.address, '127.0.0.1')
  t.equal(err.port, port)
})

/** Runs a fixture program; resolves with [exit code, stdout] once it exits, or rejects after `ms`. */
function runUntilExit(t: Test, args: string[], ms: number): Promise<[number | null, string]> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still running after ${ms} ms; output: ${out}`)), ms)
    child.on('exit', code => { clearTimeout(timer); resolve([code, out]) })
  })
}

t.test('a failed first listen (address in use) shuts the workers down: the process exits by itself', async t => {
  const taken = net.createServer()
  t.teardown(() => taken.close())
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
  const { port } = taken.address() as net.AddressInfo
  const [code, out] = await runUntilExit(t, [fixture('listen-taken.js'), String(port)], 20_000)
  t.equal(out.trim(), 'listen failed: EADDRINUSE')
  t.equal(code, 0)
})

t.test('a failed first listen (handler does not load) lets the process exit too', async t => {
  const [code, out] = await runUntilExit(t, [fixture('listen-taken.js'), '0', 'not-there.js'], 20_000)
  t.match(out.trim(), /^listen failed: /)
  t.equal(code, 0)
})

t.test('after a failed first listen the server is closed: listen again is ERR_SERVER_CLOSED', async t => {
  const taken = net.createServer()
  t.teardown(() => taken.close())
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
  const { port } = taken.address() as net.AddressInfo
  const s = server(t)
  await t.rejects(s.listen(port), { code: 'EADDRINUSE' })
  await t.rejects(s.listen(0), { code: 'ERR_SERVER_CLOSED' })
})
