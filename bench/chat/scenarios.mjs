// The chat scenarios (chatgen, 64 B lines), shared by `npm run bench --
// --mode chat` (bench/run.mjs) and `npm run bench:chat` (bench/chat.mjs).
// The fixed-rate ones offer 49.5k deliveries/s; the others run as fast as
// possible with at most one message in flight per client.
export const CHAT_SCENARIOS = {
  a: { what: '100 clients, 1 room, as fast as possible', args: ['--clients', '100', '--rooms', '1', '--rate', '0'] },
  b: { what: '1000 clients, 10 rooms, as fast as possible', args: ['--clients', '1000', '--rooms', '10', '--rate', '0'] },
  c: { what: '100 clients, 1 room, 5 msgs/s each (49.5k deliveries/s offered)', args: ['--clients', '100', '--rooms', '1', '--rate', '5'] },
  d: { what: '1000 clients, 10 rooms, 0.5 msgs/s each (49.5k deliveries/s offered)', args: ['--clients', '1000', '--rooms', '10', '--rate', '0.5'] },
}
