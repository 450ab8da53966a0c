// NativeRegistrar: registers sources, timers and channels into a poller from
// any thread. It is rebuilt in another thread from the poller's plain id.
#pragma once

#include <napi.h>

#include <memory>

#include "binding/poller_core.h"

namespace amy::binding {

class RegistrarWrap : public Napi::ObjectWrap<RegistrarWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit RegistrarWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value PollerId(const Napi::CallbackInfo& info);
  Napi::Value Register(const Napi::CallbackInfo& info);
  Napi::Value Reregister(const Napi::CallbackInfo& info);
  Napi::Value Deregister(const Napi::CallbackInfo& info);
  Napi::Value DeregisterAndClose(const Napi::CallbackInfo& info);
  Napi::Value Closer(const Napi::CallbackInfo& info);
  Napi::Value AcceptRegistered(const Napi::CallbackInfo& info);
  Napi::Value SetTimer(const Napi::CallbackInfo& info);
  Napi::Value CancelTimer(const Napi::CallbackInfo& info);
  Napi::Value OpenChannel(const Napi::CallbackInfo& info);
  Napi::Value HandOver(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Has(const Napi::CallbackInfo& info);
  Napi::Value ReserveId(const Napi::CallbackInfo& info);
  Napi::Value ClosedOnClose(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);

  PollerCore& core(Napi::Env env);  // throws ERR_POLLER_CLOSED

  std::shared_ptr<PollerCore> core_;
};

}  // namespace amy::binding
