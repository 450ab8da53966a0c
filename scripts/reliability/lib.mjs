// Shared by the reliability scripts: start a server process, read its memory.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'

/** Starts `node script` with env; resolves { proc, port, output() } once it prints "listening PORT". */
export function startServer(script, env = {}) {
  const proc = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  proc.stdout.setEncoding('utf8').on('data', s => { out += s })
  process.once('exit', () => proc.kill('SIGKILL'))
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('the server did not start in 30 s')), 30_000)
    const check = setInterval(() => {
      const m = /listening (\d+)/.exec(out)
      if (m) {
        clearInterval(check)
        clearTimeout(deadline)
        resolve({ proc, port: Number(m[1]), output: () => out })
      }
    }, 20)
    proc.on('exit', code => reject(new Error(`the server exited (${code}) before listening`)))
  })
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
export function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = key => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN)
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 }
}

export function connect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s))
    s.once('error', reject)
  })
}

export const sleep = ms => new Promise(r => setTimeout(r, ms))

/** --name value pairs of argv, with defaults. */
export function args(defaults) {
  const out = { ...defaults }
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase())
    if (!(key in defaults)) throw new Error(`unknown option ${argv[i]}; known: ${Object.keys(defaults).join(', ')}`)
    out[key] = typeof defaults[key] === 'string' ? argv[i + 1] : Number(argv[i + 1])
  }
  return out
}
