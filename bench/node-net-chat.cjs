// Copied from the team's shared benchmark harness (shared/bench/chat/chat_node_net.js): the
// node:net baseline of `npm run bench -- --mode chat`.
'use strict';
// Plain node:net chat server: one process, one event loop, a line protocol.
//   /nick NAME   set this client's name (default "anon")
//   /join ROOM   leave the current room, if any, and join ROOM
//   other lines  relayed as "NAME: text\n" to every other client in the room
//                (lines sent before any /join are dropped)
// env PORT (listens on 127.0.0.1). Each relayed line is encoded once and
// written to each peer; there is no slow-consumer policy: a peer that does
// not read just buffers in its socket's write queue.
const net = require('net');

const MAX_LINE = 64 * 1024;
const rooms = new Map(); // room name -> Set of sockets

function leave(sock, room) {
  const members = rooms.get(room);
  if (!members) return;
  members.delete(sock);
  if (members.size === 0) rooms.delete(room);
}

const server = net.createServer({ noDelay: true }, (sock) => {
  let nick = 'anon';
  let room = null;
  let partial = '';
  sock.setEncoding('utf8');
  sock.on('error', () => {}); // ECONNRESET etc.; 'close' follows
  sock.on('close', () => { if (room !== null) leave(sock, room); });

  const onLine = (line) => {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.startsWith('/nick ')) {
      nick = line.slice(6).trim() || nick;
    } else if (line.startsWith('/join ')) {
      if (room !== null) leave(sock, room);
      room = line.slice(6).trim();
      if (!rooms.has(room)) rooms.set(room, new Set());
      rooms.get(room).add(sock);
    } else if (room !== null && line.length > 0) {
      const out = Buffer.from(`${nick}: ${line}\n`);
      for (const peer of rooms.get(room)) if (peer !== sock) peer.write(out);
    }
  };

  sock.on('data', (chunk) => {
    const buf = partial + chunk;
    let start = 0;
    let nl;
    while ((nl = buf.indexOf('\n', start)) !== -1) {
      onLine(buf.slice(start, nl));
      start = nl + 1;
    }
    partial = buf.slice(start);
    if (partial.length > MAX_LINE) sock.destroy(); // no newline in sight
  });
});
server.on('error', (e) => { console.error(e); process.exit(1); });
const port = Number(process.env.PORT || 9000);
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => console.log(`READY chat_node_net port=${port}`));
