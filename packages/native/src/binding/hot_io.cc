#include "binding/hot_io.h"

#include <cerrno>
#include <cstdint>

#include "binding/js_errors.h"
#include "os/errors.h"
#include "os/socket.h"

namespace amy::binding {

namespace {

void throw_type(napi_env env, const char* message) {
  napi_value msg, error, code;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_type_error(env, nullptr, msg, &error);
  napi_create_string_utf8(env, "ERR_INVALID_ARG_TYPE", NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, error, "code", code);
  napi_throw(env, error);
}

// (fd, Uint8Array) -> fd, data, length; false (with a pending exception) if bad.
bool fd_and_bytes(napi_env env, napi_callback_info info, int* fd, uint8_t** data, size_t* length) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
    throw_type(env, "expected (fd, bytes)");
    return false;
  }
  if (napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0) {
    throw_type(env, "fd must be a non-negative integer");
    return false;
  }
  napi_typedarray_type type;
  void* raw;
  size_t offset;
  napi_value buffer;
  if (napi_get_typedarray_info(env, argv[1], &type, length, &raw, &buffer, &offset) != napi_ok || type != napi_uint8_array) {
    throw_type(env, "bytes must be a Uint8Array or Buffer");
    return false;
  }
  *data = static_cast<uint8_t*>(raw);
  return true;
}

napi_value number(napi_env env, int64_t n) {
  napi_value out;
  napi_create_int64(env, n, &out);
  return out;
}

// read(fd, buf) -> bytes, 0 at end of stream, -1 would block
napi_value Read(napi_env env, napi_callback_info info) {
  int fd;
  uint8_t* data;
  size_t length;
  if (!fd_and_bytes(env, info, &fd, &data, &length)) return nullptr;
  try {
    return number(env, os::sock_read(fd, data, length));
  } catch (const os::SysError& e) {
    // The failure path may use node-addon-api: this is an ordinary call.
    sys_error(Napi::Env(env), e).ThrowAsJavaScriptException();
    return nullptr;
  }
}

// write(fd, buf) -> bytes or -1 (would block)
napi_value Write(napi_env env, napi_callback_info info) {
  int fd;
  uint8_t* data;
  size_t length;
  if (!fd_and_bytes(env, info, &fd, &data, &length)) return nullptr;
  try {
    return number(env, os::sock_write(fd, data, length));
  } catch (const os::SysError& e) {
    // The failure path may use node-addon-api: this is an ordinary call.
    sys_error(Napi::Env(env), e).ThrowAsJavaScriptException();
    return nullptr;
  }
}

// The largest read relay() makes: what its return value can encode.
constexpr size_t kRelayMax = (size_t{1} << 26) - 1;

// relay(fromFd, toFd, buf): a proxy's copy path in one call. Reads into buf,
// sends what it read to toFd. Returns -1 (read would block), 0 (end of
// stream), n (n bytes read and all sent), or, when the send took w < n
// (would block: w = 0), -2 - (n + w * 2^26). A failed read throws its
// SysError (syscall "read"), a failed send its own (syscall "write"): the
// caller tells which side failed by it.
napi_value Relay(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int from, to;
  napi_typedarray_type type;
  size_t length, offset;
  void* raw;
  napi_value buffer;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &from) != napi_ok || from < 0 ||
      napi_get_value_int32(env, argv[1], &to) != napi_ok || to < 0) {
    throw_type(env, "expected (fromFd, toFd, bytes)");
    return nullptr;
  }
  if (napi_get_typedarray_info(env, argv[2], &type, &length, &raw, &buffer, &offset) != napi_ok || type != napi_uint8_array) {
    throw_type(env, "bytes must be a Uint8Array or Buffer");
    return nullptr;
  }
  try {
    long n = os::sock_read(from, raw, length < kRelayMax ? length : kRelayMax);
    if (n <= 0) return number(env, n);
    long w = os::sock_write(to, raw, static_cast<size_t>(n));
    if (w == n) return number(env, n);
    if (w < 0) w = 0;  // would block
    return number(env, -2 - (int64_t{n} + int64_t{w} * (int64_t{1} << 26)));
  } catch (const os::SysError& e) {
    sys_error(Napi::Env(env), e).ThrowAsJavaScriptException();
    return nullptr;
  }
}

// writeMany(fds: Int32Array, count, bytes, results: Int32Array): the same
// bytes sent to count sockets in one call (a topic's members with nothing
// queued). results[i] for fds[i]: bytes sent (>= 0, maybe fewer than all),
// -1 if it would block, -1 - errno if the send failed. One failed socket
// never stops the others; nothing throws but bad arguments.
napi_value WriteMany(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t count;
  napi_typedarray_type type;
  size_t fds_length, bytes_length, results_length, offset;
  void *fds_raw, *bytes_raw, *results_raw;
  napi_value buffer;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 4 ||
      napi_get_typedarray_info(env, argv[0], &type, &fds_length, &fds_raw, &buffer, &offset) != napi_ok || type != napi_int32_array ||
      napi_get_value_uint32(env, argv[1], &count) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &bytes_length, &bytes_raw, &buffer, &offset) != napi_ok || type != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[3], &type, &results_length, &results_raw, &buffer, &offset) != napi_ok || type != napi_int32_array ||
      count > fds_length || count > results_length || bytes_length > INT32_MAX) {
    throw_type(env, "expected (fds: Int32Array, count, bytes: Uint8Array, results: Int32Array), count <= both lengths");
    return nullptr;
  }
  const int32_t* fds = static_cast<const int32_t*>(fds_raw);
  int32_t* results = static_cast<int32_t*>(results_raw);
  for (uint32_t i = 0; i < count; i++) {
    try {
      results[i] = static_cast<int32_t>(os::sock_write(fds[i], bytes_raw, bytes_length));
    } catch (const os::SysError& e) {
      results[i] = -1 - e.err();
    }
  }
  return nullptr;
}

}  // namespace

void define_hot_io(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "read", NAPI_AUTO_LENGTH, Read, nullptr, &fn) == napi_ok) napi_set_named_property(env, exports, "read", fn);
  if (napi_create_function(env, "write", NAPI_AUTO_LENGTH, Write, nullptr, &fn) == napi_ok) napi_set_named_property(env, exports, "write", fn);
  if (napi_create_function(env, "relay", NAPI_AUTO_LENGTH, Relay, nullptr, &fn) == napi_ok) napi_set_named_property(env, exports, "relay", fn);
  if (napi_create_function(env, "writeMany", NAPI_AUTO_LENGTH, WriteMany, nullptr, &fn) == napi_ok) napi_set_named_property(env, exports, "writeMany", fn);
}

}  // namespace amy::binding
