// Moving bytes from one fd to another without copying them through user
// space: a SplicePipe owns a kernel pipe, and transfer() splices source →
// pipe → destination (Linux splice(2), splice_linux.cc). Elsewhere
// splice_fallback.cc keeps the same contract with read/write through a
// buffer the object owns. binding.gyp picks the file; no #ifdef here.
//
// The contract, which both implementations keep:
// - The fds are the caller's, non-blocking (the library's sockets are).
//   Nothing here closes or keeps them.
// - A would-block is a result flag, never an exception. EINTR is retried.
//   Every other failure (ECONNRESET, EPIPE, EINVAL for an fd splice cannot
//   use, ...) throws SysError with the syscall name "splice", in both
//   implementations, so callers see one contract. A throw keeps buffered()
//   exact; the counts of that one call are lost.
// - buffered() never exceeds capacity(): transfer() never asks the kernel
//   for more than the free room, so a destination that does not read cannot
//   make the pipe (or the fallback buffer) grow.
// - No SIGPIPE: splice(2) into a socket whose peer has gone raises SIGPIPE
//   (it has no MSG_NOSIGNAL; checked on Linux 6.x for TCP and AF_UNIX), and
//   Node's default SIG_IGN is not guaranteed (a process.on('SIGPIPE')
//   listener that is later removed leaves SIG_DFL behind, which kills the
//   process). So the Linux implementation blocks SIGPIPE in the calling
//   thread around the splices into the destination and consumes a SIGPIPE
//   it caused before unblocking; the caller gets EPIPE as a SysError. The
//   fallback sends with MSG_NOSIGNAL (or relies on SO_NOSIGPIPE, which the
//   library's sockets set on macOS/BSD).
// - Not thread-safe: one SplicePipe belongs to one thread at a time.
#pragma once

#include <cstddef>
#include <memory>

namespace amy::os {

struct TransferResult {
  size_t moved_in = 0;        // bytes taken from the source by this call
  size_t moved_out = 0;       // bytes given to the destination by this call
  bool source_eof = false;    // the source reported end of stream (read returned 0)
  bool source_drained = false;  // the source would block: wait for its next readable edge
  bool dest_blocked = false;  // the destination would block with bytes left: wait for writable, then flush()
  size_t buffered = 0;        // bytes left in the pipe after the call
};

// How a caller drives transfer() under edge-triggered readiness:
// - source_drained: nothing more until the source's next readable event.
// - dest_blocked: on the destination's writable event call flush(); once
//   buffered() is 0 call transfer() again (the source may still hold bytes:
//   no new readable edge will say so).
// - source_eof: after buffered() reaches 0, shut the destination down for
//   writing (half-close) if the protocol wants end of stream forwarded.
// - none of the three: max_bytes was reached with the source still readable
//   and the destination still writable; call transfer() again later (e.g.
//   after other connections had their turn), no edge will come.
// True where transfer() is splice(2) (Linux); false for the user-space copy.
bool splice_in_kernel();

class SplicePipe {
 public:
  static constexpr size_t kDefaultCapacity = 64 * 1024;

  // capacity_bytes 0: the system default (a 64 KiB pipe on Linux). Linux
  // rounds a requested capacity up to a power-of-two number of pages; a
  // request above /proc/sys/fs/pipe-max-size (EPERM for unprivileged
  // processes) keeps the default. capacity() tells what was granted.
  // Throws SysError ("pipe2", "fcntl").
  explicit SplicePipe(size_t capacity_bytes = 0);
  ~SplicePipe();
  SplicePipe(const SplicePipe&) = delete;
  SplicePipe& operator=(const SplicePipe&) = delete;

  // Source → pipe and pipe → destination, looping while either makes
  // progress, until the source would block or ends, or the destination
  // would block; at most max_bytes are taken from the source per call
  // (fairness between connections). max_bytes 0 only flushes.
  // Throws SysError("splice", ...), or SysError("splice", EBADF) once closed.
  TransferResult transfer(int from_fd, int to_fd, size_t max_bytes);

  // Pipe → destination only, until the pipe is empty or the destination
  // would block (dest_blocked). For the destination's writable event.
  TransferResult flush(int to_fd);

  size_t buffered() const;
  size_t capacity() const;

  // Closes the pipe (or frees the buffer); bytes still buffered are dropped.
  // Idempotent.
  void close();
  bool closed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace amy::os
