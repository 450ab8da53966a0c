// Builds the two sanitizer test programs (test/os, test/tls) as part of
// `npm run build`, so that `npm test` only runs them: compiling them inside
// a test file ate most of its 60 s budget on a loaded 2-core machine. Make
// rebuilds only what changed. A failure here is reported, not fatal: the
// test files run make again and fail with the compiler's output.
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
if (process.platform === 'linux') {
  for (const dir of ['os', 'tls']) {
    const r = spawnSync('make', ['-s', '-j2', '-C', join(here, dir), 'build'], { stdio: 'inherit' })
    if (r.status !== 0) console.warn(`warning: the ${dir} ASan test program did not build (its test will fail and show why)`)
  }
}
