#!/usr/bin/env node
// Checks that each prebuilt binary loads where its name says it does, from
// its ELF headers alone (binutils' readelf; no need to run the target):
//   - the machine matches the folder's arch (x64 → x86-64, arm64 → AArch64);
//   - glibc builds need no symbol version newer than GLIBC_2.28 (RHEL 8,
//     Debian 10, Ubuntu 20.04: the oldest glibc Node 20 itself runs on), and
//     no libstdc++ at all (no GLIBCXX_/CXXABI_ versions: the C++ runtime is
//     linked in), so the user's libstdc++ version cannot matter;
//   - musl builds reference no glibc versions;
//   - shared libraries needed are only the C library's own.
//
// Usage: node scripts/check-prebuilds.mjs [prebuilds-dir]   (exit 1 on any problem)
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, dirname, basename } from 'node:path'
import { fileURLToPath } from 'node:url'

export const MAX_GLIBC = [2, 28]
const MACHINE = { x64: 'Advanced Micro Devices X86-64', arm64: 'AArch64' }
const GLIBC_LIBS = new Set(['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'librt.so.1'])
const MUSL_LIBS = new Set(['libc.so'])

const readelf = (args, file) => execFileSync('readelf', [...args, file], { encoding: 'utf8', maxBuffer: 64 << 20 })

function compareVersion(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** What one binary needs, read from its ELF headers. */
export function inspect(file) {
  const machine = /Machine:\s+(.+)/.exec(readelf(['-h', '-W'], file))?.[1]?.trim()
  const needed = [...readelf(['-d', '-W'], file).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map(m => m[1])
  const versions = new Set(readelf(['--version-info', '-W'], file).match(/\b(GLIBC|GLIBCXX|CXXABI)_[0-9.]+\b/g) ?? [])
  const glibc = [...versions].filter(v => v.startsWith('GLIBC_')).map(v => v.slice(6).split('.').map(Number))
  const newestGlibc = glibc.sort(compareVersion).at(-1)
  return { machine, needed, versions: [...versions].sort(), newestGlibc: newestGlibc?.join('.') }
}

/** Problems of the binary at prebuilds/<platform>-<arch>/<name>.node; [] when it is fine. */
export function checkPrebuild(file) {
  const arch = basename(dirname(file)).split('-')[1]
  const libc = /\.(glibc|musl)\./.exec(basename(file))?.[1]
  const info = inspect(file)
  const problems = []
  if (info.machine !== MACHINE[arch]) problems.push(`machine is ${info.machine}, expected ${MACHINE[arch]} for ${arch}`)
  if (libc === undefined) problems.push('no libc tag in the file name (.glibc. or .musl.): node-gyp-build would load it on either libc')
  const cxx = info.versions.filter(v => !v.startsWith('GLIBC_'))
  if (cxx.length > 0) problems.push(`needs the system's libstdc++: ${cxx.join(', ')}`)
  if (libc === 'glibc') {
    const newest = info.newestGlibc?.split('.').map(Number)
    if (newest && compareVersion(newest, MAX_GLIBC) > 0) {
      problems.push(`needs GLIBC_${info.newestGlibc} (newest allowed: GLIBC_${MAX_GLIBC.join('.')})`)
    }
  }
  if (libc === 'musl' && info.versions.length > 0) problems.push(`a musl build with glibc symbol versions: ${info.versions.join(', ')}`)
  const allowed = libc === 'musl' ? MUSL_LIBS : GLIBC_LIBS
  const extra = info.needed.filter(lib => !allowed.has(lib) && !lib.startsWith('ld-'))
  if (extra.length > 0) problems.push(`needs shared libraries beyond the C library: ${extra.join(', ')}`)
  return problems
}

/** Every prebuilt binary under dir, as paths. */
export function listPrebuilds(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .filter(d => d.isDirectory())
    .flatMap(d => readdirSync(join(dir, d.name)).filter(f => f.endsWith('.node')).map(f => join(dir, d.name, f)))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'prebuilds')
  let failed = false
  for (const file of listPrebuilds(dir)) {
    if (!file.includes('/linux-')) continue // Mach-O: checked by loading it on macOS in CI
    const problems = checkPrebuild(file)
    const { newestGlibc, needed } = inspect(file)
    console.log(`${problems.length === 0 ? 'ok  ' : 'FAIL'} ${file.slice(dir.length + 1)}: newest GLIBC ${newestGlibc ?? '-'}, needs ${needed.join(' ')}`)
    for (const p of problems) console.log(`       ${p}`)
    failed ||= problems.length > 0
  }
  process.exit(failed ? 1 : 0)
}
