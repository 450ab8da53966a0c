#include "binding/js_errors.h"

#include <cmath>

namespace amy::binding {

Napi::Error sys_error(Napi::Env env, const os::SysError& e) { return sys_error(env, e.syscall(), e.err()); }

Napi::Error sys_error(Napi::Env env, const char* syscall, int err) {
  os::SysError described(syscall, err);
  Napi::Error error = Napi::Error::New(env, described.what());
  error.Set("code", Napi::String::New(env, os::errno_name(err)));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

Napi::Error amy_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

double arg_number(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber())
    throw amy_error(info.Env(), "ERR_INVALID_ARG_TYPE", std::string(name) + " must be a number");
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (std::isnan(value)) throw amy_error(info.Env(), "ERR_INVALID_ARG_VALUE", std::string(name) + " is NaN");
  return value;
}

int32_t arg_fd(const Napi::CallbackInfo& info, size_t index) {
  double value = arg_number(info, index, "fd");
  if (value < 0 || value > 2147483647 || value != std::floor(value))
    throw amy_error(info.Env(), "ERR_INVALID_ARG_VALUE", "fd must be a non-negative integer");
  return static_cast<int32_t>(value);
}

Napi::Uint8Array arg_bytes(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw amy_error(info.Env(), "ERR_INVALID_ARG_TYPE", std::string(name) + " must be a Uint8Array or Buffer");
  return info[index].As<Napi::Uint8Array>();
}

}  // namespace amy::binding
