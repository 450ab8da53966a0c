import t, { type Test } from 'tap'
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'
import { createServer } from '@amy/server'
import { LineClient, fixture } from './helpers'

const SERVER_DIST = join(__dirname, '..', 'dist')

/** Two clients on a 2-worker server: both subscribe, one publishes, the other receives. */
async function roundTrip(t: Test, handler: string, sub: string, pub: string): Promise<void> {
  const server = createServer({ handler, threads: 2, logger: false })
  t.teardown(() => server.close({ force: true }))
  const { port } = await server.listen({ port: 0 })
  const a = await LineClient.connect(port)
  const b = await LineClient.connect(port)
  t.teardown(() => { a.destroy(); b.destroy() })
  t.equal(await a.request(`${sub} room`), 'subscribed')
  t.equal(await b.request(`${sub} room`), 'subscribed')
  a.send(`${pub} room hello from a`)
  await b.until(() => b.lines.includes('hello from a'))
  t.pass(`${sub}/${pub}: delivered across workers`)
}

t.test('an esbuild-bundled handler (its own copy of @amy/server/handler) works, and the bundle holds no main-thread code', async t => {
  const dir = t.testdir()
  const outfile = join(dir, 'handler.cjs')
  await build({
    entryPoints: [fixture('bundle-entry.mjs')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile,
    logLevel: 'silent', // '@amy/server/handler' resolves through the package's exports map
  })
  const bundle = readFileSync(outfile, 'utf8')
  t.notMatch(bundle, /require\(["'](piscina|pino|@amy\/core|@amy\/native)["']\)/, 'no piscina, pino or native addon in the bundle')
  t.notMatch(bundle, /amy_native|thread-stream/, 'nothing of them inlined either')
  t.ok(bundle.length < 20_000, `small: ${bundle.length} bytes`)
  await roundTrip(t, outfile, 'sub', 'pub')
  await roundTrip(t, outfile, 'oldsub', 'oldpub')
})

t.test('a handler importing a second copy of the API (another install) works', async t => {
  const dir = t.testdir()
  const copy = join(dir, 'node_modules', '@amy', 'server')
  cpSync(SERVER_DIST, join(copy, 'dist'), { recursive: true })
  const source = readFileSync(fixture('bundle-entry.mjs'), 'utf8').replace("'@amy/server/handler'", JSON.stringify(join(copy, 'dist', 'handler.js')))
  const handler = join(dir, 'handler.mjs')
  writeFileSync(handler, source)
  await roundTrip(t, handler, 'sub', 'pub')
  await roundTrip(t, handler, 'oldsub', 'oldpub')
})
