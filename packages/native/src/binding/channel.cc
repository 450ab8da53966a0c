#include "binding/channel.h"

#include <cmath>

#include "binding/addon.h"
#include "binding/js_errors.h"

namespace amy::binding {

Napi::Function ReceiverWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeReceiver",
                     {
                         InstanceAccessor<&ReceiverWrap::Id>("id"),
                         InstanceMethod<&ReceiverWrap::TryRecv>("tryRecv"),
                         InstanceMethod<&ReceiverWrap::Size>("size"),
                         InstanceMethod<&ReceiverWrap::Close>("close"),
                     });
}

// Only made by NativeRegistrar.openChannel(); constructing one from
// JavaScript gives a receiver attached to nothing.
ReceiverWrap::ReceiverWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReceiverWrap>(info) {}

ReceiverWrap::~ReceiverWrap() { close_now(); }

void ReceiverWrap::attach(std::shared_ptr<PollerCore> poller, std::shared_ptr<ChannelCore> channel) {
  poller_ = std::move(poller);
  channel_ = std::move(channel);
}

void ReceiverWrap::close_now() {
  if (!channel_) return;
  channel_->close();
  try {
    poller_->forget_channel(channel_->id());
  } catch (const os::SysError&) {
    // The poller closed first; it already dropped the user event.
  }
  channel_.reset();
  poller_.reset();
}

Napi::Value ReceiverWrap::Id(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), channel_ ? static_cast<double>(channel_->id()) : 0);
}

// tryRecv() -> Buffer | undefined
Napi::Value ReceiverWrap::TryRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!channel_ || channel_->closed()) throw amy_error(env, "ERR_CHANNEL_CLOSED", "the channel is closed");
  if (!channel_->try_recv(scratch_)) return env.Undefined();
  return Napi::Buffer<uint8_t>::Copy(env, scratch_.data(), scratch_.size());
}

Napi::Value ReceiverWrap::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), channel_ ? static_cast<double>(channel_->size()) : 0);
}

Napi::Value ReceiverWrap::Close(const Napi::CallbackInfo& info) {
  close_now();
  return info.Env().Undefined();
}

Napi::Value ChannelWraps::new_receiver(Napi::Env env, std::shared_ptr<PollerCore> poller,
                                       std::shared_ptr<ChannelCore> channel) {
  auto* addon = env.GetInstanceData<AmyAddon>();
  Napi::Object object = addon->receiver_constructor.New({});
  ReceiverWrap::Unwrap(object)->attach(std::move(poller), std::move(channel));
  return object;
}

Napi::Function SenderWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeSender",
                     {
                         InstanceAccessor<&SenderWrap::Id>("id"),
                         InstanceMethod<&SenderWrap::Send>("send"),
                     });
}

// new NativeSender(channelId)
SenderWrap::SenderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SenderWrap>(info) {
  double id = arg_number(info, 0, "channelId");
  if (id < 1 || id != std::floor(id)) throw amy_error(info.Env(), "ERR_INVALID_ARG_VALUE", "channelId must be a positive integer");
  channel_ = registry::find_channel(static_cast<uint64_t>(id));
  if (!channel_ || channel_->closed())
    throw amy_error(info.Env(), "ERR_CHANNEL_CLOSED", "no open channel has id " + std::to_string(static_cast<uint64_t>(id)));
}

Napi::Value SenderWrap::Id(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(channel_->id()));
}

// send(bytes) -> 0 sent, 1 full (bounded channel), 2 closed
Napi::Value SenderWrap::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto bytes = arg_bytes(info, 0, "bytes");
  auto result = guarded(env, [&] { return channel_->send(bytes.Data(), bytes.ByteLength()); });
  return Napi::Number::New(env, static_cast<double>(result));
}

}  // namespace amy::binding
