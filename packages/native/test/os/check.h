// A tiny test harness for os_test.cc: TEST() registers a case, CHECK*()
// abort the case with a message, main() prints TAP version 14. No framework,
// so the binary builds with nothing but the compiler and the sanitizers.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "os/errors.h"

namespace check {

// Thrown by a failed CHECK: ends the test case; RAII closes what it opened.
struct Failure {
  std::string message;
};

// Thrown by SKIP(): the case is reported as "ok N - name # SKIP reason".
struct Skipped {
  std::string reason;
};

struct Case {
  const char* name;
  void (*fn)();
};

inline std::vector<Case>& cases() {
  static std::vector<Case> list;
  return list;
}

struct Register {
  Register(const char* name, void (*fn)()) { cases().push_back(Case{name, fn}); }
};

[[noreturn]] inline void fail(const char* file, int line, const std::string& what) {
  std::ostringstream out;
  out << file << ":" << line << ": " << what;
  throw Failure{out.str()};
}

inline std::string errno_note(int err) {
  if (err == 0) return "";
  return std::string(" (errno ") + amy::os::errno_name(err) + ": " + std::strerror(err) + ")";
}

template <typename T>
std::string show(const T& value) {
  std::ostringstream out;
  if constexpr (std::is_same_v<T, bool>) {
    out << (value ? "true" : "false");
  } else if constexpr (std::is_enum_v<T>) {
    out << static_cast<long long>(value);
  } else if constexpr (std::is_integral_v<T>) {
    if constexpr (std::is_signed_v<T>) {
      out << static_cast<long long>(value);
    } else {
      out << static_cast<unsigned long long>(value);
    }
  } else if constexpr (std::is_convertible_v<T, std::string>) {
    out << '"' << std::string(value) << '"';
  } else {
    out << value;
  }
  return out.str();
}

// Open fds of this process (the directory's own fd included, at every call alike).
inline int count_open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) throw amy::os::SysError("opendir", errno);
  int count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') count++;
  }
  closedir(dir);
  return count;
}

inline const char* volatile g_current = "";
constexpr unsigned kCaseTimeoutSeconds = 20;

inline void on_watchdog(int) {
  // Async-signal-safe: write(2) and _exit(2) only.
  const char head[] = "Bail out! watchdog: \"";
  const char tail[] = "\" did not finish in time\n";
  (void)!::write(1, head, sizeof head - 1);
  const char* name = g_current;
  (void)!::write(1, name, std::strlen(name));
  (void)!::write(1, tail, sizeof tail - 1);
  ::_exit(1);
}

inline void print_diagnostic(const std::string& message) {
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    std::printf("# %s\n", message.substr(start, end - start).c_str());
    start = end + 1;
  }
}

// Runs every TEST in order, each under a watchdog, prints TAP version 14,
// then checks that as many fds are open at the end as at the start.
// Extra exception types are described by describe(e) (or "" to rethrow).
inline int run_all(std::string (*describe)(const std::exception&) = nullptr) {
  ::signal(SIGALRM, on_watchdog);
  const int fds_at_start = count_open_fds();
  std::printf("TAP version 14\n");
  std::fflush(stdout);
  int number = 0;
  int failed = 0;
  auto report = [&](const char* name, const std::string& error, const std::string& skip) {
    ++number;
    if (!error.empty()) {
      ++failed;
      std::printf("not ok %d - %s\n", number, name);
      print_diagnostic(error);
    } else if (!skip.empty()) {
      std::printf("ok %d - %s # SKIP %s\n", number, name, skip.c_str());
    } else {
      std::printf("ok %d - %s\n", number, name);
    }
    std::fflush(stdout);
  };
  for (const Case& c : cases()) {
    g_current = c.name;
    ::alarm(kCaseTimeoutSeconds);
    std::string error;
    std::string skip;
    try {
      c.fn();
    } catch (const Failure& f) {
      error = f.message;
    } catch (const Skipped& s) {
      skip = s.reason;
    } catch (const amy::os::SysError& e) {
      error = std::string("unexpected SysError: ") + e.what() + " (errno " + amy::os::errno_name(e.err()) +
              ", syscall " + e.syscall() + ")";
    } catch (const std::exception& e) {
      std::string described = describe ? describe(e) : std::string();
      error = described.empty() ? std::string("unexpected exception: ") + e.what() : described;
    } catch (...) {
      error = "unexpected exception of unknown type";
    }
    ::alarm(0);
    report(c.name, error, skip);
  }
  const int fds_at_end = count_open_fds();
  report("fd leaks: as many fds open at the end as at the start",
         fds_at_end == fds_at_start ? std::string()
                                    : std::to_string(fds_at_start) + " fds open at the start, " +
                                          std::to_string(fds_at_end) + " at the end",
         std::string());
  std::printf("1..%d\n", number);
  std::fflush(stdout);
  return failed ? 1 : 0;
}

}  // namespace check

#define CHECK_CAT2(a, b) a##b
#define CHECK_CAT(a, b) CHECK_CAT2(a, b)

// TEST(name) { body }: the cases run in the order they appear in the file.
#define TEST(name)                                                                       \
  static void CHECK_CAT(test_fn_, __LINE__)();                                           \
  static const check::Register CHECK_CAT(test_reg_, __LINE__)(name, &CHECK_CAT(test_fn_, __LINE__)); \
  static void CHECK_CAT(test_fn_, __LINE__)()

#define CHECK(expr)                                                                  \
  do {                                                                               \
    errno = 0;                                                                       \
    if (!(expr)) {                                                                   \
      int check_errno_ = errno;                                                      \
      check::fail(__FILE__, __LINE__, "CHECK(" #expr ") failed" + check::errno_note(check_errno_)); \
    }                                                                                \
  } while (0)

#define CHECK_OP(a, op, b)                                                                   \
  do {                                                                                       \
    const auto& check_a_ = (a);                                                              \
    const auto& check_b_ = (b);                                                              \
    if (!(check_a_ op check_b_)) {                                                           \
      check::fail(__FILE__, __LINE__,                                                        \
                  "CHECK(" #a " " #op " " #b ") failed: " + check::show(check_a_) + " vs " + \
                      check::show(check_b_));                                                \
    }                                                                                        \
  } while (0)

#define CHECK_EQ(a, b) CHECK_OP(a, ==, b)
#define CHECK_NE(a, b) CHECK_OP(a, !=, b)
#define CHECK_LT(a, b) CHECK_OP(a, <, b)
#define CHECK_LE(a, b) CHECK_OP(a, <=, b)
#define CHECK_GT(a, b) CHECK_OP(a, >, b)
#define CHECK_GE(a, b) CHECK_OP(a, >=, b)

// CHECK_SYSERROR(statement, EXXX, "syscall"): the statement throws
// amy::os::SysError with that errno and (unless nullptr) that syscall name.
#define CHECK_SYSERROR(stmt, want_err, want_syscall)                                              \
  do {                                                                                            \
    bool check_threw_ = false;                                                                    \
    try {                                                                                         \
      stmt;                                                                                       \
    } catch (const amy::os::SysError& check_e_) {                                                 \
      check_threw_ = true;                                                                        \
      const char* check_want_sys_ = (want_syscall);                                               \
      if (check_e_.err() != (want_err) ||                                                         \
          (check_want_sys_ != nullptr && std::strcmp(check_e_.syscall(), check_want_sys_) != 0)) \
        check::fail(__FILE__, __LINE__,                                                           \
                    std::string(#stmt " threw SysError ") + amy::os::errno_name(check_e_.err()) + \
                        " from " + check_e_.syscall() + ", want " #want_err " from " +           \
                        (check_want_sys_ ? check_want_sys_ : "any syscall"));                    \
    }                                                                                             \
    if (!check_threw_) check::fail(__FILE__, __LINE__, #stmt " did not throw SysError " #want_err); \
  } while (0)

// CHECK_THROWS(statement, ExceptionType)
#define CHECK_THROWS(stmt, type)                                                             \
  do {                                                                                       \
    bool check_threw_ = false;                                                               \
    try {                                                                                    \
      stmt;                                                                                  \
    } catch (const type&) {                                                                  \
      check_threw_ = true;                                                                   \
    }                                                                                        \
    if (!check_threw_) check::fail(__FILE__, __LINE__, #stmt " did not throw " #type);      \
  } while (0)

#define SKIP(reason) throw check::Skipped{reason}
