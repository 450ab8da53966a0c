// Errors of the OS layer. Every failed syscall becomes a SysError that keeps
// the errno and the syscall's name, so the binding can hand JavaScript an
// Error with `code`, `errno` and `syscall` (and tests can check them without
// Node). EAGAIN is never an error here: functions return it as a value.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>

namespace amy::os {

class SysError : public std::runtime_error {
 public:
  SysError(const char* syscall, int err);
  int err() const { return err_; }
  const char* syscall() const { return syscall_; }

 private:
  const char* syscall_;
  int err_;
};

// Symbolic name of an errno value ("EADDRINUSE"), or "UNKNOWN".
const char* errno_name(int err);

[[noreturn]] inline void throw_sys(const char* syscall, int err = errno) {
  throw SysError(syscall, err);
}

// Runs a syscall-like callable until it does not fail with EINTR.
template <typename F>
auto retry_eintr(F&& f) -> decltype(f()) {
  for (;;) {
    auto r = f();
    if (r != -1 || errno != EINTR) return r;
  }
}

}  // namespace amy::os
