// The TLS layer (src/tls: TlsContext, TlsSession over a non-blocking fd)
// tested without Node under AddressSanitizer and UBSan, against Debian's
// libssl. Prints TAP version 14; run by `make -C test/tls run` and by
// test/tls-asan.test.ts. Both ends of each connection are TlsSessions (or
// a raw OpenSSL peer, or raw bytes, for the attacks) on a non-blocking
// socketpair or loopback TCP, driven in one thread by alternating calls.
// Certificates: test/fixtures/tls (remade by make-certs.sh).
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "check.h"
#include "os/errors.h"
#include "os/owned_fd.h"
#include "os/socket.h"
#include "tls/tls_context.h"
#include "tls/tls_error.h"
#include "tls/tls_session.h"

using namespace amy::tls;
using amy::os::OwnedFd;

namespace {

constexpr int kRounds = 10000;  // bound on drive loops: each round is a few non-blocking calls

// test/fixtures/tls, found from this program's own path (build-asan/tls_test)
// at run time: a path compiled in went stale when the tree moved and make,
// seeing no source change, kept the old binary.
std::string fixtures_dir() {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) check::fail(__FILE__, __LINE__, "cannot read /proc/self/exe to find the fixtures");
  std::string path(exe, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/')) + "/../test/fixtures/tls";
}

std::string fixture(const std::string& name) {
  static const std::string dir = fixtures_dir();
  std::ifstream in(dir + "/" + name, std::ios::binary);
  if (!in) check::fail(__FILE__, __LINE__, "missing fixture " + name + " (run test/fixtures/tls/make-certs.sh)");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Identity identity(const std::string& name) { return Identity{fixture(name + ".key"), fixture(name + ".crt"), ""}; }

ContextOptions server_options() {
  ContextOptions o;
  o.is_server = true;
  o.identity = identity("server");
  return o;
}

ContextOptions client_options() {
  ContextOptions o;
  o.is_server = false;
  o.ca = fixture("ca.crt");
  return o;
}

ClientOptions to(const std::string& servername, std::vector<uint8_t> session = {}) {
  return ClientOptions{servername, std::move(session)};
}

struct Pair {
  OwnedFd server;
  OwnedFd client;
};

Pair socket_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) amy::os::throw_sys("socketpair");
  return Pair{OwnedFd(sv[0]), OwnedFd(sv[1])};
}

// A server and a client session over one socketpair: the usual test setup.
struct Link {
  Pair fds;
  TlsSession server;
  TlsSession client;
  Link(const std::shared_ptr<TlsContext>& server_ctx, const std::shared_ptr<TlsContext>& client_ctx,
       const ClientOptions& options)
      : fds(socket_pair()),
        server(server_ctx, fds.server.get()),
        client(client_ctx, fds.client.get(), options) {}
};

// Loopback TCP (needed where a unix socket differs: RST).
Pair tcp_pair() {
  amy::os::SocketAddress any;
  amy::os::parse_address("127.0.0.1", 0, any);
  OwnedFd listener = amy::os::tcp_listen(any, {});
  amy::os::SocketAddress bound = amy::os::sock_local_address(listener.get());
  int immediate = 0;
  OwnedFd client = amy::os::tcp_connect(bound, &immediate);
  CHECK_EQ(immediate, 0);
  for (int i = 0; i < kRounds; i++) {
    OwnedFd server = amy::os::tcp_accept(listener.get(), nullptr);
    if (server) return Pair{std::move(server), std::move(client)};
    pollfd p{listener.get(), POLLIN, 0};
    ::poll(&p, 1, 100);
  }
  check::fail(__FILE__, __LINE__, "accept did not complete");
}

void handshake_both(TlsSession& a, TlsSession& b) {
  for (int i = 0; i < kRounds; i++) {
    long x = a.handshake();
    long y = b.handshake();
    if (x == 1 && y == 1) return;
  }
  check::fail(__FILE__, __LINE__, "handshake did not complete");
}

// Runs step() until it throws a TlsError; returns it. Fails if it never does.
TlsError expect_error(const std::function<void()>& step) {
  for (int i = 0; i < kRounds; i++) {
    try {
      step();
    } catch (const TlsError& e) {
      return e;
    }
  }
  check::fail(__FILE__, __LINE__, "no TlsError was thrown");
}

// Everything readable now, until would-block or end of stream.
std::string drain(TlsSession& s) {
  std::string out;
  uint8_t buf[4096];
  for (;;) {
    long n = s.read(buf, sizeof buf);
    if (n <= 0) return out;
    out.append(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  }
}

std::string exchange(TlsSession& from, TlsSession& to_session, const std::string& text) {
  CHECK_EQ(from.write(reinterpret_cast<const uint8_t*>(text.data()), text.size()), static_cast<long>(text.size()));
  std::string got;
  for (int i = 0; i < kRounds && got.size() < text.size(); i++) {
    from.flush();
    got += drain(to_session);
  }
  return got;
}

void raw_write(int fd, const void* data, size_t len) {
  CHECK_EQ(amy::os::sock_write(fd, data, len), static_cast<long>(len));
}

// The first flight of a real client: what a ClientHello looks like.
std::vector<uint8_t> client_hello(const std::shared_ptr<TlsContext>& client_ctx) {
  Pair p = socket_pair();
  TlsSession client(client_ctx, p.client.get(), to("localhost"));
  CHECK_EQ(client.handshake(), TlsSession::kWantRead);
  std::vector<uint8_t> out(16384);
  long n = amy::os::sock_read(p.server.get(), out.data(), out.size());
  CHECK_GT(n, 5);
  out.resize(static_cast<size_t>(n));
  return out;
}

uint8_t pattern(size_t i, unsigned seed) { return static_cast<uint8_t>((i ^ (i >> 9) ^ (i >> 17)) * 131 + seed); }

std::string describe_tls(const std::exception& e) {
  if (const auto* t = dynamic_cast<const TlsError*>(&e))
    return std::string("unexpected TlsError ") + t->code() + ": " + t->what();
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------
// Handshakes and data

TEST("handshake: TLS 1.3 both ways; servername, verified peer, protocol and cipher reported") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  CHECK(!server.handshake_complete());
  handshake_both(server, client);
  HandshakeInfo s = server.info();
  HandshakeInfo c = client.info();
  CHECK_EQ(s.protocol, "TLSv1.3");
  CHECK_EQ(c.protocol, "TLSv1.3");
  CHECK_EQ(s.servername, "localhost");
  CHECK(!c.cipher.empty());
  CHECK(c.authorized);
  CHECK(c.peer_certificate.has_value());
  CHECK_EQ(c.peer_certificate->subject, "O=amy,CN=localhost");
  CHECK(c.peer_certificate->subjectaltname.find("DNS:localhost") != std::string::npos);
  CHECK_EQ(c.peer_certificate->fingerprint256.size(), 95u);
  CHECK(!c.peer_certificate->raw.empty());
  CHECK(!s.peer_certificate.has_value());  // not requested
  CHECK(!s.resumed);
}

TEST("handshake: a TLS 1.2-only client gets TLS 1.2; an IP servername is checked against IP SANs") {
  auto server_ctx = TlsContext::create(server_options());
  ContextOptions co = client_options();
  co.max_version = TLS1_2_VERSION;
  auto client_ctx = TlsContext::create(co);
  Link link(server_ctx, client_ctx, to("127.0.0.1"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  handshake_both(server, client);
  CHECK_EQ(client.info().protocol, "TLSv1.2");
  CHECK_EQ(server.info().protocol, "TLSv1.2");
  CHECK(client.info().authorized);
  CHECK_EQ(server.info().servername, "");  // no SNI for IP literals
}

TEST("handshake: a TLS 1.3-only client and a TLS 1.2-only server fail with ERR_TLS_HANDSHAKE on both sides") {
  ContextOptions so = server_options();
  so.max_version = TLS1_2_VERSION;
  ContextOptions co = client_options();
  co.min_version = TLS1_3_VERSION;
  auto server_ctx = TlsContext::create(so);
  auto client_ctx = TlsContext::create(co);
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  client.handshake();
  TlsError se = expect_error([&] { server.handshake(); });
  CHECK_EQ(std::string(se.code()), "ERR_TLS_HANDSHAKE");
  CHECK(!se.reason().empty());
  TlsError ce = expect_error([&] { client.handshake(); });
  CHECK_EQ(std::string(ce.code()), "ERR_TLS_HANDSHAKE");
}

TEST("echo: bytes written on one side are read on the other, both ways") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  // read/write drive the handshake themselves.
  uint8_t buf[64];
  CHECK_EQ(server.read(buf, sizeof buf), TlsSession::kWantRead);
  long w = TlsSession::kWantRead;
  for (int i = 0; i < kRounds && w < 0; i++) {
    w = client.write(reinterpret_cast<const uint8_t*>("hello"), 5);
    server.read(buf, 0);
  }
  CHECK_EQ(w, 5L);
  CHECK_EQ(drain(server), "hello");
  CHECK_EQ(client.write(reinterpret_cast<const uint8_t*>(""), 0), 0L);  // nothing to write: 0, not "would block"
  CHECK_EQ(exchange(server, client, "hello back"), "hello back");
  CHECK_EQ(exchange(client, server, "x"), "x");
}

TEST("writev: small buffers are gathered into one record; the count is exact") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  handshake_both(server, client);
  std::string a = "ab", b = "", c(20000, 'c'), d = "dd";
  iovec iov[4] = {{&a[0], a.size()}, {&b[0], 0}, {&c[0], c.size()}, {&d[0], d.size()}};
  size_t total = 0;
  std::string got;
  // Advance through the iovecs as a caller would after partial writes.
  std::string all = a + b + c + d;
  for (int i = 0; i < kRounds && got.size() < all.size(); i++) {
    if (total < all.size()) {
      iovec rest{&all[total], all.size() - total};
      long n = total == 0 ? client.writev(iov, 4) : client.writev(&rest, 1);
      if (n > 0) total += static_cast<size_t>(n);
    }
    got += drain(server);
  }
  CHECK_EQ(got.size(), all.size());
  CHECK(got == all);
}

TEST("large transfer: 16 MiB each way at once, byte for byte, with output backpressure") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  handshake_both(server, client);
  const size_t total = 16u << 20;
  std::vector<uint8_t> up(total), down(total);
  for (size_t i = 0; i < total; i++) {
    up[i] = pattern(i, 1);
    down[i] = pattern(i, 2);
  }
  size_t sent_up = 0, sent_down = 0, got_up = 0, got_down = 0;
  std::vector<uint8_t> buf(65536);
  bool saw_backpressure = false;
  for (long round = 0; round < 100000000 && (got_up < total || got_down < total); round++) {
    if (sent_up < total) {
      long n = client.write(up.data() + sent_up, total - sent_up);
      if (n > 0) sent_up += static_cast<size_t>(n);
      saw_backpressure = saw_backpressure || client.pending_output() > 0;
    }
    if (sent_down < total) {
      long n = server.write(down.data() + sent_down, std::min<size_t>(total - sent_down, 100000));
      if (n > 0) sent_down += static_cast<size_t>(n);
    }
    client.flush();
    server.flush();
    for (long n; (n = server.read(buf.data(), buf.size())) > 0; got_up += static_cast<size_t>(n))
      if (std::memcmp(buf.data(), up.data() + got_up, static_cast<size_t>(n)) != 0) CHECK(!"upload bytes differ");
    for (long n; (n = client.read(buf.data(), buf.size())) > 0; got_down += static_cast<size_t>(n))
      if (std::memcmp(buf.data(), down.data() + got_down, static_cast<size_t>(n)) != 0) CHECK(!"download bytes differ");
  }
  CHECK_EQ(got_up, total);
  CHECK_EQ(got_down, total);
  CHECK(saw_backpressure);
}

TEST("close_notify: shutdown() makes the peer read 0; the peer may still write back (half-close)") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  handshake_both(server, client);
  CHECK(client.shutdown());
  uint8_t buf[16];
  long n = TlsSession::kWantRead;
  for (int i = 0; i < kRounds && n < 0; i++) n = server.read(buf, sizeof buf);
  CHECK_EQ(n, 0L);
  CHECK(server.peer_closed());
  CHECK_EQ(exchange(server, client, "bye"), "bye");
  TlsError e = expect_error([&] { client.write(buf, 1); });
  CHECK_EQ(std::string(e.code()), "EPIPE");
}

TEST("end of stream: a FIN without close_notify after the handshake reads as 0") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  Pair p = socket_pair();
  TlsSession server(server_ctx, p.server.get());
  {
    TlsSession client(client_ctx, p.client.get(), to("localhost"));
    handshake_both(server, client);
    exchange(client, server, "x");
  }
  ::shutdown(p.client.get(), SHUT_WR);
  uint8_t buf[16];
  long n = TlsSession::kWantRead;
  for (int i = 0; i < kRounds && n < 0; i++) n = server.read(buf, sizeof buf);
  CHECK_EQ(n, 0L);
}

// ---------------------------------------------------------------------------
// SNI, ALPN, client certificates, resumption

TEST("SNI: the servername picks the certificate, exact and wildcard; unknown names get the default") {
  ContextOptions so = server_options();
  so.sni["other.test"] = identity("other");
  so.sni["*.wild.test"] = identity("other");
  auto server_ctx = TlsContext::create(so);
  auto client_ctx = TlsContext::create(client_options());
  for (const char* name : {"other.test", "A.Wild.Test", "localhost"}) {
    Link link(server_ctx, client_ctx, to(name));
    TlsSession& server = link.server;
    TlsSession& client = link.client;
    handshake_both(server, client);
    CHECK(client.info().authorized);
    std::string want = std::string(name) == "localhost" ? "O=amy,CN=localhost" : "O=amy,CN=other.test";
    HandshakeInfo info = client.info();
    CHECK_EQ(info.peer_certificate->subject, want);
    CHECK_EQ(server.info().servername, std::string(name));
  }
}

TEST("ALPN: the server's preference among the client's; no common protocol fails the handshake") {
  ContextOptions so = server_options();
  so.alpn = {"amy", "h2"};
  auto server_ctx = TlsContext::create(so);
  ContextOptions co = client_options();
  co.alpn = {"h2", "amy"};
  auto client_ctx = TlsContext::create(co);
  {
    Link link(server_ctx, client_ctx, to("localhost"));
    TlsSession& server = link.server;
    TlsSession& client = link.client;
    handshake_both(server, client);
    CHECK_EQ(server.info().alpn_protocol, "amy");
    CHECK_EQ(client.info().alpn_protocol, "amy");
  }
  ContextOptions other = client_options();
  other.alpn = {"http/1.1"};
  auto other_ctx = TlsContext::create(other);
  Link link(server_ctx, other_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  client.handshake();
  TlsError se = expect_error([&] { server.handshake(); });
  CHECK_EQ(std::string(se.code()), "ERR_TLS_HANDSHAKE");
  TlsError ce = expect_error([&] { client.handshake(); });
  CHECK_EQ(std::string(ce.code()), "ERR_TLS_HANDSHAKE");
  CHECK(ce.reason().find("no application protocol") != std::string::npos);
}

TEST("mTLS: a required client certificate is verified and reported; none fails with ERR_TLS_CERT_REQUIRED") {
  ContextOptions so = server_options();
  so.ca = fixture("ca.crt");
  so.request_cert = true;
  auto server_ctx = TlsContext::create(so);
  ContextOptions co = client_options();
  co.identity = identity("client");
  auto client_ctx = TlsContext::create(co);
  {
    Link link(server_ctx, client_ctx, to("localhost"));
    TlsSession& server = link.server;
    TlsSession& client = link.client;
    handshake_both(server, client);
    exchange(client, server, "x");  // TLS 1.3: the server verifies the client's flight
    HandshakeInfo s = server.info();
    CHECK(s.authorized);
    CHECK(s.peer_certificate.has_value());
    CHECK_EQ(s.peer_certificate->subject, "O=amy,CN=amy test client");
  }
  auto anonymous_ctx = TlsContext::create(client_options());
  Link link(server_ctx, anonymous_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  TlsError se = expect_error([&] {
    client.handshake();
    server.handshake();
  });
  CHECK_EQ(std::string(se.code()), "ERR_TLS_CERT_REQUIRED");
  TlsError ce = expect_error([&] {
    uint8_t b[8];
    client.read(b, sizeof b);
  });
  CHECK_EQ(std::string(ce.code()), "ERR_TLS_CERT_REJECTED");
}

TEST("mTLS: requestCert without rejectUnauthorized accepts an untrusted client and reports why") {
  ContextOptions so = server_options();
  so.ca = fixture("ca.crt");
  so.request_cert = true;
  so.reject_unauthorized = false;
  auto server_ctx = TlsContext::create(so);
  ContextOptions co = client_options();
  co.identity = identity("self");
  auto client_ctx = TlsContext::create(co);
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  handshake_both(server, client);
  exchange(client, server, "x");
  HandshakeInfo s = server.info();
  CHECK(!s.authorized);
  CHECK(s.peer_certificate.has_value());
  CHECK(!s.authorization_error.empty());
}

std::vector<uint8_t> first_session(const std::shared_ptr<TlsContext>& server_ctx,
                                   const std::shared_ptr<TlsContext>& client_ctx) {
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  handshake_both(server, client);
  exchange(server, client, "ticket please");  // TLS 1.3 tickets arrive after the handshake
  CHECK(!client.info().resumed);
  std::vector<uint8_t> session = client.session();
  CHECK(!session.empty());
  return session;
}

bool resumes(const std::shared_ptr<TlsContext>& server_ctx, const std::shared_ptr<TlsContext>& client_ctx,
             const std::vector<uint8_t>& session) {
  Link link(server_ctx, client_ctx, to("localhost", session));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  handshake_both(server, client);
  CHECK_EQ(server.info().resumed, client.info().resumed);
  return server.info().resumed;
}

TEST("resumption: a ticket resumes on the same context, TLS 1.3 and TLS 1.2") {
  auto server_ctx = TlsContext::create(server_options());
  auto client13 = TlsContext::create(client_options());
  CHECK(resumes(server_ctx, client13, first_session(server_ctx, client13)));
  ContextOptions co = client_options();
  co.max_version = TLS1_2_VERSION;
  auto client12 = TlsContext::create(co);
  CHECK(resumes(server_ctx, client12, first_session(server_ctx, client12)));
}

TEST("resumption: another thread finds the context by id and resumes a ticket issued here") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  std::vector<uint8_t> session = first_session(server_ctx, client_ctx);
  uint64_t id = server_ctx->id();
  Pair p = socket_pair();
  std::atomic<int> server_result{0};  // 1 resumed, 2 not resumed, 3 failed
  std::thread worker([&] {
    try {
      std::shared_ptr<TlsContext> found = context_registry::find(id);
      if (!found) {
        server_result = 3;
        return;
      }
      TlsSession server(found, p.server.get());
      for (int i = 0; i < kRounds * 10 && server.handshake() != 1; i++) {
        pollfd pf{p.server.get(), POLLIN, 0};
        ::poll(&pf, 1, 10);
      }
      server_result = server.handshake_complete() ? (server.info().resumed ? 1 : 2) : 3;
    } catch (...) {
      server_result = 3;
    }
  });
  TlsSession client(client_ctx, p.client.get(), to("localhost", session));
  for (int i = 0; i < kRounds * 10 && client.handshake() != 1; i++) {
    pollfd pf{p.client.get(), POLLIN, 0};
    ::poll(&pf, 1, 10);
  }
  worker.join();
  CHECK_EQ(server_result.load(), 1);
  CHECK(client.info().resumed);
}

TEST("resumption: shared ticketKeys resume across contexts (processes); other keys do not") {
  ContextOptions so = server_options();
  so.ticket_keys = std::string(48, 'k');
  auto a = TlsContext::create(so);
  auto b = TlsContext::create(so);
  auto c = TlsContext::create(server_options());
  CHECK_EQ(a->ticket_keys(), std::string(48, 'k'));
  CHECK_EQ(c->ticket_keys().size(), 48u);
  auto client_ctx = TlsContext::create(client_options());
  std::vector<uint8_t> session = first_session(a, client_ctx);
  CHECK(resumes(b, client_ctx, session));
  CHECK(!resumes(c, client_ctx, session));
}

TEST("registry: a context is found by id while alive, not after its last owner let go") {
  auto ctx = TlsContext::create(server_options());
  uint64_t id = ctx->id();
  CHECK(context_registry::find(id) == ctx);
  ctx.reset();
  CHECK(context_registry::find(id) == nullptr);
}

// ---------------------------------------------------------------------------
// Verification failures

TEST("verification: an untrusted (self-signed) server fails with ERR_TLS_CERT_UNTRUSTED; the server sees the alert") {
  ContextOptions so = server_options();
  so.identity = identity("self");
  auto server_ctx = TlsContext::create(so);
  auto client_ctx = TlsContext::create(client_options());
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  TlsError ce = expect_error([&] {
    client.handshake();
    server.handshake();
  });
  CHECK_EQ(std::string(ce.code()), "ERR_TLS_CERT_UNTRUSTED");
  CHECK_EQ(ce.reason(), "self-signed certificate");
  // The same error again on every later call.
  TlsError again = expect_error([&] { client.handshake(); });
  CHECK_EQ(std::string(again.code()), "ERR_TLS_CERT_UNTRUSTED");
  TlsError se = expect_error([&] { server.handshake(); });
  CHECK_EQ(std::string(se.code()), "ERR_TLS_CERT_REJECTED");
}

TEST("verification: a servername not in the certificate fails with ERR_TLS_CERT_ALTNAME_INVALID") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  Link link(server_ctx, client_ctx, to("wrong.test"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  TlsError ce = expect_error([&] {
    client.handshake();
    server.handshake();
  });
  CHECK_EQ(std::string(ce.code()), "ERR_TLS_CERT_ALTNAME_INVALID");
}

// A leaf for localhost signed by the test CA, valid only between
// now + from_days and now + to_days: expired or not yet valid on demand.
Identity dated_identity(long from_days, long to_days) {
  std::string ca_key_pem = fixture("ca.key");
  std::string ca_cert_pem = fixture("ca.crt");
  BioPtr kb(BIO_new_mem_buf(ca_key_pem.data(), static_cast<int>(ca_key_pem.size())));
  BioPtr cb(BIO_new_mem_buf(ca_cert_pem.data(), static_cast<int>(ca_cert_pem.size())));
  EvpPkeyPtr ca_key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  X509Ptr ca_cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  CHECK(ca_key && ca_cert);
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr cert(X509_new());
  CHECK(key && cert);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 4242);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), to_days * 86400);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  X509_set_pubkey(cert.get(), key.get());
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, ca_cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost");
  CHECK(san != nullptr);
  X509_add_ext(cert.get(), san, -1);
  X509_EXTENSION_free(san);
  CHECK(X509_sign(cert.get(), ca_key.get(), EVP_sha256()) > 0);
  BioPtr out_key(BIO_new(BIO_s_mem()));
  BioPtr out_cert(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(out_key.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_X509(out_cert.get(), cert.get());
  char* p = nullptr;
  long n = BIO_get_mem_data(out_key.get(), &p);
  std::string key_pem(p, static_cast<size_t>(n));
  n = BIO_get_mem_data(out_cert.get(), &p);
  std::string cert_pem(p, static_cast<size_t>(n));
  return Identity{key_pem, cert_pem, ""};
}

TEST("verification: an expired server certificate fails with ERR_TLS_CERT_EXPIRED, a future one with _NOT_YET_VALID") {
  auto client_ctx = TlsContext::create(client_options());
  for (auto [from, to_day, want] : {std::make_tuple(-10L, -1L, "ERR_TLS_CERT_EXPIRED"),
                                    std::make_tuple(5L, 10L, "ERR_TLS_CERT_NOT_YET_VALID")}) {
    ContextOptions so = server_options();
    so.identity = dated_identity(from, to_day);
    auto server_ctx = TlsContext::create(so);
    Link link(server_ctx, client_ctx, to("localhost"));
    TlsError e = expect_error([&] {
      link.client.handshake();
      link.server.handshake();
    });
    CHECK_EQ(std::string(e.code()), std::string(want));
  }
}

TEST("verification: rejectUnauthorized false completes and reports authorized false with the reason") {
  ContextOptions so = server_options();
  so.identity = identity("self");
  auto server_ctx = TlsContext::create(so);
  ContextOptions co = client_options();
  co.reject_unauthorized = false;
  auto client_ctx = TlsContext::create(co);
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  handshake_both(server, client);
  CHECK(!client.info().authorized);
  CHECK_EQ(client.info().authorization_error, "self-signed certificate");
}

// ---------------------------------------------------------------------------
// Bad input

TEST("garbage instead of a ClientHello: ERR_TLS_HANDSHAKE with OpenSSL's reason, kept for later calls") {
  auto server_ctx = TlsContext::create(server_options());
  Pair p = socket_pair();
  TlsSession server(server_ctx, p.server.get());
  const char request[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  raw_write(p.client.get(), request, sizeof request - 1);
  TlsError e = expect_error([&] { server.handshake(); });
  CHECK_EQ(std::string(e.code()), "ERR_TLS_HANDSHAKE");
  CHECK(!e.reason().empty());
  uint8_t buf[8];
  TlsError again = expect_error([&] { server.read(buf, sizeof buf); });
  CHECK_EQ(std::string(again.code()), "ERR_TLS_HANDSHAKE");
  // Binary garbage too.
  Pair q = socket_pair();
  TlsSession other(server_ctx, q.server.get());
  std::vector<uint8_t> junk(3000);
  for (size_t i = 0; i < junk.size(); i++) junk[i] = pattern(i, 7);
  junk[0] = 0x16;  // looks like a handshake record at first
  raw_write(q.client.get(), junk.data(), junk.size());
  TlsError e2 = expect_error([&] { other.handshake(); });
  CHECK_EQ(std::string(e2.code()), "ERR_TLS_HANDSHAKE");
}

TEST("a peer that stops mid-handshake: a FIN fails with ERR_TLS_HANDSHAKE; a stall just waits") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  std::vector<uint8_t> hello = client_hello(client_ctx);
  {
    Pair p = socket_pair();
    TlsSession server(server_ctx, p.server.get());
    raw_write(p.client.get(), hello.data(), hello.size() / 2);
    CHECK_EQ(server.handshake(), TlsSession::kWantRead);
    ::shutdown(p.client.get(), SHUT_WR);
    TlsError e = expect_error([&] { server.handshake(); });
    CHECK_EQ(std::string(e.code()), "ERR_TLS_HANDSHAKE");
    CHECK(std::string(e.what()).find("closed the connection during the TLS handshake") != std::string::npos);
  }
  {
    Pair p = socket_pair();
    TlsSession server(server_ctx, p.server.get());
    raw_write(p.client.get(), hello.data(), hello.size() / 2);
    for (int i = 0; i < 10; i++) CHECK_EQ(server.handshake(), TlsSession::kWantRead);
    // Destroyed mid-handshake: LeakSanitizer checks nothing is left.
  }
  {
    // The server's reply was sent and the client left before finishing.
    Pair p = socket_pair();
    TlsSession server(server_ctx, p.server.get());
    raw_write(p.client.get(), hello.data(), hello.size());
    CHECK_EQ(server.handshake(), TlsSession::kWantRead);
    p.client.reset();
    TlsError e = expect_error([&] { server.handshake(); });
    CHECK_EQ(std::string(e.code()), "ERR_TLS_HANDSHAKE");
  }
}

TEST("a peer that resets during the handshake: ERR_TLS_HANDSHAKE carrying ECONNRESET") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  std::vector<uint8_t> hello = client_hello(client_ctx);
  Pair p = tcp_pair();
  TlsSession server(server_ctx, p.server.get());
  raw_write(p.client.get(), hello.data(), hello.size());
  long status = TlsSession::kWantRead;
  for (int i = 0; i < kRounds && status == TlsSession::kWantRead; i++) {
    status = server.handshake();  // reads the hello, answers, waits for the client's Finished
    if (status == TlsSession::kWantRead && i > 0) break;
    ::usleep(0);
  }
  linger hard{1, 0};
  CHECK(::setsockopt(p.client.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0);
  p.client.reset();  // RST, with the server's flight unread
  TlsError e = expect_error([&] {
    pollfd pf{p.server.get(), POLLIN, 0};
    ::poll(&pf, 1, 100);
    server.handshake();
  });
  CHECK_EQ(std::string(e.code()), "ERR_TLS_HANDSHAKE");
  CHECK_EQ(e.sys_errno(), ECONNRESET);
  CHECK_EQ(std::string(e.syscall()), "read");
}

// Completes a handshake, then writes `record` past TLS, straight to the
// client's fd; returns the server's error on reading it.
TlsError server_error_on_raw_record(const std::vector<uint8_t>& record) {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  Link link(server_ctx, client_ctx, to("localhost"));
  handshake_both(link.server, link.client);
  exchange(link.client, link.server, "x");
  raw_write(link.fds.client.get(), record.data(), record.size());
  uint8_t buf[64];
  return expect_error([&] { link.server.read(buf, sizeof buf); });
}

TEST("an oversized record after the handshake: ERR_TLS_PROTOCOL with OpenSSL's reason") {
  // application_data, TLS 1.2 legacy version, length 0x4801 (> 2^14 + 256).
  std::vector<uint8_t> record = {0x17, 0x03, 0x03, 0x48, 0x01};
  record.resize(record.size() + 2000, 0xAB);
  TlsError e = server_error_on_raw_record(record);
  CHECK_EQ(std::string(e.code()), "ERR_TLS_PROTOCOL");
  CHECK(!e.reason().empty());
}

TEST("a tampered record after the handshake: ERR_TLS_PROTOCOL (bad record mac)") {
  std::vector<uint8_t> record = {0x17, 0x03, 0x03, 0x00, 0x40};
  record.resize(record.size() + 0x40, 0x5A);
  TlsError e = server_error_on_raw_record(record);
  CHECK_EQ(std::string(e.code()), "ERR_TLS_PROTOCOL");
  CHECK(e.reason().find("bad record mac") != std::string::npos);
}

TEST("renegotiation: a TLS 1.2 client's renegotiation attempt is refused and ends the connection") {
  auto server_ctx = TlsContext::create(server_options());
  Pair p = socket_pair();
  TlsSession server(server_ctx, p.server.get());
  // A raw OpenSSL client: TlsSession's own clients never renegotiate.
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_2_VERSION);
  SslPtr ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), p.client.get());
  SSL_set_connect_state(ssl.get());
  for (int i = 0; i < kRounds; i++) {
    int r = SSL_do_handshake(ssl.get());
    if (server.handshake() == 1 && r == 1) break;
  }
  CHECK(server.handshake_complete());
  CHECK_EQ(SSL_renegotiate(ssl.get()), 1);
  SSL_do_handshake(ssl.get());  // sends the new ClientHello
  ERR_clear_error();
  uint8_t buf[64];
  TlsError e = expect_error([&] {
    server.read(buf, sizeof buf);
    char b[16];
    SSL_read(ssl.get(), b, sizeof b);
    ERR_clear_error();
  });
  CHECK_EQ(std::string(e.code()), "ERR_TLS_RENEGOTIATION");
  ERR_clear_error();
}

TEST("a peer reset after the handshake: the errno's code (ECONNRESET/EPIPE), as on plain TCP") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  Pair p = tcp_pair();
  TlsSession server(server_ctx, p.server.get());
  {
    TlsSession client(client_ctx, p.client.get(), to("localhost"));
    for (int i = 0; i < kRounds; i++) {
      long a = server.handshake();
      long b = client.handshake();
      if (a == 1 && b == 1) break;
      pollfd pf[2] = {{p.server.get(), POLLIN, 0}, {p.client.get(), POLLIN, 0}};
      ::poll(pf, 2, 10);
    }
    CHECK(client.handshake_complete());
  }
  linger hard{1, 0};
  CHECK(::setsockopt(p.client.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0);
  p.client.reset();
  std::vector<uint8_t> big(1 << 20, 'x');
  TlsError e = expect_error([&] {
    server.write(big.data(), big.size());
    uint8_t b[64];
    server.read(b, sizeof b);
    pollfd pf{p.server.get(), POLLIN | POLLOUT, 0};
    ::poll(&pf, 1, 10);
  });
  std::string code = e.code();
  CHECK(code == "ECONNRESET" || code == "EPIPE");
  CHECK(e.sys_errno() == ECONNRESET || e.sys_errno() == EPIPE);
}

// ---------------------------------------------------------------------------
// Context options

TEST("context: bad key, wrong passphrase, mismatched key, bad cert/ca/ciphers/options throw their codes") {
  auto code_of = [](const ContextOptions& o) -> std::string {
    try {
      TlsContext::create(o);
    } catch (const TlsError& e) {
      return e.code();
    }
    return "no error";
  };
  ContextOptions o = server_options();
  o.identity.key = "not a key";
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_KEY");
  o = server_options();
  o.identity.key = fixture("server-encrypted.key");
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_KEY");  // no passphrase
  o.identity.passphrase = "wrong";
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_KEY");
  o.identity.passphrase = "amy-test";
  CHECK_EQ(code_of(o), "no error");
  o = server_options();
  o.identity.key = fixture("other.key");
  CHECK_EQ(code_of(o), "ERR_TLS_KEY_MISMATCH");
  o = server_options();
  o.identity.cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_CERT");
  o = server_options();
  o.ca = "nothing";
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_CA");
  o = server_options();
  o.ciphers = "NO-SUCH-CIPHER";
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_CIPHERS");
  o.ciphers = "TLS_NO_SUCH_SUITE";
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_CIPHERS");
  o.ciphers = "TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256";
  CHECK_EQ(code_of(o), "no error");
  o = server_options();
  o.ticket_keys = "short";
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_OPTION");
  o = server_options();
  o.alpn = {""};
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_OPTION");
  o = server_options();
  o.identity = Identity{};
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_OPTION");
  o = server_options();
  o.min_version = TLS1_3_VERSION;
  o.max_version = TLS1_2_VERSION;
  CHECK_EQ(code_of(o), "ERR_TLS_INVALID_OPTION");
  CHECK_EQ(ERR_peek_error(), 0UL);  // the thread's error queue is left clean
}

TEST("context: a cipher restriction is honoured (the agreed TLS 1.3 suite)") {
  ContextOptions so = server_options();
  so.ciphers = "TLS_CHACHA20_POLY1305_SHA256";
  auto server_ctx = TlsContext::create(so);
  auto client_ctx = TlsContext::create(client_options());
  Link link(server_ctx, client_ctx, to("localhost"));
  TlsSession& server = link.server;
  TlsSession& client = link.client;
  handshake_both(server, client);
  CHECK_EQ(client.info().cipher, "TLS_CHACHA20_POLY1305_SHA256");
}

TEST("session: a client session on a server context (and the reverse) is refused") {
  auto server_ctx = TlsContext::create(server_options());
  auto client_ctx = TlsContext::create(client_options());
  CHECK_THROWS(TlsSession(client_ctx, 0), TlsError);
  CHECK_THROWS(TlsSession(server_ctx, 0, to("localhost")), TlsError);
  std::vector<uint8_t> bad = {1, 2, 3};
  CHECK_THROWS(TlsSession(client_ctx, 0, to("localhost", bad)), TlsError);
  CHECK_EQ(ERR_peek_error(), 0UL);
}

int main() { return check::run_all(describe_tls); }
