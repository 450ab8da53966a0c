#include "os/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "os/errors.h"

namespace amy::os {

namespace {

#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;  // macOS/BSD: SO_NOSIGPIPE is set per socket
#endif

// Sets close-on-exec and non-blocking where the platform cannot do it in the
// creating call (SOCK_CLOEXEC/accept4 are Linux/BSD, not macOS).
void make_nonblocking_cloexec(int fd) {
  int fdflags = ::fcntl(fd, F_GETFD);
  if (fdflags == -1 || ::fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC) == -1) throw_sys("fcntl");
  int flags = ::fcntl(fd, F_GETFL);
  if (flags == -1 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) throw_sys("fcntl");
}

void set_nosigpipe(int fd) {
#ifdef SO_NOSIGPIPE
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) == -1) throw_sys("setsockopt");
#else
  (void)fd;
#endif
}

OwnedFd new_socket(int family) {
#ifdef SOCK_CLOEXEC
  OwnedFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw_sys("socket");
#else
  OwnedFd fd(::socket(family, SOCK_STREAM, 0));
  if (!fd) throw_sys("socket");
  make_nonblocking_cloexec(fd.get());
#endif
  set_nosigpipe(fd.get());
  return fd;
}

void set_int_option(int fd, int level, int name, int value) {
  if (::setsockopt(fd, level, name, &value, sizeof value) == -1) throw_sys("setsockopt");
}

void bind_and_listen(int fd, const SocketAddress& address, int backlog) {
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) == -1) throw_sys("bind");
  if (::listen(fd, backlog) == -1) throw_sys("listen");
}

OwnedFd start_connect(const SocketAddress& address, int* immediate_error) {
  OwnedFd fd = new_socket(address.family());
  *immediate_error = 0;
  // No retry on EINTR: a non-blocking connect interrupted is still in
  // progress, and calling it again would report EALREADY.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address.storage), address.length) == -1) {
    if (errno != EINPROGRESS && errno != EINTR) *immediate_error = errno;
  }
  return fd;
}

}  // namespace

uint16_t SocketAddress::port() const {
  if (storage.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(storage).sin_port);
  if (storage.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(storage).sin6_port);
  return 0;
}

uint32_t SocketAddress::host_key() const {
  if (storage.ss_family == AF_INET) return ntohl(reinterpret_cast<const sockaddr_in&>(storage).sin_addr.s_addr);
  if (storage.ss_family != AF_INET6) return 0;
  const auto& v6 = reinterpret_cast<const sockaddr_in6&>(storage).sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    const uint8_t* b = v6.s6_addr + 12;
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
  }
  uint32_t hash = 2166136261u;
  for (uint8_t byte : v6.s6_addr) hash = (hash ^ byte) * 16777619u;
  return hash;
}

bool SocketAddress::format_host(char* out, size_t size) const {
  const void* src;
  if (storage.ss_family == AF_INET) {
    src = &reinterpret_cast<const sockaddr_in&>(storage).sin_addr;
  } else if (storage.ss_family == AF_INET6) {
    src = &reinterpret_cast<const sockaddr_in6&>(storage).sin6_addr;
  } else {
    return false;
  }
  return ::inet_ntop(storage.ss_family, src, out, static_cast<socklen_t>(size)) != nullptr;
}

std::string SocketAddress::unix_path() const {
  if (storage.ss_family != AF_UNIX) return std::string();
  const auto& un = reinterpret_cast<const sockaddr_un&>(storage);
  size_t offset = offsetof(sockaddr_un, sun_path);
  if (length <= offset) return std::string();  // unnamed (e.g. a client's end)
  size_t size = length - offset;
  if (size > sizeof un.sun_path) size = sizeof un.sun_path;
  if (un.sun_path[0] == '\0') return std::string(un.sun_path, size);  // abstract: every byte counts
  return std::string(un.sun_path, ::strnlen(un.sun_path, size));
}

bool parse_unix_address(const char* path, size_t length, SocketAddress& out) {
  std::memset(&out.storage, 0, sizeof out.storage);
  auto& un = reinterpret_cast<sockaddr_un&>(out.storage);
  if (length == 0) return false;
  bool abstract = path[0] == '\0';
#ifndef __linux__
  if (abstract) return false;
#endif
  // A filesystem path needs room for its terminating NUL and may not hold
  // one inside; an abstract name is exactly its bytes.
  if (!abstract && (std::memchr(path, '\0', length) != nullptr || length >= sizeof un.sun_path)) return false;
  if (abstract && length > sizeof un.sun_path) return false;
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, path, length);
  out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length + (abstract ? 0 : 1));
  return true;
}

bool parse_address(const char* host, uint16_t port, SocketAddress& out) {
  std::memset(&out.storage, 0, sizeof out.storage);
  auto& v4 = reinterpret_cast<sockaddr_in&>(out.storage);
  if (::inet_pton(AF_INET, host, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    out.length = sizeof(sockaddr_in);
    return true;
  }
  auto& v6 = reinterpret_cast<sockaddr_in6&>(out.storage);
  if (::inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    out.length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

OwnedFd tcp_listen(const SocketAddress& address, const ListenOptions& options) {
  OwnedFd fd = new_socket(address.family());
  set_int_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1);
  if (options.reuse_port) {
#ifdef SO_REUSEPORT
    set_int_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1);
#else
    throw SysError("setsockopt", ENOPROTOOPT);
#endif
  }
  if (address.family() == AF_INET6) set_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, options.ipv6_only ? 1 : 0);
  bind_and_listen(fd.get(), address, options.backlog);
  return fd;
}

OwnedFd unix_listen(const SocketAddress& address, int backlog) {
  if (address.family() != AF_UNIX) throw SysError("bind", EAFNOSUPPORT);
  OwnedFd fd = new_socket(AF_UNIX);
  bind_and_listen(fd.get(), address, backlog);
  return fd;
}

OwnedFd tcp_accept(int listen_fd, SocketAddress* peer) {
  for (;;) {
    SocketAddress scratch;
    SocketAddress* into = peer ? peer : &scratch;
    into->length = sizeof into->storage;
    auto* addr = reinterpret_cast<sockaddr*>(&into->storage);
#ifdef __linux__
    int fd = ::accept4(listen_fd, addr, &into->length, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = ::accept(listen_fd, addr, &into->length);
#endif
    if (fd >= 0) {
      OwnedFd owned(fd);
#ifndef __linux__
      make_nonblocking_cloexec(fd);
      set_nosigpipe(fd);
#endif
      return owned;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return OwnedFd();
    if (errno == EINTR || errno == ECONNABORTED) continue;
    throw_sys("accept");
  }
}

OwnedFd tcp_accept_nodelay(int listen_fd, bool nodelay, SocketAddress* peer) {
  OwnedFd fd = tcp_accept(listen_fd, peer);
  if (fd && nodelay) {
    try {
      sock_set_nodelay(fd.get(), true);
    } catch (const SysError&) {
    }
  }
  return fd;
}

OwnedFd tcp_connect(const SocketAddress& address, int* immediate_error) { return start_connect(address, immediate_error); }

OwnedFd unix_connect(const SocketAddress& address, int* immediate_error) {
  if (address.family() != AF_UNIX) throw SysError("connect", EAFNOSUPPORT);
  return start_connect(address, immediate_error);
}

long sock_read(int fd, void* buf, size_t len) {
  ssize_t n = retry_eintr([&] { return ::read(fd, buf, len); });
  if (n >= 0) return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return kWouldBlock;
  throw_sys("read");
}

long sock_write(int fd, const void* buf, size_t len) {
  ssize_t n = retry_eintr([&] { return ::send(fd, buf, len, kSendFlags); });
  if (n >= 0) return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return kWouldBlock;
  throw_sys("write");
}

long sock_writev(int fd, const struct iovec* iov, int count) {
  msghdr msg{};
  msg.msg_iov = const_cast<struct iovec*>(iov);
  msg.msg_iovlen = static_cast<decltype(msg.msg_iovlen)>(count);
  ssize_t n = retry_eintr([&] { return ::sendmsg(fd, &msg, kSendFlags); });
  if (n >= 0) return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return kWouldBlock;
  throw_sys("writev");
}

void sock_shutdown(int fd, int how) {
  if (::shutdown(fd, how) == -1) throw_sys("shutdown");
}

int sock_take_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) throw_sys("getsockopt");
  return err;
}

void sock_set_nodelay(int fd, bool on) { set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }

bool sock_get_nodelay(int fd) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len) == -1) throw_sys("getsockopt");
  return value != 0;
}

SocketAddress sock_local_address(int fd) {
  SocketAddress a;
  a.length = sizeof a.storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.length) == -1) throw_sys("getsockname");
  return a;
}

SocketAddress sock_peer_address(int fd) {
  SocketAddress a;
  a.length = sizeof a.storage;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.length) == -1) throw_sys("getpeername");
  return a;
}

void sock_set_nonblocking_cloexec(int fd) {
  make_nonblocking_cloexec(fd);
  set_nosigpipe(fd);
}

void fd_close(int fd) {
  if (::close(fd) == -1 && errno != EINTR) throw_sys("close");
}

}  // namespace amy::os
