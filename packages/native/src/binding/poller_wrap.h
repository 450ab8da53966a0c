// NativePoller: the JavaScript face of one PollerCore, owned by the thread
// that created it. Notifications are written into two typed arrays shared
// with JavaScript (ids as float64, flags as uint8), so a batch costs one
// call across the boundary, not one per event.
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>
#include <vector>

#include "binding/poller_core.h"

namespace amy::binding {

class PollerWrap : public Napi::ObjectWrap<PollerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit PollerWrap(const Napi::CallbackInfo& info);
  ~PollerWrap() override;

 private:
  Napi::Value Id(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Wait(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value SetRef(const Napi::CallbackInfo& info);
  Napi::Value OpenInbox(const Napi::CallbackInfo& info);
  Napi::Value TakeHandedOver(const Napi::CallbackInfo& info);
  Napi::Value SetOwnsSources(const Napi::CallbackInfo& info);
  Napi::Value PollNow(const Napi::CallbackInfo& info);
  Napi::Value PollNowFunction(const Napi::CallbackInfo& info);
  static napi_value PollNowCall(napi_env env, napi_callback_info info);
  size_t poll_now(Napi::Env env);

  size_t drain(int timeout_ms);  // select() into the shared arrays
  void close_now();
  void stop_watching();
  static void on_readable(uv_poll_t* handle, int status, int events);
  static void on_env_cleanup(void* self);

  std::shared_ptr<PollerCore> core_;
  std::vector<os::Event> events_;
  Napi::Reference<Napi::Float64Array> ids_ref_;
  Napi::Reference<Napi::Uint8Array> flags_ref_;
  double* ids_ = nullptr;
  uint8_t* flags_ = nullptr;
  size_t capacity_ = 0;

  uv_poll_t* watcher_ = nullptr;  // freed in its uv_close callback
  bool watching_ = false;
  bool referenced_ = true;
  Napi::FunctionReference on_batch_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  Napi::Env env_;
  bool cleanup_hook_added_ = false;
  // What a pollNow function (PollNowFunction) calls: this wrap, until it is
  // destroyed (then null). Shared with those functions' data.
  struct Self {
    PollerWrap* wrap;
  };
  std::shared_ptr<Self> self_ = std::make_shared<Self>(Self{this});
};

}  // namespace amy::binding
