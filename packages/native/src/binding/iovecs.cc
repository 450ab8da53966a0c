#include "binding/iovecs.h"

#include <climits>

#include "binding/js_errors.h"

namespace amy::binding {

namespace {
#ifdef IOV_MAX
constexpr uint32_t kMaxIov = IOV_MAX;
#else
constexpr uint32_t kMaxIov = 1024;
#endif
}  // namespace

const std::vector<iovec>& iovecs_from(Napi::Env env, Napi::Value value) {
  thread_local std::vector<iovec> storage;
  if (!value.IsArray()) throw amy_error(env, "ERR_INVALID_ARG_TYPE", "bufs must be an array of Uint8Arrays");
  Napi::Array list = value.As<Napi::Array>();
  uint32_t count = list.Length() < kMaxIov ? list.Length() : kMaxIov;
  storage.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value item = list.Get(i);
    if (!item.IsTypedArray() || item.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw amy_error(env, "ERR_INVALID_ARG_TYPE", "bufs must be an array of Uint8Arrays");
    auto bytes = item.As<Napi::Uint8Array>();
    storage[i].iov_base = bytes.Data();
    storage[i].iov_len = bytes.ByteLength();
  }
  return storage;
}

}  // namespace amy::binding
