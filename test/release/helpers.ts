// What the release tests share: packing the published packages, an app
// folder that installs them offline, child processes that die with the test
// file, and a TCP round trip.
import net from 'node:net'
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

export const repo = join(__dirname, '..', '..')
const execFileP = promisify(execFile)

/** The packages npm publishes, by name → folder. */
export const PUBLISHED = {
  '@amy/native': 'packages/native',
  '@amy/core': 'packages/core',
  '@amy/server': 'packages/server',
  '@amy/redis': 'packages/redis',
  'create-amy': 'packages/create-amy',
} as const
export type PublishedName = keyof typeof PUBLISHED

// Processes this file starts die with it, even when tap kills it on a timeout.
const children = new Set<ChildProcess>()
const killChildren = (): void => {
  for (const child of children) child.kill('SIGKILL')
}
process.once('exit', killChildren)
process.once('SIGTERM', killChildren)

export function owned(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options)
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

export interface RunResult { stdout: string, stderr: string }

/** Runs a command to its end; rejects with its output when it fails. */
export async function run(command: string, args: string[], options: { cwd: string, env?: NodeJS.ProcessEnv, timeout?: number }): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileP(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      timeout: options.timeout ?? 240_000,
      maxBuffer: 64 << 20,
      killSignal: 'SIGKILL',
    })
    return { stdout, stderr }
  } catch (err) {
    const e = err as Error & { stdout?: string, stderr?: string }
    e.message += `\n--- stdout\n${e.stdout ?? ''}\n--- stderr\n${e.stderr ?? ''}`
    throw e
  }
}

export const npm = (args: string[], cwd: string, env?: NodeJS.ProcessEnv, timeout?: number): Promise<RunResult> =>
  run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, ...(env ? { env } : {}), ...(timeout ? { timeout } : {}) })

export const tempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix))

/** npm pack of each published package into dir (its prepack builds it); name → tarball path. */
export async function packAll(dir: string, names = Object.keys(PUBLISHED) as PublishedName[]): Promise<Record<PublishedName, string>> {
  const out = {} as Record<PublishedName, string>
  for (const name of names) {
    // @amy/native's prepack builds four binaries: minutes on two busy cores.
    // One at a time, so the test files tap runs beside this one keep a core.
    const env = { ...process.env, AMY_PREBUILD_JOBS: '1' }
    const { stdout } = await npm(['pack', '--json', '--pack-destination', dir], join(repo, PUBLISHED[name]), env, 900_000)
    const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string }[]
    out[name] = join(dir, info!.filename)
  }
  return out
}

interface LockEntry { link?: boolean, [key: string]: unknown }

/**
 * A package-lock.json for an app outside the repo, taken from the repo's own
 * lockfile: every registry package it pins (npm prunes what the app does not
 * use), none of the workspace links. With it, `npm install --offline`
 * resolves nothing against the registry: each package comes from the npm
 * cache that the repo's `npm ci` filled, by its integrity.
 */
export function writeOfflineLockfile(appDir: string): void {
  const app = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as Record<string, unknown>
  const root = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }
  const packages: Record<string, unknown> = {
    '': {
      name: app.name,
      version: app.version,
      dependencies: app.dependencies,
      devDependencies: app.devDependencies,
    },
  }
  for (const [path, entry] of Object.entries(root.packages)) {
    if (!path.startsWith('node_modules/') || entry.link === true) continue
    if (/^node_modules\/(@amy\/|create-amy)/.test(path)) continue
    packages[path] = entry
  }
  writeFileSync(join(appDir, 'package-lock.json'), JSON.stringify({ name: app.name, version: app.version, lockfileVersion: 3, requires: true, packages }, null, 2))
}

/** Points an app's @amy/* dependencies (direct and transitive) at the packed tarballs. */
export function useTarballs(pkg: Record<string, any>, tarballs: Record<PublishedName, string>): void {
  const amy = (['@amy/native', '@amy/core', '@amy/server'] as const)
  for (const field of ['dependencies', 'devDependencies'] as const) {
    for (const name of amy) if (pkg[field]?.[name] !== undefined) pkg[field][name] = `file:${tarballs[name]}`
  }
  pkg.overrides = Object.fromEntries(amy.map(name => [name, `file:${tarballs[name]}`]))
}

/** Resolves with the first stdout line matching `pattern`; rejects if the process exits first. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${seen}`)), timeoutMs)
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString()
      const match = pattern.exec(seen)
      if (match) {
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        resolve(match)
      }
    }
    child.stdout!.on('data', onData)
    child.once('exit', code => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code} before a line matching ${pattern}; output:\n${seen}`))
    })
  })
}

/** Connects, writes `send`, reads until `until` says the reply is complete (or the peer ends). */
export function exchange(port: number, send: string | Buffer, until: (reply: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(send))
    let reply = ''
    socket.setTimeout(15_000, () => socket.destroy(new Error(`timed out; got ${JSON.stringify(reply)}`)))
    socket.on('data', chunk => {
      reply += chunk.toString()
      if (until(reply)) {
        socket.destroy()
        resolve(reply)
      }
    })
    socket.on('end', () => resolve(reply))
    socket.on('error', reject)
  })
}

/** Waits for a process to exit; its exit code (or the signal's name). */
export function exited(child: ChildProcess, timeoutMs = 30_000): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`did not exit within ${timeoutMs} ms`)), timeoutMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve(code ?? signal ?? -1)
    })
  })
}
