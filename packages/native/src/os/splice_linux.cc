// SplicePipe on Linux: a kernel pipe between two splice(2) calls, so the
// bytes move from socket to socket inside the kernel (page references, no
// copy through user space). See splice.h for the contract.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "os/errors.h"
#include "os/owned_fd.h"
#include "os/splice.h"

namespace amy::os {

namespace {

constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

// splice(2) has no MSG_NOSIGNAL: splicing into a socket whose peer is gone
// sends the calling thread SIGPIPE (kernel: sk_stream_error → send_sig),
// whatever the socket's flags. While one of these is alive and armed,
// SIGPIPE is blocked in this thread; consume() takes back a SIGPIPE the
// failed splice raised, so it is never delivered and never left pending.
// Costs two rt_sigprocmask calls per transfer()/flush() that splices out.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
  }
  ~SigpipeGuard() {
    if (armed_ && !was_blocked_) pthread_sigmask(SIG_UNBLOCK, &set_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

  void arm() {
    if (armed_) return;
    sigset_t old;
    if (pthread_sigmask(SIG_BLOCK, &set_, &old) != 0) return;  // only fails for bad arguments
    armed_ = true;
    was_blocked_ = sigismember(&old, SIGPIPE) == 1;
    if (was_blocked_) {
      // The caller blocks SIGPIPE itself; one may already be pending for it
      // (standard signals do not queue twice): then leave it alone.
      sigset_t pending;
      was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    }
  }

  // After a splice into the destination failed: removes the SIGPIPE it may
  // have raised (a zero-timeout sigtimedwait; EAGAIN if there is none).
  // Keeps errno.
  void consume() {
    if (!armed_ || was_pending_) return;
    int saved = errno;
    const timespec zero{0, 0};
    while (sigtimedwait(&set_, nullptr, &zero) == -1 && errno == EINTR) {
    }
    errno = saved;
  }

 private:
  sigset_t set_;
  bool armed_ = false;
  bool was_blocked_ = false;
  bool was_pending_ = false;
};

}  // namespace

bool splice_in_kernel() { return true; }

struct SplicePipe::Impl {
  OwnedFd read_end;
  OwnedFd write_end;
  size_t capacity = 0;
  size_t buffered = 0;

  // Pipe → to_fd until the pipe is empty or the destination would block.
  void drain(int to_fd, TransferResult& result, SigpipeGuard& guard) {
    while (buffered > 0) {
      guard.arm();
      ssize_t n = retry_eintr([&] { return ::splice(read_end.get(), nullptr, to_fd, nullptr, buffered, kSpliceFlags); });
      if (n > 0) {
        result.moved_out += static_cast<size_t>(n);
        buffered -= std::min(buffered, static_cast<size_t>(n));
        continue;
      }
      if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        result.dest_blocked = true;
        return;
      }
      int err = n == 0 ? EIO : errno;  // 0 from a non-empty pipe would be a kernel surprise
      guard.consume();
      throw_sys("splice", err);
    }
  }
};

SplicePipe::SplicePipe(size_t capacity_bytes) : impl_(std::make_unique<Impl>()) {
  if (capacity_bytes > static_cast<size_t>(INT_MAX)) throw_sys("fcntl", EINVAL);
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) throw_sys("pipe2");
  impl_->read_end.reset(fds[0]);
  impl_->write_end.reset(fds[1]);
  if (capacity_bytes > 0 && ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(capacity_bytes)) == -1) {
    // EPERM: above /proc/sys/fs/pipe-max-size, or the user's pipe pages are
    // over the soft limit. The default pipe still works.
    if (errno != EPERM) throw_sys("fcntl");
  }
  int size = ::fcntl(fds[1], F_GETPIPE_SZ);
  if (size <= 0) throw_sys("fcntl", size == 0 ? EINVAL : errno);
  impl_->capacity = static_cast<size_t>(size);
}

SplicePipe::~SplicePipe() = default;

TransferResult SplicePipe::transfer(int from_fd, int to_fd, size_t max_bytes) {
  Impl& p = *impl_;
  if (!p.read_end) throw_sys("splice", EBADF);
  TransferResult result;
  SigpipeGuard guard;
  for (;;) {
    bool progress = false;
    if (!result.source_eof && result.moved_in < max_bytes && p.buffered < p.capacity) {
      // Never more than the free room: the pipe's bytes stay <= capacity even
      // if the kernel could take more (a pipe slot can hold a partial page).
      size_t want = std::min(max_bytes - result.moved_in, p.capacity - p.buffered);
      bool was_empty = p.buffered == 0;
      ssize_t n = retry_eintr([&] { return ::splice(from_fd, nullptr, p.write_end.get(), nullptr, want, kSpliceFlags); });
      if (n > 0) {
        result.moved_in += static_cast<size_t>(n);
        p.buffered += static_cast<size_t>(n);
        result.source_drained = false;
        progress = true;
      } else if (n == 0) {
        result.source_eof = true;
        result.source_drained = false;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // EAGAIN means "source empty" or "pipe slots full"; only with an
        // empty pipe is it surely the source. Otherwise the drain below
        // makes room and the next round asks again.
        result.source_drained = was_empty;
      } else {
        throw_sys("splice");
      }
    }
    size_t out_before = result.moved_out;
    p.drain(to_fd, result, guard);
    if (result.moved_out != out_before) progress = true;
    if (result.dest_blocked || !progress) break;
  }
  result.buffered = p.buffered;
  return result;
}

TransferResult SplicePipe::flush(int to_fd) {
  Impl& p = *impl_;
  if (!p.read_end) throw_sys("splice", EBADF);
  TransferResult result;
  SigpipeGuard guard;
  p.drain(to_fd, result, guard);
  result.buffered = p.buffered;
  return result;
}

size_t SplicePipe::buffered() const { return impl_->buffered; }

size_t SplicePipe::capacity() const { return impl_->capacity; }

void SplicePipe::close() {
  impl_->read_end.reset();
  impl_->write_end.reset();
  impl_->buffered = 0;
}

bool SplicePipe::closed() const { return !impl_->read_end; }

}  // namespace amy::os
