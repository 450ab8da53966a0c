#include "binding/tcp_binding.h"

#include <sys/uio.h>
#include <sys/un.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>
#include <cmath>
#include <string>

#include "binding/iovecs.h"
#include "binding/js_errors.h"
#include "os/socket.h"

namespace amy::binding {

namespace {

uint16_t arg_port(const Napi::CallbackInfo& info, size_t index) {
  double port = arg_number(info, index, "port");
  if (port < 0 || port > 65535 || port != std::floor(port))
    throw amy_error(info.Env(), "ERR_INVALID_ARG_VALUE", "port must be an integer in [0, 65535]");
  return static_cast<uint16_t>(port);
}

os::SocketAddress arg_address(const Napi::CallbackInfo& info, size_t host_index) {
  if (!info[host_index].IsString()) throw amy_error(info.Env(), "ERR_INVALID_ARG_TYPE", "host must be a string");
  std::string host = info[host_index].As<Napi::String>().Utf8Value();
  uint16_t port = arg_port(info, host_index + 1);
  os::SocketAddress address;
  if (!os::parse_address(host.c_str(), port, address))
    throw amy_error(info.Env(), "ERR_INVALID_ADDRESS", "host must be an IPv4 or IPv6 address, got '" + host + "'");
  return address;
}

// A Unix socket path or abstract name (leading '\0'); every byte is kept.
os::SocketAddress arg_unix_address(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsString()) throw amy_error(info.Env(), "ERR_INVALID_ARG_TYPE", "path must be a string");
  std::string path = info[index].As<Napi::String>().Utf8Value();
  os::SocketAddress address;
  if (!os::parse_unix_address(path.data(), path.size(), address))
    throw amy_error(info.Env(), "ERR_INVALID_ADDRESS",
                    "path must be a non-empty Unix socket path without NUL bytes, shorter than " +
                        std::to_string(sizeof(sockaddr_un::sun_path)) + " bytes" +
#ifdef __linux__
                        " (or an abstract name starting with \\0)"
#else
                        " (abstract names are Linux only)"
#endif
    );
  return address;
}

Napi::Value address_object(Napi::Env env, const os::SocketAddress& address) {
  char host[64];
  if (!address.format_host(host, sizeof host)) throw amy_error(env, "ERR_INVALID_ADDRESS", "not an IP socket");
  Napi::Object out = Napi::Object::New(env);
  out.Set("address", Napi::String::New(env, host));
  out.Set("port", Napi::Number::New(env, address.port()));
  out.Set("family", Napi::String::New(env, address.family() == AF_INET6 ? "IPv6" : "IPv4"));
  return out;
}

Napi::Value io_result(Napi::Env env, long n) { return Napi::Number::New(env, static_cast<double>(n)); }

// tcpListen(host, port, backlog, reusePort, ipv6Only) -> fd
Napi::Value TcpListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  os::SocketAddress address = arg_address(info, 0);
  os::ListenOptions options;
  double backlog = arg_number(info, 2, "backlog");
  if (backlog < 0 || backlog > INT_MAX || backlog != std::floor(backlog))
    throw amy_error(env, "ERR_INVALID_ARG_VALUE", "backlog must be a non-negative integer");
  options.backlog = static_cast<int>(backlog);
  options.reuse_port = info[3].ToBoolean().Value();
  options.ipv6_only = info[4].ToBoolean().Value();
  int fd = guarded(env, [&] { return os::tcp_listen(address, options).release(); });
  return Napi::Number::New(env, fd);
}

// unixListen(path, backlog) -> fd
Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  os::SocketAddress address = arg_unix_address(info, 0);
  double backlog = arg_number(info, 1, "backlog");
  if (backlog < 0 || backlog > INT_MAX || backlog != std::floor(backlog))
    throw amy_error(env, "ERR_INVALID_ARG_VALUE", "backlog must be a non-negative integer");
  int fd = guarded(env, [&] { return os::unix_listen(address, static_cast<int>(backlog)).release(); });
  return Napi::Number::New(env, fd);
}

// unixConnect(path) -> [fd, immediateErrno], like tcpConnect
Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  os::SocketAddress address = arg_unix_address(info, 0);
  int immediate = 0;
  int fd = guarded(env, [&] { return os::unix_connect(address, &immediate).release(); });
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fd));
  out.Set(1u, Napi::Number::New(env, immediate));
  return out;
}

// unixPath(fd, peer) -> the local (or peer's) Unix socket path; "" when unnamed
Napi::Value UnixPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  bool peer = info[1].ToBoolean().Value();
  os::SocketAddress address = guarded(env, [&] { return peer ? os::sock_peer_address(fd) : os::sock_local_address(fd); });
  if (address.family() != AF_UNIX) throw amy_error(env, "ERR_INVALID_ADDRESS", "not a Unix socket");
  std::string path = address.unix_path();
  return Napi::String::New(env, path.data(), path.size());
}

// tcpAccept(listenFd, peer?: Uint8Array(20)) -> fd or -1 (would block).
// The peer address is written as [family 4|6, port hi, port lo, 1 pad, 16
// address bytes], formatted only if the user asks (formatAddress).
Napi::Value TcpAccept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int listen_fd = arg_fd(info, 0);
  os::SocketAddress peer;
  int fd = guarded(env, [&] { return os::tcp_accept(listen_fd, &peer).release(); });
  if (fd >= 0 && info.Length() > 1 && info[1].IsTypedArray()) {
    auto out = info[1].As<Napi::Uint8Array>();
    if (out.ElementLength() >= 20) {
      uint8_t* p = out.Data();
      uint16_t port = peer.port();
      p[1] = static_cast<uint8_t>(port >> 8);
      p[2] = static_cast<uint8_t>(port & 0xff);
      p[3] = 0;
      if (peer.family() == AF_INET6) {
        p[0] = 6;
        std::memcpy(p + 4, &reinterpret_cast<const sockaddr_in6&>(peer.storage).sin6_addr, 16);
      } else {
        p[0] = 4;
        std::memcpy(p + 4, &reinterpret_cast<const sockaddr_in&>(peer.storage).sin_addr, 4);
      }
    }
  }
  return Napi::Number::New(env, fd);
}

// acceptBatch(listenFd, out: Int32Array, noDelay, hosts?: Uint32Array) ->
// count: accepts until it would block or out is full, in one call. An error
// after some connections were accepted returns those (the error recurs on the
// next call), so no accepted fd is ever dropped. With `hosts` (at least as
// long as out), hosts[i] receives the host key of fds[i]'s peer
// (SocketAddress::host_key), taken from accept's own address argument: no
// getpeername call.
Napi::Value AcceptBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int listen_fd = arg_fd(info, 0);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw amy_error(env, "ERR_INVALID_ARG_TYPE", "out must be an Int32Array");
  auto out = info[1].As<Napi::Int32Array>();
  bool nodelay = info[2].ToBoolean().Value();
  size_t count = 0;
  size_t capacity = out.ElementLength();
  int32_t* fds = out.Data();
  uint32_t* hosts = nullptr;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      throw amy_error(env, "ERR_INVALID_ARG_TYPE", "hosts must be a Uint32Array");
    auto array = info[3].As<Napi::Uint32Array>();
    hosts = array.Data();
    capacity = std::min(capacity, array.ElementLength());
  }
  os::SocketAddress peer;
  while (count < capacity) {
    os::OwnedFd fd;
    try {
      fd = os::tcp_accept_nodelay(listen_fd, nodelay, hosts ? &peer : nullptr);
    } catch (const os::SysError& e) {
      if (count > 0) break;
      throw sys_error(env, e);
    }
    if (!fd) break;
    if (hosts) hosts[count] = peer.host_key();
    fds[count++] = fd.release();
  }
  return Napi::Number::New(env, static_cast<double>(count));
}

// formatAddress(bytes) -> { address, port, family }, from tcpAccept's layout.
Napi::Value FormatAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto bytes = arg_bytes(info, 0, "bytes");
  if (bytes.ElementLength() < 20) throw amy_error(env, "ERR_INVALID_ARG_VALUE", "address bytes are too short");
  const uint8_t* p = bytes.Data();
  os::SocketAddress address;
  uint16_t port = static_cast<uint16_t>((p[1] << 8) | p[2]);
  if (p[0] == 6) {
    auto& v6 = reinterpret_cast<sockaddr_in6&>(address.storage);
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    std::memcpy(&v6.sin6_addr, p + 4, 16);
  } else {
    auto& v4 = reinterpret_cast<sockaddr_in&>(address.storage);
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    std::memcpy(&v4.sin_addr, p + 4, 4);
  }
  return address_object(env, address);
}

// tcpConnect(host, port) -> [fd, immediateErrno]
Napi::Value TcpConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  os::SocketAddress address = arg_address(info, 0);
  int immediate = 0;
  int fd = guarded(env, [&] { return os::tcp_connect(address, &immediate).release(); });
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fd));
  out.Set(1u, Napi::Number::New(env, immediate));
  return out;
}

// writev(fd, bufs) -> bytes or -1 (would block); at most IOV_MAX buffers
// are offered per call, so a long list is a partial write, not an error.
Napi::Value Writev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  const std::vector<iovec>& iov = iovecs_from(env, info[1]);
  return io_result(env, guarded(env, [&] { return os::sock_writev(fd, iov.data(), static_cast<int>(iov.size())); }));
}

// shutdown(fd, how): 0 read, 1 write, 2 both
Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  double how = arg_number(info, 1, "how");
  if (how != 0 && how != 1 && how != 2) throw amy_error(env, "ERR_INVALID_ARG_VALUE", "how must be 0, 1 or 2");
  guarded(env, [&] { os::sock_shutdown(fd, static_cast<int>(how)); });
  return env.Undefined();
}

// takeError(fd) -> Error | null (SO_ERROR, which reading clears)
Napi::Value TakeError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  int err = guarded(env, [&] { return os::sock_take_error(fd); });
  if (err == 0) return env.Null();
  return sys_error(env, "connect", err).Value();
}

// takeErrno(fd) -> number: SO_ERROR (0: none), cleared. The caller builds
// the Error (cheaper in JavaScript than four Node-API calls per error).
Napi::Value TakeErrno(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  int err = guarded(env, [&] { return os::sock_take_error(fd); });
  return Napi::Number::New(env, err);
}

// errnoError(errno, syscall) -> Error with code/errno/syscall
Napi::Value ErrnoError(const Napi::CallbackInfo& info) {
  double err = arg_number(info, 0, "errno");
  std::string syscall = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "unknown";
  // The syscall name must outlive the error's construction only.
  return sys_error(info.Env(), syscall.c_str(), static_cast<int>(std::fabs(err))).Value();
}

Napi::Value SetNoDelay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  bool on = info[1].ToBoolean().Value();
  guarded(env, [&] { os::sock_set_nodelay(fd, on); });
  return env.Undefined();
}

Napi::Value GetNoDelay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  return Napi::Boolean::New(env, guarded(env, [&] { return os::sock_get_nodelay(fd); }));
}

Napi::Value LocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  return address_object(env, guarded(env, [&] { return os::sock_local_address(fd); }));
}

Napi::Value PeerAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  return address_object(env, guarded(env, [&] { return os::sock_peer_address(fd); }));
}

// adopt(fd): make an fd from elsewhere non-blocking and close-on-exec.
Napi::Value Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  guarded(env, [&] { os::sock_set_nonblocking_cloexec(fd); });
  return env.Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  guarded(env, [&] { os::fd_close(fd); });
  return env.Undefined();
}

}  // namespace

void define_tcp(Napi::Env env, Napi::Object exports) {
  exports.Set("tcpListen", Napi::Function::New<TcpListen>(env, "tcpListen"));
  exports.Set("tcpAccept", Napi::Function::New<TcpAccept>(env, "tcpAccept"));
  exports.Set("acceptBatch", Napi::Function::New<AcceptBatch>(env, "acceptBatch"));
  exports.Set("unixListen", Napi::Function::New<UnixListen>(env, "unixListen"));
  exports.Set("unixConnect", Napi::Function::New<UnixConnect>(env, "unixConnect"));
  exports.Set("unixPath", Napi::Function::New<UnixPath>(env, "unixPath"));
  exports.Set("tcpConnect", Napi::Function::New<TcpConnect>(env, "tcpConnect"));
  exports.Set("formatAddress", Napi::Function::New<FormatAddress>(env, "formatAddress"));
  exports.Set("writev", Napi::Function::New<Writev>(env, "writev"));
  exports.Set("shutdown", Napi::Function::New<Shutdown>(env, "shutdown"));
  exports.Set("takeError", Napi::Function::New<TakeError>(env, "takeError"));
  exports.Set("takeErrno", Napi::Function::New<TakeErrno>(env, "takeErrno"));
  exports.Set("errnoError", Napi::Function::New<ErrnoError>(env, "errnoError"));
  exports.Set("setNoDelay", Napi::Function::New<SetNoDelay>(env, "setNoDelay"));
  exports.Set("getNoDelay", Napi::Function::New<GetNoDelay>(env, "getNoDelay"));
  exports.Set("localAddress", Napi::Function::New<LocalAddress>(env, "localAddress"));
  exports.Set("peerAddress", Napi::Function::New<PeerAddress>(env, "peerAddress"));
  exports.Set("adopt", Napi::Function::New<Adopt>(env, "adopt"));
  exports.Set("close", Napi::Function::New<Close>(env, "close"));
}

}  // namespace amy::binding
