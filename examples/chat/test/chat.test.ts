// The chat example as a user runs it: `npm start` (node dist/main.js) with
// PORT=0 THREADS=2, driven by real line clients, stopped with SIGTERM.
import t from 'tap'
import { Client, startChat } from './harness'

t.test('the chat example', async t => {
  const { child, port, exited } = await startChat(t)
  const clients: Client[] = []
  const connect = async (): Promise<Client> => {
    const c = await Client.connect(port)
    clients.push(c)
    return c
  }
  t.teardown(() => clients.forEach(c => c.close()))

  await t.test('a guest is greeted and not in a room; errors for bad input', async t => {
    const c = await connect()
    const welcome = await c.expect(/^\* welcome, guest-\d+: /)
    t.match(welcome, /\/nick NAME, then \/join ROOM/)
    c.send('hello?')
    await c.expect('! you are not in a room: /join ROOM first')
    c.send('/frobnicate now')
    await c.expect('! unknown command /frobnicate (try /help)')
    c.send('/nick bad name!')
    await c.expect(/^! usage: \/nick NAME/)
    c.send('/help')
    await c.expect(/^\*   \/join ROOM/)
    c.send('/quit')
    await c.expect('* bye')
    await c.until('the server to close the connection', () => c.ended)
    t.pass('/quit says bye and ends the connection')
  })

  await t.test('text goes to the others in the room, not to the sender nor to other rooms', async t => {
    const alice = await connect()
    const bob = await connect()
    const carol = await connect()
    const dave = await connect() // another room
    await alice.enter('alice', 'lounge')
    await bob.enter('bob', 'lounge')
    await carol.enter('carol', 'lounge')
    await dave.enter('dave', 'kitchen')

    alice.send('hello, lounge', '//slash is literal')
    await bob.expect('alice: /slash is literal')
    await carol.expect('alice: /slash is literal')
    t.same(bob.texts(), ['alice: hello, lounge', 'alice: /slash is literal'], 'bob got both lines, in order')
    t.same(carol.texts(), ['alice: hello, lounge', 'alice: /slash is literal'], 'carol too')

    bob.send('from bob')
    await alice.expect('bob: from bob')
    await carol.expect('bob: from bob')
    // Sentinels instead of a wait for what must not arrive: one sender's
    // lines arrive in order wherever they go, and a connection's own
    // replies in the order it asked. So once a sentinel sent after a line
    // has arrived, that line would have arrived first had it been misrouted.
    // The lounge's senders move to the kitchen and say so: dave, there, hears
    // the sentinels, so he would have heard their lounge lines before them.
    alice.send('/join kitchen', 'alice in kitchen')
    await alice.expect('* you joined kitchen as alice') // after any echo of alice's own lounge lines
    await dave.expect('alice: alice in kitchen')
    bob.send('/join kitchen', 'bob in kitchen')
    await dave.expect('bob: bob in kitchen')
    await alice.expect('bob: bob in kitchen')
    // The kitchen speaks, then dave moves to the lounge and says so: carol
    // hears the sentinel, so she would have heard the kitchen line before it.
    dave.send('kitchen only', '/join lounge', 'dave in lounge')
    await dave.expect('* you joined lounge as dave') // after any echo of dave's own kitchen line
    await carol.expect('dave: dave in lounge')
    alice.send('/help')
    await alice.expect(/^\*   \/join ROOM/) // after any echo of alice's kitchen line
    t.notOk(alice.texts().some(l => l.startsWith('alice: ')), 'the sender does not get its own lines')
    t.same(dave.texts(), ['alice: alice in kitchen', 'bob: bob in kitchen'], 'the kitchen heard nothing of the lounge')
    t.notOk(carol.lines.includes('dave: kitchen only'), 'the lounge did not hear the kitchen')
    t.same(carol.texts(), ['alice: hello, lounge', 'alice: /slash is literal', 'bob: from bob', 'dave: dave in lounge'], 'carol heard the lounge, in order')
  })

  await t.test('joins, nick changes and leaves are announced to the room', async t => {
    const erin = await connect()
    const frank = await connect()
    await erin.enter('erin', 'hall')
    frank.send('/join hall')
    const joined = await erin.expect(/^\* guest-\d+ joined hall$/)
    t.pass(joined)
    frank.send('/nick frank')
    await erin.expect(/^\* guest-\d+ is now frank$/)
    frank.send('/leave')
    await frank.expect('* you left hall')
    await erin.expect('* frank left hall')
    frank.send('still here?')
    await frank.expect('! you are not in a room: /join ROOM first')
    frank.send('/join hall')
    await erin.expect('* frank joined hall')
    frank.send('/join other')
    await erin.until('frank to leave for another room', () => erin.lines.filter(l => l === '* frank left hall').length === 2)
    t.pass('switching rooms leaves the old one')
    frank.send('/join hall')
    await erin.until('frank to rejoin', () => erin.lines.filter(l => l === '* frank joined hall').length === 2)
    frank.close() // a hang-up leaves the room too
    await erin.until('the hang-up to be announced', () => erin.lines.filter(l => l === '* frank left hall').length === 3)
    t.pass('a disconnect is announced as a leave')
  })

  await t.test('members on both workers all receive every line, in order per sender', async t => {
    const members = await Promise.all(Array.from({ length: 8 }, () => connect()))
    for (const [i, m] of members.entries()) await m.enter(`m${i}`, 'big')
    const ids = members.map(m => /guest-(\d+)/.exec(m.lines[0]!)![1])
    t.ok(ids.length === 8, `8 members (connection ids ${ids.join(' ')}, spread over 2 workers by the acceptor)`)
    const PER_SENDER = 50
    // Three senders interleave; everyone else must see each one's lines in order.
    const senders = [0, 3, 6]
    for (let seq = 0; seq < PER_SENDER; seq++) for (const s of senders) members[s]!.send(`msg ${s} ${seq}`)
    // A last line from each sender is the sentinel: one sender's lines
    // arrive in order, so a duplicate or a stray would have come before it.
    for (const s of senders) members[s]!.send(`end ${s}`)
    for (const [i, m] of members.entries()) {
      for (const s of senders) if (s !== i) await m.expect(`m${s}: end ${s}`, 10_000)
    }
    // And each sender's own reply comes after any echo of its own lines.
    for (const s of senders) {
      members[s]!.send('/help')
      await members[s]!.expect(/^\*   \/join ROOM/)
    }
    for (const [i, m] of members.entries()) {
      const got = m.texts().filter(l => l.includes(': msg '))
      for (const s of senders) {
        const mine = got.filter(l => l.startsWith(`m${s}: `))
        const want = s === i ? [] : Array.from({ length: PER_SENDER }, (_, seq) => `m${s}: msg ${s} ${seq}`)
        t.same(mine, want, `m${i} got m${s}'s lines exactly once, in order`)
      }
    }
  })

  await t.test('a line longer than 4096 bytes gets an error, then the connection is closed', async t => {
    const gina = await connect()
    const hank = await connect()
    await gina.enter('gina', 'limits')
    await hank.enter('hank', 'limits')
    hank.send('x'.repeat(4096)) // exactly the limit: fine
    await gina.expect(`hank: ${'x'.repeat(4096)}`)
    hank.socket.write('before\n' + 'y'.repeat(5000) + '\n')
    await hank.expect('! line longer than 4096 bytes; closing')
    await hank.until('the server to close the connection', () => hank.ended || hank.closed)
    await gina.expect('hank: before')
    await gina.expect('* hank left limits')
    t.notOk(gina.lines.some(l => l.includes('yyyy')), 'the overlong line was not relayed')
  })

  await t.test('SIGTERM: the process exits 0', async t => {
    const idle = await connect()
    await idle.enter('idle', 'lobby')
    child.kill('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<string>(resolve => (timer = setTimeout(() => resolve('still running after 10 s'), 10000)))
    t.equal(await Promise.race([exited, timeout]), 0, 'exit code 0')
    clearTimeout(timer)
    await idle.until('the server to end the connection', () => idle.ended || idle.closed)
  })
})
