#include "tls/tls_session.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "os/errors.h"
#include "os/socket.h"

namespace amy::tls {

namespace {

// One TLS record's worth of plaintext: SSL_write never gets more, so each
// call is one record and one write(2) when the socket keeps up.
constexpr size_t kRecordPlaintext = 16384;

const char* verify_code(long result) {
  switch (result) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return code::kCertUntrusted;
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return code::kCertExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return code::kCertNotYetValid;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return code::kCertAltname;
    default:
      return code::kCertInvalid;
  }
}

// Alerts by which the peer says it refused our certificate.
bool is_certificate_alert(int reason) {
  switch (reason) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return length > 0 ? std::string(data, static_cast<size_t>(length)) : std::string();
}

std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || name == nullptr) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  return bio_text(bio.get());
}

std::string time_text(const ASN1_TIME* time) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || time == nullptr) return {};
  ASN1_TIME_print(bio.get(), time);
  return bio_text(bio.get());
}

PeerCertificate describe(X509* cert) {
  PeerCertificate out;
  out.subject = name_text(X509_get_subject_name(cert));
  out.issuer = name_text(X509_get_issuer_name(cert));
  out.valid_from = time_text(X509_get0_notBefore(cert));
  out.valid_to = time_text(X509_get0_notAfter(cert));
  int index = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1);
  if (index >= 0) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (bio && X509V3_EXT_print(bio.get(), X509_get_ext(cert, index), 0, 0) == 1) out.subjectaltname = bio_text(bio.get());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &digest_length) == 1) {
    static const char kHex[] = "0123456789ABCDEF";
    for (unsigned int i = 0; i < digest_length; i++) {
      if (i > 0) out.fingerprint256 += ':';
      out.fingerprint256 += kHex[digest[i] >> 4];
      out.fingerprint256 += kHex[digest[i] & 15];
    }
  }
  int der_length = i2d_X509(cert, nullptr);
  if (der_length > 0) {
    out.raw.resize(static_cast<size_t>(der_length));
    unsigned char* p = out.raw.data();
    i2d_X509(cert, &p);
  }
  ERR_clear_error();
  return out;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, int fd, bool is_server)
    : context_(std::move(context)), fd_(fd), is_server_(is_server) {
  ERR_clear_error();
  ssl_.reset(SSL_new(context_->ssl_ctx()));
  if (!ssl_) throw_openssl(code::kInvalidOption, "SSL_new failed");
  BIO* bio = BIO_new(bio_method());
  if (bio == nullptr) throw_openssl(code::kInvalidOption, "BIO_new failed");
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_.get(), bio, bio);  // one reference, now the SSL's
  SSL_set_app_data(ssl_.get(), this);
  SSL_set_info_callback(ssl_.get(), &TlsSession::on_info);
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, int fd) : TlsSession(std::move(context), fd, true) {
  if (!context_->is_server()) throw TlsError(code::kInvalidOption, "a server session needs a server context");
  SSL_set_accept_state(ssl_.get());
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, int fd, const ClientOptions& client)
    : TlsSession(std::move(context), fd, false) {
  if (context_->is_server()) throw TlsError(code::kInvalidOption, "a client session needs a client context");
  SSL* ssl = ssl_.get();
  if (!client.servername.empty()) {
    // SNI carries host names only; an IP literal is checked against the
    // certificate's IP addresses instead (RFC 6066, section 3).
    if (is_ip_literal(client.servername)) {
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), client.servername.c_str()) != 1)
        throw_openssl(code::kInvalidOption, "servername is not a usable IP address");
    } else {
      if (SSL_set_tlsext_host_name(ssl, client.servername.c_str()) != 1 || SSL_set1_host(ssl, client.servername.c_str()) != 1)
        throw_openssl(code::kInvalidOption, "servername is not a usable host name");
    }
  }
  if (!client.session.empty()) {
    const unsigned char* p = client.session.data();
    SslSessionPtr session(d2i_SSL_SESSION(nullptr, &p, static_cast<long>(client.session.size())));
    if (!session) throw_openssl(code::kInvalidOption, "session is not a serialized TLS session");
    if (SSL_set_session(ssl, session.get()) != 1) throw_openssl(code::kInvalidOption, "session cannot be resumed");
  }
  SSL_set_connect_state(ssl);
}

TlsSession::~TlsSession() {
  // SSL_free runs no callback of ours that could touch a half-destroyed
  // session; it frees the BIO with it. Leave the thread's error queue clean.
  ssl_.reset();
  ERR_clear_error();
}

void TlsSession::throw_if_failed() const {
  if (failure_) throw *failure_;
}

long TlsSession::handshake() {
  throw_if_failed();
  if (handshake_done_) return 1;
  if (flush() > 0) return kWantWrite;
  ERR_clear_error();
  int result = SSL_do_handshake(ssl_.get());
  if (result == 1) {
    handshake_done_ = true;
    flush();
    return 1;
  }
  int error = SSL_get_error(ssl_.get(), result);
  if (error == SSL_ERROR_WANT_READ && !saw_eof_) return flush() > 0 ? kWantWrite : kWantRead;
  if (error == SSL_ERROR_WANT_WRITE) return kWantWrite;
  fail(result);
}

long TlsSession::read(uint8_t* buf, size_t len) {
  throw_if_failed();
  if (peer_closed_) return 0;
  if (!handshake_done_) {
    long status = handshake();
    if (status != 1) return status;
  }
  size_t total = 0;
  while (total < len) {
    ERR_clear_error();
    size_t n = 0;
    int result = SSL_read_ex(ssl_.get(), buf + total, len - total, &n);
    if (renegotiation_) {
      if (total > 0) break;  // the next call reports it
      fail(result);
    }
    if (result == 1) {
      total += n;
      // More decrypted or buffered bytes need no syscall; otherwise stop
      // here and let the caller's next read meet the would-block.
      if (!SSL_has_pending(ssl_.get())) break;
      continue;
    }
    int error = SSL_get_error(ssl_.get(), result);
    if (error == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      break;
    }
    if (error == SSL_ERROR_WANT_READ) {
      if (saw_eof_) {  // FIN inside a record: the stream is cut, not closed
        if (total > 0) break;
        fail(result);
      }
      break;
    }
    if (error == SSL_ERROR_WANT_WRITE) break;
    if (total > 0) {
      // Hand out what was read; the failure is kept for the next call.
      try {
        fail(result);
      } catch (const TlsError&) {
      }
      return static_cast<long>(total);
    }
    fail(result);
  }
  // Reading can produce output (an alert, a KeyUpdate answer): send it now.
  flush();
  if (total > 0) return static_cast<long>(total);
  if (renegotiation_) fail(0);
  return peer_closed_ ? 0 : kWantRead;
}

long TlsSession::write_record(const uint8_t* buf, size_t len) {
  ERR_clear_error();
  size_t n = 0;
  int result = SSL_write_ex(ssl_.get(), buf, len, &n);
  if (result == 1) return static_cast<long>(n);
  int error = SSL_get_error(ssl_.get(), result);
  if (error == SSL_ERROR_WANT_READ) return kWantRead;
  if (error == SSL_ERROR_WANT_WRITE) return kWantWrite;
  fail(result);
}

long TlsSession::write(const uint8_t* buf, size_t len) {
  iovec one{const_cast<uint8_t*>(buf), len};
  return writev(&one, 1);
}

long TlsSession::writev(const struct iovec* iov, int count) {
  throw_if_failed();
  if (sent_close_notify_) throw TlsError("EPIPE", "write after shutdown()", "", EPIPE, "write");
  if (!handshake_done_) {
    long status = handshake();
    if (status != 1) return status;
  }
  if (flush() > 0) return kWantWrite;
  size_t total = 0;
  long status = 0;    // why the loop stopped early (kWantRead while a renegotiation waits)
  int index = 0;
  size_t offset = 0;  // into iov[index]
  while (index < count) {
    const auto* base = static_cast<const uint8_t*>(iov[index].iov_base);
    size_t left = iov[index].iov_len - offset;
    if (left == 0) {
      index++;
      offset = 0;
      continue;
    }
    const uint8_t* record = base + offset;
    size_t record_length = std::min(left, kRecordPlaintext);
    if (left < kRecordPlaintext && index + 1 < count) {
      // Gather small buffers into one record: one MAC, one write(2).
      gather_.assign(record, record + left);
      for (int j = index + 1; j < count && gather_.size() < kRecordPlaintext; j++) {
        const auto* more = static_cast<const uint8_t*>(iov[j].iov_base);
        size_t take = std::min(iov[j].iov_len, kRecordPlaintext - gather_.size());
        gather_.insert(gather_.end(), more, more + take);
      }
      record = gather_.data();
      record_length = gather_.size();
    }
    long n;
    try {
      n = write_record(record, record_length);
    } catch (const TlsError&) {
      if (total > 0) return static_cast<long>(total);  // kept for the next call
      throw;
    }
    if (n < 0) {
      status = n;
      break;
    }
    total += static_cast<size_t>(n);
    // Advance through the buffers by what this record took.
    size_t advance = static_cast<size_t>(n);
    while (advance > 0 && index < count) {
      size_t here = iov[index].iov_len - offset;
      if (advance < here) {
        offset += advance;
        advance = 0;
      } else {
        advance -= here;
        index++;
        offset = 0;
      }
    }
    if (pending_output() > 0) break;  // the socket is full: backpressure
  }
  if (total > 0) return static_cast<long>(total);
  if (pending_output() > 0) return kWantWrite;
  return status;  // 0: there was nothing to write (empty buffers), as on TCP
}

size_t TlsSession::flush() {
  throw_if_failed();
  while (out_offset_ < out_.size()) {
    long n;
    try {
      n = os::sock_write(fd_, out_.data() + out_offset_, out_.size() - out_offset_);
    } catch (const os::SysError& e) {
      io_errno_ = e.err();
      io_syscall_ = "write";
      fail(0);
    }
    if (n == os::kWouldBlock) break;
    out_offset_ += static_cast<size_t>(n);
  }
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
    if (out_.capacity() > 4 * kRecordPlaintext) out_.shrink_to_fit();
  }
  return pending_output();
}

bool TlsSession::shutdown() {
  throw_if_failed();
  if (handshake_done_ && !sent_close_notify_) {
    ERR_clear_error();
    // 0: close_notify sent, the peer's not yet received; we do not wait
    // for it (the caller half-closes or closes the fd next).
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
  sent_close_notify_ = true;
  return flush() == 0;
}

void TlsSession::fail(int ssl_result) {
  int error = SSL_get_error(ssl_.get(), ssl_result);
  unsigned long first = ERR_peek_error();
  int reason = ERR_GET_LIB(first) == ERR_LIB_SSL ? ERR_GET_REASON(first) : 0;
  std::string reason_text = take_openssl_reason();
  if (renegotiation_) {
    fail_with(TlsError(code::kRenegotiation, "the peer tried to renegotiate the TLS session (refused)", reason_text));
  }
  // TLS 1.3 clients finish before the server has checked their
  // certificate, so its refusal can come after the handshake too.
  if (is_certificate_alert(reason))
    fail_with(TlsError(code::kCertRejected, "the peer rejected our certificate: " + reason_text, reason_text));
  if (!handshake_done_) {
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      long result = SSL_get_verify_result(ssl_.get());
      std::string why = X509_verify_cert_error_string(result);
      fail_with(TlsError(verify_code(result), "certificate verification failed: " + why, why));
    }
    if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
      fail_with(TlsError(code::kCertRequired, "the peer sent no certificate: " + reason_text, reason_text));
    if (io_errno_ != 0) {
      fail_with(TlsError(code::kHandshake,
                         std::string("TLS handshake failed: ") + io_syscall_ + ": " + os::errno_name(io_errno_) + " " +
                             std::strerror(io_errno_),
                         reason_text, io_errno_, io_syscall_));
    }
    if (saw_eof_ || error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && reason_text.empty()))
      fail_with(TlsError(code::kHandshake, "the peer closed the connection during the TLS handshake",
                         reason_text.empty() ? "unexpected eof while reading" : reason_text));
    fail_with(TlsError(code::kHandshake, "TLS handshake failed: " + reason_text, reason_text));
  }
  if (io_errno_ != 0) {
    // After the handshake a socket failure is what it is on plain TCP.
    fail_with(TlsError(os::errno_name(io_errno_),
                       std::string(io_syscall_) + " " + os::errno_name(io_errno_) + ": " + std::strerror(io_errno_),
                       reason_text, io_errno_, io_syscall_));
  }
  if (saw_eof_ && reason_text.empty())
    fail_with(TlsError(code::kProtocol, "the connection ended inside a TLS record", "unexpected eof while reading"));
  fail_with(TlsError(code::kProtocol, "TLS protocol error: " + reason_text, reason_text));
}

void TlsSession::fail_with(TlsError error) {
  failure_ = std::make_unique<TlsError>(error);
  // Best effort: the fatal alert OpenSSL queued, if the socket takes it.
  while (io_errno_ == 0 && out_offset_ < out_.size()) {
    long n;
    try {
      n = os::sock_write(fd_, out_.data() + out_offset_, out_.size() - out_offset_);
    } catch (const os::SysError&) {
      break;
    }
    if (n == os::kWouldBlock) break;
    out_offset_ += static_cast<size_t>(n);
  }
  ERR_clear_error();
  throw error;
}

HandshakeInfo TlsSession::info() const {
  HandshakeInfo info;
  SSL* ssl = ssl_.get();
  info.protocol = SSL_get_version(ssl);
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  if (cipher != nullptr) info.cipher = SSL_CIPHER_get_name(cipher);
  const unsigned char* alpn = nullptr;
  unsigned int alpn_length = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_length);
  if (alpn != nullptr) info.alpn_protocol.assign(reinterpret_cast<const char*>(alpn), alpn_length);
  const char* servername = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (servername != nullptr) info.servername = servername;
  info.resumed = SSL_session_reused(ssl) == 1;
  X509* peer = SSL_get0_peer_certificate(ssl);
  long verify = SSL_get_verify_result(ssl);
  info.authorized = handshake_done_ && peer != nullptr && verify == X509_V_OK;
  if (peer != nullptr) {
    info.peer_certificate = describe(peer);
    if (verify != X509_V_OK) info.authorization_error = X509_verify_cert_error_string(verify);
  } else if (handshake_done_ && (!is_server_ || (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0)) {
    info.authorization_error = "the peer sent no certificate";
  }
  ERR_clear_error();
  return info;
}

std::vector<uint8_t> TlsSession::session() const {
  SslSessionPtr session(SSL_get1_session(ssl_.get()));
  std::vector<uint8_t> out;
  if (!session || SSL_SESSION_is_resumable(session.get()) != 1) return out;
  int length = i2d_SSL_SESSION(session.get(), nullptr);
  if (length <= 0) return out;
  out.resize(static_cast<size_t>(length));
  unsigned char* p = out.data();
  i2d_SSL_SESSION(session.get(), &p);
  ERR_clear_error();
  return out;
}

// A renegotiation is a second handshake on a TLS 1.2 session. (TLS 1.3
// has none; OpenSSL reports its post-handshake messages, tickets and key
// updates, as handshake starts too, hence the version check.)
void TlsSession::on_info(const SSL* ssl, int where, int /*ret*/) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
  auto* self = static_cast<TlsSession*>(SSL_get_app_data(ssl));
  if (self != nullptr && self->handshake_done_ && SSL_version(ssl) < TLS1_3_VERSION) self->renegotiation_ = true;
}

// The BIO: reads straight from the fd into OpenSSL's buffer; writes
// straight to the fd, keeping what the socket refuses in out_. It never
// reports a blocked write to OpenSSL. No exception crosses OpenSSL's C.
int TlsSession::bio_read(BIO* bio, char* buf, int len) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  long n;
  try {
    n = os::sock_read(self->fd_, buf, static_cast<size_t>(len));
  } catch (const os::SysError& e) {
    self->io_errno_ = e.err();
    self->io_syscall_ = "read";
    return -1;
  }
  if (n == os::kWouldBlock) {
    BIO_set_retry_read(bio);
    return -1;
  }
  if (n == 0) self->saw_eof_ = true;
  return static_cast<int>(n);
}

int TlsSession::bio_write(BIO* bio, const char* buf, int len) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const auto* bytes = reinterpret_cast<const uint8_t*>(buf);
  size_t length = static_cast<size_t>(len);
  size_t done = 0;
  if (self->pending_output() == 0) {
    while (done < length) {
      long n;
      try {
        n = os::sock_write(self->fd_, bytes + done, length - done);
      } catch (const os::SysError& e) {
        self->io_errno_ = e.err();
        self->io_syscall_ = "write";
        return -1;
      }
      if (n == os::kWouldBlock) break;
      done += static_cast<size_t>(n);
    }
  }
  if (done < length) {
    try {
      self->out_.insert(self->out_.end(), bytes + done, bytes + length);
    } catch (const std::bad_alloc&) {
      self->io_errno_ = ENOMEM;
      self->io_syscall_ = "write";
      return -1;
    }
  }
  return len;
}

long TlsSession::bio_ctrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF: {  // how OpenSSL tells a FIN from a failed read
      auto* self = static_cast<TlsSession*>(BIO_get_data(bio));
      return self != nullptr && self->saw_eof_ ? 1 : 0;
    }
    case BIO_CTRL_WPENDING: {
      auto* self = static_cast<TlsSession*>(BIO_get_data(bio));
      return self == nullptr ? 0 : static_cast<long>(self->pending_output());
    }
    default:
      return 0;
  }
}

int TlsSession::bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* TlsSession::bio_method() {
  // Built once per process (a thread-safe static) and never freed: every
  // session's BIO points at it until the process ends.
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "amy fd");
    if (m != nullptr) {
      BIO_meth_set_create(m, &TlsSession::bio_create);
      BIO_meth_set_read(m, &TlsSession::bio_read);
      BIO_meth_set_write(m, &TlsSession::bio_write);
      BIO_meth_set_ctrl(m, &TlsSession::bio_ctrl);
    }
    return m;
  }();
  return method;
}

}  // namespace amy::tls
