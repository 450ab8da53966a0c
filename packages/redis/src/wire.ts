/**
 * One message on a Redis channel (`prefix + topic`):
 *
 *   [0xa7 magic][u8 version = 1][8 bytes: publishing instance id][payload]
 *
 * The instance id lets the publishing instance drop its own message when
 * Redis hands it back (its local subscribers already have it). Anything
 * else on the channel (another application, redis-cli) fails the header
 * check and is dropped and counted, never delivered.
 */
export const MAGIC = 0xa7
export const VERSION = 1
export const INSTANCE_ID_BYTES = 8
export const HEADER_BYTES = 2 + INSTANCE_ID_BYTES

export function encodeMessage(instanceId: Buffer, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length)
  out[0] = MAGIC
  out[1] = VERSION
  instanceId.copy(out, 2, 0, INSTANCE_ID_BYTES)
  out.set(payload, HEADER_BYTES)
  return out
}

export type Decoded = { kind: 'ours'; payload: Buffer } | { kind: 'own' } | { kind: 'malformed' }

export function decodeMessage(bytes: Buffer, instanceId: Buffer): Decoded {
  if (bytes.length < HEADER_BYTES || bytes[0] !== MAGIC || bytes[1] !== VERSION) return { kind: 'malformed' }
  if (bytes.compare(instanceId, 0, INSTANCE_ID_BYTES, 2, HEADER_BYTES) === 0) return { kind: 'own' }
  return { kind: 'ours', payload: bytes.subarray(HEADER_BYTES) }
}
