import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

// Regression: terminating a worker while its TlsStreams are busy aborted the
// whole process ("terminate called after throwing an instance of
// 'Napi::Error'"): node-addon-api rethrew from its callback wrapper when
// napi_throw failed in a terminating environment. The addon is now built
// with NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS. Run in a child process, so
// an abort is a failed assertion here, not a dead test runner.
t.test('terminating workers with busy TLS connections does not abort the process (60 rounds)', async t => {
  const child = spawnSync(process.execPath, [join(__dirname, 'fixtures', 'tls-terminate-stress.js'), '60'], {
    encoding: 'utf8',
    timeout: 150_000,
  })
  t.equal(child.signal, null, `no signal (stderr: ${child.stderr.slice(-300)})`)
  t.equal(child.status, 0)
  t.match(child.stdout, /survived 60 rounds/)
})
