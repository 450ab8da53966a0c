// Non-blocking, close-on-exec TCP sockets. A would-block is a return value
// (kWouldBlock), never an exception; every other failure throws SysError.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "os/owned_fd.h"

namespace amy::os {

constexpr long kWouldBlock = -1;

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  uint16_t port() const;
  // Writes the numeric host ("127.0.0.1", "::1") into out; returns false if
  // it does not fit.
  bool format_host(char* out, size_t size) const;
  // 32 bits that name the peer's host (the port left out), for counting
  // connections per address: an IPv4 address as a number (also when
  // IPv4-mapped in IPv6), an IPv6 address hashed (FNV-1a), 0 otherwise.
  uint32_t host_key() const;
  // AF_UNIX only: the path; "" for an unnamed socket; an abstract name
  // (Linux) keeps its leading '\0', as node:net writes it.
  std::string unix_path() const;
};

// Parses a numeric IPv4 or IPv6 address (no name lookups: they block).
// Returns false if host is not an IP literal.
bool parse_address(const char* host, uint16_t port, SocketAddress& out);

struct ListenOptions {
  int backlog = 511;
  bool reuse_port = false;
  bool ipv6_only = false;
};

OwnedFd tcp_listen(const SocketAddress& address, const ListenOptions& options);

// A Unix domain socket address from `length` bytes of `path`: a filesystem
// path, or on Linux an abstract name when path[0] is '\0' (it may hold more
// NULs; nothing is created on disk). False if it is empty or does not fit
// sun_path (108 bytes on Linux, 104 on macOS, with the path's NUL).
bool parse_unix_address(const char* path, size_t length, SocketAddress& out);

// A listening AF_UNIX stream socket. A filesystem path that exists already
// (even a stale socket) fails with EADDRINUSE, as in node:net.
OwnedFd unix_listen(const SocketAddress& address, int backlog);

// Accepts one connection: a valid fd, or an invalid one when it would block.
// ECONNABORTED (the peer left before accept) is skipped, not reported.
OwnedFd tcp_accept(int listen_fd, SocketAddress* peer);
// tcp_accept, then TCP_NODELAY on the new socket when `nodelay` (where it is
// not inherited from the listener). A failed setsockopt is ignored: the peer
// may already be gone, and its first read will say so.
OwnedFd tcp_accept_nodelay(int listen_fd, bool nodelay, SocketAddress* peer);

// Starts a non-blocking connect. The socket becomes writable once connected;
// a failure shows as an error/hangup event and as take_error(). If the
// kernel refuses at once (common on loopback), the errno is kept in
// *immediate_error and the fd is still returned, so callers see one path.
OwnedFd tcp_connect(const SocketAddress& address, int* immediate_error);

// The same for an AF_UNIX address. A full listen queue shows as an immediate
// EAGAIN (Unix sockets do not queue a connect in progress).
OwnedFd unix_connect(const SocketAddress& address, int* immediate_error);

long sock_read(int fd, void* buf, size_t len);                 // 0 at end of stream
long sock_write(int fd, const void* buf, size_t len);          // no SIGPIPE
long sock_writev(int fd, const struct iovec* iov, int count);  // no SIGPIPE
void sock_shutdown(int fd, int how);                           // SHUT_RD/WR/RDWR
int sock_take_error(int fd);                                   // SO_ERROR, cleared
void sock_set_nodelay(int fd, bool on);
bool sock_get_nodelay(int fd);
SocketAddress sock_local_address(int fd);
SocketAddress sock_peer_address(int fd);
void sock_set_nonblocking_cloexec(int fd);  // for fds adopted from elsewhere
void fd_close(int fd);

}  // namespace amy::os
