// Runs in every worker thread: whatever arrives goes straight back.
import { defineHandler } from '@amy/server'

export default defineHandler({
  data(conn, bytes) {
    conn.write(bytes)
  },
})
