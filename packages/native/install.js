'use strict'
// npm's install script for @amy/native. A prebuilt binary that loads here:
// nothing to do (no compiler needed). Otherwise build from source with
// node-gyp, saying so first, and on failure say what to install.
const { spawnSync } = require('node:child_process')
const { target, toolchainHint } = require('./load-error.js')

function prebuiltLoads() {
  try {
    require('node-gyp-build')(__dirname)
    return true
  } catch {
    return false
  }
}

if (process.env.AMY_NATIVE_BUILD_FROM_SOURCE !== '1' && prebuiltLoads()) process.exit(0)

console.error(`@amy/native: no prebuilt binary loads on ${target()}; building from source with node-gyp (needs ${toolchainHint()}).`)
// npm puts its own node-gyp on PATH for install scripts.
const result = spawnSync('node-gyp', ['rebuild'], { cwd: __dirname, stdio: 'inherit', shell: process.platform === 'win32' })
if (result.status === 0) process.exit(0)
console.error([
  `@amy/native: the source build failed${result.error ? ` (${result.error.message})` : ''}.`,
  `Install ${toolchainHint()}, then run: npm rebuild @amy/native`,
].join('\n'))
process.exit(result.status || 1)
