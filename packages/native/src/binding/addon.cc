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

namespace amy::binding {

AmyAddon::AmyAddon(Napi::Env env, Napi::Object exports) {
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
