// End to end: start the compiled server on a free port, echo bytes through
// it, stop it with SIGTERM.
import t from 'tap'
import { startServer, exchange } from './helpers.js'

t.test('echoes every byte back and exits 0 on SIGTERM', async t => {
  const server = await startServer(t)
  const payload = 'hello, amy\n'.repeat(1000)
  t.equal(await exchange(server.port, payload, reply => reply.length >= payload.length), payload)
  t.equal(await server.stop(), 0)
})
