// Copied from the team's shared benchmark harness (shared/bench/proxy/node_net_proxy.js): the
// node:net baseline of `npm run bench -- --mode proxy`.
'use strict';
// Plain node:net TCP proxy: one process, one event loop, pipe() both ways.
// env PORT (listen on 127.0.0.1), UPSTREAM_HOST [127.0.0.1], UPSTREAM_PORT.
// Half-close is forwarded (allowHalfOpen + pipe's end()); an error or close
// on either side destroys both.
const net = require('net');

const port = Number(process.env.PORT);
const upstream = { host: process.env.UPSTREAM_HOST || '127.0.0.1', port: Number(process.env.UPSTREAM_PORT) };

const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (c) => {
  const u = net.connect({ ...upstream, noDelay: true, allowHalfOpen: true });
  const teardown = () => { c.destroy(); u.destroy(); };
  c.on('error', teardown);
  u.on('error', teardown);
  c.on('close', teardown);
  u.on('close', teardown);
  c.pipe(u).pipe(c);
});
server.on('error', (e) => { console.error(e); process.exit(1); });
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () =>
  console.log(`READY node_net_proxy port=${port} upstream=${upstream.host}:${upstream.port}`));
