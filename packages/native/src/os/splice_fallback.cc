// SplicePipe where splice(2) does not exist (macOS, BSD): the same contract
// (splice.h) with read(2) and send(2) through a buffer the object owns, so
// the bytes pass through user space but never through JavaScript. Errors
// still name "splice" so callers see one contract on every platform.
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <vector>

#include "os/errors.h"
#include "os/splice.h"

namespace amy::os {

namespace {

#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;  // the library's sockets carry SO_NOSIGPIPE here
#endif

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// send(2) for sockets (no SIGPIPE); write(2) for anything else (a pipe or a
// file as destination).
ssize_t write_some(int fd, const uint8_t* data, size_t len) {
  ssize_t n = retry_eintr([&] { return ::send(fd, data, len, kSendFlags); });
  if (n == -1 && errno == ENOTSOCK) n = retry_eintr([&] { return ::write(fd, data, len); });
  return n;
}

}  // namespace

bool splice_in_kernel() { return false; }

struct SplicePipe::Impl {
  std::vector<uint8_t> buffer;  // allocated on first use, freed by close()
  size_t capacity = 0;
  size_t head = 0;      // first byte not yet written out
  size_t buffered = 0;  // bytes from head on
  bool closed = false;

  void drain(int to_fd, TransferResult& result) {
    while (buffered > 0) {
      ssize_t n = write_some(to_fd, buffer.data() + head, buffered);
      if (n > 0) {
        size_t moved = std::min(buffered, static_cast<size_t>(n));
        result.moved_out += moved;
        buffered -= moved;
        head = buffered == 0 ? 0 : head + moved;
        continue;
      }
      if (n == -1 && would_block(errno)) {
        result.dest_blocked = true;
        return;
      }
      throw_sys("splice", n == 0 ? EIO : errno);
    }
  }
};

SplicePipe::SplicePipe(size_t capacity_bytes) : impl_(std::make_unique<Impl>()) {
  if (capacity_bytes > static_cast<size_t>(INT_MAX)) throw_sys("fcntl", EINVAL);
  impl_->capacity = capacity_bytes == 0 ? kDefaultCapacity : capacity_bytes;
}

SplicePipe::~SplicePipe() = default;

TransferResult SplicePipe::transfer(int from_fd, int to_fd, size_t max_bytes) {
  Impl& p = *impl_;
  if (p.closed) throw_sys("splice", EBADF);
  if (p.buffer.size() < p.capacity) p.buffer.resize(p.capacity);
  TransferResult result;
  for (;;) {
    bool progress = false;
    if (!result.source_eof && result.moved_in < max_bytes && p.buffered < p.capacity) {
      if (p.head + p.buffered == p.capacity) {  // room only at the front: compact
        std::memmove(p.buffer.data(), p.buffer.data() + p.head, p.buffered);
        p.head = 0;
      }
      size_t tail = p.head + p.buffered;
      size_t want = std::min(max_bytes - result.moved_in, p.capacity - tail);
      ssize_t n = retry_eintr([&] { return ::read(from_fd, p.buffer.data() + tail, want); });
      if (n > 0) {
        result.moved_in += static_cast<size_t>(n);
        p.buffered += static_cast<size_t>(n);
        result.source_drained = false;
        progress = true;
      } else if (n == 0) {
        result.source_eof = true;
        result.source_drained = false;
      } else if (would_block(errno)) {
        result.source_drained = true;  // a buffer cannot be "full" while it has room
      } else {
        throw_sys("splice");
      }
    }
    size_t out_before = result.moved_out;
    p.drain(to_fd, result);
    if (result.moved_out != out_before) progress = true;
    if (result.dest_blocked || !progress) break;
  }
  result.buffered = p.buffered;
  return result;
}

TransferResult SplicePipe::flush(int to_fd) {
  Impl& p = *impl_;
  if (p.closed) throw_sys("splice", EBADF);
  TransferResult result;
  p.drain(to_fd, result);
  result.buffered = p.buffered;
  return result;
}

size_t SplicePipe::buffered() const { return impl_->buffered; }

size_t SplicePipe::capacity() const { return impl_->capacity; }

void SplicePipe::close() {
  impl_->closed = true;
  impl_->buffered = 0;
  impl_->head = 0;
  std::vector<uint8_t>().swap(impl_->buffer);
}

bool SplicePipe::closed() const { return impl_->closed; }

}  // namespace amy::os
