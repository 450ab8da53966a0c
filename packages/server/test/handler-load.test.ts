import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer } from '@amy/server'
import { fixture } from './helpers'

async function listenError(handler: string): Promise<Error & Record<string, unknown>> {
  const server = createServer({ handler, threads: 1, logger: false })
  try {
    await server.listen({ port: 0 })
  } catch (err) {
    return err as Error & Record<string, unknown>
  } finally {
    await server.close()
  }
  throw new Error('listen() resolved')
}

t.test('a missing handler module: ERR_HANDLER_LOAD with the path and the cause\'s code', async t => {
  const err = await listenError(fixture('not-there.js'))
  t.equal(err['code'], 'ERR_HANDLER_LOAD')
  t.equal(err['path'], fixture('not-there.js'))
  t.equal((err.cause as { code?: string }).code, 'ENOENT')
  t.match(err.message, fixture('not-there.js'))
})

t.test('a CommonJS handler with a syntax error: ERR_HANDLER_LOAD naming file:line', async t => {
  const err = await listenError(fixture('syntax-error.js'))
  t.equal(err['code'], 'ERR_HANDLER_LOAD')
  t.equal((err.cause as Error).name, 'SyntaxError')
  t.equal(err['location'], `${fixture('syntax-error.js')}:4`)
  t.match(err.message, `${fixture('syntax-error.js')}:4`)
})

t.test('an ES module handler with a syntax error: ERR_HANDLER_LOAD naming file:line', async t => {
  const err = await listenError(fixture('syntax-error.mjs'))
  t.equal(err['code'], 'ERR_HANDLER_LOAD')
  t.equal((err.cause as Error).name, 'SyntaxError')
  t.equal(err['location'], `${fixture('syntax-error.mjs')}:3`)
})

t.test('a handler that throws while loading: ERR_HANDLER_LOAD with its error as cause', async t => {
  const err = await listenError(fixture('throws-on-load.js'))
  t.equal(err['code'], 'ERR_HANDLER_LOAD')
  t.equal((err.cause as Error).message, 'config missing')
  t.equal((err.cause as { code?: string }).code, 'ECONFIG')
})

t.test('a module that exports no hooks: ERR_INVALID_HANDLER', async t => {
  const err = await listenError(fixture('no-hooks.js'))
  t.equal(err['code'], 'ERR_INVALID_HANDLER')
  t.match(err.message, /exports no handler hooks/)
})

t.test('after listen() rejects for a bad handler, the process exits on its own', async t => {
  for (const handler of ['syntax-error.js', 'no-hooks.js']) {
    const child = spawn(process.execPath, [fixture('listen-bad-handler.js'), fixture(handler)], { stdio: ['ignore', 'pipe', 'inherit'] })
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    t.teardown(() => { clearTimeout(killer); child.kill('SIGKILL') })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => child.on('exit', (c, s) => resolve([c, s])))
    clearTimeout(killer)
    t.equal(signal, null, `${handler}: exited by itself, not killed after 20 s`)
    t.equal(code, 0)
    t.match(out, /REJECTED ERR_(HANDLER_LOAD|INVALID_HANDLER)/)
  }
})
