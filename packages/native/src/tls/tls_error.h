// Errors of the TLS layer. Every failure is a TlsError with a stable code
// (ERR_TLS_HANDSHAKE, ERR_TLS_CERT_*, ...) and, where OpenSSL said why,
// its reason string ("wrong version number", "self-signed certificate"), so
// the binding can hand JavaScript an Error with `code` and `reason`, and the
// ASan test can check them without Node. A socket failure underneath keeps
// its errno and syscall.
#pragma once

#include <stdexcept>
#include <string>

namespace amy::tls {

// The stable codes, declared once; the TypeScript side lists the same names.
namespace code {
constexpr const char* kHandshake = "ERR_TLS_HANDSHAKE";            // handshake failed (protocol, alert, peer left)
constexpr const char* kProtocol = "ERR_TLS_PROTOCOL";              // bad record after the handshake (oversized, bad MAC)
constexpr const char* kRenegotiation = "ERR_TLS_RENEGOTIATION";    // the peer tried to renegotiate (refused)
constexpr const char* kCertUntrusted = "ERR_TLS_CERT_UNTRUSTED";    // chain does not lead to a trusted CA
constexpr const char* kCertExpired = "ERR_TLS_CERT_EXPIRED";
constexpr const char* kCertNotYetValid = "ERR_TLS_CERT_NOT_YET_VALID";
constexpr const char* kCertAltname = "ERR_TLS_CERT_ALTNAME_INVALID";  // servername not in the certificate
constexpr const char* kCertRequired = "ERR_TLS_CERT_REQUIRED";        // peer sent no certificate though required
constexpr const char* kCertInvalid = "ERR_TLS_CERT_INVALID";          // any other verification failure
constexpr const char* kCertRejected = "ERR_TLS_CERT_REJECTED";        // the peer refused our certificate (alert)
constexpr const char* kInvalidKey = "ERR_TLS_INVALID_KEY";            // unreadable key or wrong passphrase
constexpr const char* kInvalidCert = "ERR_TLS_INVALID_CERT";
constexpr const char* kKeyMismatch = "ERR_TLS_KEY_MISMATCH";          // key does not belong to cert
constexpr const char* kInvalidCa = "ERR_TLS_INVALID_CA";
constexpr const char* kInvalidCiphers = "ERR_TLS_INVALID_CIPHERS";
constexpr const char* kInvalidOption = "ERR_TLS_INVALID_OPTION";
}  // namespace code

class TlsError : public std::runtime_error {
 public:
  TlsError(const char* code, const std::string& message, std::string reason = {}, int sys_errno = 0,
           const char* syscall = nullptr)
      : std::runtime_error(message), code_(code), reason_(std::move(reason)), errno_(sys_errno), syscall_(syscall) {}

  const char* code() const { return code_; }
  // OpenSSL's reason string, or "" when OpenSSL gave none.
  const std::string& reason() const { return reason_; }
  // The socket errno that ended the handshake (0 if none) and its syscall.
  int sys_errno() const { return errno_; }
  const char* syscall() const { return syscall_; }

 private:
  const char* code_;
  std::string reason_;
  int errno_;
  const char* syscall_;
};

// Pops OpenSSL's per-thread error queue and returns the reason of the
// earliest error ("" if the queue was empty). The queue is left empty, so
// nothing leaks into Node's own crypto on this thread.
std::string take_openssl_reason();

// Throws TlsError(code, message + ": " + reason) from the error queue.
[[noreturn]] void throw_openssl(const char* code, const std::string& message);

}  // namespace amy::tls
