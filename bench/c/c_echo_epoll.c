// Copied from the team's shared benchmark harness (shared/bench/c_echo_epoll.c) so that
// `npm run bench` and its published figures are reproducible from a clone alone.
// c_echo_epoll.c - reference TCP echo server (the "physical limit").
//
// Edge-triggered epoll, non-blocking sockets, TCP_NODELAY. Two shapes:
//   --mode reuseport  T threads, each with its own SO_REUSEPORT listener and
//                     its own epoll; the kernel spreads connections by hash.
//   --mode handoff    the main thread accepts (blocking accept4) and hands
//                     each new fd round-robin to one of T worker threads,
//                     each with its own epoll ("accept then hand off").
// Partial writes: unsent bytes are parked per connection and the connection
// stops reading until EPOLLOUT lets the backlog drain (backpressure).
//
// usage: c_echo_epoll [--port P | env PORT] [--threads T] [--mode M] [--host A]
// Prints "READY ..." on stdout once every listener is accepting.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SCRATCH (64 * 1024)   // per-thread read buffer
#define ACCEPT_BATCH 64       // accepts per listener wakeup (fairness)

typedef struct {
  int fd;
  int listener;               // 1: this is a listening socket
  char *pend;                 // parked bytes not yet written (<= SCRATCH)
  size_t plen, poff;
} conn_t;

typedef struct {
  int ep;
  pthread_t tid;
  conn_t *listener;           // reuseport mode only
} worker_t;

static void die(const char *what) { perror(what); exit(1); }

static int make_listener(const char *host, int port, int reuseport) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (reuseport ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    die("SO_REUSEPORT");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) die("bad --host");
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(fd, SOMAXCONN) < 0) die("listen");
  return fd;
}

// Register an accepted, non-blocking fd with a worker's epoll.
static void add_conn(int ep, int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  conn_t *c = calloc(1, sizeof *c);
  if (!c) { close(fd); return; }
  c->fd = fd;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { close(fd); free(c); }
}

static void conn_close(conn_t *c) {
  close(c->fd);  // also drops it from the epoll set
  free(c->pend);
  free(c);
}

// Echo whatever is readable. Edge-triggered rules: keep going until a
// syscall says EAGAIN. A short read also means "drained" (new data raises a
// new edge) unless the peer hung up, in which case we read on to EOF.
static void service(conn_t *c, uint32_t evs, char *buf) {
  int hup = (evs & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
  for (;;) {
    if (c->poff < c->plen) {  // flush the backlog before reading more
      ssize_t n = send(c->fd, c->pend + c->poff, c->plen - c->poff, MSG_NOSIGNAL);
      if (n > 0) {
        c->poff += (size_t)n;
        if (c->poff == c->plen) c->poff = c->plen = 0;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;  // the EPOLLOUT edge resumes us
      break;
    }
    ssize_t n = recv(c->fd, buf, SCRATCH, 0);
    if (n > 0) {
      ssize_t w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) break;
        w = 0;
      }
      if (w < n) {  // park the rest; the loop retries once, then waits
        if (!c->pend && !(c->pend = malloc(SCRATCH))) break;
        memcpy(c->pend, buf + w, (size_t)(n - w));
        c->poff = 0;
        c->plen = (size_t)(n - w);
        continue;
      }
      if (n < SCRATCH && !hup) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    break;  // EOF or error
  }
  conn_close(c);
}

static void accept_some(worker_t *w, int lfd) {
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) { add_conn(w->ep, fd); continue; }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN) perror("accept4");
    return;
  }
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  char *buf = malloc(SCRATCH);
  struct epoll_event evs[256];
  if (!buf) die("malloc");
  for (;;) {
    int n = epoll_wait(w->ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->listener) accept_some(w, c->fd);
      else service(c, evs[i].events, buf);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *mode = "reuseport";
  int port = getenv("PORT") ? atoi(getenv("PORT")) : 0, threads = 1, o;
  static struct option opts[] = {{"port", 1, 0, 'p'}, {"threads", 1, 0, 't'},
                                 {"mode", 1, 0, 'm'}, {"host", 1, 0, 'h'}, {0, 0, 0, 0}};
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'p') port = atoi(optarg);
    else if (o == 't') threads = atoi(optarg);
    else if (o == 'm') mode = optarg;
    else if (o == 'h') host = optarg;
    else return 64;
  }
  int reuseport = !strcmp(mode, "reuseport");
  if (port <= 0 || threads < 1 || threads > 256 || (!reuseport && strcmp(mode, "handoff"))) {
    fprintf(stderr, "usage: c_echo_epoll --port P --threads T --mode reuseport|handoff\n");
    return 64;
  }
  signal(SIGPIPE, SIG_IGN);

  worker_t *ws = calloc((size_t)threads, sizeof *ws);
  int hfd = reuseport ? -1 : make_listener(host, port, 0);
  for (int i = 0; i < threads; i++) {
    if ((ws[i].ep = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
    if (reuseport) {  // one listener per thread, level-triggered
      conn_t *l = calloc(1, sizeof *l);
      l->fd = make_listener(host, port, 1);
      l->listener = 1;
      ws[i].listener = l;
      struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
      if (epoll_ctl(ws[i].ep, EPOLL_CTL_ADD, l->fd, &ev) < 0) die("epoll_ctl");
    }
  }
  for (int i = 0; i < threads; i++)
    if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i])) die("pthread_create");
  printf("READY c_echo_epoll mode=%s threads=%d port=%d\n", mode, threads, port);
  fflush(stdout);

  if (reuseport) {
    pthread_join(ws[0].tid, NULL);  // workers never return
    return 0;
  }
  for (unsigned rr = 0;; rr++) {  // handoff: accept, then pass the fd on
    int fd = accept4(hfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("accept4");
      if (errno == EMFILE || errno == ENFILE) usleep(1000);
      continue;
    }
    add_conn(ws[rr % (unsigned)threads].ep, fd);  // epoll_ctl is thread-safe
  }
}
