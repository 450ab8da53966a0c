// What the examples' tests share: running an example as a user does
// (`node dist/main.js` with env), reading its ready line, and making sure
// every process a test file starts dies with it.
import t from 'tap'
import net from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'

/** A tap test object, as handed to a t.test callback. */
export type TestT = Parameters<Parameters<typeof t.test>[0]>[0]

// Processes a test file starts die with it, even when tap kills it on a
// timeout before any teardown can run (a leaked redis-server taught us).
const children = new Set<ChildProcess>()
let hooked = false

/** Registers `child` to be SIGKILLed when this test process exits or is killed. */
export function owned<T extends ChildProcess>(child: T): T {
  if (!hooked) {
    hooked = true
    const killChildren = (): void => {
      for (const c of children) c.kill('SIGKILL')
    }
    process.once('exit', killChildren)
    process.once('SIGTERM', killChildren)
  }
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

export interface ExampleProcess {
  child: ChildProcess
  /** The match of `ready` against the first stdout output. */
  match: RegExpExecArray
  /** The first stdout output (the ready line). */
  line: string
  /** Exit code, or the signal name. */
  exited: Promise<number | string | null>
  /** Everything written to stderr so far ('' when stderr is inherited). */
  stderr: () => string
}

export interface StartOptions {
  /** Variables on top of process.env; undefined removes one. */
  env?: Record<string, string | undefined>
  /** Capture stderr (for assertions) instead of passing it through. */
  captureStderr?: boolean
  /** How long the ready line may take (default 10 s). */
  readyTimeoutMs?: number
}

/**
 * Spawns `node main` with `env`, killed in teardown if still running, and
 * resolves once its first stdout output matches `ready`.
 */
export async function startExample(t: TestT, main: string, ready: RegExp, options: StartOptions = {}): Promise<ExampleProcess> {
  const child = owned(spawn(process.execPath, [main], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', options.captureStderr ? 'pipe' : 'inherit'],
  }))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let err = ''
  if (options.captureStderr) {
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (d: string) => (err += d))
  }
  const stderr = (): string => err
  const exited = new Promise<number | string | null>(resolve => child.once('exit', (code, signal) => resolve(code ?? signal)))
  const timeoutMs = options.readyTimeoutMs ?? 10_000
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${main}: no ready line within ${timeoutMs} ms: ${stderr()}`)), timeoutMs)
    child.stdout!.setEncoding('utf8')
    child.stdout!.once('data', (d: string) => {
      clearTimeout(timer)
      resolve(d)
    })
    child.once('exit', code => {
      clearTimeout(timer)
      reject(new Error(`${main} exited early with ${code}: ${stderr()}`))
    })
  })
  const match = ready.exec(line)
  t.ok(match, `ready line: ${line.trim()}`)
  if (!match) throw new Error(`${main}: unexpected ready line: ${line.trim()}`)
  return { child, match, line, exited, stderr }
}

/** SIGTERM, then the exit code (or signal name). */
export async function stopExample(proc: ExampleProcess): Promise<number | string | null> {
  proc.child.kill('SIGTERM')
  return proc.exited
}

/** Sends `payload`, half-closes, and resolves with everything read until the server's FIN. */
export function echoBytes(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.end(payload))
    const chunks: Buffer[] = []
    socket.on('data', c => chunks.push(c))
    socket.on('end', () => resolve(Buffer.concat(chunks)))
    socket.on('error', reject)
    socket.setTimeout(10000, () => socket.destroy(new Error('timed out')))
  })
}
