#include "os/errors.h"

#include <cstring>

namespace amy::os {

static std::string describe(const char* syscall, int err) {
  std::string msg = syscall;
  msg += " ";
  msg += errno_name(err);
  msg += " (";
  msg += std::strerror(err);
  msg += ")";
  return msg;
}

SysError::SysError(const char* syscall, int err)
    : std::runtime_error(describe(syscall, err)), syscall_(syscall), err_(err) {}

const char* errno_name(int err) {
  // Written out rather than strerrorname_np() so macOS/BSD builds get the
  // same names; these are the errnos sockets, epoll, kqueue and timers return.
  switch (err) {
#define AMY_ERRNO(name) \
  case name:            \
    return #name;
    AMY_ERRNO(EPERM) AMY_ERRNO(ENOENT) AMY_ERRNO(EINTR) AMY_ERRNO(EIO)
    AMY_ERRNO(EBADF) AMY_ERRNO(EAGAIN) AMY_ERRNO(ENOMEM) AMY_ERRNO(EACCES)
    AMY_ERRNO(EFAULT) AMY_ERRNO(EBUSY) AMY_ERRNO(EEXIST) AMY_ERRNO(EINVAL)
    AMY_ERRNO(ENFILE) AMY_ERRNO(EMFILE) AMY_ERRNO(ENOSPC) AMY_ERRNO(EPIPE)
    AMY_ERRNO(ENOSYS) AMY_ERRNO(ENOTSOCK) AMY_ERRNO(EDESTADDRREQ)
    AMY_ERRNO(EMSGSIZE) AMY_ERRNO(EPROTOTYPE) AMY_ERRNO(ENOPROTOOPT)
    AMY_ERRNO(EPROTONOSUPPORT) AMY_ERRNO(EOPNOTSUPP) AMY_ERRNO(EAFNOSUPPORT)
    AMY_ERRNO(EADDRINUSE) AMY_ERRNO(EADDRNOTAVAIL) AMY_ERRNO(ENETDOWN)
    AMY_ERRNO(ENETUNREACH) AMY_ERRNO(ECONNABORTED) AMY_ERRNO(ECONNRESET)
    AMY_ERRNO(ENOBUFS) AMY_ERRNO(EISCONN) AMY_ERRNO(ENOTCONN)
    AMY_ERRNO(ETIMEDOUT) AMY_ERRNO(ECONNREFUSED) AMY_ERRNO(EHOSTUNREACH)
    AMY_ERRNO(EALREADY) AMY_ERRNO(EINPROGRESS) AMY_ERRNO(ERANGE)
    AMY_ERRNO(ENODEV) AMY_ERRNO(ESHUTDOWN)
#undef AMY_ERRNO
    default:
      return "UNKNOWN";
  }
}

}  // namespace amy::os
