// Test helpers: run dist/main.js as `npm start` does, and talk TCP to it.
import net from 'node:net'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

type Test = { teardown(fn: () => void): void }

export interface RunningServer {
  port: number
  output: () => string
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>
}

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url))

export function startServer(t: Test, env: Record<string, string> = {}): Promise<RunningServer> {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', THREADS: '2', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let output = ''
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = / listening on .*:(\d+)/.exec(output)
      if (match) {
        child.stdout.removeAllListeners('data')
        child.stdout.on('data', (more: Buffer) => (output += more.toString()))
        resolve({
          port: Number(match[1]),
          output: () => output,
          stop: () => {
            child.kill('SIGTERM')
            return exited
          },
        })
      }
    })
    void exited.then(code => reject(new Error(`the server exited (${code}) before listening:\n${output}`)))
  })
}

/** Connects, sends `send`, and resolves with what came back once `done(reply)` (or the server ended). */
export function exchange(port: number, send: string, done: (reply: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(send))
    let reply = ''
    socket.setTimeout(10_000, () => socket.destroy(new Error(`timed out; got ${JSON.stringify(reply)}`)))
    socket.on('data', chunk => {
      reply += chunk.toString()
      if (done(reply)) {
        socket.end()
        resolve(reply)
      }
    })
    socket.on('end', () => resolve(reply))
    socket.on('error', reject)
  })
}
