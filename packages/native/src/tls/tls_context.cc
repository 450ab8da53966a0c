#include "tls/tls_context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "tls/tls_error.h"

namespace amy::tls {

namespace {

// Never the terminal prompt OpenSSL falls back to without a callback: an
// encrypted key without the right passphrase is an error, not a hang.
int passphrase_callback(char* buf, int size, int /*rwflag*/, void* user) {
  const auto* passphrase = static_cast<const std::string*>(user);
  if (passphrase == nullptr || passphrase->empty() || size <= 0) return -1;
  int length = static_cast<int>(std::min<size_t>(passphrase->size(), static_cast<size_t>(size)));
  std::memcpy(buf, passphrase->data(), static_cast<size_t>(length));
  return length;
}

BioPtr memory_bio(const std::string& text) {
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) throw std::bad_alloc();
  return bio;
}

// Every certificate of a PEM bundle, in order. Stops at the first block
// that is not a certificate (a missing start line is the normal end).
std::vector<X509Ptr> read_certificates(const std::string& pem) {
  std::vector<X509Ptr> out;
  BioPtr bio = memory_bio(pem);
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    out.push_back(std::move(cert));
  }
  unsigned long last = ERR_peek_last_error();
  bool clean_end = ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (!out.empty() && clean_end) ERR_clear_error();
  return out;
}

void use_identity(SSL_CTX* ctx, const Identity& identity) {
  std::vector<X509Ptr> certs = read_certificates(identity.cert);
  if (certs.empty()) throw_openssl(code::kInvalidCert, "cert is not a PEM certificate");
  ERR_clear_error();
  if (SSL_CTX_use_certificate(ctx, certs[0].get()) != 1) throw_openssl(code::kInvalidCert, "cert cannot be used");
  for (size_t i = 1; i < certs.size(); i++) {
    if (SSL_CTX_add1_chain_cert(ctx, certs[i].get()) != 1) throw_openssl(code::kInvalidCert, "cert chain cannot be used");
  }
  BioPtr bio = memory_bio(identity.key);
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, passphrase_callback,
                                         const_cast<std::string*>(&identity.passphrase)));
  if (!key) throw_openssl(code::kInvalidKey, "key is not a PEM private key, or the passphrase is wrong");
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    unsigned long err = ERR_peek_last_error();
    bool mismatch = ERR_GET_LIB(err) == ERR_LIB_X509 &&
                    (ERR_GET_REASON(err) == X509_R_KEY_VALUES_MISMATCH || ERR_GET_REASON(err) == X509_R_KEY_TYPE_MISMATCH);
    throw_openssl(mismatch ? code::kKeyMismatch : code::kInvalidKey, mismatch ? "key does not match cert" : "key cannot be used");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) throw_openssl(code::kKeyMismatch, "key does not match cert");
}

void use_ca(SSL_CTX* ctx, const std::string& ca, bool is_server) {
  std::vector<X509Ptr> certs = read_certificates(ca);
  if (certs.empty()) throw_openssl(code::kInvalidCa, "ca holds no PEM certificate");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (const X509Ptr& cert : certs) {
    if (X509_STORE_add_cert(store, cert.get()) != 1) {
      // The same certificate twice in a bundle is harmless.
      unsigned long err = ERR_peek_last_error();
      if (ERR_GET_REASON(err) != X509_R_CERT_ALREADY_IN_HASH_TABLE) throw_openssl(code::kInvalidCa, "ca certificate rejected");
      ERR_clear_error();
    }
    // A server that asks for client certificates names the CAs it accepts.
    if (is_server && SSL_CTX_add_client_CA(ctx, cert.get()) != 1) throw_openssl(code::kInvalidCa, "ca certificate rejected");
  }
}

// node:tls takes one cipher string for both protocol versions: names that
// start with "TLS_" are TLS 1.3 suites, the rest TLS 1.2 cipher names.
void use_ciphers(SSL_CTX* ctx, const std::string& ciphers) {
  std::string suites13, list12;
  size_t start = 0;
  while (start <= ciphers.size()) {
    size_t end = ciphers.find(':', start);
    if (end == std::string::npos) end = ciphers.size();
    std::string name = ciphers.substr(start, end - start);
    if (!name.empty()) {
      std::string& target = name.rfind("TLS_", 0) == 0 ? suites13 : list12;
      if (!target.empty()) target += ':';
      target += name;
    }
    start = end + 1;
  }
  if (!suites13.empty() && SSL_CTX_set_ciphersuites(ctx, suites13.c_str()) != 1)
    throw_openssl(code::kInvalidCiphers, "no usable TLS 1.3 suite in ciphers");
  if (!list12.empty() && SSL_CTX_set_cipher_list(ctx, list12.c_str()) != 1)
    throw_openssl(code::kInvalidCiphers, "no usable TLS 1.2 cipher in ciphers");
}

int accept_any_certificate(int /*preverify_ok*/, X509_STORE_CTX* /*store*/) {
  // requestCert without rejectUnauthorized: the result is still recorded
  // (SSL_get_verify_result) and reported as `authorized`/`authorizationError`.
  return 1;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::atomic<uint64_t> next_context_id{1};

}  // namespace

std::shared_ptr<TlsContext> TlsContext::create(const ContextOptions& options) {
  OPENSSL_init_ssl(0, nullptr);
  ERR_clear_error();
  if (options.is_server && (options.identity.key.empty() || options.identity.cert.empty()))
    throw TlsError(code::kInvalidOption, "a server context needs key and cert");
  if (options.min_version > options.max_version)
    throw TlsError(code::kInvalidOption, "minVersion is above maxVersion");
  if (!options.ticket_keys.empty() && options.ticket_keys.size() != kTicketKeysLength)
    throw TlsError(code::kInvalidOption, "ticketKeys must be 48 bytes");

  std::shared_ptr<TlsContext> self(new TlsContext());
  self->is_server_ = options.is_server;
  self->reject_unauthorized_ = options.reject_unauthorized;
  self->handshake_timeout_ms_ = options.handshake_timeout_ms;
  for (const std::string& name : options.alpn) {
    if (name.empty() || name.size() > 255) throw TlsError(code::kInvalidOption, "each ALPN protocol name must be 1 to 255 bytes");
    self->alpn_wire_.push_back(static_cast<unsigned char>(name.size()));
    self->alpn_wire_.insert(self->alpn_wire_.end(), name.begin(), name.end());
  }
  if (options.is_server) {
    self->ticket_keys_ = options.ticket_keys;
    if (self->ticket_keys_.empty()) {
      self->ticket_keys_.resize(kTicketKeysLength);
      if (RAND_bytes(reinterpret_cast<unsigned char*>(&self->ticket_keys_[0]), kTicketKeysLength) != 1)
        throw_openssl(code::kInvalidOption, "no random bytes for the ticket keys");
    }
  }
  self->ctx_ = self->build(options, options.identity);
  for (const auto& [servername, identity] : options.sni) {
    if (servername.empty()) throw TlsError(code::kInvalidOption, "an SNI servername is empty");
    self->sni_[lower(servername)] = self->build(options, identity);
  }
  if (!self->sni_.empty()) {
    SSL_CTX_set_tlsext_servername_callback(self->ctx_.get(), &TlsContext::on_servername);
    SSL_CTX_set_tlsext_servername_arg(self->ctx_.get(), self.get());
  }
  self->id_ = next_context_id.fetch_add(1, std::memory_order_relaxed);
  context_registry::add(self);
  return self;
}

TlsContext::~TlsContext() {
  if (id_ != 0) context_registry::remove(id_);
}

SslCtxPtr TlsContext::build(const ContextOptions& options, const Identity& identity) {
  SslCtxPtr ctx(SSL_CTX_new(options.is_server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) throw_openssl(code::kInvalidOption, "SSL_CTX_new failed");
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_app_data(c, this);
  if (SSL_CTX_set_min_proto_version(c, options.min_version) != 1 ||
      SSL_CTX_set_max_proto_version(c, options.max_version) != 1)
    throw_openssl(code::kInvalidOption, "unsupported TLS version bounds");
  // Partial writes and a moving buffer: a write hands OpenSSL a record at a
  // time from wherever the caller's bytes are now. Read-ahead: one read(2)
  // takes whatever the socket holds, not a 5-byte header and then the body.
  // Released buffers: an idle connection holds no 17 KiB record buffers.
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(c, 1);
  // A TCP FIN without close_notify reads as end of stream (most clients
  // just close); a FIN during the handshake is still a handshake error.
  uint64_t ssl_options = SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION;
  if (options.is_server) ssl_options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
  else ssl_options |= SSL_OP_NO_RENEGOTIATION;
  SSL_CTX_set_options(c, ssl_options);
  if (!options.ciphers.empty()) use_ciphers(c, options.ciphers);
  if (!identity.cert.empty() || !identity.key.empty()) use_identity(c, identity);
  if (!options.ca.empty()) {
    use_ca(c, options.ca, options.is_server);
  } else if (!options.is_server && SSL_CTX_set_default_verify_paths(c) != 1) {
    throw_openssl(code::kInvalidCa, "no default CA store");
  }
  if (options.is_server) {
    static const unsigned char kSessionIdContext[] = "amy";
    SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof kSessionIdContext - 1);
    if (options.request_cert) {
      if (options.reject_unauthorized) SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      else SSL_CTX_set_verify(c, SSL_VERIFY_PEER, accept_any_certificate);
    } else {
      SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    }
    if (!alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(c, &TlsContext::on_alpn_select, this);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(c, &TlsContext::on_ticket_key);
  } else {
    // Without rejectUnauthorized the chain is still checked and the result
    // reported; the handshake just does not fail on it.
    SSL_CTX_set_verify(c, options.reject_unauthorized ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (!alpn_wire_.empty() && SSL_CTX_set_alpn_protos(c, alpn_wire_.data(), static_cast<unsigned>(alpn_wire_.size())) != 0)
      throw_openssl(code::kInvalidOption, "ALPN protocols rejected");
  }
  ERR_clear_error();
  return ctx;
}

SSL_CTX* TlsContext::find_sni(const char* servername) const {
  std::string name = lower(servername);
  auto exact = sni_.find(name);
  if (exact != sni_.end()) return exact->second.get();
  // "*.example.com" covers exactly one more label, as node:tls's addContext.
  size_t dot = name.find('.');
  if (dot == std::string::npos || dot == 0) return nullptr;
  auto wildcard = sni_.find("*" + name.substr(dot));
  return wildcard == sni_.end() ? nullptr : wildcard->second.get();
}

int TlsContext::on_servername(SSL* ssl, int* /*alert*/, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  const char* servername = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (servername == nullptr) return SSL_TLSEXT_ERR_OK;
  SSL_CTX* chosen = self->find_sni(servername);
  if (chosen != nullptr && SSL_set_SSL_CTX(ssl, chosen) == nullptr) return SSL_TLSEXT_ERR_ALERT_FATAL;
  return SSL_TLSEXT_ERR_OK;
}

// The server's list decides the order; no protocol in common ends the
// handshake with no_application_protocol, as node:tls does.
int TlsContext::on_alpn_select(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                               unsigned int inlen, void* arg) {
  auto* self = static_cast<TlsContext*>(arg);
  unsigned char* selected = nullptr;
  int result = SSL_select_next_proto(&selected, outlen, self->alpn_wire_.data(),
                                     static_cast<unsigned>(self->alpn_wire_.size()), in, inlen);
  if (result != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// Tickets sealed with the context's 48-byte keys (16 name, 16 HMAC-SHA256
// key, 16 AES-128-CBC key), the layout node:tls's ticketKeys uses. Every
// thread uses the same keys, so any worker resumes any worker's session.
int TlsContext::on_ticket_key(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                              EVP_MAC_CTX* mac, int encrypt) {
  const auto* self = static_cast<const TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  if (self == nullptr || self->ticket_keys_.size() != kTicketKeysLength) return -1;
  const auto* keys = reinterpret_cast<const unsigned char*>(self->ticket_keys_.data());
  const unsigned char* name = keys;
  const unsigned char* hmac_key = keys + 16;
  const unsigned char* aes_key = keys + 32;
  if (encrypt) {
    std::memcpy(key_name, name, 16);
    if (RAND_bytes(iv, 16) != 1) return -1;
    if (EVP_EncryptInit_ex(cipher, EVP_aes_128_cbc(), nullptr, aes_key, iv) != 1) return -1;
  } else {
    if (std::memcmp(key_name, name, 16) != 0) return 0;  // not our key: a full handshake
    if (EVP_DecryptInit_ex(cipher, EVP_aes_128_cbc(), nullptr, aes_key, iv) != 1) return -1;
  }
  char digest[] = "sha256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(hmac_key), 16),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  return 1;
}

namespace context_registry {

namespace {
// Never destroyed: a context released during process exit (a worker's
// cleanup hook) must still find them.
std::mutex& registry_mutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}
std::unordered_map<uint64_t, std::weak_ptr<TlsContext>>& contexts() {
  static auto* map = new std::unordered_map<uint64_t, std::weak_ptr<TlsContext>>();
  return *map;
}
}  // namespace

void add(const std::shared_ptr<TlsContext>& context) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  contexts()[context->id()] = context;
}

std::shared_ptr<TlsContext> find(uint64_t id) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = contexts().find(id);
  return it == contexts().end() ? nullptr : it->second.lock();
}

void remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  contexts().erase(id);
}

}  // namespace context_registry

}  // namespace amy::tls
