#include "tls/tls_error.h"

#include <openssl/err.h>

namespace amy::tls {

std::string take_openssl_reason() {
  unsigned long first = ERR_get_error();
  ERR_clear_error();
  if (first == 0) return {};
  const char* reason = ERR_reason_error_string(first);
  if (reason != nullptr) return reason;
  // Errors from providers may carry no registered string: keep the number.
  return "error:" + std::to_string(ERR_GET_LIB(first)) + ":" + std::to_string(ERR_GET_REASON(first));
}

void throw_openssl(const char* code, const std::string& message) {
  std::string reason = take_openssl_reason();
  throw TlsError(code, reason.empty() ? message : message + ": " + reason, reason);
}

}  // namespace amy::tls
