import { spawn, type ChildProcess } from 'node:child_process'
import type { Test } from 'tap'
import { fixture, until } from './helpers'

/** A child process running a fixture, killed (by pid) when the test ends; its output collected. */
export class Child {
  readonly proc: ChildProcess
  stdout = ''
  stderr = ''
  exitCode: number | null | undefined
  signal: NodeJS.Signals | null | undefined

  constructor(t: Test, command: string, args: string[], env: Record<string, string> = {}) {
    this.proc = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    this.proc.stdout!.setEncoding('utf8').on('data', (s: string) => { this.stdout += s })
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr += s })
    this.proc.on('exit', (code, signal) => { this.exitCode = code; this.signal = signal })
    t.teardown(() => { if (this.exitCode === undefined) this.proc.kill('SIGKILL') })
  }

  /** Runs fixtures/serve-main.js (or another main fixture) with node. */
  static serve(t: Test, env: Record<string, string> = {}, main = 'serve-main.js'): Child {
    return new Child(t, process.execPath, [fixture(main)], env)
  }

  get exited(): boolean {
    return this.exitCode !== undefined
  }

  /** The port printed as "listening PORT". */
  async port(ms = 20_000): Promise<number> {
    await until(() => /listening (\d+)/.test(this.stdout) || this.exited, ms, 'the server to listen')
    const match = /listening (\d+)/.exec(this.stdout)
    if (!match) throw new Error(`the server did not start: ${this.stderr}`)
    return Number(match[1])
  }

  /** Pino lines of stderr whose msg matches. */
  logged(msg: string | RegExp): boolean {
    return this.stderr.split('\n').some(line => {
      if (!line.startsWith('{')) return false
      const m = (JSON.parse(line) as { msg?: string }).msg ?? ''
      return typeof msg === 'string' ? m === msg : msg.test(m)
    })
  }
}
