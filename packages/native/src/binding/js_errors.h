// Turns native failures into JavaScript Errors with a stable `code`. Syscall
// failures also carry `errno` (negative, as node:net does) and `syscall`.
#pragma once

#include <napi.h>

#include <new>
#include <string>

#include "os/errors.h"

namespace amy::binding {

Napi::Error sys_error(Napi::Env env, const os::SysError& e);
Napi::Error sys_error(Napi::Env env, const char* syscall, int err);
Napi::Error amy_error(Napi::Env env, const char* code, const std::string& message);

// Runs f, translating OS-layer exceptions into JavaScript errors.
template <typename F>
auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const os::SysError& e) {
    throw sys_error(env, e);
  } catch (const std::bad_alloc&) {
    throw amy_error(env, "ERR_OUT_OF_MEMORY", "out of memory");
  }
}

// Argument checks shared by every export; they throw TypeError-like errors.
int32_t arg_fd(const Napi::CallbackInfo& info, size_t index);
double arg_number(const Napi::CallbackInfo& info, size_t index, const char* name);
Napi::Uint8Array arg_bytes(const Napi::CallbackInfo& info, size_t index, const char* name);

}  // namespace amy::binding
