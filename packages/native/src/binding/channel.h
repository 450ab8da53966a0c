// NativeReceiver lives on the poller's thread; NativeSender is rebuilt in any
// thread from the channel's plain id. Values cross as bytes (the TypeScript
// layer serializes them with node:v8).
#pragma once

#include <napi.h>

#include <memory>

#include "binding/poller_core.h"

namespace amy::binding {

class ReceiverWrap : public Napi::ObjectWrap<ReceiverWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ReceiverWrap(const Napi::CallbackInfo& info);
  ~ReceiverWrap() override;
  void attach(std::shared_ptr<PollerCore> poller, std::shared_ptr<ChannelCore> channel);

 private:
  Napi::Value Id(const Napi::CallbackInfo& info);
  Napi::Value TryRecv(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void close_now();

  std::shared_ptr<PollerCore> poller_;
  std::shared_ptr<ChannelCore> channel_;
  std::vector<uint8_t> scratch_;
};

class SenderWrap : public Napi::ObjectWrap<SenderWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit SenderWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Id(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);

  std::shared_ptr<ChannelCore> channel_;
};

struct ChannelWraps {
  static Napi::Value new_receiver(Napi::Env env, std::shared_ptr<PollerCore> poller,
                                  std::shared_ptr<ChannelCore> channel);
};

}  // namespace amy::binding
