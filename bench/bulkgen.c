// Copied from the team's shared benchmark harness (shared/bench/proxy/bulkgen.c) so that
// `npm run bench` and its published figures are reproducible from a clone alone.
// bulkgen.c - bulk TCP bandwidth through an echo path (Linux only).
//
// N connections each push BYTES of their own pseudo-random stream (seeded by
// the connection id) and read the echo back, full duplex, and verify every
// byte with memcmp against what was sent: cross-talk, loss, duplication,
// reordering or corruption fail the run (exit 2). The clock starts once all
// connections are established and stops when the last byte of the last
// connection is back. mbytes_per_s = N*BYTES / elapsed (payload one way,
// 1 MB = 1e6 bytes), like loadgen's.
//
// --half-close: shutdown(SHUT_WR) once everything is sent, and require EOF
// right after the last echoed byte (checks that a proxy forwards FIN both
// ways without losing the tail).
//
// usage: bulkgen --port P [--host 127.0.0.1] [--conns 8] [--mib 64] [--timeout 60]
//                [--half-close]
// Output: one JSON line on stdout. Exit 0 ok, 1 incomplete/errors, 2 corrupt.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1024 * 1024)  // max bytes per send()/recv()

typedef struct {
  int fd, id, done, shut, eof;
  int failed;              // 1 error, 2 corrupt
  unsigned char *buf;      // the whole stream (= expected echo)
  size_t sent, recvd;
  double t_done;           // seconds since start
} conn_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void fill(unsigned char *b, size_t n, int id) {  // xorshift64 words
  uint64_t x = ((uint64_t)id + 1) * 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    memcpy(b + i, &x, n - i < 8 ? n - i : 8);
  }
}

static void usage(void) {
  fprintf(stderr, "usage: bulkgen --port P [--host H] [--conns N] [--mib M] [--timeout S] [--half-close]\n");
  exit(64);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, nconns = 8, mib = 64, timeout_s = 60, half_close = 0, o;
  static struct option opts[] = {{"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"conns", 1, 0, 'c'},
                                 {"mib", 1, 0, 'm'},  {"timeout", 1, 0, 't'}, {"half-close", 0, 0, 'H'},
                                 {0, 0, 0, 0}};
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'h') host = optarg;
    else if (o == 'p') port = atoi(optarg);
    else if (o == 'c') nconns = atoi(optarg);
    else if (o == 'm') mib = atoi(optarg);
    else if (o == 't') timeout_s = atoi(optarg);
    else if (o == 'H') half_close = 1;
    else usage();
  }
  if (port <= 0 || port > 65535 || nconns < 1 || nconns > 1024 || mib < 1 || mib > 4096 ||
      timeout_s < 1 || timeout_s > 3600)
    usage();
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) usage();
  signal(SIGPIPE, SIG_IGN);
  alarm((unsigned)timeout_s + 30);  // hard stop whatever happens

  size_t bytes = (size_t)mib << 20;
  conn_t *cs = calloc((size_t)nconns, sizeof *cs);
  unsigned char *scratch = malloc(CHUNK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (!cs || !scratch || ep < 0) { perror("setup"); return 1; }
  for (int i = 0; i < nconns; i++) {  // streams are built before the clock starts
    cs[i].id = i;
    if (!(cs[i].buf = malloc(bytes))) { perror("malloc"); return 1; }
    fill(cs[i].buf, bytes, i);
  }
  uint64_t errors = 0, corrupt = 0, connected = 0;
  for (int i = 0; i < nconns; i++) {  // blocking connects, then non-blocking I/O
    conn_t *c = &cs[i];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
      errors++; c->failed = c->done = 1;
      if (c->fd >= 0) close(c->fd);
      c->fd = -1;
      continue;
    }
    connected++;
  }
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)timeout_s * 1000000000ull;
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &cs[i];
    if (c->fd < 0) continue;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) { perror("epoll_ctl"); return 1; }
  }

  int left = (int)connected;
  struct epoll_event evs[64];
  while (left > 0) {
    uint64_t now = now_ns();
    if (now >= deadline) break;
    int n = epoll_wait(ep, evs, 64, 100);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->done) continue;
      // Send while the socket takes it, then drain and verify what came back.
      while (c->sent < bytes) {
        size_t want = bytes - c->sent < CHUNK ? bytes - c->sent : CHUNK;
        ssize_t k = send(c->fd, c->buf + c->sent, want, MSG_NOSIGNAL);
        if (k > 0) { c->sent += (size_t)k; continue; }
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) break;
        c->failed = 1;
        break;
      }
      if (half_close && c->sent == bytes && !c->shut) { shutdown(c->fd, SHUT_WR); c->shut = 1; }
      while (!c->failed && (c->recvd < bytes || half_close)) {  // half-close: on to EOF
        ssize_t k = recv(c->fd, scratch, CHUNK, 0);
        if (k > 0) {
          if (c->recvd + (size_t)k > bytes || memcmp(scratch, c->buf + c->recvd, (size_t)k)) {
            if (corrupt++ == 0)
              fprintf(stderr, "bulkgen: CORRUPT echo on conn %d at offset %zu\n", c->id, c->recvd);
            c->failed = 2;  // counted as corrupt, not as an error
            break;
          }
          c->recvd += (size_t)k;
          continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno == EAGAIN) break;
        if (k == 0 && c->recvd == bytes) c->eof = 1;
        else c->failed = 1;  // EOF or error before everything came back
        break;
      }
      if (c->failed || (c->recvd == bytes && (c->eof || !half_close))) {
        if (c->failed == 1) errors++;
        c->done = 1;
        c->t_done = (double)(now_ns() - t0) / 1e9;
        close(c->fd);
        c->fd = -1;
        left--;
      }
    }
  }
  uint64_t t1 = now_ns();
  getrusage(RUSAGE_SELF, &ru1);
  int complete = 0;
  double tmin = 1e9, tmax = 0;
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &cs[i];
    if (c->fd >= 0) { close(c->fd); errors++; }  // timed out
    if (c->done && !c->failed) {
      complete++;
      if (c->t_done < tmin) tmin = c->t_done;
      if (c->t_done > tmax) tmax = c->t_done;
    }
  }
  double secs = (double)(t1 - t0) / 1e9;
  double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
               (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  printf("{\"mode\":\"%s\",\"conns\":%d,\"mib_per_conn\":%d,\"complete\":%d,\"elapsed_s\":%.3f,"
         "\"mbytes_per_s\":%.1f,\"conn_first_s\":%.3f,\"conn_last_s\":%.3f,"
         "\"errors\":%llu,\"corrupt\":%llu,\"lg_cpu\":%.2f}\n",
         half_close ? "bulk-half-close" : "bulk", nconns, mib, complete, secs,
         complete == nconns ? (double)bytes * nconns / secs / 1e6 : 0.0,
         complete ? tmin : 0.0, complete ? tmax : 0.0,
         (unsigned long long)errors, (unsigned long long)corrupt, secs > 0 ? cpu / secs : 0.0);
  fflush(stdout);
  if (corrupt) return 2;
  return complete == nconns && !errors ? 0 : 1;
}
