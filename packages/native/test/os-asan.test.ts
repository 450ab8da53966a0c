import { runAsanProgram } from './asan-program'

// The OS layer (selector, sockets, timers, user events) and PollerCore /
// ChannelCore know nothing of Node-API, so they are tested without Node:
// test/os/os_test.cc, built under AddressSanitizer + UBSan by test/os/Makefile,
// prints TAP version 14 and runs here as a subtest, each C++ case counting as
// one assertion. LeakSanitizer runs when the binary exits.
runAsanProgram(
  'os',
  'os_test',
  'os layer under AddressSanitizer',
  process.platform === 'linux' ? undefined : `the epoll backend and this ASan build are Linux-only (platform: ${process.platform})`,
)
