// create-amy without npm: what it writes for each template, the names and
// directories it refuses (with codes), and its command line, including the
// prompt on a terminal.
import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create, nameProblem, TEMPLATE_NAMES, CreateAmyError } from 'create-amy'

const root = mkdtempSync(join(tmpdir(), 'create-amy-test-'))
t.teardown(() => rmSync(root, { recursive: true, force: true }))
const cli = join(__dirname, '..', 'dist', 'cli.js')
const repoVersion = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'server', 'package.json'), 'utf8')) as { version: string }).version
let n = 0
const fresh = (): string => join(root, `p${n++}`)

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap(e => (statSync(join(dir, e)).isDirectory() ? walk(join(dir, e)).map(p => `${e}/${p}`) : [e])).sort()
}

for (const template of TEMPLATE_NAMES) {
  t.test(`template ${template}: the project's files, every placeholder filled, @amy/* at the repo's version`, async t => {
    const dir = join(fresh(), 'my-server')
    const created = create({ directory: dir, template })
    t.equal(created.name, 'my-server', 'name from the directory')
    t.same(walk(dir), ['.gitignore', 'README.md', 'package.json', 'src/handler.ts', 'src/main.ts', 'test/helpers.ts', 'test/server.test.ts', 'tsconfig.json'])
    for (const file of walk(dir)) t.notMatch(readFileSync(join(dir, file), 'utf8'), /\{\{\w+\}\}/, `${file}: no placeholder left`)
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    t.equal(pkg.type, 'module', 'ESM')
    t.equal(pkg.dependencies['@amy/server'], `^${repoVersion}`, '@amy/server at the released version')
    t.match(pkg.scripts, { start: /tsc && node dist\/main\.js/, dev: /--import tsx src\/main\.ts/, test: /tap/ })
    t.equal(JSON.parse(readFileSync(join(dir, 'tsconfig.json'), 'utf8')).compilerOptions.strict, true, 'strict')
    t.match(readFileSync(join(dir, 'src/main.ts'), 'utf8'), /SIGTERM/, 'closes on SIGTERM')
    t.match(readFileSync(join(dir, 'src/handler.ts'), 'utf8'), /from '@amy\/server\/handler'/, 'the handler imports the lean entry')
  })
}

t.test('--docker adds a Dockerfile and .dockerignore, and the README lists them', async t => {
  const dir = join(fresh(), 'boxed')
  create({ directory: dir, template: 'proxy', docker: true })
  t.ok(existsSync(join(dir, 'Dockerfile')) && existsSync(join(dir, '.dockerignore')))
  t.match(readFileSync(join(dir, 'Dockerfile'), 'utf8'), /EXPOSE 7002/)
  t.match(readFileSync(join(dir, 'README.md'), 'utf8'), /`Dockerfile`/)
})

t.test('a non-empty directory is refused with ERR_DIR_NOT_EMPTY unless force; one with only .git is fine', async t => {
  const dir = fresh()
  mkdirSync(dir)
  writeFileSync(join(dir, 'notes.txt'), 'mine')
  t.throws(() => create({ directory: dir }), { code: 'ERR_DIR_NOT_EMPTY' })
  t.notOk(existsSync(join(dir, 'package.json')), 'nothing written')
  create({ directory: dir, force: true, name: 'forced' })
  t.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine', 'other files kept')
  t.ok(existsSync(join(dir, 'package.json')))
  const withGit = fresh()
  mkdirSync(join(withGit, '.git'), { recursive: true })
  t.doesNotThrow(() => create({ directory: withGit, name: 'with-git' }))
})

t.test('names npm would refuse are ERR_INVALID_NAME, with the reason', async t => {
  for (const bad of ['', 'My-Server', '.hidden', '_private', 'has space', 'a/b', '@scope/', 'http', 'node_modules', 'x'.repeat(215), 'caf\u00e9', 'wow!']) {
    t.ok(nameProblem(bad), `${JSON.stringify(bad.slice(0, 20))}: ${nameProblem(bad)}`)
    t.throws(() => create({ directory: fresh(), name: bad }), { code: 'ERR_INVALID_NAME' })
  }
  for (const good of ['my-server', '@me/my-server', 'a.b_c-d', 'x'.repeat(214)]) t.equal(nameProblem(good), undefined, good.slice(0, 20))
})

t.test('an unknown template is ERR_UNKNOWN_TEMPLATE naming the choices', async t => {
  t.throws(() => create({ directory: fresh(), template: 'http' }), new CreateAmyError('ERR_UNKNOWN_TEMPLATE', 'unknown template "http": choose one of echo, chat, proxy'))
})

t.test('the CLI: --yes takes the defaults, errors exit 1 with their code, --help prints usage', async t => {
  const cwd = fresh()
  mkdirSync(cwd)
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  const ok = run('--yes')
  t.equal(ok.status, 0, ok.stderr)
  t.match(ok.stdout, /Created my-amy-server \(template echo\)/)
  t.ok(existsSync(join(cwd, 'my-amy-server/src/handler.ts')))
  const again = run('--yes')
  t.equal(again.status, 1)
  t.match(again.stderr, /is not empty .*--force.*\(ERR_DIR_NOT_EMPTY\)/)
  t.match(run('Bad', '-y').stderr, /"Bad" cannot be an npm package name: it has capital letters.*\(ERR_INVALID_NAME\)/)
  t.match(run('x', '--template', 'nope', '-y').stderr, /\(ERR_UNKNOWN_TEMPLATE\)/)
  t.match(run('--frobnicate').stderr, /Unknown option '--frobnicate'[\s\S]*\(ERR_INVALID_ARG\)/)
  t.match(run('a', 'b', '-y').stderr, /one directory, not 2/)
  t.match(run('--help').stdout, /Usage: npm create amy@latest/)
  t.match(run('chat-x', '-t', 'chat', '--name', '@me/chat', '-y').stdout, /Created @me\/chat \(template chat\)/)
})

// script(1) gives the CLI a terminal; the answers arrive on it as typed.
const hasScript = spawnSync('script', ['--version']).status === 0
t.test('on a terminal it asks, and Enter takes every default', { skip: hasScript ? false : 'script(1) from util-linux is not installed' }, async t => {
  const cwd = fresh()
  mkdirSync(cwd)
  const result = spawnSync('script', ['-qfec', `${process.execPath} ${cli}`, '/dev/null'], { cwd, input: '\n\n\n', encoding: 'utf8', timeout: 30_000 })
  t.equal(result.status, 0, result.stdout + result.stderr)
  t.match(result.stdout, /Project directory \(my-amy-server\)/)
  t.match(result.stdout, /Template \(echo\)/)
  t.match(result.stdout, /Add a Dockerfile\? \(y\/N\)/)
  t.ok(existsSync(join(cwd, 'my-amy-server/src/main.ts')), 'created with the defaults')
  t.notOk(existsSync(join(cwd, 'my-amy-server/Dockerfile')), 'no Dockerfile by default')
})

t.test('on a terminal, answers choose the directory, the template by number, and a Dockerfile', { skip: hasScript ? false : 'script(1) is not installed' }, async t => {
  const cwd = fresh()
  mkdirSync(cwd)
  const result = spawnSync('script', ['-qfec', `${process.execPath} ${cli}`, '/dev/null'], { cwd, input: 'rooms\n2\ny\n', encoding: 'utf8', timeout: 30_000 })
  t.equal(result.status, 0, result.stdout + result.stderr)
  t.match(result.stdout, /Created rooms \(template chat\)/)
  t.ok(existsSync(join(cwd, 'rooms/Dockerfile')))
})
