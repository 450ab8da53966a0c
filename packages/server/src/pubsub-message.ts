/**
 * Published messages as they cross threads: each is encoded once as a
 * record; the records a worker publishes during one turn of its event loop
 * travel together as one channel message per other worker (a burst costs
 * one native queue entry per turn, not one per message).
 *
 *   record:  [u32 record length][f64 except connection id][u16 topic length][topic utf8][payload]
 *   message: record record ...
 */
export interface PublishedMessage {
  topic: string
  payload: Buffer
  except: number // 0: nobody excluded
}

const HEADER = 4 + 8 + 2

export function encodePublished(topic: string, payload: Uint8Array, except: number): Buffer {
  const topicBytes = Buffer.byteLength(topic)
  if (topicBytes > 0xffff) throw new RangeError('topic is longer than 65535 bytes')
  const out = Buffer.allocUnsafe(HEADER + topicBytes + payload.length)
  out.writeUInt32LE(out.length, 0)
  out.writeDoubleLE(except, 4)
  out.writeUInt16LE(topicBytes, 12)
  out.write(topic, HEADER, 'utf8')
  out.set(payload, HEADER + topicBytes)
  return out
}

/** The record at `offset` of a channel message, and where the next one starts. */
export function decodePublished(bytes: Buffer, offset = 0): PublishedMessage & { next: number } {
  const next = offset + bytes.readUInt32LE(offset)
  const except = bytes.readDoubleLE(offset + 4)
  const topicBytes = bytes.readUInt16LE(offset + 12)
  const topic = bytes.toString('utf8', offset + HEADER, offset + HEADER + topicBytes)
  return { topic, payload: bytes.subarray(offset + HEADER + topicBytes, next), except, next }
}
