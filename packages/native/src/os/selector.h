// The selector contract: one kernel readiness queue (an epoll instance on
// Linux, a kqueue on macOS/BSD) and the timers and user events that arrive
// through it. Each backend implements this file once (selector_epoll.cc,
// selector_kqueue.cc); binding.gyp picks the backend, so no shared file
// carries an #ifdef.
//
// The contract, which every backend keeps:
// - Triggering is edge-triggered. After an event, the owner reads or writes
//   until it would block; spurious events can happen.
// - Events carry the caller's token, never the fd. Tokens are below 2^62
//   (the library hands out ids below 2^53), so a backend may tag the top bits.
// - One Event per token per select() call: read and write readiness of one
//   source are coalesced (kqueue reports them as separate filters).
// - add/modify/remove, the timer and the user-event calls are thread-safe and
//   never wake a thread blocked in select(); the kernel queue picks the
//   change up. select() and close() belong to one thread (the poller's).
// - A removed source, a cancelled timer or a removed user event produces no
//   event in any select() that starts after the removal returned.
// - Timers never fire early (CLOCK_MONOTONIC or the kqueue equivalent);
//   intervals are kernel-periodic, so they do not drift. A one-shot timer is
//   forgotten by the selector once its event has been returned.
// - EINTR is retried inside; every other failure throws SysError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace amy::os {

enum Interest : uint8_t { kRead = 1, kWrite = 2, kBoth = 3 };

enum EventFlags : uint8_t {
  kReadable = 1,
  kWritable = 2,
  kHangup = 4,  // the peer closed its side, or the source is fully closed
  kError = 8,   // an error is pending on the source (SO_ERROR for sockets)
};

struct Event {
  uint64_t token;
  uint8_t flags;  // EventFlags
};

class Selector {
 public:
  Selector();  // throws SysError
  ~Selector();
  Selector(const Selector&) = delete;
  Selector& operator=(const Selector&) = delete;

  // The selector's own fd: readable when events are pending, so an outer
  // event loop (libuv) can watch it.
  int fd() const;

  // Sources: fds the caller owns and keeps open while registered.
  void add(int fd, uint64_t token, Interest interest);
  void modify(int fd, uint64_t token, Interest interest);
  void remove(int fd);

  // Timers: first event after delay_ns, then every interval_ns if it is not
  // zero. Returns false from cancel_timer if the token is not a live timer.
  void add_timer(uint64_t token, uint64_t delay_ns, uint64_t interval_ns);
  bool cancel_timer(uint64_t token);

  // User events: trigger() from any thread makes the token readable; events
  // are edge-triggered, so N triggers before select() give at most one event
  // and a trigger after that select() gives another. clear() resets the
  // kernel object's level (not needed for correctness; it keeps eventfd
  // counters small).
  void add_user_event(uint64_t token);
  void trigger_user_event(uint64_t token);
  void clear_user_event(uint64_t token);
  bool remove_user_event(uint64_t token);

  // Waits up to timeout_ms (-1: until an event arrives, 0: poll) and writes
  // at most `capacity` events to out. Returns how many were written.
  size_t select(Event* out, size_t capacity, int timeout_ms);

  // Closes the kernel queue and every timer and user event. Idempotent.
  // After close() every other call throws SysError(EBADF).
  void close();
  bool closed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace amy::os
