/**
 * One published message as it crosses threads: encoded once, sent as raw
 * bytes to each worker's pub/sub channel (one message per worker, never one
 * per subscriber).
 *
 *   [f64 except connection id][u16 topic length][topic utf8][payload]
 */
export interface PublishedMessage {
  topic: string
  payload: Buffer
  except: number // 0: nobody excluded
}

export function encodePublished(topic: string, payload: Uint8Array, except: number): Buffer {
  const topicBytes = Buffer.byteLength(topic)
  if (topicBytes > 0xffff) throw new RangeError('topic is longer than 65535 bytes')
  const out = Buffer.allocUnsafe(10 + topicBytes + payload.length)
  out.writeDoubleLE(except, 0)
  out.writeUInt16LE(topicBytes, 8)
  out.write(topic, 10, 'utf8')
  out.set(payload, 10 + topicBytes)
  return out
}

export function decodePublished(bytes: Buffer): PublishedMessage {
  const except = bytes.readDoubleLE(0)
  const topicBytes = bytes.readUInt16LE(8)
  const topic = bytes.toString('utf8', 10, 10 + topicBytes)
  return { topic, payload: bytes.subarray(10 + topicBytes), except }
}
