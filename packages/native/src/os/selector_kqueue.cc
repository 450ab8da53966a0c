// macOS/BSD backend of selector.h: one kqueue. A source is an EVFILT_READ
// and/or EVFILT_WRITE knote on its fd, a timer an EVFILT_TIMER knote and a
// user event an EVFILT_USER knote (ident = token for both). Kernels without
// EVFILT_USER (NetBSD < 10, OpenBSD < 7.8) get a nonblocking pipe per user
// event instead.
//
// Fixes over the Rust amy's kqueue selector: modify() drops a filter that is
// no longer wanted, and select() coalesces read and write readiness by token
// into one Event per token per call.
//
// Where it differs from the epoll backend, within the contract: remove() of
// an fd that has no knote and modify() of an unregistered fd do not throw
// (kqueue cannot tell "not registered" from "filter not wanted", and EV_ADD
// registers), and a pending socket error without EOF shows as kReadable (the
// read returns it) rather than kError.
//
// Checked on Linux against a model of kqueue by test/os/kqueue-check.sh.

// <sys/types.h> first: older BSD <sys/event.h> headers need its types.
#include <sys/types.h>

#include <fcntl.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "os/errors.h"
#include "os/owned_fd.h"
#include "os/selector.h"

// EVFILT_USER where the kernel has it; the check defines
// AMY_KQUEUE_NO_EVFILT_USER to test the pipe fallback on a kernel that has it.
#if defined(EVFILT_USER) && defined(NOTE_TRIGGER) && !defined(AMY_KQUEUE_NO_EVFILT_USER)
#define AMY_KQUEUE_EVFILT_USER 1
#else
#define AMY_KQUEUE_EVFILT_USER 0
#endif

namespace amy::os {

namespace {

// udata and ident carry tokens whole (and the pipe fallback tags bit 62).
static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "the kqueue selector needs 64-bit kevent idents");

// The types of struct kevent's fields differ between systems (data is
// intptr_t on macOS, int64_t on FreeBSD >= 12; udata is void* except on
// NetBSD < 10, where it is intptr_t), so kevents are built field by field
// rather than with EV_SET.
using KData = decltype(kevent::data);
using KUdata = decltype(kevent::udata);

#if !AMY_KQUEUE_EVFILT_USER
// The pipe fallback's read ends are EVFILT_READ knotes like sources; this tag
// in their udata tells them apart.
constexpr uint64_t kUserTag = uint64_t{1} << 62;
#endif

#ifdef EV_RECEIPT
constexpr unsigned kReceipt = EV_RECEIPT;
#endif

struct kevent make_kevent(uintptr_t ident, int filter, unsigned flags, unsigned fflags, uint64_t data,
                          uint64_t udata) {
  struct kevent ev;
  std::memset(&ev, 0, sizeof ev);
  ev.ident = ident;
  ev.filter = static_cast<decltype(ev.filter)>(filter);
  ev.flags = static_cast<decltype(ev.flags)>(flags);
  ev.fflags = static_cast<decltype(ev.fflags)>(fflags);
  ev.data = static_cast<KData>(data);
  ev.udata = (KUdata)(uintptr_t)udata;  // a C cast: void* or intptr_t
  return ev;
}

uint64_t udata_of(const struct kevent& ev) { return (uint64_t)(uintptr_t)ev.udata; }

uint64_t ceil_div(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

// The kevent fields of a timer of `ns` nanoseconds, in the finest unit the
// system offers whose count fits in `data`. Coarser units round up: a timer
// may fire late, never early.
struct TimerUnits {
  unsigned fflags;
  uint64_t data;
};

TimerUnits timer_units(uint64_t ns) {
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<KData>::max());
  if (ns == 0) ns = 1;  // some kernels reject a zero period; 1 ns is "now"
#ifdef NOTE_NSECONDS  // macOS, FreeBSD, NetBSD >= 10, OpenBSD >= 7.x
  if (ns <= kMax) return {NOTE_NSECONDS, ns};
#endif
#ifdef NOTE_USECONDS
  if (ceil_div(ns, 1000) <= kMax) return {NOTE_USECONDS, ceil_div(ns, 1000)};
#endif
  // Milliseconds: the unit of a timer without a NOTE_* unit flag everywhere.
  const uint64_t ms = ceil_div(ns, 1000000);
  return {0, ms <= kMax ? ms : kMax};
}

// A periodic timer knote's first expiry is one period after it is added.
// A repeating timer whose first delay differs from its interval therefore
// starts as a one-shot, and select() re-adds it as periodic when it fires
// (the period then counts from that select(), so it is late, never early).
// The library only asks for delay == interval, which is periodic at once.
struct kevent timer_kevent(uint64_t token, uint64_t ns, bool oneshot) {
  const TimerUnits u = timer_units(ns);
  const unsigned flags = EV_ADD | EV_CLEAR | (oneshot ? EV_ONESHOT : 0);
  return make_kevent(static_cast<uintptr_t>(token), EVFILT_TIMER, flags, u.fflags, u.data, token);
}

struct Timer {
  bool repeating;
  uint64_t rearm_interval_ns;  // non-zero: a one-shot first expiry, then periodic
};

#if !AMY_KQUEUE_EVFILT_USER
struct UserPipe {
  OwnedFd rd;
  OwnedFd wr;
};

void drain(int fd) {
  char buf[256];
  while (retry_eintr([&] { return ::read(fd, buf, sizeof buf); }) > 0) {
  }
}
#endif

// One slot of select()'s open-addressing table from token to the index of its
// Event in `out`. A slot is live only if its gen is the current call's, so the
// table is never cleared and select() allocates nothing after warm-up.
struct Slot {
  uint64_t token;
  uint32_t gen;
  uint32_t index;
};

}  // namespace

struct Selector::Impl {
  OwnedFd kq;
  // Held shared by every call that touches kq from any thread, and
  // exclusively by close(), so no thread can use a closed (and possibly
  // reused) fd number.
  mutable std::shared_mutex life;
  std::mutex objects_mutex;  // guards timers and user_events
  std::unordered_map<uint64_t, Timer> timers;
#if AMY_KQUEUE_EVFILT_USER
  std::unordered_set<uint64_t> user_events;
#else
  std::unordered_map<uint64_t, UserPipe> user_events;
#endif
  // Both grown once to the largest capacity select() is asked for.
  std::vector<struct kevent> buffer;
  std::vector<Slot> slots;  // a power of two, at least twice buffer's size
  unsigned slot_bits = 0;
  uint32_t gen = 0;

  void check_open() const {
    if (!kq) throw SysError("kevent", EBADF);
  }

  // Applies n <= 2 changes and stores each one's errno (0: applied) in errs.
  // With EV_RECEIPT every change reports back on its own and the call never
  // drains pending events into the receipt list (which fills up first).
  void apply(struct kevent* changes, int n, int* errs) {
    for (int i = 0; i < n; i++) errs[i] = 0;
#ifdef EV_RECEIPT
    struct kevent receipts[2];
    const timespec zero{0, 0};
    for (int i = 0; i < n; i++) changes[i].flags |= kReceipt;
    // A retry after EINTR re-applies every change: adds and triggers are
    // idempotent, and a delete that had gone through reports ENOENT, which
    // every delete here ignores.
    const int r = retry_eintr([&] { return ::kevent(kq.get(), changes, n, receipts, n, &zero); });
    if (r == -1) throw_sys("kevent");
    for (int j = 0; j < r; j++) {
      const struct kevent& rc = receipts[j];
      if (!(rc.flags & EV_ERROR) || rc.data == 0) continue;
      for (int i = 0; i < n; i++)
        if (changes[i].ident == rc.ident && changes[i].filter == rc.filter) errs[i] = static_cast<int>(rc.data);
    }
#else
    for (int i = 0; i < n; i++)
      if (retry_eintr([&] { return ::kevent(kq.get(), &changes[i], 1, nullptr, 0, nullptr); }) == -1) errs[i] = errno;
#endif
  }

  // Applies one change; throws unless it succeeded or failed with `ignore`.
  void apply_one(struct kevent change, int ignore = 0) {
    int err;
    apply(&change, 1, &err);
    if (err != 0 && err != ignore) throw SysError("kevent", err);
  }

  void reserve(int max) {
    const size_t n = static_cast<size_t>(max);
    if (buffer.size() < n) buffer.resize(n);
    unsigned bits = 4;
    while ((size_t{1} << bits) < 2 * n) bits++;
    if (bits > slot_bits) {
      slots.assign(size_t{1} << bits, Slot{0, 0, 0});
      slot_bits = bits;
      gen = 0;
    }
  }

  uint32_t next_gen() {
    if (++gen == 0) {  // wrapped: forget every slot's stamp
      for (Slot& s : slots) s.gen = 0;
      gen = 1;
    }
    return gen;
  }

  Slot& slot_for(uint64_t token) {
    const size_t mask = slots.size() - 1;
    size_t i = static_cast<size_t>((token * 0x9E3779B97F4A7C15ull) >> (64 - slot_bits));
    while (slots[i].gen == gen && slots[i].token != token) i = (i + 1) & mask;
    return slots[i];
  }
};

Selector::Selector() : impl_(new Impl) {
  // Plain kqueue() + FD_CLOEXEC rather than kqueue1(O_CLOEXEC) (NetBSD,
  // OpenBSD) or kqueuex() (FreeBSD 14): kqueue(2) says a kqueue is not
  // inherited by fork() children, so the gap between the calls cannot leak it.
  impl_->kq.reset(::kqueue());
  if (!impl_->kq) throw_sys("kqueue");
  if (::fcntl(impl_->kq.get(), F_SETFD, FD_CLOEXEC) == -1) throw_sys("fcntl");
}

Selector::~Selector() { close(); }

int Selector::fd() const { return impl_->kq.get(); }

bool Selector::closed() const {
  std::shared_lock lock(impl_->life);
  return !impl_->kq;
}

void Selector::add(int fd, uint64_t token, Interest interest) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  const uintptr_t ident = static_cast<uintptr_t>(fd);
  struct kevent changes[2];
  int n = 0;
  if (interest & kRead) changes[n++] = make_kevent(ident, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, token);
  if (interest & kWrite) changes[n++] = make_kevent(ident, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, token);
  int errs[2];
  impl_->apply(changes, n, errs);
  int err = 0;
  for (int i = 0; i < n && err == 0; i++) err = errs[i];
  if (err == 0) return;
  // Take back the filter that was added, so a failed add leaves nothing.
  struct kevent undo[2];
  int m = 0;
  for (int i = 0; i < n; i++)
    if (errs[i] == 0) undo[m++] = make_kevent(ident, changes[i].filter, EV_DELETE, 0, 0, 0);
  if (m > 0) {
    int ignored[2];
    try {
      impl_->apply(undo, m, ignored);
    } catch (const SysError&) {
    }
  }
  throw SysError("kevent", err);
}

void Selector::modify(int fd, uint64_t token, Interest interest) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  const uintptr_t ident = static_cast<uintptr_t>(fd);
  // Every filter is set: the wanted ones added (EV_ADD on a live knote
  // updates it), the others deleted, so no stale filter keeps reporting.
  const unsigned read_flags = (interest & kRead) ? EV_ADD | EV_CLEAR : EV_DELETE;
  const unsigned write_flags = (interest & kWrite) ? EV_ADD | EV_CLEAR : EV_DELETE;
  struct kevent changes[2] = {
      make_kevent(ident, EVFILT_READ, read_flags, 0, 0, token),
      make_kevent(ident, EVFILT_WRITE, write_flags, 0, 0, token),
  };
  int errs[2];
  impl_->apply(changes, 2, errs);
  for (int i = 0; i < 2; i++) {
    const bool deleting = (i == 0 ? read_flags : write_flags) & EV_DELETE;
    if (errs[i] != 0 && !(deleting && errs[i] == ENOENT)) throw SysError("kevent", errs[i]);
  }
}

void Selector::remove(int fd) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  const uintptr_t ident = static_cast<uintptr_t>(fd);
  struct kevent changes[2] = {
      make_kevent(ident, EVFILT_READ, EV_DELETE, 0, 0, 0),
      make_kevent(ident, EVFILT_WRITE, EV_DELETE, 0, 0, 0),
  };
  int errs[2];
  impl_->apply(changes, 2, errs);
  for (int i = 0; i < 2; i++)
    if (errs[i] != 0 && errs[i] != ENOENT) throw SysError("kevent", errs[i]);
}

void Selector::add_timer(uint64_t token, uint64_t delay_ns, uint64_t interval_ns) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  const bool repeating = interval_ns != 0;
  const bool periodic_now = repeating && delay_ns == interval_ns;
  const Timer timer{repeating, repeating && !periodic_now ? interval_ns : 0};
  // Insert before arming so select() always finds a timer that fired.
  std::lock_guard objects(impl_->objects_mutex);
  auto [it, inserted] = impl_->timers.emplace(token, timer);
  if (!inserted) throw SysError("kevent", EEXIST);
  try {
    impl_->apply_one(timer_kevent(token, delay_ns, !periodic_now));
  } catch (...) {
    impl_->timers.erase(it);
    throw;
  }
}

bool Selector::cancel_timer(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  auto it = impl_->timers.find(token);
  if (it == impl_->timers.end()) return false;
  // Deleting the knote drops an event it has pending. ENOENT: a one-shot
  // whose event select() has fetched (the kernel dropped the knote then) but
  // not yet returned; select() skips it once the map forgets it.
  impl_->apply_one(make_kevent(static_cast<uintptr_t>(token), EVFILT_TIMER, EV_DELETE, 0, 0, 0), ENOENT);
  impl_->timers.erase(it);
  return true;
}

#if AMY_KQUEUE_EVFILT_USER

void Selector::add_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  auto [it, inserted] = impl_->user_events.insert(token);
  if (!inserted) throw SysError("kevent", EEXIST);
  try {
    // EV_CLEAR: the knote resets once its event is returned, so N triggers
    // before a select() give one event and the next trigger another.
    impl_->apply_one(make_kevent(static_cast<uintptr_t>(token), EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, token));
  } catch (...) {
    impl_->user_events.erase(it);
    throw;
  }
}

void Selector::trigger_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  if (impl_->user_events.count(token) == 0) throw SysError("kevent", ENOENT);
  // No EV_CLEAR here: on FreeBSD a change carrying EV_CLEAR resets the
  // trigger it sets.
  impl_->apply_one(make_kevent(static_cast<uintptr_t>(token), EVFILT_USER, 0, NOTE_TRIGGER, 0, token));
}

void Selector::clear_user_event(uint64_t) {
  // EV_CLEAR resets the knote when select() returns its event.
  std::shared_lock lock(impl_->life);
  impl_->check_open();
}

bool Selector::remove_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  auto it = impl_->user_events.find(token);
  if (it == impl_->user_events.end()) return false;
  impl_->apply_one(make_kevent(static_cast<uintptr_t>(token), EVFILT_USER, EV_DELETE, 0, 0, 0), ENOENT);
  impl_->user_events.erase(it);
  return true;
}

#else  // !AMY_KQUEUE_EVFILT_USER: a nonblocking pipe per user event

void Selector::add_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  int fds[2];
#if defined(__APPLE__)  // no pipe2 (and macOS has EVFILT_USER anyway)
  if (::pipe(fds) == -1) throw_sys("pipe");
  UserPipe p{OwnedFd(fds[0]), OwnedFd(fds[1])};
  for (int fd : fds)
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 || ::fcntl(fd, F_SETFL, O_NONBLOCK) == -1) throw_sys("fcntl");
#else
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) throw_sys("pipe2");
  UserPipe p{OwnedFd(fds[0]), OwnedFd(fds[1])};
#endif
  std::lock_guard objects(impl_->objects_mutex);
  auto [it, inserted] = impl_->user_events.emplace(token, std::move(p));
  if (!inserted) throw SysError("kevent", EEXIST);
  try {
    impl_->apply_one(make_kevent(static_cast<uintptr_t>(it->second.rd.get()), EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0,
                                 token | kUserTag));
  } catch (...) {
    impl_->user_events.erase(it);  // closing the read end drops its knote
    throw;
  }
}

void Selector::trigger_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  auto it = impl_->user_events.find(token);
  if (it == impl_->user_events.end()) throw SysError("kevent", ENOENT);
  // Every write re-activates an EV_CLEAR knote. EAGAIN: the pipe is full, so
  // select() has not drained it yet and an event is pending already.
  const char one = 1;
  if (retry_eintr([&] { return ::write(it->second.wr.get(), &one, 1); }) == -1 && errno != EAGAIN)
    throw_sys("write");
}

void Selector::clear_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  auto it = impl_->user_events.find(token);
  if (it != impl_->user_events.end()) drain(it->second.rd.get());
}

bool Selector::remove_user_event(uint64_t token) {
  std::shared_lock lock(impl_->life);
  impl_->check_open();
  std::lock_guard objects(impl_->objects_mutex);
  auto it = impl_->user_events.find(token);
  if (it == impl_->user_events.end()) return false;
  impl_->apply_one(make_kevent(static_cast<uintptr_t>(it->second.rd.get()), EVFILT_READ, EV_DELETE, 0, 0, 0),
                   ENOENT);
  impl_->user_events.erase(it);
  return true;
}

#endif  // AMY_KQUEUE_EVFILT_USER

size_t Selector::select(Event* out, size_t capacity, int timeout_ms) {
  if (capacity == 0) return 0;
  Impl& impl = *impl_;
  if (!impl.kq) throw SysError("kevent", EBADF);
  const int max = capacity > 1 << 20 ? 1 << 20 : static_cast<int>(capacity);
  impl.reserve(max);
  timespec ts{};
  const timespec* tsp = nullptr;  // a negative timeout waits for an event
  if (timeout_ms >= 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1000000L;
    tsp = &ts;
  }
  int n;
  for (;;) {
    // EINTR restarts with the full timeout: a signal can only make the wait
    // longer, never return early with nothing (callers tolerate late).
    n = ::kevent(impl.kq.get(), nullptr, 0, impl.buffer.data(), max, tsp);
    if (n >= 0) break;
    if (errno != EINTR) throw_sys("kevent");
  }
  impl.next_gen();
  size_t count = 0;
  for (int i = 0; i < n; i++) {
    const struct kevent& ev = impl.buffer[static_cast<size_t>(i)];
    if (ev.filter == EVFILT_READ || ev.filter == EVFILT_WRITE) {
      const uint64_t token = udata_of(ev);
#if !AMY_KQUEUE_EVFILT_USER
      if (token & kUserTag) {
        const uint64_t user = token & ~kUserTag;
        std::lock_guard objects(impl.objects_mutex);
        auto it = impl.user_events.find(user);
        if (it == impl.user_events.end()) continue;  // removed after it fired
        // Drained here so the pipe never fills while nobody calls clear():
        // a trigger into a full pipe would be lost.
        drain(it->second.rd.get());
        out[count++] = Event{user, kReadable};
        continue;
      }
#endif
      uint8_t flags = ev.filter == EVFILT_READ ? kReadable : kWritable;
      if (ev.flags & EV_EOF) {
        flags |= kHangup;
        if (ev.fflags != 0) flags |= kError;  // sockets report so_error in fflags
      }
      if (ev.flags & EV_ERROR) flags |= kError;
      // One Event per token: kqueue reports read and write separately.
      Slot& slot = impl.slot_for(token);
      if (slot.gen == impl.gen) {
        out[slot.index].flags |= flags;
      } else {
        slot = Slot{token, impl.gen, static_cast<uint32_t>(count)};
        out[count++] = Event{token, flags};
      }
    } else if (ev.filter == EVFILT_TIMER) {
      const uint64_t token = static_cast<uint64_t>(ev.ident);
      std::lock_guard objects(impl.objects_mutex);
      auto it = impl.timers.find(token);
      if (it == impl.timers.end()) continue;  // cancelled after it fired
      if (!it->second.repeating) {
        impl.timers.erase(it);  // EV_ONESHOT: the kernel dropped the knote
      } else if (it->second.rearm_interval_ns != 0) {
        // The one-shot first expiry of a timer whose delay != interval.
        struct kevent change = timer_kevent(token, it->second.rearm_interval_ns, false);
        int err;
        try {
          impl.apply(&change, 1, &err);
        } catch (const SysError& e) {
          err = e.err();
        }
        // Throwing would lose this call's events; a timer that cannot be
        // re-armed (ENOMEM) reports this expiry and stops.
        if (err != 0)
          impl.timers.erase(it);
        else
          it->second.rearm_interval_ns = 0;
      }
      out[count++] = Event{token, kReadable};
#if AMY_KQUEUE_EVFILT_USER
    } else if (ev.filter == EVFILT_USER) {
      out[count++] = Event{static_cast<uint64_t>(ev.ident), kReadable};
#endif
    }
  }
  return count;
}

void Selector::close() {
  std::unique_lock lock(impl_->life);
  if (!impl_->kq) return;
  {
    std::lock_guard objects(impl_->objects_mutex);
    impl_->timers.clear();
    impl_->user_events.clear();
  }
  impl_->kq.reset();  // the kernel drops every knote with the queue
}

}  // namespace amy::os
