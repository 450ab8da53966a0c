import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

/**
 * Builds one of the native layer's sanitizer test programs with make
 * (test/<dir>/Makefile) and runs it as a tap subtest: it prints TAP
 * version 14, each C++ case one assertion; LeakSanitizer runs at exit.
 * Shared by os-asan.test.ts and tls-asan.test.ts.
 */
export function runAsanProgram(dir: string, binaryName: string, title: string, skip?: string): void {
  if (skip !== undefined) {
    t.pass(title, { skip })
    return
  }
  const makeDir = join(__dirname, dir)
  const binary = join(__dirname, '..', 'build-asan', binaryName)
  const build = spawnSync('make', ['-s', '-C', makeDir, 'build'], { encoding: 'utf8' })
  if (build.error || build.status !== 0) {
    t.fail(`build the ASan ${binaryName} binary`, {
      diagnostic: true,
      command: `make -s -C ${makeDir} build`,
      status: build.status,
      signal: build.signal,
      error: build.error?.message,
      output: `${build.stdout ?? ''}${build.stderr ?? ''}`,
    })
    return
  }
  t.spawn(
    binary,
    [],
    {
      env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' },
      timeout: 120_000,
    },
    title,
  )
}
