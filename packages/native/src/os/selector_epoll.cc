// Linux backend of selector.h: one epoll instance, a timerfd per timer, an
// eventfd per user event.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "os/errors.h"
#include "os/owned_fd.h"
#include "os/selector.h"

namespace amy::os {

namespace {

// Timer and user-event tokens are tagged in epoll's data so select() can
// tell them from sources without a lookup on the hot path.
constexpr uint64_t kTimerTag = uint64_t{1} << 63;
constexpr uint64_t kUserTag = uint64_t{1} << 62;
constexpr uint64_t kTagMask = kTimerTag | kUserTag;

uint32_t epoll_mask(Interest interest) {
  uint32_t mask = EPOLLET;
  if (interest & kRead) mask |= EPOLLIN | EPOLLRDHUP;
  if (interest & kWrite) mask |= EPOLLOUT;
  return mask;
}

uint8_t flags_of(uint32_t ev) {
  uint8_t flags = 0;
  if (ev & (EPOLLIN | EPOLLPRI)) flags |= kReadable;
  if (ev & EPOLLOUT) flags |= kWritable;
  if (ev & (EPOLLHUP | EPOLLRDHUP)) flags |= kHangup;
  if (ev & EPOLLERR) flags |= kError;
  return flags;
}

struct Timer {
  OwnedFd fd;
  bool repeating;
};

}  // namespace

struct Selector::Impl {
  OwnedFd epfd;
  // Held shared by every call that touches epfd from any thread, and
  // exclusively by close(), so no thread can use a closed (and possibly
  // reused) fd number.
  mutable std::shared_mutex life;
  std::mutex objects_mutex;  // guards timers and user_events
  std::unordered_map<uint64_t, Timer> timers;
  std::unordered_map<uint64_t, OwnedFd> user_events;
  std::vector<epoll_event> buffer;  // grown once to the largest capacity asked

  void ctl(int op, int fd, uint64_t data, uint32_t mask) {
    epoll_event ev{};
    ev.events = mask;
    ev.data.u64 = data;
    if (retry_eintr([&] { return ::epoll_ctl(epfd.get(), op, fd, &ev); }) == -1) throw_sys("epoll_ctl");
  }

  void check_open() const {
    if (!epfd) throw SysError("epoll_ctl", EBADF);
  }
};

Selector::Selector() : impl_(new Impl) {
  impl_->epfd.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!impl_->epfd) throw_sys("epoll_create1");
}

Selector::~Selector() { close(); }

int Selector::fd() const { return impl_->epfd.get(); }

bool Selector::closed() const {
  std::shared_lock lock(impl_->life);
  return !impl_->epfd;
}

void Selector::add(int fd, uint64_t token, Interest interest) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  impl_->ctl(EPOLL_CTL_ADD, fd, token, epoll_mask(interest));
}

void Selector::modify(int fd, uint64_t token, Interest interest) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  impl_->ctl(EPOLL_CTL_MOD, fd, token, epoll_mask(interest));
}

void Selector::remove(int fd) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  impl_->ctl(EPOLL_CTL_DEL, fd, 0, 0);
}

void Selector::add_timer(uint64_t token, uint64_t delay_ns, uint64_t interval_ns) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  OwnedFd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!tfd) throw_sys("timerfd_create");
  // A zero it_value disarms a timerfd, so "now" is one nanosecond from now.
  if (delay_ns == 0) delay_ns = 1;
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(delay_ns / 1000000000);
  spec.it_value.tv_nsec = static_cast<long>(delay_ns % 1000000000);
  spec.it_interval.tv_sec = static_cast<time_t>(interval_ns / 1000000000);
  spec.it_interval.tv_nsec = static_cast<long>(interval_ns % 1000000000);
  {
    // Insert before arming so select() always finds a timer that fired.
    std::lock_guard objects(impl_->objects_mutex);
    auto [it, inserted] = impl_->timers.emplace(token, Timer{std::move(tfd), interval_ns != 0});
    if (!inserted) throw SysError("timerfd_create", EEXIST);
    try {
      impl_->ctl(EPOLL_CTL_ADD, it->second.fd.get(), token | kTimerTag, EPOLLIN | EPOLLET);
      if (::timerfd_settime(it->second.fd.get(), 0, &spec, nullptr) == -1) throw_sys("timerfd_settime");
    } catch (...) {
      impl_->timers.erase(it);  // closes the timerfd, which also leaves epoll
      throw;
    }
  }
}

bool Selector::cancel_timer(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  auto it = impl_->timers.find(token);
  if (it == impl_->timers.end()) return false;
  // Deregister before close: a pending event leaves the ready list with it.
  impl_->ctl(EPOLL_CTL_DEL, it->second.fd.get(), 0, 0);
  impl_->timers.erase(it);
  return true;
}

void Selector::add_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  OwnedFd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd) throw_sys("eventfd");
  std::lock_guard objects(impl_->objects_mutex);
  auto [it, inserted] = impl_->user_events.emplace(token, std::move(efd));
  if (!inserted) throw SysError("eventfd", EEXIST);
  try {
    impl_->ctl(EPOLL_CTL_ADD, it->second.get(), token | kUserTag, EPOLLIN | EPOLLET);
  } catch (...) {
    impl_->user_events.erase(it);
    throw;
  }
}

void Selector::trigger_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  auto it = impl_->user_events.find(token);
  if (it == impl_->user_events.end()) throw SysError("eventfd_write", ENOENT);
  // Every write to an eventfd is a new edge for EPOLLET, even when the
  // counter is already non-zero; coalescing is the caller's job.
  uint64_t one = 1;
  if (retry_eintr([&] { return ::write(it->second.get(), &one, sizeof one); }) == -1 && errno != EAGAIN)
    throw_sys("eventfd_write");
}

void Selector::clear_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  auto it = impl_->user_events.find(token);
  if (it == impl_->user_events.end()) return;
  uint64_t count;
  if (retry_eintr([&] { return ::read(it->second.get(), &count, sizeof count); }) == -1 && errno != EAGAIN)
    throw_sys("eventfd_read");
}

bool Selector::remove_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  auto it = impl_->user_events.find(token);
  if (it == impl_->user_events.end()) return false;
  impl_->ctl(EPOLL_CTL_DEL, it->second.get(), 0, 0);
  impl_->user_events.erase(it);
  return true;
}

size_t Selector::select(Event* out, size_t capacity, int timeout_ms) {
  if (!impl_->epfd) throw SysError("epoll_wait", EBADF);
  if (capacity == 0) return 0;
  // epoll_wait takes an int count; more than 2^20 events per call is never
  // useful, and the buffer is sized to what is used, not what was asked.
  const int max = capacity > 1 << 20 ? 1 << 20 : static_cast<int>(capacity);
  auto& buffer = impl_->buffer;
  if (buffer.size() < static_cast<size_t>(max)) buffer.resize(static_cast<size_t>(max));
  int n;
  for (;;) {
    // EINTR restarts with the full timeout: a signal can only make the wait
    // longer, never return early with nothing (callers tolerate late).
    n = ::epoll_wait(impl_->epfd.get(), buffer.data(), max, timeout_ms);
    if (n >= 0) break;
    if (errno != EINTR) throw_sys("epoll_wait");
  }
  size_t count = 0;
  for (int i = 0; i < n; i++) {
    const epoll_event& ev = buffer[static_cast<size_t>(i)];
    const uint64_t data = ev.data.u64;
    if (data & kTimerTag) {
      const uint64_t token = data & ~kTagMask;
      std::lock_guard objects(impl_->objects_mutex);
      auto it = impl_->timers.find(token);
      if (it == impl_->timers.end()) continue;  // cancelled after it fired
      uint64_t expirations;
      // Reading resets the timerfd; EAGAIN means a racing re-arm, still fired.
      (void)retry_eintr([&] { return ::read(it->second.fd.get(), &expirations, sizeof expirations); });
      if (!it->second.repeating) {
        ::epoll_ctl(impl_->epfd.get(), EPOLL_CTL_DEL, it->second.fd.get(), nullptr);
        impl_->timers.erase(it);
      }
      out[count++] = Event{token, kReadable};
    } else if (data & kUserTag) {
      out[count++] = Event{data & ~kTagMask, kReadable};
    } else {
      out[count++] = Event{data, flags_of(ev.events)};
    }
  }
  return count;
}

void Selector::close() {
  std::unique_lock lock(impl_->life);
  if (!impl_->epfd) return;
  {
    std::lock_guard objects(impl_->objects_mutex);
    impl_->timers.clear();
    impl_->user_events.clear();
  }
  impl_->epfd.reset();
}

}  // namespace amy::os
