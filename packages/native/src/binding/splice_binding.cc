#include "binding/splice_binding.h"

#include <cmath>
#include <memory>

#include "binding/js_errors.h"
#include "os/splice.h"

namespace amy::binding {

namespace {

// Layout of the result array: [movedIn, movedOut, sourceEof, sourceDrained,
// destBlocked, buffered]; the flags are 0 or 1.
constexpr size_t kResultLength = 6;
constexpr double kMaxSafeInteger = 9007199254740991.0;

class SplicePipeWrap : public Napi::ObjectWrap<SplicePipeWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeSplicePipe",
                       {
                           InstanceMethod<&SplicePipeWrap::Transfer>("transfer"),
                           InstanceMethod<&SplicePipeWrap::Flush>("flush"),
                           InstanceMethod<&SplicePipeWrap::Close>("close"),
                           InstanceAccessor<&SplicePipeWrap::Buffered>("buffered"),
                           InstanceAccessor<&SplicePipeWrap::Capacity>("capacity"),
                           InstanceAccessor<&SplicePipeWrap::Closed>("closed"),
                       });
  }

  // new NativeSplicePipe(capacityBytes, result: Float64Array(6))
  explicit SplicePipeWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SplicePipeWrap>(info) {
    Napi::Env env = info.Env();
    double capacity = arg_number(info, 0, "capacity");
    if (capacity < 0 || capacity > 2147483647 || capacity != std::floor(capacity))
      throw amy_error(env, "ERR_INVALID_ARG_VALUE", "capacity must be an integer in [0, 2147483647]");
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throw amy_error(env, "ERR_INVALID_ARG_TYPE", "result must be a Float64Array");
    auto result = info[1].As<Napi::Float64Array>();
    if (result.ElementLength() < kResultLength)
      throw amy_error(env, "ERR_INVALID_ARG_VALUE", "result must have at least 6 elements");
    result_ = result.Data();
    result_ref_ = Napi::Persistent(result);
    pipe_ = guarded(env, [&] { return std::make_unique<os::SplicePipe>(static_cast<size_t>(capacity)); });
  }

 private:
  os::SplicePipe& open_pipe(Napi::Env env) {
    if (!pipe_ || pipe_->closed()) throw amy_error(env, "ERR_PIPE_CLOSED", "the splice pipe is closed");
    return *pipe_;
  }

  double publish(const os::TransferResult& r) {
    result_[0] = static_cast<double>(r.moved_in);
    result_[1] = static_cast<double>(r.moved_out);
    result_[2] = r.source_eof ? 1 : 0;
    result_[3] = r.source_drained ? 1 : 0;
    result_[4] = r.dest_blocked ? 1 : 0;
    result_[5] = static_cast<double>(r.buffered);
    return static_cast<double>(r.moved_out);
  }

  // transfer(fromFd, toFd, maxBytes) -> movedOut; the rest is in the result array.
  Napi::Value Transfer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int from = arg_fd(info, 0);
    int to = arg_fd(info, 1);
    double max = arg_number(info, 2, "maxBytes");
    if (max < 0 || max > kMaxSafeInteger || max != std::floor(max))
      throw amy_error(env, "ERR_INVALID_ARG_VALUE", "maxBytes must be a non-negative integer");
    os::SplicePipe& pipe = open_pipe(env);
    auto r = guarded(env, [&] { return pipe.transfer(from, to, static_cast<size_t>(max)); });
    return Napi::Number::New(env, publish(r));
  }

  // flush(toFd) -> movedOut; the rest is in the result array.
  Napi::Value Flush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int to = arg_fd(info, 0);
    os::SplicePipe& pipe = open_pipe(env);
    auto r = guarded(env, [&] { return pipe.flush(to); });
    return Napi::Number::New(env, publish(r));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (pipe_) pipe_->close();
    return info.Env().Undefined();
  }

  Napi::Value Buffered(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), pipe_ ? static_cast<double>(pipe_->buffered()) : 0);
  }

  Napi::Value Capacity(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), pipe_ ? static_cast<double>(pipe_->capacity()) : 0);
  }

  Napi::Value Closed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), !pipe_ || pipe_->closed());
  }

  std::unique_ptr<os::SplicePipe> pipe_;
  Napi::Reference<Napi::Float64Array> result_ref_;
  double* result_ = nullptr;
};

}  // namespace

void define_splice(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeSplicePipe", SplicePipeWrap::Define(env));
  exports.Set("spliceSupported", Napi::Boolean::New(env, os::splice_in_kernel()));
}

}  // namespace amy::binding
