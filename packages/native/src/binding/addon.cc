// Module entry: context-aware (Napi::Addon keeps every constructor in
// per-environment instance data), so each worker thread gets its own copy.
#include "binding/addon.h"

#include "binding/channel.h"
#include "binding/hot_io.h"
#include "binding/poller_wrap.h"
#include "binding/registrar_wrap.h"
#include "binding/splice_binding.h"
#include "binding/tcp_binding.h"
#include "binding/tls_binding.h"
#include "os/selector.h"

#include <dlfcn.h>

namespace amy::binding {

namespace {

// Node unloads an addon with the last environment that loaded it. This
// library must stay mapped for the whole process: a started poller's libuv
// close callback runs after its worker's environment is gone, and the
// process-wide registries (pollers, TLS contexts) live here. Without this, a
// process whose addon only worker threads loaded crashed (SIGSEGV in
// uv__finish_close) when such a worker died. RTLD_NOLOAD | RTLD_NODELETE
// marks the already-loaded library as never unloaded; the handle is kept.
void pin_library() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&pin_library), &info) == 0 || info.dli_fname == nullptr) return;
  dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

}  // namespace

AmyAddon::AmyAddon(Napi::Env env, Napi::Object exports) {
  pin_library();
  Napi::Function receiver = ReceiverWrap::Define(env);
  receiver_constructor = Napi::Persistent(receiver);
  DefineAddon(exports, {
                           InstanceValue("NativePoller", PollerWrap::Define(env), napi_enumerable),
                           InstanceValue("NativeRegistrar", RegistrarWrap::Define(env), napi_enumerable),
                           InstanceValue("NativeReceiver", receiver, napi_enumerable),
                           InstanceValue("NativeSender", SenderWrap::Define(env), napi_enumerable),
                       });
  define_tcp(env, exports);
  define_hot_io(env, exports);
  define_splice(env, exports);
  define_tls(env, exports);
#if defined(__linux__)
  exports.Set("backend", Napi::String::New(env, "epoll"));
#else
  exports.Set("backend", Napi::String::New(env, "kqueue"));
#endif
}

}  // namespace amy::binding

// The macro pastes the class name into an identifier, so it needs a plain name.
using AmyAddon = amy::binding::AmyAddon;
NODE_API_ADDON(AmyAddon)
