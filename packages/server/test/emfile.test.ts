// Issue 7, failure 2: with the process at its fd limit, accept() fails with
// EMFILE; the listener is edge-triggered, so the connections waiting in the
// backlog were only served when yet another connection arrived. Now a timer
// retries with backoff and the failure is logged.
import t from 'tap'
import { Child } from './child'
import { LineClient, fixture, until } from './helpers'

// balance 'reuseport': the worker accepts from its own listener, with the same loop.
for (const balance of ['handoff', 'reuseport']) t.test(`after EMFILE, the connections waiting are served once fds free up, with no new connection arriving (balance ${balance})`, async t => {
  // A shell lowers the fd limit for the server process only.
  const child = new Child(t, 'sh', ['-c', `ulimit -n 512 && exec "${process.execPath}" "${fixture('serve-main.js')}"`], { FD_HOG: '1', THREADS: '1', BALANCE: balance })
  const port = await child.port()
  child.proc.stdin!.write('fill\n')
  await until(() => /full \d+ EMFILE/.test(child.stdout), 10_000, 'the fds to be used up')
  const waiting = await Promise.all(Array.from({ length: 20 }, () => LineClient.connect(port))) // the kernel completes the handshakes
  t.teardown(() => { for (const c of waiting) c.destroy() })
  for (const [i, c] of waiting.entries()) c.send(`echo hello ${i}`)
  await until(() => child.logged(/^accept failed/), 10_000, 'the accept failure log')
  t.pass('the failure is logged')
  child.proc.stdin!.write('free\n')
  await until(() => child.stdout.includes('freed'), 10_000, 'the fds to be freed')
  for (const [i, c] of waiting.entries()) {
    await c.until(() => c.lines.includes(`hello ${i}`), 10_000)
  }
  t.pass(`all ${waiting.length} waiting connections were served`)
  // (A worker's log line reaches stderr through the main thread: poll.)
  await until(() => child.logged('accepting again'), 10_000, 'the recovery log')
  t.pass('recovery is logged')
  child.proc.stdin!.end() // the fixture reads stdin while FD_HOG is set
  child.proc.kill('SIGTERM')
  await until(() => child.exited, 20_000, 'the process to exit')
})
