// Per-environment addon state: the addon is loaded once per worker thread,
// so nothing JavaScript-side is process-global.
#pragma once

#include <napi.h>

namespace amy::binding {

class AmyAddon : public Napi::Addon<AmyAddon> {
 public:
  AmyAddon(Napi::Env env, Napi::Object exports);
  Napi::FunctionReference receiver_constructor;
};

}  // namespace amy::binding
