import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

// The OS layer (selector, sockets, timers, user events) and PollerCore /
// ChannelCore know nothing of Node-API, so they are tested without Node:
// test/os/os_test.cc, built under AddressSanitizer + UBSan by test/os/Makefile,
// prints TAP version 14 and runs here as a subtest, each C++ case counting as
// one assertion. LeakSanitizer runs when the binary exits.

// tap runs .ts tests as CommonJS (ts-node), so __dirname is this directory.
const makeDir = join(__dirname, 'os')
const binary = join(__dirname, '..', 'build-asan', 'os_test')

if (process.platform !== 'linux') {
  t.pass('os layer under AddressSanitizer', {
    skip: `the epoll backend and this ASan build are Linux-only (platform: ${process.platform})`,
  })
} else {
  const build = spawnSync('make', ['-s', '-C', makeDir, 'build'], { encoding: 'utf8' })
  if (build.error || build.status !== 0) {
    t.fail('build the ASan os_test binary', {
      diagnostic: true,
      command: `make -s -C ${makeDir} build`,
      status: build.status,
      signal: build.signal,
      error: build.error?.message,
      output: `${build.stdout ?? ''}${build.stderr ?? ''}`,
    })
  } else {
    t.spawn(
      binary,
      [],
      {
        env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' },
        timeout: 120_000,
      },
      'os layer under AddressSanitizer',
    )
  }
}
