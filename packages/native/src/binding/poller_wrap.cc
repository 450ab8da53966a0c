#include "binding/poller_wrap.h"

#include <cmath>
#include <vector>

#include "binding/held_function.h"
#include "binding/js_errors.h"

namespace amy::binding {

Napi::Function PollerWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativePoller",
                     {
                         InstanceAccessor<&PollerWrap::Id>("id"),
                         InstanceAccessor<&PollerWrap::Fd>("fd"),
                         InstanceMethod<&PollerWrap::Wait>("wait"),
                         InstanceMethod<&PollerWrap::Start>("start"),
                         InstanceMethod<&PollerWrap::Stop>("stop"),
                         InstanceMethod<&PollerWrap::Close>("close"),
                         InstanceMethod<&PollerWrap::SetRef>("setRef"),
                         InstanceMethod<&PollerWrap::OpenInbox>("openInbox"),
                         InstanceMethod<&PollerWrap::TakeHandedOver>("takeHandedOver"),
                         InstanceMethod<&PollerWrap::SetOwnsSources>("setOwnsSources"),
                         InstanceMethod<&PollerWrap::PollNow>("pollNow"),
                         InstanceMethod<&PollerWrap::PollNowFunction>("pollNowFunction"),
                     });
}

// new NativePoller(ids: Float64Array, flags: Uint8Array); capacity is their length.
PollerWrap::PollerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PollerWrap>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw amy_error(env, "ERR_INVALID_ARG_TYPE", "ids must be a Float64Array");
  auto ids = info[0].As<Napi::Float64Array>();
  auto flags = arg_bytes(info, 1, "flags");
  if (ids.ElementLength() != flags.ElementLength() || ids.ElementLength() == 0)
    throw amy_error(env, "ERR_INVALID_ARG_VALUE", "ids and flags must have the same non-zero length");
  capacity_ = ids.ElementLength();
  ids_ = ids.Data();
  flags_ = flags.Data();
  ids_ref_ = Napi::Persistent(ids);
  flags_ref_ = Napi::Persistent(flags);
  events_.resize(capacity_);
  guarded(env, [&] {
    core_ = std::make_shared<PollerCore>();
    registry::add_poller(core_);
  });
  // A worker that exits with the poller open must still close the selector
  // and the libuv handle before its loop goes away.
  napi_add_env_cleanup_hook(env, &PollerWrap::on_env_cleanup, this);
  cleanup_hook_added_ = true;
}

PollerWrap::~PollerWrap() {
  self_->wrap = nullptr;
  close_now();
}

void PollerWrap::on_env_cleanup(void* self) {
  auto* wrap = static_cast<PollerWrap*>(self);
  wrap->cleanup_hook_added_ = false;  // the hook is being run; do not remove it
  wrap->close_now();
}

void PollerWrap::close_now() {
  stop_watching();
  if (watcher_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(watcher_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); });
    watcher_ = nullptr;
  }
  on_batch_.Reset();
  async_context_.reset();
  if (core_) {
    core_->close();
    core_.reset();
  }
  if (cleanup_hook_added_) {
    napi_remove_env_cleanup_hook(env_, &PollerWrap::on_env_cleanup, this);
    cleanup_hook_added_ = false;
  }
}

void PollerWrap::stop_watching() {
  if (!watching_) return;
  uv_poll_stop(watcher_);
  watching_ = false;
  // start() took a strong reference so a running poller is not collected.
  // Raw call, status ignored: this also runs in env cleanup, where
  // node-addon-api's throwing Unref() could abort the process.
  napi_reference_unref(env_, static_cast<napi_ref>(static_cast<const Napi::Reference<Napi::Object>&>(*this)), nullptr);
}

Napi::Value PollerWrap::Id(const Napi::CallbackInfo& info) {
  if (!core_) return Napi::Number::New(info.Env(), 0);
  return Napi::Number::New(info.Env(), static_cast<double>(core_->id()));
}

Napi::Value PollerWrap::Fd(const Napi::CallbackInfo& info) {
  if (!core_) return Napi::Number::New(info.Env(), -1);
  return Napi::Number::New(info.Env(), core_->selector().fd());
}

size_t PollerWrap::drain(int timeout_ms) {
  size_t n = core_->selector().select(events_.data(), capacity_, timeout_ms);
  for (size_t i = 0; i < n; i++) {
    ids_[i] = static_cast<double>(events_[i].token);
    flags_[i] = events_[i].flags;
  }
  return n;
}

// wait(timeoutMs: number): -1 blocks until an event arrives.
Napi::Value PollerWrap::Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_) throw amy_error(env, "ERR_POLLER_CLOSED", "the poller is closed");
  if (watching_) throw amy_error(env, "ERR_POLLER_STARTED", "wait() cannot be used while the poller is started");
  double timeout = arg_number(info, 0, "timeoutMs");
  // Round up: a fractional millisecond must not make the wait shorter.
  int timeout_ms = timeout < 0 ? -1 : timeout > 2147483647.0 ? 2147483647 : static_cast<int>(std::ceil(timeout));
  size_t n = guarded(env, [&] { return drain(timeout_ms); });
  return Napi::Number::New(env, static_cast<double>(n));
}

// start(onBatch: (count: number) => void): watch the selector from this
// thread's libuv loop and call onBatch once per batch.
Napi::Value PollerWrap::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_) throw amy_error(env, "ERR_POLLER_CLOSED", "the poller is closed");
  if (!info[0].IsFunction()) throw amy_error(env, "ERR_INVALID_ARG_TYPE", "onBatch must be a function");
  if (watching_) throw amy_error(env, "ERR_POLLER_STARTED", "the poller is already started");
  if (watcher_ == nullptr) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
      throw amy_error(env, "ERR_NO_EVENT_LOOP", "no libuv loop on this thread");
    auto* watcher = new uv_poll_t;
    int rc = uv_poll_init(loop, watcher, core_->selector().fd());
    if (rc != 0) {
      delete watcher;
      throw sys_error(env, "uv_poll_init", -rc);
    }
    watcher->data = this;
    watcher_ = watcher;
  }
  on_batch_ = Napi::Persistent(info[0].As<Napi::Function>());
  if (!async_context_) async_context_ = std::make_unique<Napi::AsyncContext>(env, "amy.Poller");
  int rc = uv_poll_start(watcher_, UV_READABLE, &PollerWrap::on_readable);
  if (rc != 0) throw sys_error(env, "uv_poll_start", -rc);
  if (!referenced_) uv_unref(reinterpret_cast<uv_handle_t*>(watcher_));
  watching_ = true;
  Ref();
  return env.Undefined();
}

// Runs from libuv, outside any JavaScript call. It uses the raw Node-API
// (status codes, no C++ exceptions): while a worker thread is being torn
// down (terminate(), or an uncaught exception) calls into JavaScript fail,
// and node-addon-api would try to build an Error for that failure, which is
// itself impossible then and aborts the whole process.
void PollerWrap::on_readable(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<PollerWrap*>(handle->data);
  napi_env env = self->env_;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  // One batch per wake-up from here: Poller#startRaw asks for more with
  // pollNow() while they keep coming (bounded), without a trip through libuv.
  do {
    size_t n;
    try {
      n = self->drain(0);
    } catch (const os::SysError& e) {
      // The selector failed under us (it was closed): stop watching it.
      self->watching_ = false;
      uv_poll_stop(self->watcher_);
      break;
    }
    if (n == 0) break;
    napi_value receiver, callback, count, result;
    if (napi_get_reference_value(env, static_cast<napi_ref>(self->on_batch_), &callback) != napi_ok ||
        napi_get_reference_value(env, static_cast<napi_ref>(static_cast<const Napi::Reference<Napi::Object>&>(*self)), &receiver) != napi_ok ||
        callback == nullptr || receiver == nullptr ||
        napi_create_double(env, static_cast<double>(n), &count) != napi_ok) {
      break;
    }
    napi_status call = napi_make_callback(env, static_cast<napi_async_context>(*self->async_context_), receiver, callback, 1, &count, &result);
    if (call == napi_pending_exception) {
      // Same as an exception thrown from any other libuv callback: it goes
      // to process.on('uncaughtException'). Node-API 8 also reports "cannot
      // run JavaScript" (a thread being torn down) this way, with no
      // exception to rethrow: then just stop.
      napi_value exception;
      napi_valuetype type = napi_undefined;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok && napi_typeof(env, exception, &type) == napi_ok &&
          type != napi_undefined) {
        napi_fatal_exception(env, exception);
      }
    }
  } while (false);
  napi_close_handle_scope(env, scope);
}

Napi::Value PollerWrap::Stop(const Napi::CallbackInfo& info) {
  stop_watching();
  return info.Env().Undefined();
}

Napi::Value PollerWrap::Close(const Napi::CallbackInfo& info) {
  close_now();
  return info.Env().Undefined();
}

// setRef(ref: boolean): whether a started poller keeps the loop alive.
Napi::Value PollerWrap::SetRef(const Napi::CallbackInfo& info) {
  referenced_ = info[0].ToBoolean().Value();
  if (watcher_ != nullptr) {
    auto* h = reinterpret_cast<uv_handle_t*>(watcher_);
    if (referenced_) uv_ref(h); else uv_unref(h);
  }
  return info.Env().Undefined();
}

// openInbox() -> id of the fd hand-off inbox's notifications
Napi::Value PollerWrap::OpenInbox(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_) throw amy_error(env, "ERR_POLLER_CLOSED", "the poller is closed");
  uint64_t id = guarded(env, [&] { return core_->open_inbox(); });
  return Napi::Number::New(env, static_cast<double>(id));
}

// takeHandedOver(out: Int32Array, tags?: Float64Array) -> how many fds (and
// their hand-offs' tags) were written
Napi::Value PollerWrap::TakeHandedOver(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_) throw amy_error(env, "ERR_POLLER_CLOSED", "the poller is closed");
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw amy_error(env, "ERR_INVALID_ARG_TYPE", "out must be an Int32Array");
  auto out = info[0].As<Napi::Int32Array>();
  uint64_t* tags = nullptr;
  std::vector<uint64_t> tag_values;
  Napi::Float64Array tags_out;
  if (!info[1].IsUndefined()) {
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throw amy_error(env, "ERR_INVALID_ARG_TYPE", "tags must be a Float64Array");
    tags_out = info[1].As<Napi::Float64Array>();
    if (tags_out.ElementLength() < out.ElementLength())
      throw amy_error(env, "ERR_INVALID_ARG_VALUE", "tags must have room for as many values as out");
    tag_values.resize(out.ElementLength());
    tags = tag_values.data();
  }
  size_t n = core_->take_handed_over(out.Data(), tags, out.ElementLength());
  for (size_t i = 0; tags != nullptr && i < n; i++) tags_out[i] = static_cast<double>(tag_values[i]);
  return Napi::Number::New(env, static_cast<double>(n));
}

// pollNow() -> count: from inside onBatch of a started poller, takes the
// next batch at once (zero timeout) instead of going back through libuv.
// Under load, events arrive while a batch is handled; each trip through
// the loop (its epoll_pwait, MakeCallback, a microtask checkpoint) cost
// more per message than the messages themselves at ~20 per batch.
Napi::Value PollerWrap::PollNow(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(poll_now(info.Env())));
}

size_t PollerWrap::poll_now(Napi::Env env) {
  if (!core_ || !watching_) return 0;
  return guarded(env, [&] { return drain(0); });
}

// pollNowFunction() -> () => count: pollNow as a plain function holding the
// poller itself (held_function.h: no napi_unwrap per call). pollNow runs
// after every batch, and churn's batches are one or two events.
Napi::Value PollerWrap::PollNowFunction(const Napi::CallbackInfo& info) {
  return held_function(info.Env(), "pollNow", &PollerWrap::PollNowCall, self_);
}

napi_value PollerWrap::PollNowCall(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* data;
  if (napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data) != napi_ok) return nullptr;
  PollerWrap* wrap = held_data<Self>(data).wrap;
  size_t n = 0;
  if (wrap != nullptr) {
    try {
      n = wrap->poll_now(Napi::Env(env));
    } catch (const Napi::Error& e) {
      // The failure path may use node-addon-api: this is an ordinary call.
      e.ThrowAsJavaScriptException();
      return nullptr;
    }
  }
  napi_value out;
  napi_create_double(env, static_cast<double>(n), &out);
  return out;
}

// setOwnsSources(owns: boolean)
Napi::Value PollerWrap::SetOwnsSources(const Napi::CallbackInfo& info) {
  if (!core_) throw amy_error(info.Env(), "ERR_POLLER_CLOSED", "the poller is closed");
  core_->set_owns_sources(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

}  // namespace amy::binding
