// The native state of one poller, shared by every thread that registers into
// it. JavaScript objects in any worker hold a shared_ptr to it; the
// process-wide registry maps plain ids (what crosses threads) back to it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "os/selector.h"

namespace amy::binding {

class ChannelCore;

// Ids for registrations, timers, channels and pollers: one process-wide
// space, never reused, all below 2^53 so JavaScript numbers hold them.
uint64_t next_id();
// Whether next_id() has handed out `id` (so registering under it cannot
// collide with an id handed out later).
bool id_was_issued(uint64_t id);

class PollerCore {
 public:
  PollerCore();
  uint64_t id() const { return id_; }
  os::Selector& selector() { return selector_; }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // All of these are thread-safe and throw os::SysError; a closed poller
  // fails with EBADF, which the binding reports as ERR_POLLER_CLOSED.
  // reserved_id: an id from next_id() not registered yet (a connection
  // known by its id before its socket exists); 0: a fresh one.
  uint64_t register_source(int fd, os::Interest interest, uint64_t reserved_id = 0);
  void reregister_source(uint64_t id, int fd, os::Interest interest);  // throws std::out_of_range
  bool deregister_source(uint64_t id);
  uint64_t set_timer(uint64_t delay_ns, uint64_t interval_ns);
  bool cancel_timer(uint64_t id);
  std::shared_ptr<ChannelCore> open_channel(size_t bound);
  void forget_channel(uint64_t id);

  // Fd hand-off (the server's acceptor → a worker): any thread may hand fds
  // over; the poller's thread takes them in one call. Only the transition
  // from empty to non-empty triggers the inbox's user event, so a burst of
  // hand-offs wakes the poller once. Returns false if the poller is closed
  // (the caller still owns the fds then). Each fd travels with the `tag`
  // of its hand-off, an opaque number for the taker (the server tags a TLS
  // listener's connections with its TLS context's id, plain ones with 0).
  bool hand_over(const int32_t* fds, size_t count, uint64_t tag = 0);
  uint64_t open_inbox();                     // poller thread; returns the inbox's id
  // tags may be null (the tags are dropped); else it has room for capacity.
  size_t take_handed_over(int32_t* out, uint64_t* tags, size_t capacity);
  // Live source registrations plus fds waiting in the inbox: the acceptor's
  // measure of a worker's load, read without a message.
  size_t load();
  // Whether a live source registration has this id (any thread): lets the
  // server find which worker's poller serves a connection without asking
  // every worker.
  bool has_source(uint64_t id);
  // When set, close() also closes every fd still registered and every fd
  // still in the inbox, so a worker thread that dies cannot leak its
  // connections. Returns how many it closed that way.
  void set_owns_sources(bool owns);
  size_t closed_on_close() const { return closed_on_close_.load(std::memory_order_acquire); }

  // Poller thread only. Closes the selector and every channel into it.
  void close();

 private:
  const uint64_t id_;
  os::Selector selector_;
  std::atomic<bool> closed_{false};
  std::mutex mutex_;
  std::unordered_map<uint64_t, int> sources_;  // registration id -> fd
  std::unordered_map<int, uint64_t> fds_;      // fd -> registration id
  std::unordered_map<uint64_t, std::weak_ptr<ChannelCore>> channels_;
  struct HandedOver {
    int32_t fd;
    uint64_t tag;
  };
  std::vector<HandedOver> inbox_;
  uint64_t inbox_id_ = 0;
  bool inbox_signaled_ = false;
  bool owns_sources_ = false;
  std::atomic<size_t> closed_on_close_{0};
};

// A channel whose receiver lives on one poller. send() works from any thread;
// only an empty-to-non-empty transition triggers the poller's user event, so
// many sends before a receive wake it once.
class ChannelCore {
 public:
  enum SendResult { kSent, kFull, kClosed };

  ChannelCore(uint64_t id, std::weak_ptr<PollerCore> poller, size_t bound);
  uint64_t id() const { return id_; }
  size_t bound() const { return bound_; }

  SendResult send(const uint8_t* data, size_t size);
  bool try_recv(std::vector<uint8_t>& out);  // false when empty
  size_t size();
  void close();  // senders get kClosed from now on
  bool closed();

 private:
  const uint64_t id_;
  const std::weak_ptr<PollerCore> poller_;
  const size_t bound_;  // 0: unbounded
  std::mutex mutex_;
  std::deque<std::vector<uint8_t>> queue_;
  bool signaled_ = false;  // a trigger is outstanding since the last drain
  bool closed_ = false;
};

// Process-wide lookups from plain ids (what crosses threads) to live cores.
namespace registry {
void add_poller(const std::shared_ptr<PollerCore>& core);
std::shared_ptr<PollerCore> find_poller(uint64_t id);
void remove_poller(uint64_t id);
void add_channel(const std::shared_ptr<ChannelCore>& core);
std::shared_ptr<ChannelCore> find_channel(uint64_t id);
void remove_channel(uint64_t id);
}  // namespace registry

}  // namespace amy::binding
