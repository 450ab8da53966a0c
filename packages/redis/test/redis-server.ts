// A private redis-server for tests: a free port (redis cannot bind port 0,
// so node binds 0, reads the port and lets it go), no persistence, killed by
// pid at teardown, and with the test process if tap kills it first.
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'

const started = new Set<ChildProcess>()
const killAll = (): void => {
  for (const child of started) child.kill('SIGKILL')
}
process.once('exit', killAll)
process.once('SIGTERM', () => {
  killAll()
  process.exit(143)
})

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Polls `check` every 20 ms until it holds; throws `what` after `ms`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

function answersPing(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let reply = ''
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d: string) => {
      reply += d
      if (reply.includes('\r\n')) {
        socket.destroy()
        resolve(reply.startsWith('+PONG'))
      }
    })
    socket.on('error', () => resolve(false))
  })
}

export class RedisServer {
  child: ChildProcess | undefined
  readonly port: number

  private constructor(port: number) {
    this.port = port
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    await server.start()
    return server
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--logfile', ''], {
      stdio: 'ignore',
    })
    this.child = child
    started.add(child)
    child.once('exit', () => started.delete(child))
    const exited = new Promise<never>((_, reject) => child.once('exit', code => reject(new Error(`redis-server exited with ${code}`))))
    exited.catch(() => {})
    await Promise.race([until(`redis-server on port ${this.port}`, () => answersPing(this.port)), exited])
  }

  /** Kills redis-server (SIGKILL: no goodbye to its clients) and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGKILL')
    await gone
  }

  /** Runs redis-cli with `args` against this server; resolves with its output. */
  cli(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn('redis-cli', ['-p', String(this.port), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.setEncoding('utf8')
      child.stdout.on('data', (d: string) => (out += d))
      child.once('error', reject)
      child.once('exit', code => (code === 0 ? resolve(out) : reject(new Error(`redis-cli ${args.join(' ')} exited with ${code}`))))
    })
  }
}
