// One list of error codes: @amy/core's AMY_ERROR_CODES (with the native
// addon's), @amy/server's SERVER_ERROR_CODES, the README's table and the
// codes the C++ and TypeScript sources throw must agree, in every direction.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { AMY_ERROR_CODES } from '@amy/core'
import { SERVER_ERROR_CODES } from '@amy/server'

const root = join(__dirname, '..', '..', '..')

function files(dir: string, exts: string[]): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...files(path, exts))
    else if (exts.some(ext => name.endsWith(ext)) && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

/**
 * Every quoted "ERR_..." / 'ERR_...' string in these files, with where it
 * was seen; not the right side of `===` / `!==` (a check of a code Node
 * throws, e.g. ERR_UNKNOWN_FILE_EXTENSION, is not a code of ours).
 */
function quotedCodes(paths: string[]): Map<string, string> {
  const found = new Map<string, string>()
  for (const path of paths) {
    for (const m of readFileSync(path, 'utf8').matchAll(/(?<![=!]==\s*)["'](ERR_[A-Z0-9_]+)["']/g)) {
      if (!found.has(m[1]!)) found.set(m[1]!, relative(root, path))
    }
  }
  return found
}

const nativeFiles = [
  ...files(join(root, 'packages/native/src'), ['.cc', '.h']),
  ...files(join(root, 'packages/native'), ['.js']).filter(p => !p.includes('node_modules') && !p.includes('/build') && !p.includes('/prebuilds') && !p.includes('/test/')),
]
const coreFiles = files(join(root, 'packages/core/src'), ['.ts']).filter(p => !p.endsWith('error-codes.ts') && !p.endsWith('tls-errors.ts'))
const serverFiles = [
  ...files(join(root, 'packages/server/src'), ['.ts']).filter(p => !p.endsWith('error-codes.ts')),
  ...files(join(root, 'packages/redis/src'), ['.ts']),
]

const amy = new Set<string>(AMY_ERROR_CODES)
const server = new Set<string>(SERVER_ERROR_CODES)

t.test('the lists have no duplicates', async t => {
  t.equal(amy.size, AMY_ERROR_CODES.length, 'AMY_ERROR_CODES')
  t.equal(server.size, SERVER_ERROR_CODES.length, 'SERVER_ERROR_CODES')
})

t.test('every code the native addon and @amy/core throw is in AMY_ERROR_CODES, and every listed code is thrown', async t => {
  const thrown = new Map([...quotedCodes(nativeFiles), ...quotedCodes(coreFiles)])
  t.ok(thrown.size > 10, `found ${thrown.size} codes in the sources (the scan works)`)
  for (const [code, where] of thrown) t.ok(amy.has(code), `${code} (${where}) is listed`)
  for (const code of amy) t.ok(thrown.has(code), `${code} is thrown somewhere in native or core`)
})

t.test('every code @amy/server (and its adapters) throw is listed, and every SERVER code is thrown', async t => {
  const thrown = quotedCodes(serverFiles)
  for (const [code, where] of thrown) t.ok(server.has(code) || amy.has(code), `${code} (${where}) is listed`)
  for (const code of server) t.ok(thrown.has(code), `${code} is thrown somewhere in server or redis`)
})

t.test("the README's table lists exactly the codes of both lists", async t => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('\n## ', readme.indexOf('### Errors')))
  const rows = [...section.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \|/gm)].map(m => m[1]!)
  t.equal(new Set(rows).size, rows.length, 'no code twice in the table')
  const documented = new Set(rows)
  for (const code of new Set([...amy, ...server])) t.ok(documented.has(code), `${code} is in the README table`)
  for (const code of documented) t.ok(amy.has(code) || server.has(code), `README's ${code} is in a list`)
})
