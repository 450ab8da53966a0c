import t from 'tap'
import { getHeapSpaceStatistics } from 'node:v8'
import { type ByteSource, LineReader } from '@amy/core'

// Unit tests against the ByteSource contract with a scripted fake; real
// sockets are exercised by the TcpStream tests.

/** One scripted `read` result: bytes to deliver, null (would block), 0 (end) or an error to throw. */
type Step = Uint8Array | string | null | 0 | Error

/**
 * A ByteSource that replays `steps`. A byte step larger than the reader's
 * buffer is delivered over several reads; an exhausted script would block.
 */
class ScriptedSource implements ByteSource {
  reads = 0
  private readonly steps: Step[]

  constructor(steps: Step[]) {
    this.steps = [...steps]
  }

  read(buf: Uint8Array): number | null {
    this.reads++
    const step = this.steps.shift()
    if (step === undefined || step === null) return null
    if (step === 0) return 0
    if (step instanceof Error) throw step
    const bytes = typeof step === 'string' ? Buffer.from(step) : step
    const n = Math.min(buf.length, bytes.length)
    buf.set(bytes.subarray(0, n))
    if (n < bytes.length) this.steps.unshift(bytes.subarray(n))
    return n
  }
}

function byteByByte(text: string): Step[] {
  return Array.from(Buffer.from(text), (b) => Uint8Array.of(b))
}

const TEXT = "hello\nworld\nhow's\nit\ngoing?\n"

t.test('single read (amy: static_buffer_single_read)', async (t) => {
  const reader = new LineReader({ maxLineLength: 1024 })
  t.equal(reader.readFrom(new ScriptedSource([TEXT])), TEXT.length)
  t.equal(reader.pendingLines, 5)
  t.same([...reader], ['hello', 'world', "how's", 'it', 'going?'])
  t.equal(reader.next(), undefined)
  t.equal(reader.partialBytes, 0)
})

t.test('partial read followed by complete read (amy: static_buffer_partial_read_follow_by_complete_read)', async (t) => {
  const reader = new LineReader({ maxLineLength: 1024 })
  const text = TEXT + 'ok'
  t.equal(reader.readFrom(new ScriptedSource([text])), text.length)
  t.equal([...reader].length, 5)
  t.equal(reader.next(), undefined)
  t.equal(reader.partialBytes, 2)
  t.equal(reader.readFrom(new ScriptedSource(['\n'])), 1)
  t.equal(reader.next(), 'ok')
  t.equal(reader.next(), undefined)
  t.equal(reader.partialBytes, 0)
})

t.test('would block returns 0 bytes', async (t) => {
  const reader = new LineReader({ maxLineLength: 1024 })
  const source = new ScriptedSource([null, 'late\n'])
  t.equal(reader.readFrom(source), 0)
  t.equal(source.reads, 1)
  t.equal(reader.ended, false)
  t.equal(reader.readFrom(source), 5)
  t.equal(reader.next(), 'late')
})

t.test('lines split one byte per read', async (t) => {
  const reader = new LineReader({ maxLineLength: 1024, bufferSize: 3 })
  t.equal(reader.readFrom(new ScriptedSource(byteByByte(TEXT))), TEXT.length)
  t.same([...reader.lines()], ['hello', 'world', "how's", 'it', 'going?'])
})

t.test('multi-byte UTF-8 split across reads decodes whole lines', async (t) => {
  const text = 'héllo wörld €𝄞\nnaïve ☃\n'
  const bytes = Buffer.from(text)
  // Every split point, including inside each multi-byte sequence.
  for (let cut = 1; cut < bytes.length; cut++) {
    const reader = new LineReader({ maxLineLength: 64 })
    reader.push(bytes.subarray(0, cut))
    reader.push(bytes.subarray(cut))
    t.same([...reader], ['héllo wörld €𝄞', 'naïve ☃'], `cut at ${cut}`)
  }
  const reader = new LineReader({ maxLineLength: 64, bufferSize: 1 })
  reader.readFrom(new ScriptedSource(byteByByte(text)))
  t.same([...reader], ['héllo wörld €𝄞', 'naïve ☃'], 'one byte per read')
})

t.test('invalid UTF-8 decodes to U+FFFD', async (t) => {
  const reader = new LineReader({ maxLineLength: 64 })
  reader.push(Buffer.from([0x61, 0xff, 0x62, 0x0a]))
  t.equal(reader.next(), 'a\ufffdb')
})

t.test('\\r\\n terminators', async (t) => {
  const reader = new LineReader({ maxLineLength: 64 })
  reader.push(Buffer.from('dos\r\nunix\nmid\rdle\r\nr\r\r\n\r\n\n'))
  t.same([...reader], ['dos', 'unix', 'mid\rdle', 'r\r', '', ''], 'only one trailing \\r is stripped')

  // "\r" and "\n" in different reads.
  reader.push(Buffer.from('split\r'))
  t.equal(reader.next(), undefined)
  reader.push(Buffer.from('\n'))
  t.equal(reader.next(), 'split')

  // A bare "\r\n" following a buffered partial line.
  reader.push(Buffer.from('tail'))
  reader.push(Buffer.from('\r\n'))
  t.equal(reader.next(), 'tail')
})

t.test('empty lines', async (t) => {
  const reader = new LineReader({ maxLineLength: 0 })
  reader.push(Buffer.from('\n\r\n\n'))
  t.same([...reader], ['', '', ''])
  reader.push(Buffer.from('\r'))
  reader.push(Buffer.from('\n'))
  t.equal(reader.next(), '')
  t.throws(() => reader.push(Buffer.from('x')), { code: 'ERR_LINE_TOO_LONG' })
})

t.test('a line of exactly maxLineLength is accepted, with either terminator', async (t) => {
  const reader = new LineReader({ maxLineLength: 5 })
  reader.push(Buffer.from('12345\n12345\r\n'))
  t.same([...reader], ['12345', '12345'])
  reader.push(Buffer.from('123'))
  reader.push(Buffer.from('45\r'))
  t.equal(reader.partialBytes, 6, 'a trailing \\r may still become a terminator')
  reader.push(Buffer.from('\n'))
  t.equal(reader.next(), '12345')
  // Multi-byte characters count in bytes: "€" is 3 bytes.
  reader.push(Buffer.from('€a\n'))
  t.equal(reader.next(), '€a')
  t.throws(() => reader.push(Buffer.from('€€\n')), { code: 'ERR_LINE_TOO_LONG' })
})

t.test('too-long complete line throws and poisons', async (t) => {
  const reader = new LineReader({ maxLineLength: 5 })
  t.throws(() => reader.push(Buffer.from('ok\n123456\nafter\n')), { code: 'ERR_LINE_TOO_LONG', name: 'AmyError' })
  t.equal(reader.next(), 'ok', 'lines completed before the bad one stay available')
  t.equal(reader.next(), undefined, 'nothing after the bad line is parsed')
  t.throws(() => reader.push(Buffer.from('x\n')), { code: 'ERR_LINE_TOO_LONG' })
  const source = new ScriptedSource(['x\n'])
  t.throws(() => reader.readFrom(source), { code: 'ERR_LINE_TOO_LONG' })
  t.equal(source.reads, 0, 'a poisoned reader does not touch the source')
})

t.test('too-long partial line throws as soon as it exceeds the limit', async (t) => {
  const reader = new LineReader({ maxLineLength: 10 })
  for (let i = 0; i < 10; i++) reader.push(Buffer.from('a'))
  t.equal(reader.partialBytes, 10)
  t.throws(() => reader.push(Buffer.from('a')), { code: 'ERR_LINE_TOO_LONG' }, 'the 11th byte')

  // One byte over is tolerated only while it is a '\r' awaiting its '\n'.
  const cr = new LineReader({ maxLineLength: 5 })
  cr.push(Buffer.from('12345\r'))
  t.throws(() => cr.push(Buffer.from('x')), { code: 'ERR_LINE_TOO_LONG' })
})

t.test('never buffers unbounded data from an endless line', async (t) => {
  let reads = 0
  // A peer that sends newline-free bytes forever.
  const firehose: ByteSource = {
    read(buf) {
      reads++
      buf.fill(0x61)
      return buf.length
    },
  }
  const reader = new LineReader({ maxLineLength: 1000, bufferSize: 256 })
  t.throws(() => reader.readFrom(firehose), { code: 'ERR_LINE_TOO_LONG' })
  t.equal(reads, 4, 'stopped at the read that crossed the limit')
  t.ok(reader.partialBytes <= 1001)
})

t.test('end of stream sets ended; an unterminated tail is not returned', async (t) => {
  const reader = new LineReader({ maxLineLength: 64 })
  const source = new ScriptedSource(['one\ntwo\ntrunc', 0, 'never\n'])
  t.equal(reader.readFrom(source), 13)
  t.equal(reader.ended, true)
  t.equal(source.reads, 2)
  t.same([...reader], ['one', 'two'])
  t.equal(reader.partialBytes, 5)

  const empty = new LineReader({ maxLineLength: 64 })
  t.equal(empty.readFrom(new ScriptedSource([0])), 0)
  t.equal(empty.ended, true)
})

t.test('errors thrown by the source propagate and do not poison', async (t) => {
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
  const reader = new LineReader({ maxLineLength: 64 })
  t.throws(() => reader.readFrom(new ScriptedSource(['a\nb', reset])), { code: 'ECONNRESET' })
  t.equal(reader.next(), 'a')
  reader.push(Buffer.from('c\n'))
  t.equal(reader.next(), 'bc')
})

t.test('lines stay correct when the read buffer is reused', async (t) => {
  const reader = new LineReader({ maxLineLength: 64, bufferSize: 4 })
  reader.readFrom(new ScriptedSource(['abcdefgh\nij', 'klmnop\n']))
  t.same([...reader], ['abcdefgh', 'ijklmnop'])
})

t.test('a long line grows the partial buffer, then the next line still parses', async (t) => {
  const reader = new LineReader({ maxLineLength: 100_000, bufferSize: 512 })
  const long = 'x'.repeat(99_998) + 'é' // exactly 100_000 bytes
  const source = new ScriptedSource([long.slice(0, 50_000), long.slice(50_000) + '\nshort\n'])
  reader.readFrom(source)
  t.equal(reader.next(), long)
  t.equal(reader.next(), 'short')
})

t.test('push accepts any Uint8Array view', async (t) => {
  const reader = new LineReader({ maxLineLength: 64 })
  const backing = new Uint8Array(16).fill(0x0a)
  backing.set(Buffer.from('view'), 3)
  reader.push(backing.subarray(3, 8))
  t.equal(reader.next(), 'view')
  t.throws(() => reader.push('nope\n' as unknown as Uint8Array), { code: 'ERR_INVALID_ARG_TYPE' })
})

t.test('a source returning a bogus count is rejected', async (t) => {
  for (const bogus of [2.5, -3, 1025]) {
    const reader = new LineReader({ maxLineLength: 64, bufferSize: 1024 })
    t.throws(() => reader.readFrom({ read: () => bogus }), { code: 'ERR_INVALID_ARG_VALUE' }, String(bogus))
  }
})

t.test('option validation', async (t) => {
  const make = (options: unknown) => () => new LineReader(options as { maxLineLength: number })
  t.throws(make(undefined), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make('64'), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make({}), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(make({ maxLineLength: -1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxLineLength: 0.5 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxLineLength: 2 ** 31 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxLineLength: 64, bufferSize: 0 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(make({ maxLineLength: 64, bufferSize: null }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.equal(new LineReader({ maxLineLength: 0, bufferSize: 1 }).maxLineLength, 0)
})

t.test('thousands of lines per push come out in order across interleaved pushes and takes', async t => {
  const r = new LineReader({ maxLineLength: 64, bufferSize: 1 })
  const lines = (from: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => `${from + i}\n`).join(''))
  const taken: string[] = []
  r.push(lines(0, 3000))
  for (let i = 0; i < 1500; i++) taken.push(r.next()!)
  r.push(lines(3000, 3000))
  t.equal(r.pendingLines, 4500)
  for (let line = r.next(); line !== undefined; line = r.next()) taken.push(line)
  r.push(lines(6000, 1))
  taken.push(r.next()!)
  t.same(taken, Array.from({ length: 6001 }, (_, i) => String(i)), 'every line, in order')
  t.equal(r.next(), undefined)
})

t.test('a flood of 1-byte lines (32,768 per push) leaves no garbage in V8\'s large-object space (issue 7: only a full GC frees it)', async t => {
  const largeObjects = (): number => getHeapSpaceStatistics().find(s => s.space_name === 'large_object_space')!.space_size
  const r = new LineReader({ maxLineLength: 64, bufferSize: 1 })
  const chunk = Buffer.from('x\n'.repeat(32 * 1024))
  const before = largeObjects()
  // The queue of completed lines used to grow one array per push to 32,768 slots (256 KiB), which V8
  // soon allocated in large-object space: 1.5 MiB there after 300 pushes. The most seen, in case a
  // full GC runs meanwhile.
  let most = 0
  for (let i = 0; i < 200; i++) {
    r.push(chunk)
    for (let line = r.next(); line !== undefined; line = r.next());
    most = Math.max(most, largeObjects() - before)
  }
  t.ok(most < 512 * 1024, `large-object space grew by at most ${most} bytes`)
})
