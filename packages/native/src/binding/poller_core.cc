#include "binding/poller_core.h"

#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include "os/errors.h"

namespace amy::binding {

namespace {
std::atomic<uint64_t> id_counter{1};
}

uint64_t next_id() { return id_counter.fetch_add(1, std::memory_order_relaxed); }

bool id_was_issued(uint64_t id) { return id >= 1 && id < id_counter.load(std::memory_order_relaxed); }

PollerCore::PollerCore() : id_(next_id()) {}

uint64_t PollerCore::register_source(int fd, os::Interest interest, uint64_t reserved_id) {
  std::lock_guard lock(mutex_);
  if (closed()) throw os::SysError("epoll_ctl", EBADF);
  if (reserved_id != 0 && sources_.count(reserved_id) != 0) throw std::invalid_argument("id already registered");
  uint64_t id = reserved_id != 0 ? reserved_id : next_id();
  selector_.add(fd, id, interest);
  // The kernel took the fd, so no live registration of this fd number
  // exists: an entry still naming it is stale (its fd was closed without
  // deregistering, and the number reused). Forget it, or deregistering the
  // stale id would remove this new registration.
  auto stale = fds_.find(fd);
  if (stale != fds_.end()) sources_.erase(stale->second);
  fds_[fd] = id;
  sources_.emplace(id, fd);
  return id;
}

void PollerCore::reregister_source(uint64_t id, int fd, os::Interest interest) {
  std::lock_guard lock(mutex_);
  if (closed()) throw os::SysError("epoll_ctl", EBADF);
  auto it = sources_.find(id);
  if (it == sources_.end()) throw std::out_of_range("unknown registration id");
  if (it->second != fd) throw std::invalid_argument("registration id belongs to another fd");
  selector_.modify(fd, id, interest);
}

bool PollerCore::deregister_source(uint64_t id) {
  std::lock_guard lock(mutex_);
  if (closed()) throw os::SysError("epoll_ctl", EBADF);
  auto it = sources_.find(id);
  if (it == sources_.end()) return false;
  int fd = it->second;
  sources_.erase(it);
  fds_.erase(fd);
  try {
    selector_.remove(fd);
  } catch (const os::SysError& e) {
    // The fd was closed before it was deregistered: the kernel already
    // dropped it (and any event pending for it), which is what we wanted.
    // (If the number had been reused by a new registration, register_source
    // would have forgotten this id, so we never reach a live fd here.)
    if (e.err() != EBADF && e.err() != ENOENT) throw;
  }
  return true;
}

uint64_t PollerCore::set_timer(uint64_t delay_ns, uint64_t interval_ns) {
  uint64_t id = next_id();
  selector_.add_timer(id, delay_ns, interval_ns);
  return id;
}

bool PollerCore::cancel_timer(uint64_t id) { return selector_.cancel_timer(id); }

std::shared_ptr<ChannelCore> PollerCore::open_channel(size_t bound) {
  std::lock_guard lock(mutex_);
  if (closed()) throw os::SysError("eventfd", EBADF);
  // The channel keeps only a weak_ptr to its poller; a shared_ptr to this
  // poller is found through the registry.
  auto self = registry::find_poller(id_);
  auto channel = std::make_shared<ChannelCore>(next_id(), self, bound);
  selector_.add_user_event(channel->id());
  channels_.emplace(channel->id(), channel);
  registry::add_channel(channel);
  return channel;
}

void PollerCore::forget_channel(uint64_t id) {
  std::lock_guard lock(mutex_);
  channels_.erase(id);
  registry::remove_channel(id);
  if (!closed()) selector_.remove_user_event(id);
}

bool PollerCore::hand_over(const int32_t* fds, size_t count, uint64_t tag) {
  bool trigger;
  uint64_t inbox;
  {
    std::lock_guard lock(mutex_);
    if (closed() || inbox_id_ == 0) return false;
    inbox_.reserve(inbox_.size() + count);
    for (size_t i = 0; i < count; i++) inbox_.push_back({fds[i], tag});
    trigger = !inbox_signaled_ && count > 0;
    if (trigger) inbox_signaled_ = true;
    inbox = inbox_id_;
  }
  if (trigger) {
    try {
      selector_.trigger_user_event(inbox);
    } catch (const os::SysError&) {
      // Closed between the unlock and the trigger: close() already closed
      // the inbox, these fds with it, so they are not the caller's anymore.
      if (!closed()) throw;
    }
  }
  return true;
}

uint64_t PollerCore::open_inbox() {
  std::lock_guard lock(mutex_);
  if (closed()) throw os::SysError("eventfd", EBADF);
  if (inbox_id_ == 0) {
    uint64_t id = next_id();
    selector_.add_user_event(id);
    inbox_id_ = id;
  }
  return inbox_id_;
}

size_t PollerCore::take_handed_over(int32_t* out, uint64_t* tags, size_t capacity) {
  std::lock_guard lock(mutex_);
  size_t n = inbox_.size() < capacity ? inbox_.size() : capacity;
  for (size_t i = 0; i < n; i++) {
    out[i] = inbox_[i].fd;
    if (tags != nullptr) tags[i] = inbox_[i].tag;
  }
  inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(n));
  // Drained: the next hand-off must wake the poller again.
  if (inbox_.empty()) inbox_signaled_ = false;
  return n;
}

size_t PollerCore::load() {
  std::lock_guard lock(mutex_);
  return sources_.size() + inbox_.size();
}

bool PollerCore::has_source(uint64_t id) {
  std::lock_guard lock(mutex_);
  return sources_.count(id) != 0;
}

void PollerCore::set_owns_sources(bool owns) {
  std::lock_guard lock(mutex_);
  owns_sources_ = owns;
}

void PollerCore::close() {
  std::unordered_map<uint64_t, std::weak_ptr<ChannelCore>> channels;
  {
    std::lock_guard lock(mutex_);
    if (closed()) return;
    closed_.store(true, std::memory_order_release);
    channels.swap(channels_);
    // Deregistration first (closing the selector drops every registration
    // at once), then the fds this poller owns.
    selector_.close();
    size_t closed_fds = 0;
    if (owns_sources_) {
      for (auto& [id, fd] : sources_) {
        ::close(fd);
        closed_fds++;
      }
    }
    // Handed-over fds nobody took are always the poller's to close.
    for (const HandedOver& handed : inbox_) {
      ::close(handed.fd);
      closed_fds++;
    }
    inbox_.clear();
    closed_on_close_.store(closed_fds, std::memory_order_release);
    sources_.clear();
    fds_.clear();
  }
  for (auto& [id, weak] : channels) {
    registry::remove_channel(id);
    if (auto channel = weak.lock()) channel->close();
  }
  registry::remove_poller(id_);
}

ChannelCore::ChannelCore(uint64_t id, std::weak_ptr<PollerCore> poller, size_t bound)
    : id_(id), poller_(std::move(poller)), bound_(bound) {}

ChannelCore::SendResult ChannelCore::send(const uint8_t* data, size_t size) {
  bool trigger;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return kClosed;
    if (bound_ != 0 && queue_.size() >= bound_) return kFull;
    queue_.emplace_back(data, data + size);
    trigger = !signaled_;
    signaled_ = true;
  }
  if (!trigger) return kSent;
  auto poller = poller_.lock();
  if (!poller || poller->closed()) {
    close();
    return kClosed;
  }
  try {
    poller->selector().trigger_user_event(id_);
  } catch (const os::SysError&) {
    // The poller closed (or the receiver left) between the check and the
    // trigger; nobody will read this value.
    close();
    return kClosed;
  }
  return kSent;
}

bool ChannelCore::try_recv(std::vector<uint8_t>& out) {
  std::lock_guard lock(mutex_);
  if (queue_.empty()) {
    // Drained: the next send must wake the poller again.
    signaled_ = false;
    return false;
  }
  out = std::move(queue_.front());
  queue_.pop_front();
  if (queue_.empty()) signaled_ = false;
  return true;
}

size_t ChannelCore::size() {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void ChannelCore::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  queue_.clear();
}

bool ChannelCore::closed() {
  std::lock_guard lock(mutex_);
  return closed_;
}

namespace registry {
namespace {
template <typename T>
struct Table {
  std::mutex mutex;
  std::unordered_map<uint64_t, std::weak_ptr<T>> entries;
};
// Function-local statics: initialised on first use, shared by every worker
// thread that loads the addon (the .so is loaded once per process).
Table<PollerCore>& pollers() {
  static Table<PollerCore> table;
  return table;
}
Table<ChannelCore>& channels() {
  static Table<ChannelCore> table;
  return table;
}
template <typename T>
std::shared_ptr<T> find(Table<T>& table, uint64_t id) {
  std::lock_guard lock(table.mutex);
  auto it = table.entries.find(id);
  return it == table.entries.end() ? nullptr : it->second.lock();
}
}  // namespace

void add_poller(const std::shared_ptr<PollerCore>& core) {
  std::lock_guard lock(pollers().mutex);
  pollers().entries[core->id()] = core;
}
std::shared_ptr<PollerCore> find_poller(uint64_t id) { return find(pollers(), id); }
void remove_poller(uint64_t id) {
  std::lock_guard lock(pollers().mutex);
  pollers().entries.erase(id);
}
void add_channel(const std::shared_ptr<ChannelCore>& core) {
  std::lock_guard lock(channels().mutex);
  channels().entries[core->id()] = core;
}
std::shared_ptr<ChannelCore> find_channel(uint64_t id) { return find(channels(), id); }
void remove_channel(uint64_t id) {
  std::lock_guard lock(channels().mutex);
  channels().entries.erase(id);
}
}  // namespace registry

}  // namespace amy::binding
