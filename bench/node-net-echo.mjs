// Baseline for `npm run bench`: a plain node:net echo server, one event loop.
// Listens on 127.0.0.1:$PORT (default 7001). TCP_NODELAY is on, as it is by
// default on amy's connections, so both servers put bytes on the wire alike.
import net from 'node:net'

const host = '127.0.0.1'
const port = Number(process.env.PORT ?? 7001)

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {}) // ECONNRESET from clients closing with RST
  socket.on('data', (d) => socket.write(d))
})
server.listen(port, host, () => {
  console.log(`node:net echo listening on ${host}:${server.address().port}`)
})
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0))
