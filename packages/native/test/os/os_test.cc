// The native OS layer (selector, sockets, timers, user events, splice pipes) and the
// Node-free half of the binding (PollerCore, ChannelCore, registry), tested
// without Node under AddressSanitizer and UBSan. Prints TAP version 14; run
// by `make -C test/os run` and by test/os-asan.test.ts.
//
// Every socket is on loopback, port 0. Timing checks are strict on "never
// early" and loose on "late" (shared CI machines).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "binding/poller_core.h"
#include "check.h"
#include "os/errors.h"
#include "os/owned_fd.h"
#include "os/selector.h"
#include "os/socket.h"
#include "os/splice.h"

using amy::binding::ChannelCore;
using amy::binding::PollerCore;
using namespace amy::os;
namespace registry = amy::binding::registry;
using check::count_open_fds;

namespace {

constexpr uint64_t kMs = 1000000;  // nanoseconds per millisecond

// ---------------------------------------------------------------------------
// Helpers

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

double ms_since(uint64_t start_ns) { return static_cast<double>(now_ns() - start_ns) / 1e6; }

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

struct FdPair {
  OwnedFd a;  // pipe: read end
  OwnedFd b;  // pipe: write end
};

FdPair make_socketpair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) throw_sys("socketpair");
  return FdPair{OwnedFd(sv[0]), OwnedFd(sv[1])};
}

FdPair make_pipe() {
  int p[2];
  if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1) throw_sys("pipe2");
  return FdPair{OwnedFd(p[0]), OwnedFd(p[1])};
}

SocketAddress address(const char* host, uint16_t port) {
  SocketAddress a;
  if (!parse_address(host, port, a)) throw std::runtime_error(std::string("bad test address ") + host);
  return a;
}

SocketAddress loopback(uint16_t port = 0) { return address("127.0.0.1", port); }

// poll(2) for one fd, independent of the selector under test.
bool wait_fd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int n = retry_eintr([&] { return ::poll(&p, 1, timeout_ms); });
  if (n == -1) throw_sys("poll");
  return n == 1;
}

void write_all(int fd, const std::string& s) {
  long n = sock_write(fd, s.data(), s.size());
  CHECK_EQ(n, static_cast<long>(s.size()));
}

// Reads exactly `len` bytes, waiting with poll(2) between reads.
std::string read_exactly(int fd, size_t len) {
  std::string out;
  char buf[256];
  uint64_t start = now_ns();
  while (out.size() < len) {
    long n = sock_read(fd, buf, std::min(sizeof buf, len - out.size()));
    if (n == kWouldBlock) {
      CHECK(ms_since(start) < 5000);
      wait_fd(fd, POLLIN, 100);
      continue;
    }
    CHECK_GT(n, 0);
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

struct TcpPair {
  OwnedFd listener;
  OwnedFd client;  // from tcp_connect
  OwnedFd server;  // from tcp_accept
  uint16_t port = 0;
};

TcpPair make_tcp_pair(const char* host = "127.0.0.1") {
  TcpPair p;
  p.listener = tcp_listen(address(host, 0), ListenOptions{});
  p.port = sock_local_address(p.listener.get()).port();
  CHECK_NE(p.port, 0);
  int err = -1;
  p.client = tcp_connect(address(host, p.port), &err);
  CHECK(p.client.valid());
  CHECK_EQ(err, 0);
  CHECK(wait_fd(p.client.get(), POLLOUT, 5000));
  CHECK_EQ(sock_take_error(p.client.get()), 0);
  CHECK(wait_fd(p.listener.get(), POLLIN, 5000));
  p.server = tcp_accept(p.listener.get(), nullptr);
  CHECK(p.server.valid());
  return p;
}

// A loopback port nobody listens on: bound once, then closed.
uint16_t closed_port() {
  OwnedFd l = tcp_listen(loopback(0), ListenOptions{});
  uint16_t port = sock_local_address(l.get()).port();
  CHECK_NE(port, 0);
  return port;
}

std::vector<Event> select_events(Selector& s, int timeout_ms, size_t capacity = 16) {
  std::vector<Event> events(capacity);
  size_t n = s.select(events.data(), capacity, timeout_ms);
  CHECK_LE(n, capacity);
  events.resize(n);
  return events;
}

// Every event that arrives within `window_ms` (the full window is waited).
std::vector<Event> collect_for(Selector& s, int window_ms) {
  std::vector<Event> all;
  uint64_t start = now_ns();
  for (;;) {
    int left = window_ms - static_cast<int>(ms_since(start));
    if (left <= 0) break;
    for (const Event& e : select_events(s, left)) all.push_back(e);
  }
  return all;
}

// Waits (up to 5 s) for the next batch of events.
std::vector<Event> next_events(Selector& s) {
  auto events = select_events(s, 5000);
  CHECK(!events.empty());
  return events;
}

// Exactly one event, for `token`; returns its flags.
uint8_t one_event(Selector& s, uint64_t token) {
  auto events = next_events(s);
  CHECK_EQ(events.size(), 1u);
  CHECK_EQ(events[0].token, token);
  return events[0].flags;
}

void expect_quiet(Selector& s) {
  auto events = select_events(s, 0);
  if (!events.empty())
    check::fail(__FILE__, __LINE__,
                "expected no event, got token " + check::show(events[0].token) + " flags " +
                    check::show(events[0].flags) + " (" + check::show(events.size()) + " events)");
}

bool has_fd_flag(int fd, int flag) {
  int f = ::fcntl(fd, F_GETFD);
  if (f == -1) throw_sys("fcntl");
  return (f & flag) != 0;
}

bool has_fl_flag(int fd, int flag) {
  int f = ::fcntl(fd, F_GETFL);
  if (f == -1) throw_sys("fcntl");
  return (f & flag) != 0;
}

std::string bytes_str(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

ChannelCore::SendResult send_str(ChannelCore& ch, const std::string& s) {
  return ch.send(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::shared_ptr<PollerCore> new_poller() {
  auto core = std::make_shared<PollerCore>();
  registry::add_poller(core);  // as PollerWrap does: open_channel finds the poller here
  return core;
}

// Joins on scope exit so a failed CHECK never leaves a joinable std::thread
// (whose destructor would call std::terminate).
struct Joiner {
  std::thread& t;
  ~Joiner() {
    if (t.joinable()) t.join();
  }
};

}  // namespace

// ===========================================================================
// Selector: sources

TEST("selector: a readable pipe gives one event with its token") {
  Selector sel;
  FdPair p = make_pipe();
  sel.add(p.a.get(), 42, kRead);
  expect_quiet(sel);
  CHECK_EQ(::write(p.b.get(), "x", 1), 1);
  uint8_t flags = one_event(sel, 42);
  CHECK(flags & kReadable);
  CHECK(!(flags & kWritable));
  CHECK(!(flags & kError));
}

TEST("selector: edge-triggered, no second event until new data") {
  Selector sel;
  FdPair p = make_socketpair();
  sel.add(p.a.get(), 7, kRead);
  CHECK_EQ(::write(p.b.get(), "ab", 2), 2);
  CHECK(one_event(sel, 7) & kReadable);
  expect_quiet(sel);  // not read: level is still high, but no new edge
  expect_quiet(sel);
  CHECK_EQ(::write(p.b.get(), "c", 1), 1);  // new data: a new edge
  CHECK(one_event(sel, 7) & kReadable);
  char buf[8];
  CHECK_EQ(sock_read(p.a.get(), buf, sizeof buf), 3);
  CHECK_EQ(sock_read(p.a.get(), buf, sizeof buf), kWouldBlock);
  expect_quiet(sel);
}

TEST("selector: write interest on a connected socket fires once (edge trigger)") {
  Selector sel;
  TcpPair t = make_tcp_pair();
  sel.add(t.client.get(), 1001, kWrite);
  uint8_t flags = one_event(sel, 1001);
  CHECK(flags & kWritable);
  CHECK(!(flags & kReadable));
  expect_quiet(sel);
  CHECK_EQ(select_events(sel, 50).size(), 0u);
}

TEST("selector: modify Both to Read drops writable, modify changes the token") {
  Selector sel;
  TcpPair t = make_tcp_pair();
  sel.add(t.client.get(), 5, kBoth);
  uint8_t flags = one_event(sel, 5);
  CHECK(flags & kWritable);
  CHECK(!(flags & kReadable));
  sel.modify(t.client.get(), 6, kRead);
  expect_quiet(sel);  // still writable, but write interest is gone
  write_all(t.server.get(), "x");
  flags = one_event(sel, 6);
  CHECK(flags & kReadable);
  CHECK(!(flags & kWritable));
  sel.modify(t.client.get(), 8, kWrite);  // MOD re-arms: writable again at once
  flags = one_event(sel, 8);
  CHECK(flags & kWritable);
  CHECK(!(flags & kReadable));
}

TEST("selector: remove stops events and drops a pending one") {
  Selector sel;
  FdPair p = make_socketpair();
  sel.add(p.a.get(), 3, kRead);
  CHECK_EQ(::write(p.b.get(), "x", 1), 1);  // pending, not selected yet
  sel.remove(p.a.get());
  expect_quiet(sel);
  CHECK_EQ(::write(p.b.get(), "y", 1), 1);
  CHECK_EQ(select_events(sel, 50).size(), 0u);
  // The fd can be added again and works normally.
  sel.add(p.a.get(), 4, kRead);
  CHECK(one_event(sel, 4) & kReadable);
}

TEST("selector: capacity smaller than the ready count returns the rest next time") {
  Selector sel;
  std::vector<FdPair> pairs;
  for (int i = 0; i < 5; i++) pairs.push_back(make_socketpair());
  for (int i = 0; i < 5; i++) sel.add(pairs[i].a.get(), 100 + static_cast<uint64_t>(i), kRead);
  for (auto& p : pairs) CHECK_EQ(::write(p.b.get(), "x", 1), 1);
  Event none{};
  CHECK_EQ(sel.select(&none, 0, 0), 0u);
  std::multiset<uint64_t> seen;
  std::vector<size_t> batches;
  for (int round = 0; round < 3; round++) {
    Event ev[2];
    size_t n = sel.select(ev, 2, 1000);
    batches.push_back(n);
    for (size_t i = 0; i < n; i++) {
      CHECK(ev[i].flags & kReadable);
      seen.insert(ev[i].token);
    }
  }
  CHECK_EQ(batches[0], 2u);
  CHECK_EQ(batches[1], 2u);
  CHECK_EQ(batches[2], 1u);
  expect_quiet(sel);
  CHECK_EQ(seen.size(), 5u);
  for (uint64_t token = 100; token < 105; token++) CHECK_EQ(seen.count(token), 1u);
}

TEST("selector: peer close gives hangup and readable (TCP)") {
  Selector sel;
  TcpPair t = make_tcp_pair();
  sel.add(t.server.get(), 9, kRead);
  expect_quiet(sel);
  t.client.reset();
  uint8_t flags = one_event(sel, 9);
  CHECK(flags & kHangup);
  CHECK(flags & kReadable);
  char buf[4];
  CHECK_EQ(sock_read(t.server.get(), buf, sizeof buf), 0);
}

TEST("selector: peer close gives hangup and readable (socketpair)") {
  Selector sel;
  FdPair p = make_socketpair();
  sel.add(p.a.get(), 10, kRead);
  p.b.reset();
  uint8_t flags = one_event(sel, 10);
  CHECK(flags & kHangup);
  CHECK(flags & kReadable);
}

TEST("selector: refused connect gives error/hangup and ECONNREFUSED") {
  Selector sel;
  uint16_t port = closed_port();
  int immediate = -1;
  OwnedFd fd = tcp_connect(loopback(port), &immediate);
  CHECK(fd.valid());
  CHECK(immediate == 0 || immediate == ECONNREFUSED);
  sel.add(fd.get(), 77, kBoth);
  uint8_t flags = one_event(sel, 77);
  CHECK(flags & (kError | kHangup));
  int err = sock_take_error(fd.get());
  if (immediate == 0) {
    CHECK_EQ(err, ECONNREFUSED);
    CHECK(flags & kError);
  } else {
    CHECK_EQ(err, 0);  // connect(2) already reported and cleared it
  }
  CHECK_EQ(sock_take_error(fd.get()), 0);  // taken: cleared
}

TEST("selector: add/modify/remove errors name epoll_ctl") {
  Selector sel;
  FdPair p = make_socketpair();
  sel.add(p.a.get(), 1, kRead);
  CHECK_SYSERROR(sel.add(p.a.get(), 2, kRead), EEXIST, "epoll_ctl");
  CHECK_SYSERROR(sel.modify(p.b.get(), 2, kRead), ENOENT, "epoll_ctl");
  CHECK_SYSERROR(sel.remove(p.b.get()), ENOENT, "epoll_ctl");
  CHECK_SYSERROR(sel.add(-1, 3, kRead), EBADF, "epoll_ctl");
  sel.remove(p.a.get());
  CHECK_SYSERROR(sel.remove(p.a.get()), ENOENT, "epoll_ctl");
}

TEST("selector: fd() is a close-on-exec fd, readable while events are pending") {
  Selector sel;
  CHECK_GE(sel.fd(), 0);
  CHECK(has_fd_flag(sel.fd(), FD_CLOEXEC));
  CHECK(!sel.closed());
  sel.add_user_event(1);
  CHECK(!wait_fd(sel.fd(), POLLIN, 0));
  sel.trigger_user_event(1);
  CHECK(wait_fd(sel.fd(), POLLIN, 1000));  // what an outer loop (libuv) watches
  CHECK_EQ(one_event(sel, 1), kReadable);
  CHECK(!wait_fd(sel.fd(), POLLIN, 0));
}

TEST("selector: after close() every call throws EBADF; close() is idempotent") {
  Selector sel;
  FdPair p = make_socketpair();
  sel.add(p.a.get(), 1, kRead);
  sel.add_timer(2, 1000 * kMs, 0);
  sel.add_user_event(3);
  sel.close();
  CHECK(sel.closed());
  CHECK_EQ(sel.fd(), -1);
  sel.close();
  CHECK(sel.closed());
  CHECK_SYSERROR(sel.add(p.b.get(), 4, kRead), EBADF, nullptr);
  CHECK_SYSERROR(sel.modify(p.a.get(), 1, kWrite), EBADF, nullptr);
  CHECK_SYSERROR(sel.remove(p.a.get()), EBADF, nullptr);
  CHECK_SYSERROR(sel.add_timer(5, kMs, 0), EBADF, nullptr);
  CHECK_SYSERROR(sel.cancel_timer(2), EBADF, nullptr);
  CHECK_SYSERROR(sel.add_user_event(6), EBADF, nullptr);
  CHECK_SYSERROR(sel.trigger_user_event(3), EBADF, nullptr);
  CHECK_SYSERROR(sel.clear_user_event(3), EBADF, nullptr);
  CHECK_SYSERROR(sel.remove_user_event(3), EBADF, nullptr);
  Event ev[4];
  CHECK_SYSERROR(sel.select(ev, 4, 0), EBADF, "epoll_wait");
  CHECK_SYSERROR(sel.select(ev, 4, -1), EBADF, "epoll_wait");
  // The caller's fds are untouched.
  CHECK_EQ(::write(p.b.get(), "x", 1), 1);
  char c;
  CHECK_EQ(sock_read(p.a.get(), &c, 1), 1);
}

// ===========================================================================
// Selector: timers

TEST("timer: one-shot 30 ms fires once, never early, then is forgotten") {
  Selector sel;
  uint64_t start = now_ns();
  sel.add_timer(50, 30 * kMs, 0);
  uint8_t flags = one_event(sel, 50);
  double elapsed = ms_since(start);
  CHECK_EQ(flags, kReadable);
  CHECK_GE(elapsed, 30.0);   // never early (CLOCK_MONOTONIC)
  CHECK_LT(elapsed, 1030.0);  // loosely on time
  CHECK_EQ(collect_for(sel, 60).size(), 0u);
  CHECK(!sel.cancel_timer(50));  // forgotten once returned
}

TEST("timer: 20 ms interval fires 4 times, not early, without drift") {
  Selector sel;
  uint64_t start = now_ns();
  sel.add_timer(60, 20 * kMs, 20 * kMs);
  std::vector<double> at;
  while (at.size() < 4) {
    for (const Event& e : next_events(sel)) {
      CHECK_EQ(e.token, 60u);
      CHECK_EQ(e.flags, kReadable);
      at.push_back(ms_since(start));
    }
  }
  for (size_t i = 0; i < at.size(); i++) CHECK_GE(at[i], 20.0 * static_cast<double>(i + 1));
  CHECK_LT(at[3], 80.0 + 100.0);  // kernel-periodic: late wake-ups do not add up
  CHECK(sel.cancel_timer(60));
  CHECK(!sel.cancel_timer(60));
  CHECK_EQ(collect_for(sel, 50).size(), 0u);
}

TEST("timer: cancel before firing gives no event") {
  Selector sel;
  sel.add_timer(70, 30 * kMs, 0);
  CHECK(sel.cancel_timer(70));
  CHECK_EQ(collect_for(sel, 60).size(), 0u);
  CHECK(!sel.cancel_timer(70));
  CHECK(!sel.cancel_timer(12345));
}

TEST("timer: a timer that fired but was cancelled before select gives no event") {
  Selector sel;
  sel.add_timer(71, 1 * kMs, 0);
  sel.add_timer(72, 1 * kMs, 5 * kMs);
  sleep_ms(30);
  CHECK(wait_fd(sel.fd(), POLLIN, 0));  // both are pending in the kernel
  CHECK(sel.cancel_timer(71));
  CHECK(sel.cancel_timer(72));
  expect_quiet(sel);
}

TEST("timer: zero delay fires promptly; duplicate token throws EEXIST") {
  Selector sel;
  sel.add_timer(80, 0, 0);
  CHECK_EQ(one_event(sel, 80), kReadable);
  sel.add_timer(81, 1000 * kMs, 0);
  CHECK_SYSERROR(sel.add_timer(81, 1000 * kMs, 0), EEXIST, nullptr);
  CHECK(sel.cancel_timer(81));
  CHECK(!sel.cancel_timer(81));
}

TEST("timer: added from another thread wakes select(-1)") {
  Selector sel;
  uint64_t start = now_ns();
  std::thread other([&] {
    sleep_ms(50);  // let the main thread block first
    sel.add_timer(90, 10 * kMs, 0);
  });
  Joiner joiner{other};
  Event ev[4];
  size_t n = sel.select(ev, 4, -1);
  double elapsed = ms_since(start);
  other.join();
  CHECK_EQ(n, 1u);
  CHECK_EQ(ev[0].token, 90u);
  CHECK_EQ(ev[0].flags, kReadable);
  CHECK_GE(elapsed, 60.0);
  CHECK(!sel.cancel_timer(90));
}

// ===========================================================================
// Selector: user events

TEST("user event: three triggers give one event, a later trigger another") {
  Selector sel;
  sel.add_user_event(500);
  expect_quiet(sel);
  sel.trigger_user_event(500);
  sel.trigger_user_event(500);
  sel.trigger_user_event(500);
  CHECK_EQ(one_event(sel, 500), kReadable);
  expect_quiet(sel);
  sel.trigger_user_event(500);
  CHECK_EQ(one_event(sel, 500), kReadable);
  expect_quiet(sel);
  sel.clear_user_event(500);  // resets the counter, makes no event
  expect_quiet(sel);
  sel.trigger_user_event(500);
  CHECK_EQ(one_event(sel, 500), kReadable);
}

TEST("user event: removal drops a pending trigger; trigger then throws ENOENT") {
  Selector sel;
  sel.add_user_event(501);
  sel.trigger_user_event(501);
  CHECK(sel.remove_user_event(501));
  expect_quiet(sel);
  CHECK(!sel.remove_user_event(501));
  CHECK_SYSERROR(sel.trigger_user_event(501), ENOENT, "eventfd_write");
  sel.clear_user_event(501);  // unknown token: a no-op
  sel.add_user_event(502);
  CHECK_SYSERROR(sel.add_user_event(502), EEXIST, nullptr);
  sel.trigger_user_event(502);
  CHECK_EQ(one_event(sel, 502), kReadable);
}

TEST("user event: a trigger from another thread wakes select(-1)") {
  Selector sel;
  sel.add_user_event(503);
  std::thread other([&] {
    sleep_ms(50);
    sel.trigger_user_event(503);
  });
  Joiner joiner{other};
  Event ev[4];
  size_t n = sel.select(ev, 4, -1);
  other.join();
  CHECK_EQ(n, 1u);
  CHECK_EQ(ev[0].token, 503u);
}

TEST("selector: tokens up to 2^53 come back intact for sources, timers and user events") {
  Selector sel;
  const uint64_t big = (uint64_t{1} << 53) - 1;
  FdPair p = make_socketpair();
  sel.add(p.a.get(), big, kRead);
  sel.add_timer(big - 1, 0, 0);
  sel.add_user_event(big - 2);
  sel.trigger_user_event(big - 2);
  CHECK_EQ(::write(p.b.get(), "x", 1), 1);
  std::set<uint64_t> seen;
  uint64_t start = now_ns();
  while (seen.size() < 3 && ms_since(start) < 5000)
    for (const Event& e : select_events(sel, 1000)) seen.insert(e.token);
  CHECK_EQ(seen.size(), 3u);
  CHECK_EQ(seen.count(big), 1u);
  CHECK_EQ(seen.count(big - 1), 1u);
  CHECK_EQ(seen.count(big - 2), 1u);
}

// ===========================================================================
// Sockets

TEST("socket: listen on 127.0.0.1:0 gets a port; accept would block") {
  OwnedFd l = tcp_listen(loopback(0), ListenOptions{});
  CHECK(l.valid());
  SocketAddress local = sock_local_address(l.get());
  CHECK_EQ(local.family(), AF_INET);
  CHECK_NE(local.port(), 0);
  char host[64];
  CHECK(local.format_host(host, sizeof host));
  CHECK_EQ(std::string(host), "127.0.0.1");
  SocketAddress peer;
  OwnedFd none = tcp_accept(l.get(), &peer);
  CHECK(!none.valid());
  CHECK_SYSERROR(sock_peer_address(l.get()), ENOTCONN, "getpeername");
}

TEST("socket: host_key: IPv4 as a number, IPv4-mapped the same, IPv6 hashed without the port, 0 for others") {
  CHECK_EQ(address("127.0.0.1", 1).host_key(), 0x7f000001u);
  CHECK_EQ(address("10.1.2.3", 2).host_key(), 0x0a010203u);
  CHECK_EQ(address("::ffff:10.1.2.3", 3).host_key(), 0x0a010203u);
  uint32_t v6 = address("2001:db8::1", 4).host_key();
  CHECK_EQ(address("2001:db8::1", 5).host_key(), v6);
  CHECK_NE(address("2001:db8::2", 4).host_key(), v6);
  SocketAddress none;
  CHECK_EQ(none.host_key(), 0u);
}

TEST("socket: connect and accept; addresses match") {
  TcpPair t = make_tcp_pair();
  SocketAddress client_local = sock_local_address(t.client.get());
  SocketAddress client_peer = sock_peer_address(t.client.get());
  SocketAddress server_peer = sock_peer_address(t.server.get());
  SocketAddress server_local = sock_local_address(t.server.get());
  CHECK_EQ(client_peer.port(), t.port);
  CHECK_EQ(server_local.port(), t.port);
  CHECK_EQ(server_peer.port(), client_local.port());
  char host[64];
  CHECK(server_peer.format_host(host, sizeof host));
  CHECK_EQ(std::string(host), "127.0.0.1");
  // tcp_accept fills *peer as well.
  int err = -1;
  OwnedFd c2 = tcp_connect(loopback(t.port), &err);
  CHECK_EQ(err, 0);
  CHECK(wait_fd(t.listener.get(), POLLIN, 5000));
  SocketAddress peer;
  OwnedFd s2 = tcp_accept(t.listener.get(), &peer);
  CHECK(s2.valid());
  CHECK(wait_fd(c2.get(), POLLOUT, 5000));
  CHECK_EQ(peer.port(), sock_local_address(c2.get()).port());
  CHECK_EQ(peer.family(), AF_INET);
}

TEST("socket: write/read round trip; read would block when empty") {
  TcpPair t = make_tcp_pair();
  char buf[64];
  CHECK_EQ(sock_read(t.server.get(), buf, sizeof buf), kWouldBlock);
  write_all(t.client.get(), "hello");
  CHECK_EQ(read_exactly(t.server.get(), 5), "hello");
  CHECK_EQ(sock_read(t.server.get(), buf, sizeof buf), kWouldBlock);
  write_all(t.server.get(), "world!");
  CHECK_EQ(read_exactly(t.client.get(), 6), "world!");
  CHECK_EQ(sock_read(t.client.get(), buf, sizeof buf), kWouldBlock);
}

TEST("socket: writev writes three buffers in order") {
  TcpPair t = make_tcp_pair();
  char a[] = "abc", b[] = "", c[] = "defgh";
  iovec iov[3] = {{a, 3}, {b, 0}, {c, 5}};
  CHECK_EQ(sock_writev(t.client.get(), iov, 3), 8);
  CHECK_EQ(read_exactly(t.server.get(), 8), "abcdefgh");
  char x[] = "1", y[] = "22", z[] = "333";
  iovec iov2[3] = {{x, 1}, {y, 2}, {z, 3}};
  CHECK_EQ(sock_writev(t.client.get(), iov2, 3), 6);
  CHECK_EQ(read_exactly(t.server.get(), 6), "122333");
}

TEST("socket: write until it would block, then drain") {
  TcpPair t = make_tcp_pair();
  std::string chunk(64 * 1024, 'z');
  size_t written = 0;
  for (int i = 0; i < 10000; i++) {
    long n = sock_write(t.client.get(), chunk.data(), chunk.size());
    if (n == kWouldBlock) break;
    CHECK_GT(n, 0);
    written += static_cast<size_t>(n);
  }
  CHECK_EQ(sock_write(t.client.get(), chunk.data(), chunk.size()), kWouldBlock);
  iovec iov{chunk.data(), chunk.size()};
  CHECK_EQ(sock_writev(t.client.get(), &iov, 1), kWouldBlock);
  CHECK_GT(written, 0u);
  std::string got = read_exactly(t.server.get(), written);
  CHECK(got == std::string(written, 'z'));
}

TEST("socket: shutdown(SHUT_WR) gives the peer end of stream, reading still works") {
  TcpPair t = make_tcp_pair();
  write_all(t.client.get(), "bye");
  sock_shutdown(t.client.get(), SHUT_WR);
  CHECK_EQ(read_exactly(t.server.get(), 3), "bye");
  CHECK(wait_fd(t.server.get(), POLLIN, 5000));
  char buf[8];
  CHECK_EQ(sock_read(t.server.get(), buf, sizeof buf), 0);
  CHECK_EQ(sock_read(t.server.get(), buf, sizeof buf), 0);
  write_all(t.server.get(), "ok");  // the other direction is open
  CHECK_EQ(read_exactly(t.client.get(), 2), "ok");
  CHECK_SYSERROR(sock_write(t.client.get(), "x", 1), EPIPE, "write");
  OwnedFd unconnected(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  CHECK(unconnected.valid());
  CHECK_SYSERROR(sock_shutdown(unconnected.get(), SHUT_WR), ENOTCONN, "shutdown");
}

TEST("socket: write to a reset peer throws EPIPE/ECONNRESET, no SIGPIPE") {
  TcpPair t = make_tcp_pair();
  t.server.reset();
  bool threw = false;
  for (int i = 0; i < 200 && !threw; i++) {
    try {
      long n = sock_write(t.client.get(), "data", 4);
      CHECK(n == 4 || n == kWouldBlock);
      sleep_ms(5);
    } catch (const SysError& e) {
      threw = true;
      CHECK(e.err() == EPIPE || e.err() == ECONNRESET);
      CHECK_EQ(std::string(e.syscall()), "write");
    }
  }
  CHECK(threw);
  char c = 'v';
  iovec iov{&c, 1};
  bool threw_v = false;
  try {
    sock_writev(t.client.get(), &iov, 1);
  } catch (const SysError& e) {
    threw_v = true;
    CHECK(e.err() == EPIPE || e.err() == ECONNRESET);
    CHECK_EQ(std::string(e.syscall()), "writev");
  }
  CHECK(threw_v);
}

TEST("socket: bind to a port in use throws EADDRINUSE from bind") {
  OwnedFd first = tcp_listen(loopback(0), ListenOptions{});
  uint16_t port = sock_local_address(first.get()).port();
  CHECK_SYSERROR(tcp_listen(loopback(port), ListenOptions{}), EADDRINUSE, "bind");
  ListenOptions reuse;
  reuse.reuse_port = true;  // only the first had SO_REUSEPORT off: still in use
  CHECK_SYSERROR(tcp_listen(loopback(port), reuse), EADDRINUSE, "bind");
}

TEST("socket: SO_REUSEPORT lets two listeners share a port") {
  ListenOptions reuse;
  reuse.reuse_port = true;
  OwnedFd first = tcp_listen(loopback(0), reuse);
  uint16_t port = sock_local_address(first.get()).port();
  OwnedFd second = tcp_listen(loopback(port), reuse);
  CHECK_EQ(sock_local_address(second.get()).port(), port);
}

TEST("socket: parse_address takes IPv4/IPv6 literals only") {
  SocketAddress a;
  CHECK(!parse_address("not-an-ip", 80, a));
  CHECK(!parse_address("localhost", 80, a));
  CHECK(!parse_address("", 80, a));
  CHECK(!parse_address("127.0.0.1:80", 80, a));
  CHECK(!parse_address("256.1.1.1", 80, a));
  CHECK(parse_address("::1", 8080, a));
  CHECK_EQ(a.family(), AF_INET6);
  CHECK_EQ(a.port(), 8080);
  CHECK_EQ(a.length, static_cast<socklen_t>(sizeof(sockaddr_in6)));
  char host[64];
  CHECK(a.format_host(host, sizeof host));
  CHECK_EQ(std::string(host), "::1");
  CHECK(parse_address("10.1.2.3", 65535, a));
  CHECK_EQ(a.family(), AF_INET);
  CHECK_EQ(a.port(), 65535);
  CHECK_EQ(a.length, static_cast<socklen_t>(sizeof(sockaddr_in)));
  CHECK(a.format_host(host, sizeof host));
  CHECK_EQ(std::string(host), "10.1.2.3");
  CHECK(!a.format_host(host, 4));  // does not fit
  SocketAddress empty;
  CHECK_EQ(empty.port(), 0);
  CHECK(!empty.format_host(host, sizeof host));
}

TEST("socket: listener, accepted and connected fds are non-blocking and close-on-exec") {
  TcpPair t = make_tcp_pair();
  for (int fd : {t.listener.get(), t.client.get(), t.server.get()}) {
    CHECK(has_fd_flag(fd, FD_CLOEXEC));
    CHECK(has_fl_flag(fd, O_NONBLOCK));
  }
  int raw = ::socket(AF_INET, SOCK_STREAM, 0);
  CHECK_GE(raw, 0);
  OwnedFd adopted(raw);
  CHECK(!has_fd_flag(raw, FD_CLOEXEC));
  CHECK(!has_fl_flag(raw, O_NONBLOCK));
  sock_set_nonblocking_cloexec(raw);
  CHECK(has_fd_flag(raw, FD_CLOEXEC));
  CHECK(has_fl_flag(raw, O_NONBLOCK));
}

TEST("socket: set_nodelay toggles TCP_NODELAY") {
  TcpPair t = make_tcp_pair();
  auto nodelay = [](int fd) {
    int v = -1;
    socklen_t len = sizeof v;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == -1) throw_sys("getsockopt");
    return v != 0;
  };
  sock_set_nodelay(t.client.get(), true);
  CHECK(nodelay(t.client.get()));
  sock_set_nodelay(t.client.get(), false);
  CHECK(!nodelay(t.client.get()));
}

TEST("socket: IPv6 loopback round trip") {
  OwnedFd probe(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) SKIP("no IPv6 sockets here");
  SocketAddress any6 = address("::1", 0);
  if (::bind(probe.get(), reinterpret_cast<const sockaddr*>(&any6.storage), any6.length) == -1)
    SKIP("::1 is not configured here");
  probe.reset();
  TcpPair t = make_tcp_pair("::1");
  CHECK_EQ(sock_local_address(t.listener.get()).family(), AF_INET6);
  write_all(t.client.get(), "six");
  CHECK_EQ(read_exactly(t.server.get(), 3), "six");
  char host[64];
  CHECK(sock_peer_address(t.server.get()).format_host(host, sizeof host));
  CHECK_EQ(std::string(host), "::1");
}

// A fresh socket path under /tmp (mkdtemp), removed with its directory.
struct TempSocketPath {
  std::string dir;
  std::string path;
  TempSocketPath() {
    char tmpl[] = "/tmp/amy-os-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw_sys("mkdtemp");
    dir = tmpl;
    path = dir + "/s.sock";
  }
  ~TempSocketPath() {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
};

SocketAddress unix_address(const std::string& path) {
  SocketAddress a;
  if (!parse_unix_address(path.data(), path.size(), a)) throw std::runtime_error("bad test unix path");
  return a;
}

void unix_round_trip(const SocketAddress& where, const std::string& expect_path) {
  OwnedFd listener = unix_listen(where, 16);
  CHECK_EQ(sock_local_address(listener.get()).unix_path(), expect_path);
  int err = -1;
  OwnedFd client = unix_connect(where, &err);
  CHECK_EQ(err, 0);
  CHECK(wait_fd(listener.get(), POLLIN, 5000));
  OwnedFd server = tcp_accept(listener.get(), nullptr);
  CHECK(server.valid());
  CHECK_EQ(::fcntl(server.get(), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  write_all(client.get(), "unix");
  CHECK_EQ(read_exactly(server.get(), 4), "unix");
  CHECK_EQ(sock_peer_address(server.get()).unix_path(), "");  // the client is unnamed
}

TEST("socket: Unix domain socket on a path: listen, connect, accept, round trip") {
  TempSocketPath tmp;
  unix_round_trip(unix_address(tmp.path), tmp.path);
  // The socket file stays after close (as in node:net, the owner removes
  // it): a second listen on it fails with EADDRINUSE from bind.
  CHECK_SYSERROR(unix_listen(unix_address(tmp.path), 16), EADDRINUSE, "bind");
}

TEST("socket: abstract Unix socket (Linux): nothing on disk, name with its leading NUL") {
#ifdef __linux__
  std::string name("\0amy-os-test-", 13);
  name += std::to_string(::getpid());
  unix_round_trip(unix_address(name), name);
#else
  SKIP("abstract Unix sockets are Linux only");
#endif
}

TEST("socket: parse_unix_address rejects empty, too long and NUL-holding paths") {
  SocketAddress a;
  CHECK(!parse_unix_address("", 0, a));
  std::string longest(sizeof(sockaddr_un::sun_path) - 1, 'x');  // leaves room for the NUL
  CHECK(parse_unix_address(longest.data(), longest.size(), a));
  std::string too_long(sizeof(sockaddr_un::sun_path), 'x');
  CHECK(!parse_unix_address(too_long.data(), too_long.size(), a));
  std::string with_nul("a\0b", 3);
  CHECK(!parse_unix_address(with_nul.data(), with_nul.size(), a));
  CHECK_SYSERROR(unix_listen(loopback(0), 1), EAFNOSUPPORT, "bind");
}

TEST("socket: errors on bad fds carry errno and syscall") {
  char buf[4];
  CHECK_SYSERROR(sock_read(-1, buf, sizeof buf), EBADF, "read");
  CHECK_SYSERROR(sock_write(-1, buf, sizeof buf), EBADF, "write");
  iovec iov{buf, sizeof buf};
  CHECK_SYSERROR(sock_writev(-1, &iov, 1), EBADF, "writev");
  CHECK_SYSERROR(sock_take_error(-1), EBADF, "getsockopt");
  CHECK_SYSERROR(sock_local_address(-1), EBADF, "getsockname");
  CHECK_SYSERROR(sock_shutdown(-1, SHUT_RDWR), EBADF, "shutdown");
  CHECK_SYSERROR(fd_close(-1), EBADF, "close");
  int fd = ::dup(2);
  CHECK_GE(fd, 0);
  fd_close(fd);
  CHECK(::fcntl(fd, F_GETFD) == -1 && errno == EBADF);
  SysError e("bind", EADDRINUSE);
  CHECK_EQ(e.err(), EADDRINUSE);
  CHECK_EQ(std::string(e.syscall()), "bind");
  CHECK(std::string(e.what()).find("EADDRINUSE") != std::string::npos);
  CHECK_EQ(std::string(errno_name(ECONNREFUSED)), "ECONNREFUSED");
  CHECK_EQ(std::string(errno_name(123456)), "UNKNOWN");
}

// ===========================================================================
// PollerCore / ChannelCore / registry

TEST("poller core: ids are unique and increasing") {
  auto core = new_poller();
  auto core2 = new_poller();
  CHECK_GT(core2->id(), core->id());
  FdPair p = make_socketpair();
  FdPair q = make_socketpair();
  std::vector<uint64_t> ids;
  ids.push_back(core->id());
  ids.push_back(core2->id());
  ids.push_back(core->register_source(p.a.get(), kRead));
  ids.push_back(core->set_timer(1000 * kMs, 0));
  ids.push_back(core->open_channel(0)->id());
  ids.push_back(core2->register_source(q.a.get(), kRead));
  ids.push_back(amy::binding::next_id());
  for (size_t i = 1; i < ids.size(); i++) CHECK_GT(ids[i], ids[i - 1]);
  CHECK_LT(ids.back(), uint64_t{1} << 53);
  CHECK(registry::find_poller(core->id()) == core);
  core->close();
  core2->close();
  CHECK(registry::find_poller(core->id()) == nullptr);
  CHECK(registry::find_poller(core2->id()) == nullptr);
}

TEST("poller core: register, reregister and deregister sources") {
  auto core = new_poller();
  Selector& sel = core->selector();
  FdPair p = make_socketpair();
  FdPair q = make_socketpair();
  uint64_t id = core->register_source(p.a.get(), kRead);
  CHECK_EQ(::write(p.b.get(), "x", 1), 1);
  CHECK(one_event(sel, id) & kReadable);
  core->reregister_source(id, p.a.get(), kBoth);
  CHECK(one_event(sel, id) & kWritable);
  CHECK_THROWS(core->reregister_source(id + 1000000, p.a.get(), kRead), std::out_of_range);
  CHECK_THROWS(core->reregister_source(id, q.a.get(), kRead), std::invalid_argument);
  CHECK_SYSERROR(core->register_source(p.a.get(), kRead), EEXIST, "epoll_ctl");
  CHECK(core->deregister_source(id));
  CHECK(!core->deregister_source(id));
  CHECK(!core->deregister_source(987654321));
  CHECK_EQ(::write(p.b.get(), "y", 1), 1);
  CHECK_EQ(collect_for(sel, 30).size(), 0u);
  // Registering again after deregistering works and gets a new id.
  uint64_t id2 = core->register_source(p.a.get(), kRead);
  CHECK_GT(id2, id);
  CHECK_SYSERROR(core->register_source(-1, kRead), EBADF, "epoll_ctl");
  core->close();
}

TEST("poller core: deregistering the id of a closed fd is not an error") {
  auto core = new_poller();
  FdPair p = make_socketpair();
  uint64_t id = core->register_source(p.a.get(), kRead);
  CHECK_EQ(::write(p.b.get(), "x", 1), 1);  // an event is pending
  p.a.reset();                              // closed before deregistering
  CHECK(core->deregister_source(id));
  CHECK(!core->deregister_source(id));
  expect_quiet(core->selector());
  core->close();
}

// Regression (found in review): sources_ remembered only the fd number, so
// deregistering a stale id whose fd had been closed and the number reused by
// a new registration removed the new one.
TEST("poller core: a stale id does not deregister a reused fd number") {
  auto core = new_poller();
  FdPair p = make_socketpair();
  const int number = p.a.get();
  uint64_t stale = core->register_source(number, kRead);
  p.a.reset();  // closed without deregistering: the kernel drops it
  FdPair q = make_socketpair();
  // Take the same fd number for a new socket (dup2 onto it).
  CHECK_EQ(::dup2(q.a.get(), number), number);
  OwnedFd reused(number);
  uint64_t live = core->register_source(reused.get(), kRead);
  CHECK(!core->deregister_source(stale));  // forgotten, not a live fd's id
  CHECK_EQ(::write(q.b.get(), "x", 1), 1);
  CHECK(one_event(core->selector(), live) & kReadable);
  core->reregister_source(live, reused.get(), kBoth);  // still registered
  CHECK(core->deregister_source(live));
  core->close();
}

// A signal that interrupts epoll_wait (no SA_RESTART: epoll_wait is never
// restarted by the kernel anyway) must not surface as an error or an early
// empty return when the caller asked to wait for an event.
TEST("selector: EINTR in select is retried") {
  struct sigaction action {};
  action.sa_handler = [](int) {};
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  struct sigaction previous {};
  CHECK_EQ(::sigaction(SIGUSR1, &action, &previous), 0);
  Selector sel;
  // The clock starts before the timer is armed, so "never early" is exact.
  uint64_t start = now_ns();
  sel.add_timer(91, 150 * kMs, 0);
  const pthread_t waiter = ::pthread_self();
  std::atomic<bool> done{false};
  std::thread interrupter([&] {
    for (int i = 0; i < 10 && !done.load(); i++) {
      sleep_ms(10);
      ::pthread_kill(waiter, SIGUSR1);
    }
  });
  Event ev[4];
  size_t n = 0;
  try {
    n = sel.select(ev, 4, -1);
  } catch (...) {
    done = true;
    interrupter.join();
    ::sigaction(SIGUSR1, &previous, nullptr);
    throw;
  }
  done = true;
  interrupter.join();
  ::sigaction(SIGUSR1, &previous, nullptr);
  CHECK_EQ(n, 1u);
  CHECK_EQ(ev[0].token, 91u);
  CHECK_GE(ms_since(start), 150.0);
}

TEST("poller core: timers through set_timer/cancel_timer") {
  auto core = new_poller();
  uint64_t start = now_ns();
  uint64_t t1 = core->set_timer(20 * kMs, 0);
  uint64_t t2 = core->set_timer(20 * kMs, 0);
  CHECK(core->cancel_timer(t2));
  CHECK(!core->cancel_timer(t2));
  CHECK_EQ(one_event(core->selector(), t1), kReadable);
  CHECK_GE(ms_since(start), 20.0);
  CHECK(!core->cancel_timer(t1));
  CHECK_EQ(collect_for(core->selector(), 40).size(), 0u);
  core->close();
}

TEST("channel: three sends wake the poller once; receive in order") {
  auto core = new_poller();
  auto ch = core->open_channel(0);
  CHECK(registry::find_channel(ch->id()) == ch);
  CHECK_EQ(ch->bound(), 0u);
  expect_quiet(core->selector());
  CHECK_EQ(send_str(*ch, "a"), ChannelCore::kSent);
  CHECK_EQ(send_str(*ch, "bb"), ChannelCore::kSent);
  CHECK_EQ(send_str(*ch, "ccc"), ChannelCore::kSent);
  CHECK_EQ(ch->size(), 3u);
  CHECK_EQ(one_event(core->selector(), ch->id()), kReadable);
  expect_quiet(core->selector());
  std::vector<uint8_t> out;
  CHECK(ch->try_recv(out));
  CHECK_EQ(bytes_str(out), "a");
  CHECK(ch->try_recv(out));
  CHECK_EQ(bytes_str(out), "bb");
  CHECK(ch->try_recv(out));
  CHECK_EQ(bytes_str(out), "ccc");
  CHECK(!ch->try_recv(out));
  CHECK_EQ(ch->size(), 0u);
  // Drained: the next send wakes the poller again.
  CHECK_EQ(send_str(*ch, ""), ChannelCore::kSent);
  CHECK_EQ(one_event(core->selector(), ch->id()), kReadable);
  CHECK(ch->try_recv(out));
  CHECK(out.empty());
  // Popping the last message counts as drained too (no extra empty try_recv).
  CHECK_EQ(send_str(*ch, "d"), ChannelCore::kSent);
  CHECK_EQ(one_event(core->selector(), ch->id()), kReadable);
  CHECK(ch->try_recv(out));
  CHECK_EQ(bytes_str(out), "d");
  CHECK_EQ(send_str(*ch, "e"), ChannelCore::kSent);
  CHECK_EQ(one_event(core->selector(), ch->id()), kReadable);
  CHECK(ch->try_recv(out));
  CHECK_EQ(bytes_str(out), "e");
  core->close();
}

TEST("channel: a bounded channel returns kFull") {
  auto core = new_poller();
  auto ch = core->open_channel(1);
  CHECK_EQ(ch->bound(), 1u);
  CHECK_EQ(send_str(*ch, "1"), ChannelCore::kSent);
  CHECK_EQ(send_str(*ch, "2"), ChannelCore::kFull);
  CHECK_EQ(ch->size(), 1u);
  CHECK_EQ(one_event(core->selector(), ch->id()), kReadable);
  std::vector<uint8_t> out;
  CHECK(ch->try_recv(out));
  CHECK_EQ(bytes_str(out), "1");
  CHECK_EQ(send_str(*ch, "3"), ChannelCore::kSent);
  CHECK_EQ(one_event(core->selector(), ch->id()), kReadable);
  CHECK(ch->try_recv(out));
  CHECK_EQ(bytes_str(out), "3");
  CHECK(!ch->try_recv(out));
  core->close();
}

TEST("channel: receiver-side close gives kClosed") {
  auto core = new_poller();
  auto ch = core->open_channel(0);
  uint64_t id = ch->id();
  CHECK_EQ(send_str(*ch, "pending"), ChannelCore::kSent);
  // What ReceiverWrap::close_now() does.
  ch->close();
  core->forget_channel(id);
  CHECK(ch->closed());
  CHECK_EQ(ch->size(), 0u);
  CHECK_EQ(send_str(*ch, "x"), ChannelCore::kClosed);
  CHECK(registry::find_channel(id) == nullptr);
  expect_quiet(core->selector());  // the pending trigger went with the user event
  CHECK(!core->selector().remove_user_event(id));
  std::vector<uint8_t> out;
  CHECK(!ch->try_recv(out));
  core->close();
}

TEST("channel: receiver gone without close: next triggering send gives kClosed") {
  auto core = new_poller();
  auto ch = core->open_channel(0);
  core->forget_channel(ch->id());  // user event removed, channel not closed
  CHECK_EQ(send_str(*ch, "x"), ChannelCore::kClosed);
  CHECK(ch->closed());
  core->close();
}

TEST("poller core: close() closes channels and rejects registrations") {
  auto core = new_poller();
  uint64_t core_id = core->id();
  auto ch = core->open_channel(0);
  auto bounded = core->open_channel(4);
  CHECK_EQ(send_str(*bounded, "queued"), ChannelCore::kSent);
  FdPair p = make_socketpair();
  uint64_t src = core->register_source(p.a.get(), kRead);
  core->set_timer(1000 * kMs, 1000 * kMs);  // live timer at close
  core->close();
  CHECK(core->closed());
  CHECK(core->selector().closed());
  core->close();  // idempotent
  CHECK_EQ(send_str(*ch, "x"), ChannelCore::kClosed);
  CHECK_EQ(send_str(*bounded, "y"), ChannelCore::kClosed);
  CHECK(ch->closed());
  CHECK(bounded->closed());
  CHECK_SYSERROR(core->register_source(p.b.get(), kRead), EBADF, nullptr);
  CHECK_SYSERROR(core->reregister_source(src, p.a.get(), kRead), EBADF, nullptr);
  CHECK_SYSERROR(core->deregister_source(src), EBADF, nullptr);
  CHECK_SYSERROR(core->set_timer(kMs, 0), EBADF, nullptr);
  CHECK_SYSERROR(core->cancel_timer(1), EBADF, nullptr);
  CHECK_SYSERROR(core->open_channel(0), EBADF, nullptr);
  core->forget_channel(ch->id());  // after close: no throw
  CHECK(registry::find_poller(core_id) == nullptr);
  CHECK(registry::find_channel(ch->id()) == nullptr);
  CHECK(registry::find_channel(bounded->id()) == nullptr);
}

TEST("channel: a poller destroyed without close() makes sends kClosed") {
  auto core = new_poller();
  uint64_t core_id = core->id();
  auto ch = core->open_channel(0);
  core.reset();  // last reference: the selector closes its fds
  CHECK(registry::find_poller(core_id) == nullptr);
  CHECK_EQ(send_str(*ch, "x"), ChannelCore::kClosed);
  CHECK(ch->closed());
  registry::remove_poller(core_id);
  registry::remove_channel(ch->id());
}

TEST("channel: without registry::add_poller the channel has no poller") {
  auto core = std::make_shared<PollerCore>();  // not in the registry
  auto ch = core->open_channel(0);
  CHECK_EQ(send_str(*ch, "x"), ChannelCore::kClosed);
  core->close();
}

TEST("channel: a send from another thread wakes select(-1)") {
  auto core = new_poller();
  auto ch = core->open_channel(0);
  std::atomic<int> result{-1};
  std::thread other([&] {
    sleep_ms(50);
    result = send_str(*ch, "from another thread");
  });
  Joiner joiner{other};
  Event ev[4];
  size_t n = core->selector().select(ev, 4, -1);
  other.join();
  CHECK_EQ(result.load(), static_cast<int>(ChannelCore::kSent));
  CHECK_EQ(n, 1u);
  CHECK_EQ(ev[0].token, ch->id());
  std::vector<uint8_t> out;
  CHECK(ch->try_recv(out));
  CHECK_EQ(bytes_str(out), "from another thread");
  core->close();
}

TEST("channel: four sender threads, no message or wake-up lost") {
  auto core = new_poller();
  auto ch = core->open_channel(0);
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::thread> senders;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; t++) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kEach; i++) {
        uint8_t msg[2] = {static_cast<uint8_t>(t), static_cast<uint8_t>(i & 0xff)};
        if (ch->send(msg, 2) != ChannelCore::kSent) failures++;
        if (i % 256 == 0) std::this_thread::yield();
      }
    });
  }
  struct JoinAll {
    std::vector<std::thread>& v;
    ~JoinAll() {
      for (auto& t : v)
        if (t.joinable()) t.join();
    }
  } join_all{senders};
  int received = 0;
  int next[kThreads] = {0, 0, 0, 0};
  std::vector<uint8_t> out;
  while (received < kThreads * kEach) {
    Event ev[8];
    size_t n = core->selector().select(ev, 8, 5000);
    CHECK_GT(n, 0u);  // a lost wake-up times out here
    for (size_t i = 0; i < n; i++) CHECK_EQ(ev[i].token, ch->id());
    while (ch->try_recv(out)) {
      CHECK_EQ(out.size(), 2u);
      int t = out[0];
      CHECK_LT(t, kThreads);
      CHECK_EQ(out[1], static_cast<uint8_t>(next[t] & 0xff));  // per-sender order
      next[t]++;
      received++;
    }
  }
  for (auto& t : senders) t.join();
  CHECK_EQ(failures.load(), 0);
  CHECK_EQ(received, kThreads * kEach);
  CHECK(!ch->try_recv(out));
  core->close();
}

// ===========================================================================
// SplicePipe: socket → pipe → socket inside the kernel (splice_linux.cc)

namespace {

// The byte at stream offset i: a pattern that a shifted, dropped or
// repeated byte cannot match by accident.
uint8_t pattern_byte(uint64_t i) { return static_cast<uint8_t>((i * 2654435761u) >> 13 ^ (i >> 9)); }

// Writes the pattern from *offset on (at most `max` bytes) until it would
// block; returns the bytes written.
size_t write_pattern(int fd, uint64_t* offset, size_t max) {
  uint8_t buf[16384];
  size_t total = 0;
  while (total < max) {
    size_t len = std::min(sizeof buf, max - total);
    for (size_t i = 0; i < len; i++) buf[i] = pattern_byte(*offset + i);
    long n = sock_write(fd, buf, len);
    if (n == kWouldBlock) break;
    CHECK_GT(n, 0);
    *offset += static_cast<uint64_t>(n);
    total += static_cast<size_t>(n);
  }
  return total;
}

// Reads until it would block, checking every byte against the pattern from
// *offset on. Returns the bytes read; *eof is set at end of stream.
size_t read_pattern(int fd, uint64_t* offset, bool* eof = nullptr) {
  uint8_t buf[16384];
  size_t total = 0;
  for (;;) {
    long n = sock_read(fd, buf, sizeof buf);
    if (n == kWouldBlock) break;
    if (n == 0) {
      if (eof) *eof = true;
      break;
    }
    for (long i = 0; i < n; i++) {
      if (buf[i] != pattern_byte(*offset + static_cast<uint64_t>(i)))
        check::fail(__FILE__, __LINE__, "byte " + std::to_string(*offset + static_cast<uint64_t>(i)) + " differs");
    }
    *offset += static_cast<uint64_t>(n);
    total += static_cast<size_t>(n);
  }
  return total;
}

void reset_on_close(int fd) {
  linger l{1, 0};  // close() sends RST instead of FIN
  if (::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == -1) throw_sys("setsockopt");
}

bool sigpipe_in(int how) {  // how: 0 blocked mask, 1 pending
  sigset_t set;
  sigemptyset(&set);
  if (how == 0) {
    ::pthread_sigmask(SIG_BLOCK, nullptr, &set);
  } else {
    ::sigpending(&set);
  }
  return sigismember(&set, SIGPIPE) == 1;
}

std::set<int> open_fd_set() {
  std::set<int> fds;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) throw_sys("opendir");
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') fds.insert(std::atoi(entry->d_name));
  }
  fds.erase(dirfd(dir));
  closedir(dir);
  return fds;
}

volatile sig_atomic_t g_sigpipes = 0;

// Installs a counting SIGPIPE handler for a test's duration (the default
// disposition would kill the test program instead of failing a check).
struct SigpipeCounter {
  struct sigaction previous {};
  SigpipeCounter() {
    g_sigpipes = 0;
    struct sigaction action {};
    action.sa_handler = [](int) { g_sigpipes = g_sigpipes + 1; };
    sigemptyset(&action.sa_mask);
    if (::sigaction(SIGPIPE, &action, &previous) == -1) throw_sys("sigaction");
  }
  ~SigpipeCounter() { ::sigaction(SIGPIPE, &previous, nullptr); }
};

// Splices into `to` (its peer gone or write-shut) until it throws; returns
// the errno of the SysError, which must name "splice".
int splice_until_error(SplicePipe& pipe, int from_client, int from, int to) {
  uint64_t offset = 0;
  for (int i = 0; i < 200; i++) {
    write_pattern(from_client, &offset, 4096);
    try {
      pipe.transfer(from, to, 1 << 20);
    } catch (const SysError& e) {
      CHECK_EQ(std::string(e.syscall()), "splice");
      return e.err();
    }
    sleep_ms(5);
  }
  check::fail(__FILE__, __LINE__, "transfer into a dead destination never failed");
}

}  // namespace

TEST("splice: 1 MiB moves byte-for-byte from one TCP pair to another") {
  TcpPair a = make_tcp_pair();  // a.client writes, a.server is the source
  TcpPair b = make_tcp_pair();  // b.client is the destination, b.server reads
  SplicePipe pipe;
  CHECK_GE(pipe.capacity(), 4096u);
  CHECK_EQ(pipe.buffered(), 0u);
  constexpr size_t kTotal = 1 << 20;
  uint64_t written = 0, read = 0;
  size_t moved_in = 0, moved_out = 0;
  uint64_t start = now_ns();
  while (read < kTotal) {
    CHECK(ms_since(start) < 10000);
    if (written < kTotal) write_pattern(a.client.get(), &written, kTotal - written);
    TransferResult r = pipe.transfer(a.server.get(), b.client.get(), 1 << 20);
    moved_in += r.moved_in;
    moved_out += r.moved_out;
    CHECK_EQ(r.buffered, pipe.buffered());
    CHECK_LE(r.buffered, pipe.capacity());
    CHECK(r.source_drained || r.dest_blocked || r.moved_in == (1u << 20));
    CHECK(!r.source_eof);
    if (read_pattern(b.server.get(), &read) == 0 && r.moved_in == 0) wait_fd(b.server.get(), POLLIN, 10);
  }
  CHECK_EQ(read, static_cast<uint64_t>(kTotal));
  CHECK_EQ(moved_in, kTotal);
  CHECK_EQ(moved_out, kTotal);
  CHECK_EQ(pipe.buffered(), 0u);
  // Nothing left anywhere: the source is drained, nothing more arrives.
  TransferResult r = pipe.transfer(a.server.get(), b.client.get(), 1 << 20);
  CHECK_EQ(r.moved_in, 0u);
  CHECK(r.source_drained);
  CHECK(!r.dest_blocked);
}

TEST("splice: max_bytes bounds one call; the flags stay clear when it is reached") {
  TcpPair a = make_tcp_pair();
  TcpPair b = make_tcp_pair();
  SplicePipe pipe;
  uint64_t written = 0, read = 0;
  write_pattern(a.client.get(), &written, 100000);
  CHECK_EQ(written, 100000u);
  CHECK(wait_fd(a.server.get(), POLLIN, 5000));
  sleep_ms(20);  // let all of it reach the receive queue
  TransferResult r = pipe.transfer(a.server.get(), b.client.get(), 10000);
  CHECK_EQ(r.moved_in, 10000u);
  CHECK_EQ(r.moved_out, 10000u);
  CHECK(!r.source_drained);
  CHECK(!r.source_eof);
  CHECK(!r.dest_blocked);
  size_t out = r.moved_out;
  r = pipe.transfer(a.server.get(), b.client.get(), 0);  // 0: only flushes
  CHECK_EQ(r.moved_in, 0u);
  CHECK(!r.source_drained);
  out += r.moved_out;
  uint64_t start = now_ns();
  while (read < written) {
    CHECK(ms_since(start) < 5000);
    r = pipe.transfer(a.server.get(), b.client.get(), 1 << 20);
    out += r.moved_out;
    if (read_pattern(b.server.get(), &read) == 0) wait_fd(b.server.get(), POLLIN, 10);
  }
  CHECK_EQ(read, written);
  CHECK_EQ(out, written);
}

TEST("splice: a destination that does not read → dest_blocked, bounded buffer, flush after it reads") {
  TcpPair a = make_tcp_pair();
  TcpPair b = make_tcp_pair();
  SplicePipe pipe(16384);
  CHECK_GE(pipe.capacity(), 16384u);
  uint64_t written = 0, read = 0;
  TransferResult r;
  uint64_t start = now_ns();
  for (;;) {  // b.server does not read: b's buffers fill, then the pipe
    CHECK(ms_since(start) < 10000);
    CHECK_LT(written, 256u << 20);
    write_pattern(a.client.get(), &written, 1 << 20);
    r = pipe.transfer(a.server.get(), b.client.get(), 1 << 20);
    CHECK_LE(r.buffered, pipe.capacity());
    if (r.dest_blocked) break;
  }
  CHECK_GT(r.buffered, 0u);
  CHECK_EQ(pipe.buffered(), r.buffered);
  // Blocked stays blocked, and nothing grows while the reader sleeps.
  for (int i = 0; i < 5; i++) {
    write_pattern(a.client.get(), &written, 1 << 20);
    TransferResult again = pipe.transfer(a.server.get(), b.client.get(), 1 << 20);
    CHECK(again.dest_blocked);
    CHECK_LE(again.buffered, pipe.capacity());
    TransferResult f = pipe.flush(b.client.get());
    CHECK(f.dest_blocked);
    CHECK_EQ(f.moved_out, 0u);
    CHECK_EQ(f.moved_in, 0u);
  }
  // The peer reads: the destination becomes writable, flush empties the pipe.
  while (read == 0 || !wait_fd(b.client.get(), POLLOUT, 0)) {
    CHECK(ms_since(start) < 10000);
    read_pattern(b.server.get(), &read);
  }
  size_t before = pipe.buffered();
  TransferResult f = pipe.flush(b.client.get());
  CHECK_GT(f.moved_out, 0u);
  size_t flushed = f.moved_out;
  while (f.buffered > 0) {  // the whole pipe almost always fits at once
    CHECK(f.dest_blocked);
    CHECK(ms_since(start) < 10000);
    read_pattern(b.server.get(), &read);
    f = pipe.flush(b.client.get());
    flushed += f.moved_out;
  }
  CHECK_EQ(flushed, before);
  CHECK(!f.dest_blocked);
  // Then everything written so far arrives, byte for byte.
  while (read < written) {
    CHECK(ms_since(start) < 20000);
    r = pipe.transfer(a.server.get(), b.client.get(), 1 << 20);
    if (read_pattern(b.server.get(), &read) == 0 && r.moved_in == 0 && r.moved_out == 0) wait_fd(b.server.get(), POLLIN, 10);
  }
  CHECK_EQ(read, written);
  CHECK_EQ(pipe.buffered(), 0u);
}

TEST("splice: the source's end of stream → source_eof, after its last bytes") {
  TcpPair a = make_tcp_pair();
  TcpPair b = make_tcp_pair();
  SplicePipe pipe;
  write_all(a.client.get(), "hello");
  sock_shutdown(a.client.get(), SHUT_WR);
  CHECK(wait_fd(a.server.get(), POLLIN | POLLRDHUP, 5000));
  sleep_ms(10);
  TransferResult r = pipe.transfer(a.server.get(), b.client.get(), 1 << 20);
  if (!r.source_eof) r = pipe.transfer(a.server.get(), b.client.get(), 1 << 20);  // FIN after the data
  CHECK(r.source_eof);
  CHECK(!r.source_drained);
  CHECK_EQ(r.buffered, 0u);
  CHECK_EQ(read_exactly(b.server.get(), 5), "hello");
  r = pipe.transfer(a.server.get(), b.client.get(), 1 << 20);  // stays at end of stream
  CHECK(r.source_eof);
  CHECK_EQ(r.moved_in, 0u);
}

TEST("splice: a write-shut destination throws EPIPE from splice, no SIGPIPE") {
  SigpipeCounter counter;
  CHECK(!sigpipe_in(0));
  TcpPair a = make_tcp_pair();
  TcpPair b = make_tcp_pair();
  SplicePipe pipe;
  sock_shutdown(b.client.get(), SHUT_WR);
  CHECK_EQ(splice_until_error(pipe, a.client.get(), a.server.get(), b.client.get()), EPIPE);
  CHECK_EQ(static_cast<int>(g_sigpipes), 0);
  CHECK(!sigpipe_in(0));  // the mask is restored
  CHECK(!sigpipe_in(1));  // and the SIGPIPE the splice raised was taken back
  CHECK_GT(pipe.buffered(), 0u);  // the bytes stay in the pipe, counted
  CHECK_SYSERROR(pipe.flush(b.client.get()), EPIPE, "splice");
  CHECK_EQ(static_cast<int>(g_sigpipes), 0);
  // A caller that blocks SIGPIPE itself keeps it blocked and gets nothing pending.
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
  bool threw = false;
  try {
    pipe.flush(b.client.get());
  } catch (const SysError& e) {
    threw = e.err() == EPIPE;
  }
  bool still_blocked = sigpipe_in(0), pending = sigpipe_in(1);
  ::pthread_sigmask(SIG_UNBLOCK, &pipe_set, nullptr);
  CHECK(threw);
  CHECK(still_blocked);
  CHECK(!pending);
  CHECK_EQ(static_cast<int>(g_sigpipes), 0);
}

TEST("splice: a reset destination throws EPIPE/ECONNRESET from splice, no SIGPIPE") {
  SigpipeCounter counter;
  TcpPair a = make_tcp_pair();
  TcpPair b = make_tcp_pair();
  SplicePipe pipe;
  reset_on_close(b.server.get());
  b.server.reset();
  int err = splice_until_error(pipe, a.client.get(), a.server.get(), b.client.get());
  CHECK(err == EPIPE || err == ECONNRESET);
  CHECK_EQ(static_cast<int>(g_sigpipes), 0);
  CHECK(!sigpipe_in(0));
  CHECK(!sigpipe_in(1));
}

TEST("splice: a reset source throws ECONNRESET from splice") {
  TcpPair a = make_tcp_pair();
  TcpPair b = make_tcp_pair();
  SplicePipe pipe;
  reset_on_close(a.client.get());
  a.client.reset();
  CHECK(wait_fd(a.server.get(), POLLIN, 5000));
  CHECK_SYSERROR(pipe.transfer(a.server.get(), b.client.get(), 1 << 20), ECONNRESET, "splice");
  CHECK_SYSERROR(pipe.transfer(99999, b.client.get(), 1 << 20), EBADF, "splice");
}

TEST("splice: the pipe's two fds are close-on-exec, released by close() and the destructor") {
  int before = count_open_fds();
  {
    SplicePipe pipe(65536);
    if (splice_in_kernel()) CHECK_EQ(count_open_fds(), before + 2);
    TcpPair a = make_tcp_pair();
    TcpPair b = make_tcp_pair();
    write_all(a.client.get(), "left in the pipe");
    sock_shutdown(b.client.get(), SHUT_WR);
    CHECK(wait_fd(a.server.get(), POLLIN, 5000));
    CHECK_SYSERROR(pipe.transfer(a.server.get(), b.client.get(), 1 << 20), EPIPE, "splice");
    CHECK_GT(pipe.buffered(), 0u);
    CHECK(!pipe.closed());
    pipe.close();
    CHECK(pipe.closed());
    CHECK_EQ(pipe.buffered(), 0u);
    pipe.close();  // idempotent
    CHECK_SYSERROR(pipe.transfer(a.server.get(), b.client.get(), 1 << 20), EBADF, "splice");
    CHECK_SYSERROR(pipe.flush(b.client.get()), EBADF, "splice");
  }
  CHECK_EQ(count_open_fds(), before);
  {
    SplicePipe dropped;  // destroyed without close()
  }
  CHECK_EQ(count_open_fds(), before);
  if (splice_in_kernel()) {
    std::set<int> old_fds = open_fd_set();
    SplicePipe pipe;
    std::set<int> new_fds = open_fd_set();
    CHECK_EQ(new_fds.size(), old_fds.size() + 2);
    for (int fd : new_fds) {
      if (old_fds.count(fd)) continue;
      struct stat st {};
      CHECK_EQ(::fstat(fd, &st), 0);
      CHECK(S_ISFIFO(st.st_mode));
      CHECK(has_fd_flag(fd, FD_CLOEXEC));
      CHECK(has_fl_flag(fd, O_NONBLOCK));
    }
  }
}

// ===========================================================================
// fd leaks on error paths (the whole run is checked again at the end)

TEST("fd leaks: error paths and close() release every fd") {
  int before = count_open_fds();
  {
    OwnedFd first = tcp_listen(loopback(0), ListenOptions{});
    uint16_t port = sock_local_address(first.get()).port();
    for (int i = 0; i < 3; i++) CHECK_SYSERROR(tcp_listen(loopback(port), ListenOptions{}), EADDRINUSE, "bind");
  }
  {
    uint16_t port = closed_port();
    for (int i = 0; i < 3; i++) {
      int immediate = -1;
      OwnedFd fd = tcp_connect(loopback(port), &immediate);
      CHECK(wait_fd(fd.get(), POLLOUT, 5000));
    }
  }
  {
    Selector sel;
    for (uint64_t i = 1; i <= 5; i++) sel.add_timer(i, 1000 * kMs, i % 2 ? 0 : 1000 * kMs);
    for (uint64_t i = 10; i <= 15; i++) sel.add_user_event(i);
    sel.trigger_user_event(10);
    CHECK_SYSERROR(sel.add_timer(1, kMs, 0), EEXIST, nullptr);
    CHECK_SYSERROR(sel.add_user_event(10), EEXIST, nullptr);
    CHECK_GT(count_open_fds(), before + 10);
    sel.close();
    CHECK_EQ(count_open_fds(), before);
  }
  {
    Selector sel;  // destroyed without close(), with live timers and events
    sel.add_timer(1, 1000 * kMs, 0);
    sel.add_user_event(2);
  }
  {
    auto core = new_poller();
    auto ch1 = core->open_channel(0);
    auto ch2 = core->open_channel(2);
    core->set_timer(1000 * kMs, 0);
    core.reset();  // destroyed without close()
    CHECK_EQ(send_str(*ch1, "x"), ChannelCore::kClosed);
    registry::remove_channel(ch1->id());
    registry::remove_channel(ch2->id());
  }
  {
    Selector sel;
    FdPair p = make_socketpair();
    sel.add(p.a.get(), 1, kRead);
    sel.close();  // with a registered source: the source stays the caller's
  }
  CHECK_EQ(count_open_fds(), before);
}

int main() { return check::run_all(); }
