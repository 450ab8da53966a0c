#include "binding/tls_binding.h"

#include <sys/uio.h>

#include <climits>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "binding/iovecs.h"
#include "binding/js_errors.h"
#include "tls/tls_context.h"
#include "tls/tls_error.h"
#include "tls/tls_session.h"

namespace amy::binding {

namespace {

// A TlsError as a JavaScript Error: `code`, `reason` (OpenSSL's words),
// and `errno`/`syscall` when a socket failure is underneath.
Napi::Error tls_error(Napi::Env env, const tls::TlsError& e) {
  Napi::Error error = Napi::Error::New(env, e.what());
  error.Set("code", Napi::String::New(env, e.code()));
  if (!e.reason().empty()) error.Set("reason", Napi::String::New(env, e.reason()));
  if (e.sys_errno() != 0) {
    error.Set("errno", Napi::Number::New(env, -e.sys_errno()));
    if (e.syscall() != nullptr) error.Set("syscall", Napi::String::New(env, e.syscall()));
  }
  return error;
}

template <typename F>
auto tls_guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return guarded(env, std::forward<F>(f));
  } catch (const tls::TlsError& e) {
    throw tls_error(env, e);
  }
}

std::string string_option(Napi::Object options, const char* name) {
  Napi::Value v = options.Get(name);
  if (v.IsUndefined() || v.IsNull()) return {};
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    auto bytes = v.As<Napi::Uint8Array>();
    return std::string(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
  }
  throw amy_error(options.Env(), "ERR_INVALID_ARG_TYPE", std::string(name) + " must be a string or a Uint8Array");
}

int version_option(Napi::Object options, const char* name, int fallback) {
  Napi::Value v = options.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw amy_error(options.Env(), "ERR_INVALID_ARG_TYPE", std::string(name) + " must be a number");
  return v.As<Napi::Number>().Int32Value();
}

tls::Identity identity_option(Napi::Object o) {
  return tls::Identity{string_option(o, "key"), string_option(o, "cert"), string_option(o, "passphrase")};
}

// The options object is already normalized by @amy/core's TlsContext:
// { isServer, key, cert, passphrase, ca, minVersion, maxVersion (OpenSSL
// version numbers), ciphers, alpn: string[], requestCert,
// rejectUnauthorized, sni: [{ servername, key, cert, passphrase }],
// ticketKeys, handshakeTimeout (ms) }.
tls::ContextOptions context_options(Napi::Object o) {
  tls::ContextOptions out;
  out.is_server = o.Get("isServer").ToBoolean().Value();
  out.identity = identity_option(o);
  out.ca = string_option(o, "ca");
  out.min_version = version_option(o, "minVersion", out.min_version);
  out.max_version = version_option(o, "maxVersion", out.max_version);
  out.ciphers = string_option(o, "ciphers");
  out.request_cert = o.Get("requestCert").ToBoolean().Value();
  Napi::Value reject = o.Get("rejectUnauthorized");
  out.reject_unauthorized = reject.IsUndefined() ? true : reject.ToBoolean().Value();
  out.ticket_keys = string_option(o, "ticketKeys");
  Napi::Value timeout = o.Get("handshakeTimeout");
  if (!timeout.IsUndefined()) {
    double ms = timeout.IsNumber() ? timeout.As<Napi::Number>().DoubleValue() : -1;
    if (!(ms >= 0 && ms <= 2147483647.0) || ms != std::floor(ms))
      throw amy_error(o.Env(), "ERR_INVALID_ARG_VALUE", "handshakeTimeout must be an integer number of ms in [0, 2^31)");
    out.handshake_timeout_ms = static_cast<uint32_t>(ms);
  }
  Napi::Value alpn = o.Get("alpn");
  if (alpn.IsArray()) {
    Napi::Array list = alpn.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value name = list.Get(i);
      if (!name.IsString()) throw amy_error(o.Env(), "ERR_INVALID_ARG_TYPE", "alpn must be an array of strings");
      out.alpn.push_back(name.As<Napi::String>().Utf8Value());
    }
  }
  Napi::Value sni = o.Get("sni");
  if (sni.IsArray()) {
    Napi::Array list = sni.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value entry = list.Get(i);
      if (!entry.IsObject()) throw amy_error(o.Env(), "ERR_INVALID_ARG_TYPE", "sni entries must be objects");
      Napi::Object e = entry.As<Napi::Object>();
      out.sni[string_option(e, "servername")] = identity_option(e);
    }
  }
  return out;
}

Napi::Buffer<uint8_t> bytes(Napi::Env env, const std::vector<uint8_t>& data) {
  return Napi::Buffer<uint8_t>::Copy(env, data.data(), data.size());
}

uint64_t arg_id(const Napi::CallbackInfo& info, size_t index) {
  double id = arg_number(info, index, "id");
  if (id < 1 || id > 9007199254740991.0 || id != std::floor(id))
    throw amy_error(info.Env(), "ERR_INVALID_ARG_VALUE", "id must be a positive integer");
  return static_cast<uint64_t>(id);
}

std::shared_ptr<tls::TlsContext> find_context(const Napi::CallbackInfo& info, size_t index) {
  std::shared_ptr<tls::TlsContext> found = tls::context_registry::find(arg_id(info, index));
  if (!found) throw amy_error(info.Env(), "ERR_UNKNOWN_ID", "no live TLS context has this id");
  return found;
}

// new NativeTlsContext(options | id): builds a context, or takes a
// reference to one built on another thread.
class TlsContextWrap : public Napi::ObjectWrap<TlsContextWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeTlsContext",
                       {
                           InstanceAccessor<&TlsContextWrap::Id>("id"),
                           InstanceAccessor<&TlsContextWrap::IsServer>("isServer"),
                           InstanceAccessor<&TlsContextWrap::TicketKeys>("ticketKeys"),
                           InstanceAccessor<&TlsContextWrap::HandshakeTimeout>("handshakeTimeout"),
                       });
  }

  explicit TlsContextWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsContextWrap>(info) {
    Napi::Env env = info.Env();
    if (info[0].IsNumber()) {
      context_ = find_context(info, 0);
    } else if (info[0].IsObject()) {
      tls::ContextOptions options = context_options(info[0].As<Napi::Object>());
      context_ = tls_guarded(env, [&] { return tls::TlsContext::create(options); });
    } else {
      throw amy_error(env, "ERR_INVALID_ARG_TYPE", "NativeTlsContext takes an options object or a context id");
    }
  }

 private:
  Napi::Value Id(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(context_->id())); }
  Napi::Value IsServer(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), context_->is_server()); }
  Napi::Value HandshakeTimeout(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), context_->handshake_timeout_ms());
  }
  Napi::Value TicketKeys(const Napi::CallbackInfo& info) {
    const std::string& keys = context_->ticket_keys();
    return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(keys.data()), keys.size());
  }

  std::shared_ptr<tls::TlsContext> context_;
};

// new NativeTlsSession(contextId, fd, servername?: string, session?: Uint8Array)
// A servername argument (even "") makes a client session.
class TlsSessionWrap : public Napi::ObjectWrap<TlsSessionWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeTlsSession",
                       {
                           InstanceMethod<&TlsSessionWrap::Handshake>("handshake"),
                           InstanceMethod<&TlsSessionWrap::Read>("read"),
                           InstanceMethod<&TlsSessionWrap::Write>("write"),
                           InstanceMethod<&TlsSessionWrap::Writev>("writev"),
                           InstanceMethod<&TlsSessionWrap::Flush>("flush"),
                           InstanceMethod<&TlsSessionWrap::Shutdown>("shutdown"),
                           InstanceMethod<&TlsSessionWrap::Info>("info"),
                           InstanceMethod<&TlsSessionWrap::Session>("session"),
                           InstanceMethod<&TlsSessionWrap::Close>("close"),
                           InstanceAccessor<&TlsSessionWrap::PendingOutput>("pendingOutput"),
                           InstanceAccessor<&TlsSessionWrap::HandshakeComplete>("handshakeComplete"),
                           InstanceAccessor<&TlsSessionWrap::PeerClosed>("peerClosed"),
                       });
  }

  explicit TlsSessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsSessionWrap>(info) {
    Napi::Env env = info.Env();
    std::shared_ptr<tls::TlsContext> context = find_context(info, 0);
    int fd = arg_fd(info, 1);
    if (info.Length() > 2 && info[2].IsString()) {
      tls::ClientOptions client;
      client.servername = info[2].As<Napi::String>().Utf8Value();
      if (info.Length() > 3 && info[3].IsTypedArray()) {
        auto session = arg_bytes(info, 3, "session");
        client.session.assign(session.Data(), session.Data() + session.ByteLength());
      }
      session_ = tls_guarded(env, [&] { return std::make_unique<tls::TlsSession>(context, fd, client); });
    } else {
      session_ = tls_guarded(env, [&] { return std::make_unique<tls::TlsSession>(context, fd); });
    }
  }

 private:
  tls::TlsSession& open(Napi::Env env) {
    if (!session_) throw amy_error(env, "ERR_SOCKET_CLOSED", "the TLS session is closed");
    return *session_;
  }

  Napi::Value Handshake(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    tls::TlsSession& s = open(env);
    return Napi::Number::New(env, static_cast<double>(tls_guarded(env, [&] { return s.handshake(); })));
  }

  // read(buf) -> bytes, 0 at end of stream, -1 want read, -2 want write
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    tls::TlsSession& s = open(env);
    auto buf = arg_bytes(info, 0, "buf");
    return Napi::Number::New(env, static_cast<double>(tls_guarded(env, [&] { return s.read(buf.Data(), buf.ByteLength()); })));
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    tls::TlsSession& s = open(env);
    auto buf = arg_bytes(info, 0, "buf");
    return Napi::Number::New(env, static_cast<double>(tls_guarded(env, [&] { return s.write(buf.Data(), buf.ByteLength()); })));
  }

  Napi::Value Writev(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    tls::TlsSession& s = open(env);
    const std::vector<iovec>& iov = iovecs_from(env, info[0]);
    return Napi::Number::New(env, static_cast<double>(tls_guarded(env, [&] { return s.writev(iov.data(), static_cast<int>(iov.size())); })));
  }

  Napi::Value Flush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    tls::TlsSession& s = open(env);
    return Napi::Number::New(env, static_cast<double>(tls_guarded(env, [&] { return s.flush(); })));
  }

  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    tls::TlsSession& s = open(env);
    return Napi::Boolean::New(env, tls_guarded(env, [&] { return s.shutdown(); }));
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    tls::HandshakeInfo h = open(env).info();
    Napi::Object out = Napi::Object::New(env);
    out.Set("protocol", h.protocol);
    out.Set("cipher", h.cipher);
    out.Set("alpnProtocol", h.alpn_protocol.empty() ? Napi::Value(Napi::Boolean::New(env, false)) : Napi::String::New(env, h.alpn_protocol));
    out.Set("servername", h.servername.empty() ? Napi::Value(Napi::Boolean::New(env, false)) : Napi::String::New(env, h.servername));
    out.Set("resumed", h.resumed);
    out.Set("authorized", h.authorized);
    out.Set("authorizationError", h.authorization_error.empty() ? env.Null() : Napi::String::New(env, h.authorization_error));
    if (h.peer_certificate) {
      const tls::PeerCertificate& c = *h.peer_certificate;
      Napi::Object cert = Napi::Object::New(env);
      cert.Set("subject", c.subject);
      cert.Set("issuer", c.issuer);
      cert.Set("subjectaltname", c.subjectaltname);
      cert.Set("valid_from", c.valid_from);
      cert.Set("valid_to", c.valid_to);
      cert.Set("fingerprint256", c.fingerprint256);
      cert.Set("raw", bytes(env, c.raw));
      out.Set("peerCertificate", cert);
    } else {
      out.Set("peerCertificate", env.Null());
    }
    return out;
  }

  Napi::Value Session(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<uint8_t> s = open(env).session();
    if (s.empty()) return env.Undefined();
    return bytes(env, s);
  }

  // Frees the SSL (and its buffers) now rather than at garbage collection.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    session_.reset();
    return info.Env().Undefined();
  }

  Napi::Value PendingOutput(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), session_ ? static_cast<double>(session_->pending_output()) : 0);
  }
  Napi::Value HandshakeComplete(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), session_ && session_->handshake_complete());
  }
  Napi::Value PeerClosed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), session_ && session_->peer_closed());
  }

  std::unique_ptr<tls::TlsSession> session_;
};

}  // namespace

void define_tls(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeTlsContext", TlsContextWrap::Define(env));
  exports.Set("NativeTlsSession", TlsSessionWrap::Define(env));
  exports.Set("TLS1_2_VERSION", Napi::Number::New(env, TLS1_2_VERSION));
  exports.Set("TLS1_3_VERSION", Napi::Number::New(env, TLS1_3_VERSION));
  // The OpenSSL this addon runs on: the one inside the node binary.
  exports.Set("opensslVersion", Napi::String::New(env, OpenSSL_version(OPENSSL_VERSION)));
}

}  // namespace amy::binding
