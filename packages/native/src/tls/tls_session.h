// One TLS connection over a non-blocking socket fd the caller owns.
//
// Bytes path (chosen for fewest copies and syscalls; see
// docs/architecture.md "TLS"): a small custom BIO over the fd. Reads go
// read(2) -> OpenSSL's read-ahead buffer -> decrypted straight into the
// caller's buffer. Writes: each record is written to the fd at once; only
// what the socket does not take is kept in the session's output buffer and
// sent by flush(). So OpenSSL never sees a blocked write and never asks for
// "the same buffer again": write() returns how many plaintext bytes it took,
// exactly like a TCP write, and backpressure is the output buffer.
//
// Edge-triggered contract, as for TcpStream: after a readable notification
// call read() until it returns kWantRead; after a writable one, flush() (or
// write()); pending_output() > 0 means wait for writable. A returned
// kWantWrite only ever means "output is pending, flush on writable".
//
// Handshake: read()/write() drive it; handshake() does it alone. Failures
// throw TlsError with a stable code (see tls_error.h), keep OpenSSL's
// reason, and make the session failed: every later call throws the same
// error. A fatal alert is sent if the socket takes it. Renegotiation is
// refused (ERR_TLS_RENEGOTIATION). Not thread-safe: one thread at a time.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tls/openssl_types.h"
#include "tls/tls_context.h"
#include "tls/tls_error.h"

namespace amy::tls {

struct ClientOptions {
  std::string servername;             // SNI and the name the certificate must carry ("" for none)
  std::vector<uint8_t> session;       // a session() from an earlier connection, to resume
};

struct PeerCertificate {
  std::string subject;          // RFC 2253 ("CN=localhost,O=amy")
  std::string issuer;
  std::string subjectaltname;   // "DNS:localhost, IP Address:127.0.0.1", as node:tls
  std::string valid_from;       // "Nov 29 18:00:00 2026 GMT"
  std::string valid_to;
  std::string fingerprint256;   // "AB:CD:..."
  std::vector<uint8_t> raw;     // DER
};

struct HandshakeInfo {
  std::string protocol;          // "TLSv1.3"
  std::string cipher;            // "TLS_AES_256_GCM_SHA384"
  std::string alpn_protocol;     // "" when none was agreed
  std::string servername;        // what the client asked for ("" if none)
  bool resumed = false;
  bool authorized = false;       // the peer's certificate verified (client: and matched servername)
  std::string authorization_error;  // OpenSSL's verify reason when not authorized
  std::optional<PeerCertificate> peer_certificate;
};

class TlsSession {
 public:
  static constexpr long kWantRead = -1;
  static constexpr long kWantWrite = -2;

  // Server side of an accepted fd.
  TlsSession(std::shared_ptr<const TlsContext> context, int fd);
  // Client side of a connected (or connecting) fd.
  TlsSession(std::shared_ptr<const TlsContext> context, int fd, const ClientOptions& client);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // 1 when the handshake is complete, else kWantRead / kWantWrite.
  long handshake();
  // Plaintext bytes read (> 0); 0 at end of stream (close_notify or FIN);
  // kWantRead / kWantWrite when nothing can be read now.
  long read(uint8_t* buf, size_t len);
  // Plaintext bytes taken (> 0, possibly fewer than len); kWantWrite while
  // output is pending; kWantRead while the handshake waits for the peer.
  long write(const uint8_t* buf, size_t len);
  // The same over several buffers; small ones are gathered into one record.
  long writev(const struct iovec* iov, int count);
  // Sends pending output; returns the bytes still pending (0: all sent).
  size_t flush();
  // Queues close_notify (once; nothing before the handshake completed) and
  // flushes; true when nothing is pending. The caller then shuts the fd.
  bool shutdown();

  bool handshake_complete() const { return handshake_done_; }
  bool peer_closed() const { return peer_closed_; }
  size_t pending_output() const { return out_.size() - out_offset_; }
  int fd() const { return fd_; }
  bool is_server() const { return is_server_; }
  HandshakeInfo info() const;
  // The session to resume with later (client side), empty if none yet.
  std::vector<uint8_t> session() const;

 private:
  TlsSession(std::shared_ptr<const TlsContext> context, int fd, bool is_server);
  [[noreturn]] void fail(int ssl_result);
  [[noreturn]] void fail_with(TlsError error);
  void throw_if_failed() const;
  long write_record(const uint8_t* buf, size_t len);

  // The BIO's callbacks reach the session through BIO_get_data.
  static int bio_read(BIO* bio, char* buf, int len);
  static int bio_write(BIO* bio, const char* buf, int len);
  static long bio_ctrl(BIO* bio, int cmd, long num, void* ptr);
  static int bio_create(BIO* bio);
  static const BIO_METHOD* bio_method();
  static void on_info(const SSL* ssl, int where, int ret);

  std::shared_ptr<const TlsContext> context_;
  int fd_;
  bool is_server_;
  SslPtr ssl_;
  std::vector<uint8_t> out_;  // ciphertext the socket did not take yet
  size_t out_offset_ = 0;
  std::vector<uint8_t> gather_;  // writev's small buffers, one record's worth
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool sent_close_notify_ = false;
  bool renegotiation_ = false;
  bool saw_eof_ = false;
  int io_errno_ = 0;            // errno of the last failed read(2)/write(2)
  const char* io_syscall_ = nullptr;
  std::unique_ptr<TlsError> failure_;
};

}  // namespace amy::tls
