// A deliberately broken echo server for `node bench/run.mjs --selftest`;
// never benchmark it. BAD picks the fault, roughly once per 100 kB echoed:
//   flip   flip one bit            cross  send a chunk to another connection
//   dup    send a chunk twice      ok     no fault (the control)
import net from 'node:net'

const bad = process.env.BAD ?? 'ok'
const sockets = new Set()
let since = 0
const server = net.createServer({ noDelay: true }, (s) => {
  sockets.add(s)
  s.on('error', () => {})
  s.on('close', () => sockets.delete(s))
  s.on('data', (d) => {
    since += d.length
    if (bad !== 'ok' && since > 100_000) {
      since = 0
      if (bad === 'flip') {
        d = Buffer.from(d)
        d[d.length >> 1] ^= 1
      } else if (bad === 'dup') {
        s.write(d)
      } else if (bad === 'cross') {
        const other = [...sockets].find((x) => x !== s)
        if (other) return void other.write(d)
      }
    }
    s.write(d)
  })
})
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log(`bad echo (${bad}) listening on 127.0.0.1:${server.address().port}`)
})
