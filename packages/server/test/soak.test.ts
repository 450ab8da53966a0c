// Issue 7: the soak's 60-second version (`npm run soak` runs 10 minutes).
// scripts/reliability/soak.mjs drives echo, proxy and chat clients at a
// server process while it injects faults in turn (a worker crash, an RST
// storm, slow readers in a chat flood, a stalled worker, EMFILE, a churn
// burst), then closes the server under load. Durations are not asserted
// here (--timing 0); every other invariant is.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'

t.setTimeout(240_000)

const script = join(__dirname, '..', '..', '..', 'scripts', 'reliability', 'soak.mjs')

t.test('soak, 60 s: every completed exchange and chat line verified, no fd or count leak, memory under its budget, every fault survived, close under load exits cleanly', async t => {
  const child = spawn(process.execPath, [script, '--seconds', '60', '--fault-every', '5', '--timing', '0', '--json', '1', '--echo', '4', '--proxy', '2', '--chat', '4', '--pace-ms', '2'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  const last = out.trim().split('\n').pop() ?? ''
  t.comment(out.split('\n').filter(l => !l.startsWith('{')).join('\n'))
  const fig = JSON.parse(last) as {
    ok: boolean
    problems: string[]
    mismatches: number
    chatErrors: number
    echoExchanges: number
    proxyExchanges: number
    chatLinesVerified: number
    faults: Record<string, number>
    fds: { idle: number; afterLoad: number }
    connectionsOpenAfterLoad: number
    server: { refusedPerAddress: number; workerCrashes: number; workerStalls: number }
    closeUnderLoad: { exit: { code: number | null } }
  }
  t.same(fig.problems, [], 'no invariant failed')
  t.equal(code, 0, 'the soak exited with status 0')
  t.equal(fig.mismatches, 0, 'every echo/proxy exchange came back byte for byte')
  t.equal(fig.chatErrors, 0, 'every chat line intact and in order per sender')
  t.ok(fig.echoExchanges > 0 && fig.proxyExchanges > 0 && fig.chatLinesVerified > 0, 'each kind of traffic completed some')
  for (const fault of ['crash', 'rst', 'slow', 'stall', 'emfile', 'churn']) t.ok(fig.faults[fault]! >= 1, `fault ${fault} injected`)
  t.ok(fig.server.workerCrashes >= fig.faults['crash']!, 'the crashes were counted')
  t.ok(fig.server.workerStalls >= fig.faults['stall']!, 'the stalls were counted')
  t.equal(fig.fds.afterLoad, fig.fds.idle, 'no fd leaked: the server is back to its idle fds')
  t.equal(fig.connectionsOpenAfterLoad, 0, 'no connection left open')
  t.equal(fig.server.refusedPerAddress, 0, 'no per-address count leaked (none refused under the limit)')
  t.equal(fig.closeUnderLoad.exit.code, 0, 'close() under load: the server process exited by itself, status 0')
})
