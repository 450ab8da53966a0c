import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { LineClient, fixture } from './helpers'

// `node --import tsx main.mts` with a .ts handler: the loop of `npm run dev`.
t.test('a TypeScript handler runs in the workers of a server started under node --import tsx', async t => {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture('ts-main.mts')], {
    cwd: join(__dirname, '..'), // where tsx resolves from
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  t.teardown(() => { clearTimeout(killer); child.kill('SIGKILL') })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /listening on (\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    void exited.then(code => reject(new Error(`exited with ${code} before listening: ${stderr}`)))
  })
  const clients = await Promise.all([LineClient.connect(port), LineClient.connect(port)])
  for (const c of clients) {
    t.equal(await c.request('hello'), 'ts 1 hello', 'served by the TypeScript handler (its state from open)')
    t.equal(await c.request('again'), 'ts 2 again')
    c.destroy()
  }
  child.stdin.end() // the fixture closes the server when stdin ends
  t.equal(await exited, 0, 'closed and exited cleanly')
})
