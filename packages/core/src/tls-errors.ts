/**
 * The codes of TLS connection and context errors, as the native layer
 * (src/tls/tls_error.h) declares them; a test checks both lists agree.
 * Socket failures after the handshake keep the errno's name
 * (`ECONNRESET`, `EPIPE`) as on plain TCP.
 */
export const TLS_ERROR_CODES = [
  'ERR_TLS_HANDSHAKE',
  'ERR_TLS_PROTOCOL',
  'ERR_TLS_RENEGOTIATION',
  'ERR_TLS_CERT_UNTRUSTED',
  'ERR_TLS_CERT_EXPIRED',
  'ERR_TLS_CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_CERT_REQUIRED',
  'ERR_TLS_CERT_INVALID',
  'ERR_TLS_CERT_REJECTED',
  'ERR_TLS_INVALID_KEY',
  'ERR_TLS_INVALID_CERT',
  'ERR_TLS_KEY_MISMATCH',
  'ERR_TLS_INVALID_CA',
  'ERR_TLS_INVALID_CIPHERS',
  'ERR_TLS_INVALID_OPTION',
] as const

/** The code of a TLS error: one of TLS_ERROR_CODES. */
export type TlsErrorCode = (typeof TLS_ERROR_CODES)[number]
