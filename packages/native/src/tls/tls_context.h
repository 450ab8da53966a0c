// A TLS context: the configuration every connection of a server (or every
// outbound connection of a client) shares, built once into an SSL_CTX.
// Option names mirror node:tls. A context is immutable once built and safe
// to use from any thread (SSL_new on a shared SSL_CTX is thread-safe in
// OpenSSL 3), so one context serves every worker of a process: workers look
// it up by id in the process-wide registry. Session tickets are sealed with
// the context's ticket keys, so a ticket issued by one worker resumes in
// another; pass the same `ticket_keys` to contexts in other processes to
// resume across them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tls/openssl_types.h"

namespace amy::tls {

struct Identity {
  std::string key;         // PEM private key
  std::string cert;        // PEM certificate, optionally followed by its chain
  std::string passphrase;  // for an encrypted key
};

struct ContextOptions {
  bool is_server = true;
  Identity identity;               // required for servers; optional client cert
  std::string ca;                  // PEM bundle; empty: OpenSSL's default verify paths
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string ciphers;             // node:tls syntax: TLS_* names are TLS 1.3 suites
  std::vector<std::string> alpn;   // in preference order
  bool request_cert = false;       // server: ask for a client certificate
  bool reject_unauthorized = true; // fail the handshake when verification fails
  std::map<std::string, Identity> sni;  // servername ("a.example", "*.example") -> identity
  std::string ticket_keys;         // 48 bytes (16 name, 16 HMAC, 16 AES) or empty: random
  // Not used by OpenSSL or TlsSession: how long whoever drives this
  // context's server sessions lets a handshake take (ms, 0: no limit). Kept
  // here so that a thread which finds the context by id finds it too.
  uint32_t handshake_timeout_ms = 0;
};

class TlsContext {
 public:
  static constexpr size_t kTicketKeysLength = 48;

  // Throws TlsError (ERR_TLS_INVALID_KEY, _CERT, _CA, _CIPHERS, _OPTION,
  // ERR_TLS_KEY_MISMATCH) with OpenSSL's reason.
  static std::shared_ptr<TlsContext> create(const ContextOptions& options);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  uint64_t id() const { return id_; }
  bool is_server() const { return is_server_; }
  bool reject_unauthorized() const { return reject_unauthorized_; }
  SSL_CTX* ssl_ctx() const { return ctx_.get(); }
  const std::string& ticket_keys() const { return ticket_keys_; }
  uint32_t handshake_timeout_ms() const { return handshake_timeout_ms_; }

 private:
  TlsContext() = default;
  SslCtxPtr build(const ContextOptions& options, const Identity& identity);
  SSL_CTX* find_sni(const char* servername) const;

  static int on_servername(SSL* ssl, int* alert, void* arg);
  static int on_alpn_select(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                            unsigned int inlen, void* arg);
  static int on_ticket_key(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                           EVP_MAC_CTX* mac, int encrypt);

  uint64_t id_ = 0;
  bool is_server_ = true;
  bool reject_unauthorized_ = true;
  SslCtxPtr ctx_;
  std::map<std::string, SslCtxPtr> sni_;  // lower-cased servername -> context
  std::vector<unsigned char> alpn_wire_;  // length-prefixed protocol names
  std::string ticket_keys_;
  uint32_t handshake_timeout_ms_ = 0;
};

// Process-wide lookups from plain ids (what crosses threads) to live
// contexts. The registry holds weak references: whoever created the
// context keeps it alive; workers hold their own reference once found.
namespace context_registry {
void add(const std::shared_ptr<TlsContext>& context);
std::shared_ptr<TlsContext> find(uint64_t id);
void remove(uint64_t id);
}  // namespace context_registry

}  // namespace amy::tls
