// A plain JavaScript function whose callback data is a shared_ptr to what it
// serves (a poller), freed by the function's finalizer. A hot call made this
// way skips the napi_unwrap a method needs to find its C++ object (a V8
// private-property lookup through the runtime: ~0.14 us, perf, churn).
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "binding/js_errors.h"

namespace amy::binding {

template <typename T>
Napi::Value held_function(Napi::Env env, const char* name, napi_callback callback, const std::shared_ptr<T>& held) {
  auto* data = new std::shared_ptr<T>(held);
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, data, &fn) != napi_ok ||
      napi_add_finalizer(
          env, fn, data, [](napi_env, void* p, void*) { delete static_cast<std::shared_ptr<T>*>(p); }, nullptr, nullptr) !=
          napi_ok) {
    delete data;
    throw amy_error(env, "ERR_OUT_OF_MEMORY", std::string("could not create the ") + name + " function");
  }
  return Napi::Value(env, fn);
}

// What a held_function's callback serves, from its callback data.
template <typename T>
T& held_data(void* data) {
  return **static_cast<std::shared_ptr<T>*>(data);
}

}  // namespace amy::binding
