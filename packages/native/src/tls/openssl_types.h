// Owning pointers for the OpenSSL objects the TLS layer creates: each one
// frees itself, so no error path leaks an SSL*, SSL_CTX*, BIO*, X509* or
// EVP_PKEY*. Headers: Node's own (include/node/openssl) in the addon,
// Debian's libssl-dev in the ASan test program; both OpenSSL 3.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>

namespace amy::tls {

template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};

template <typename T, void (*Free)(T*)>
using OpenSslPtr = std::unique_ptr<T, OpenSslDeleter<T, Free>>;

// BIO_free returns int; wrap it so it fits the deleter's shape.
inline void bio_free(BIO* bio) { BIO_free(bio); }
inline void x509_stack_free(STACK_OF(X509) * stack) { sk_X509_pop_free(stack, X509_free); }
inline void x509_name_stack_free(STACK_OF(X509_NAME) * stack) { sk_X509_NAME_pop_free(stack, X509_NAME_free); }

using SslPtr = OpenSslPtr<SSL, SSL_free>;
using SslCtxPtr = OpenSslPtr<SSL_CTX, SSL_CTX_free>;
using BioPtr = OpenSslPtr<BIO, bio_free>;
using X509Ptr = OpenSslPtr<X509, X509_free>;
using EvpPkeyPtr = OpenSslPtr<EVP_PKEY, EVP_PKEY_free>;
using SslSessionPtr = OpenSslPtr<SSL_SESSION, SSL_SESSION_free>;
using X509StackPtr = OpenSslPtr<STACK_OF(X509), x509_stack_free>;
using X509NameStackPtr = OpenSslPtr<STACK_OF(X509_NAME), x509_name_stack_free>;

}  // namespace amy::tls
