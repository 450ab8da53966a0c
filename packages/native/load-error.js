'use strict'
// The one error a user sees when the addon cannot be loaded: which binary
// was wanted, why none loaded, and the commands that fix it.

/** 'glibc' or 'musl' (Linux), undefined elsewhere. */
function libc() {
  if (process.platform !== 'linux') return undefined
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
  return report && report.header && report.header.glibcVersionRuntime ? 'glibc' : 'musl'
}

function target() {
  const c = libc()
  return `${process.platform}-${process.arch}${c ? ` (${c})` : ''}`
}

function toolchainHint() {
  switch (process.platform) {
    case 'darwin': return 'the Xcode command line tools (xcode-select --install) and python3'
    case 'linux': return libc() === 'musl'
      ? 'python3, make and g++ (Alpine: apk add python3 make g++)'
      : 'python3, make and g++ (Debian/Ubuntu: apt-get install python3 make g++; Fedora/RHEL: dnf install python3 make gcc-c++)'
    default: return 'python3, make and a C++17 compiler'
  }
}

/** Wraps the loader's failure in an Error with code ERR_NATIVE_LOAD and the way out. */
function nativeLoadError(cause) {
  const found = !/No native build was found/.test(String(cause && cause.message))
  const what = found
    ? `the native binary of @amy/native for ${target()} was found but did not load`
    : `no native binary of @amy/native fits ${target()}: no prebuilt one, and none was built from source`
  const message = [
    `${what} (Node ${process.versions.node}, Node-API ${process.versions.napi}).`,
    `  cause: ${cause && cause.message ? cause.message.split('\n')[0] : String(cause)}`,
    `To build it from source, install ${toolchainHint()}, then run:`,
    '  npm rebuild @amy/native',
    'If npm skipped its install script (npm 11 runs only approved ones):',
    '  npm install-scripts approve @amy/native && npm rebuild @amy/native',
  ].join('\n')
  const err = new Error(message, { cause })
  err.code = 'ERR_NATIVE_LOAD'
  return err
}

module.exports = { nativeLoadError, libc, target, toolchainHint }
