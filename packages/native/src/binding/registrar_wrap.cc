#include "binding/registrar_wrap.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "binding/channel.h"
#include "binding/held_function.h"
#include "binding/js_errors.h"
#include "os/socket.h"

namespace amy::binding {

namespace {

constexpr double kMaxId = 9007199254740991.0;  // 2^53 - 1

uint64_t arg_id(const Napi::CallbackInfo& info, size_t index) {
  double value = arg_number(info, index, "id");
  if (value < 1 || value > kMaxId || value != std::floor(value))
    throw amy_error(info.Env(), "ERR_INVALID_ARG_VALUE", "id must be a positive integer");
  return static_cast<uint64_t>(value);
}

os::Interest arg_interest(const Napi::CallbackInfo& info, size_t index) {
  double value = arg_number(info, index, "interest");
  if (value != os::kRead && value != os::kWrite && value != os::kBoth)
    throw amy_error(info.Env(), "ERR_INVALID_ARG_VALUE", "interest must be Interest.Read, Interest.Write or Interest.Both");
  return static_cast<os::Interest>(static_cast<int>(value));
}

// A poller closed under us surfaces as EBADF from the OS layer; so can a bad
// fd of the caller's. The poller's state tells which one it was.
template <typename F>
auto on_poller(Napi::Env env, const PollerCore& core, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const os::SysError& e) {
    if (core.closed()) throw amy_error(env, "ERR_POLLER_CLOSED", "the poller is closed");
    throw sys_error(env, e);
  }
}

}  // namespace

Napi::Function RegistrarWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeRegistrar",
                     {
                         InstanceAccessor<&RegistrarWrap::PollerId>("pollerId"),
                         InstanceMethod<&RegistrarWrap::Register>("register"),
                         InstanceMethod<&RegistrarWrap::Reregister>("reregister"),
                         InstanceMethod<&RegistrarWrap::Deregister>("deregister"),
                         InstanceMethod<&RegistrarWrap::DeregisterAndClose>("deregisterAndClose"),
                         InstanceMethod<&RegistrarWrap::Closer>("closer"),
                         InstanceMethod<&RegistrarWrap::AcceptRegistered>("acceptRegistered"),
                         InstanceMethod<&RegistrarWrap::SetTimer>("setTimer"),
                         InstanceMethod<&RegistrarWrap::CancelTimer>("cancelTimer"),
                         InstanceMethod<&RegistrarWrap::OpenChannel>("openChannel"),
                         InstanceMethod<&RegistrarWrap::HandOver>("handOver"),
                         InstanceMethod<&RegistrarWrap::Load>("load"),
                         InstanceMethod<&RegistrarWrap::Has>("has"),
                         InstanceMethod<&RegistrarWrap::ReserveId>("reserveId"),
                         InstanceAccessor<&RegistrarWrap::ClosedOnClose>("closedOnClose"),
                         InstanceAccessor<&RegistrarWrap::IsClosed>("closed"),
                     });
}

// new NativeRegistrar(pollerId)
RegistrarWrap::RegistrarWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RegistrarWrap>(info) {
  uint64_t id = arg_id(info, 0);
  core_ = registry::find_poller(id);
  if (!core_ || core_->closed())
    throw amy_error(info.Env(), "ERR_POLLER_CLOSED", "no open poller has id " + std::to_string(id));
}

PollerCore& RegistrarWrap::core(Napi::Env env) {
  if (core_->closed()) throw amy_error(env, "ERR_POLLER_CLOSED", "the poller is closed");
  return *core_;
}

Napi::Value RegistrarWrap::PollerId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(core_->id()));
}

// register(fd, interest) -> id
Napi::Value RegistrarWrap::Register(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = arg_fd(info, 0);
  os::Interest interest = arg_interest(info, 1);
  uint64_t reserved = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    reserved = arg_id(info, 2);
    if (!id_was_issued(reserved)) throw amy_error(env, "ERR_INVALID_ARG_VALUE", "id must come from reserveId()");
  }
  try {
    uint64_t id = on_poller(env, *core_, [&] { return core(env).register_source(fd, interest, reserved); });
    return Napi::Number::New(env, static_cast<double>(id));
  } catch (const std::invalid_argument&) {
    throw amy_error(env, "ERR_INVALID_ARG_VALUE", "registration id " + std::to_string(reserved) + " is in use");
  }
}

// reserveId() -> a fresh process-wide id for a later register(fd, interest, id)
Napi::Value RegistrarWrap::ReserveId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(next_id()));
}

// reregister(id, fd, interest)
Napi::Value RegistrarWrap::Reregister(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = arg_id(info, 0);
  int fd = arg_fd(info, 1);
  os::Interest interest = arg_interest(info, 2);
  try {
    on_poller(env, *core_, [&] { core(env).reregister_source(id, fd, interest); });
  } catch (const std::out_of_range&) {
    throw amy_error(env, "ERR_UNKNOWN_ID", "no registration has id " + std::to_string(id));
  } catch (const std::invalid_argument&) {
    throw amy_error(env, "ERR_INVALID_ARG_VALUE", "registration " + std::to_string(id) + " is for another fd");
  }
  return env.Undefined();
}

// deregister(id) -> boolean (false if the id was not registered)
Napi::Value RegistrarWrap::Deregister(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = arg_id(info, 0);
  bool removed = on_poller(env, *core_, [&] { return core(env).deregister_source(id); });
  return Napi::Boolean::New(env, removed);
}

namespace {

// The first half of deregisterAndClose: a failure is kept in
// *deregister_errno (reported after the close); a closed poller has
// dropped the registration already.
void deregister_before_close(PollerCore& core, uint64_t id, int* deregister_errno) {
  if (core.closed()) return;
  try {
    core.deregister_source(id);
  } catch (const os::SysError& e) {
    if (!core.closed()) *deregister_errno = e.err();
  }
}

}  // namespace

// deregisterAndClose(id, fd): deregister(id), then close(fd), in one call
// (a connection's last two; churn makes one pair per connection). The fd
// is closed in every case; a closed poller has dropped the registration
// already. A failed deregistration is thrown after the close.
Napi::Value RegistrarWrap::DeregisterAndClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = arg_id(info, 0);
  int fd = arg_fd(info, 1);
  int deregister_errno = 0;
  deregister_before_close(*core_, id, &deregister_errno);
  guarded(env, [&] { os::fd_close(fd); });
  if (deregister_errno != 0) throw sys_error(env, "epoll_ctl", deregister_errno);
  return env.Undefined();
}

namespace {

// The closer function: deregisterAndClose(id, fd) with the poller in the
// function's own data (held_function.h: no napi_unwrap, which a
// connection's close paid once).
napi_value CloserCall(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void* data;
  double id;
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok || argc < 2 ||
      napi_get_value_double(env, argv[0], &id) != napi_ok || napi_get_value_int32(env, argv[1], &fd) != napi_ok || id < 1 ||
      id > kMaxId || id != std::floor(id) || fd < 0) {
    Napi::Error::New(env, "deregisterAndClose(id, fd) needs a registration id and an fd").ThrowAsJavaScriptException();
    return nullptr;
  }
  auto& core = held_data<PollerCore>(data);
  int deregister_errno = 0;
  deregister_before_close(core, static_cast<uint64_t>(id), &deregister_errno);
  try {
    os::fd_close(fd);
  } catch (const os::SysError& e) {
    // The failure path may use node-addon-api: this is an ordinary call.
    sys_error(Napi::Env(env), e).ThrowAsJavaScriptException();
    return nullptr;
  }
  if (deregister_errno != 0) {
    sys_error(Napi::Env(env), "epoll_ctl", deregister_errno).ThrowAsJavaScriptException();
    return nullptr;
  }
  return nullptr;  // undefined
}

}  // namespace

// closer() -> (id, fd) => void: deregisterAndClose as a plain function
// that holds the poller itself (no napi_unwrap per call).
Napi::Value RegistrarWrap::Closer(const Napi::CallbackInfo& info) {
  return held_function(info.Env(), "deregisterAndClose", CloserCall, core_);
}

// acceptRegistered(listenFd, fds: Int32Array, ids: Float64Array, noDelay,
// interest) -> count: accepts until it would block or the arrays are full,
// registering each connection with this poller for `interest` in the same
// call, fds[i] under ids[i] (churn: one call into the addon per batch
// instead of an accept batch plus one register per connection). An accept
// error after some connections returns those (it recurs on the next call).
// A connection the poller cannot register (out of memory, or the poller
// closed) is closed at once (its peer sees a reset); the error is thrown if
// it was the batch's first, else the batch returns and the next call meets
// it again.
Napi::Value RegistrarWrap::AcceptRegistered(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int listen_fd = arg_fd(info, 0);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw amy_error(env, "ERR_INVALID_ARG_TYPE", "fds must be an Int32Array");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw amy_error(env, "ERR_INVALID_ARG_TYPE", "ids must be a Float64Array");
  auto fds = info[1].As<Napi::Int32Array>();
  auto ids = info[2].As<Napi::Float64Array>();
  bool nodelay = info[3].ToBoolean().Value();
  os::Interest interest = arg_interest(info, 4);
  PollerCore& poller = core(env);
  size_t capacity = std::min(fds.ElementLength(), ids.ElementLength());
  size_t count = 0;
  while (count < capacity) {
    os::OwnedFd fd;
    try {
      fd = os::tcp_accept_nodelay(listen_fd, nodelay, nullptr);
    } catch (const os::SysError& e) {
      if (count > 0) break;
      throw sys_error(env, e);
    }
    if (!fd) break;
    uint64_t id;
    try {
      id = poller.register_source(fd.get(), interest);
    } catch (const os::SysError& e) {
      if (count > 0) break;  // fd closes here
      if (poller.closed()) throw amy_error(env, "ERR_POLLER_CLOSED", "the poller is closed");
      throw sys_error(env, e);
    }
    ids[count] = static_cast<double>(id);
    fds[count++] = fd.release();
  }
  return Napi::Number::New(env, static_cast<double>(count));
}

// setTimer(delayMs, intervalMs) -> id; intervalMs 0 means one-shot.
Napi::Value RegistrarWrap::SetTimer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double delay = arg_number(info, 0, "delayMs");
  double interval = arg_number(info, 1, "intervalMs");
  constexpr double kMaxMs = 2147483647.0 * 1000.0;  // ~68 years; keeps ns in range
  if (delay < 0 || delay > kMaxMs || interval < 0 || interval > kMaxMs || std::isinf(delay) || std::isinf(interval))
    throw amy_error(env, "ERR_INVALID_ARG_VALUE", "timer durations must be finite milliseconds >= 0");
  // Round up to the nanosecond: never early.
  auto to_ns = [](double ms) { return static_cast<uint64_t>(std::ceil(ms * 1e6)); };
  uint64_t id = on_poller(env, *core_, [&] { return core(env).set_timer(to_ns(delay), to_ns(interval)); });
  return Napi::Number::New(env, static_cast<double>(id));
}

// cancelTimer(id) -> boolean
Napi::Value RegistrarWrap::CancelTimer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = arg_id(info, 0);
  bool cancelled = on_poller(env, *core_, [&] { return core(env).cancel_timer(id); });
  return Napi::Boolean::New(env, cancelled);
}

// openChannel(bound) -> NativeReceiver; bound 0 means unbounded.
Napi::Value RegistrarWrap::OpenChannel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double bound = arg_number(info, 0, "bound");
  if (bound < 0 || bound > 4294967295.0 || bound != std::floor(bound))
    throw amy_error(env, "ERR_INVALID_ARG_VALUE", "bound must be an integer >= 0");
  auto channel = on_poller(env, *core_, [&] { return core(env).open_channel(static_cast<size_t>(bound)); });
  return ChannelWraps::new_receiver(env, core_, channel);
}

// handOver(fds: Int32Array, count, tag = 0) -> false if the poller is closed (the
// caller still owns the fds), true if they now belong to the poller's thread.
Napi::Value RegistrarWrap::HandOver(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw amy_error(env, "ERR_INVALID_ARG_TYPE", "fds must be an Int32Array");
  auto fds = info[0].As<Napi::Int32Array>();
  double count = arg_number(info, 1, "count");
  if (count < 0 || count > static_cast<double>(fds.ElementLength()) || count != std::floor(count))
    throw amy_error(env, "ERR_INVALID_ARG_VALUE", "count must be an integer within fds");
  uint64_t tag = 0;
  if (!info[2].IsUndefined()) {
    double value = arg_number(info, 2, "tag");
    if (value < 0 || value > 9007199254740991.0 || value != std::floor(value))
      throw amy_error(env, "ERR_INVALID_ARG_VALUE", "tag must be an integer in [0, 2^53)");
    tag = static_cast<uint64_t>(value);
  }
  bool ok = guarded(env, [&] { return core_->hand_over(fds.Data(), static_cast<size_t>(count), tag); });
  return Napi::Boolean::New(env, ok);
}

Napi::Value RegistrarWrap::Load(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(core_->load()));
}

Napi::Value RegistrarWrap::Has(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), core_->has_source(arg_id(info, 0)));
}

Napi::Value RegistrarWrap::ClosedOnClose(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(core_->closed_on_close()));
}

Napi::Value RegistrarWrap::IsClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), core_->closed());
}

}  // namespace amy::binding
