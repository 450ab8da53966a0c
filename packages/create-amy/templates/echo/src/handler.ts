// Runs in every worker thread: whatever arrives goes straight back.
import { defineHandler } from '@amy/server/handler'

export default defineHandler({
  open(conn) {
    conn.setTimeout(60_000) // idle connections are closed after a minute
  },
  data(conn, bytes) {
    conn.write(bytes) // `bytes` is only valid during this call: write or copy it
  },
})
