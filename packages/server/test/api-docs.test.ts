// The API reference (docs/api, TypeDoc + typedoc-plugin-markdown) documents
// every public symbol of @amy/core and @amy/server (TypeDoc's validation
// turns an undocumented export into a failure) and is up to date: the
// committed pages equal a fresh `npm run docs`.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'

const root = join(__dirname, '..', '..', '..')

function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      if (statSync(path).isDirectory()) walk(path)
      else out.set(relative(dir, path), readFileSync(path, 'utf8'))
    }
  }
  walk(dir)
  return out
}

t.test('typedoc passes its validation and docs/api is what it generates', async t => {
  const out = mkdtempSync(join(tmpdir(), 'amy-api-docs-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const typedoc = join(root, 'node_modules', '.bin', 'typedoc')
  const run = spawnSync(typedoc, ['--out', out], { cwd: root, encoding: 'utf8', timeout: 120_000 })
  t.equal(run.status, 0, `typedoc succeeded (no undocumented export):\n${run.stdout}${run.stderr}`)
  const fresh = tree(out)
  const committed = tree(join(root, 'docs', 'api'))
  t.ok(fresh.size > 20, `${fresh.size} pages generated`)
  t.same([...committed.keys()].sort(), [...fresh.keys()].sort(), 'the same pages (run npm run docs and commit docs/api)')
  for (const [path, text] of fresh) if (committed.get(path) !== text) t.fail(`docs/api/${path} is stale: run npm run docs`)
})
