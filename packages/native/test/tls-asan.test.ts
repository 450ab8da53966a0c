import { runAsanProgram } from './asan-program'

// The TLS layer (src/tls: contexts, sessions over non-blocking fds) knows
// nothing of Node-API: test/tls/tls_test.cc drives both ends of real
// handshakes, transfers and attacks over socketpairs and loopback TCP,
// built under AddressSanitizer + UBSan against Debian's libssl-dev
// (OpenSSL 3, like Node's) by test/tls/Makefile. LeakSanitizer runs at
// exit: no SSL*, SSL_CTX*, BIO* or fd may be left.
runAsanProgram(
  'tls',
  'tls_test',
  'TLS layer under AddressSanitizer',
  process.platform === 'linux' ? undefined : `this ASan build is Linux-only (platform: ${process.platform})`,
)
