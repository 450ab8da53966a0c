// Copied from the team's shared benchmark harness (shared/bench/proxy/splice_proxy.c) so that
// `npm run bench` and its published figures are reproducible from a clone alone.
// splice_proxy.c - minimal C TCP proxy, the "physical limit" of a userspace
// proxy on this machine.
//
// One thread, edge-triggered epoll. Per client connection: a non-blocking
// connect to the upstream and, per direction, either
//   MODE=splice (default)  a pipe: socket -> pipe -> socket with splice(2);
//                          payload never enters user memory
//   MODE=copy              a 64 KiB user buffer: recv(2) then send(2)
// A direction reads only when its pipe/buffer is empty, so EAGAIN on the
// read side always means "socket drained", and a full destination stops the
// reading (backpressure) until the destination's EPOLLOUT edge.
// Half-close is forwarded (EOF on one side -> shutdown(SHUT_WR) on the other
// once the pipe is flushed); errors close both sides.
//
// env: PORT (listen on 127.0.0.1), UPSTREAM_HOST [127.0.0.1], UPSTREAM_PORT,
//      MODE [splice], PIPE_SIZE [262144] (splice mode: F_SETPIPE_SZ)
// Prints "READY ..." on stdout once listening.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 64
#define COPY_BUF (64 * 1024)

typedef struct {
  int from, to;       // sockets
  int pr, pw;         // splice: pipe read / write ends
  char *buf;          // copy: user buffer
  size_t off, len;    // pending bytes: pipe holds len; buffer holds [off, len)
  int eof, shut;      // saw EOF on `from` / sent SHUT_WR on `to`
} dir_t;

typedef struct sess sess_t;
typedef struct {      // epoll cookie: which socket of which session
  sess_t *s;
  int side;           // 0 client, 1 upstream, -1 listener
} ref_t;

struct sess {
  int cfd, ufd, connecting, dead;
  dir_t d[2];         // d[0] client -> upstream, d[1] upstream -> client
  ref_t rc, ru;       // d[side] reads from that side's socket
  sess_t *next_dead;
};

static struct sockaddr_in g_up;
static int g_splice = 1, g_pipe_size = 256 * 1024;
static ref_t g_lref = {NULL, -1};
static sess_t *g_dead;  // closed in this epoll batch; freed after it (the
                        // batch may still hold an event for its other fd)

static void die(const char *what) { perror(what); exit(1); }

static void sess_close(sess_t *s) {
  close(s->cfd);  // close() also drops the fds from the epoll set
  close(s->ufd);
  for (int i = 0; i < 2; i++) {
    if (s->d[i].pr >= 0) close(s->d[i].pr);
    if (s->d[i].pw >= 0) close(s->d[i].pw);
    free(s->d[i].buf);
  }
  s->dead = 1;
  s->next_dead = g_dead;
  g_dead = s;
}

// Write out what is pending: 1 all flushed, 0 destination full, -1 error.
static int flush(dir_t *d) {
  while (d->len > d->off) {
    ssize_t n = g_splice
        ? splice(d->pr, NULL, d->to, NULL, d->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
        : send(d->to, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
    if (n > 0) {
      if (g_splice) d->len -= (size_t)n;
      else if ((d->off += (size_t)n) == d->len) d->off = d->len = 0;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;  // resumed by EPOLLOUT on `to`
    return -1;
  }
  return 1;
}

// Move bytes one way until the source is drained or the destination is
// full. `hup`: the source hung up, so read on to EOF. Returns -1 on error.
static int pump(dir_t *d, int hup) {
  for (;;) {
    int f = flush(d);
    if (f <= 0) return f;
    if (d->eof) {
      if (!d->shut) { shutdown(d->to, SHUT_WR); d->shut = 1; }
      return 0;
    }
    size_t want = g_splice ? (size_t)g_pipe_size : COPY_BUF;
    ssize_t n = g_splice ? splice(d->from, NULL, d->pw, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                         : recv(d->from, d->buf, want, 0);
    if (n > 0) {
      d->len = (size_t)n;
      // copy: a short recv drained the socket (new data raises a new edge);
      // splice: a short read may just mean the pipe's slots ran out
      if (!g_splice && (size_t)n < want && !hup) return flush(d) < 0 ? -1 : 0;
      continue;
    }
    if (n == 0) { d->eof = 1; continue; }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;  // buffer was empty: the socket is drained
    return -1;
  }
}

static void on_event(sess_t *s, int side, uint32_t evs) {
  if (evs & EPOLLERR) goto fail;  // reset or refused: drop both sides
  int hup = (evs & (EPOLLRDHUP | EPOLLHUP)) != 0;
  if (s->connecting) {
    if (side != 1 || !(evs & (EPOLLOUT | EPOLLHUP))) return;  // client bytes wait
    s->connecting = 0;
    if (pump(&s->d[0], 1) < 0 || pump(&s->d[1], hup) < 0) goto fail;
  } else {
    // A direction with pending output ignores its source's edges; once its
    // destination drains it reads on to EAGAIN/EOF (hup=1: a FIN may have
    // arrived while it was blocked).
    dir_t *in = &s->d[side], *out = &s->d[1 - side];  // reads from / writes to this socket
    if ((evs & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && in->len == in->off && pump(in, hup) < 0) goto fail;
    if ((evs & (EPOLLOUT | EPOLLHUP)) && out->len > out->off && pump(out, 1) < 0) goto fail;
  }
  if (s->d[0].shut && s->d[1].shut) sess_close(s);  // both halves finished
  return;
fail:
  sess_close(s);
}

static void accept_some(int ep, int lfd) {
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) perror("accept4");
      return;
    }
    sess_t *s = calloc(1, sizeof *s);
    if (!s) { close(cfd); continue; }
    s->cfd = cfd;
    s->ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    s->connecting = 1;
    s->rc = (ref_t){s, 0};
    s->ru = (ref_t){s, 1};
    int ok = s->ufd >= 0;
    for (int k = 0; k < 2; k++) {
      dir_t *d = &s->d[k];
      d->from = k ? s->ufd : cfd;
      d->to = k ? cfd : s->ufd;
      d->pr = d->pw = -1;
      if (g_splice) {
        int p[2];
        if (ok && pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
          d->pr = p[0], d->pw = p[1];
          fcntl(d->pw, F_SETPIPE_SZ, g_pipe_size);  // best effort (default 64 KiB)
        } else ok = 0;
      } else if (!(d->buf = malloc(COPY_BUF))) ok = 0;
    }
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ok) setsockopt(s->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!ok || (connect(s->ufd, (struct sockaddr *)&g_up, sizeof g_up) < 0 && errno != EINPROGRESS)) {
      perror("session setup / connect upstream");
      sess_close(s);
      continue;
    }
    uint32_t ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    struct epoll_event ec = {.events = ev, .data.ptr = &s->rc}, eu = {.events = ev, .data.ptr = &s->ru};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ec) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s->ufd, &eu) < 0) {
      perror("epoll_ctl");
      sess_close(s);
    }
  }
}

int main(void) {
  const char *ps = getenv("PORT"), *uh = getenv("UPSTREAM_HOST"), *up = getenv("UPSTREAM_PORT");
  const char *mode = getenv("MODE") ? getenv("MODE") : "splice";
  int port = ps ? atoi(ps) : 0, uport = up ? atoi(up) : 0;
  if (getenv("PIPE_SIZE")) g_pipe_size = atoi(getenv("PIPE_SIZE"));
  if (!uh || !*uh) uh = "127.0.0.1";
  g_splice = !strcmp(mode, "splice");
  g_up = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)uport)};
  if (port <= 0 || port > 65535 || uport <= 0 || uport > 65535 || g_pipe_size < 4096 ||
      (!g_splice && strcmp(mode, "copy")) || inet_pton(AF_INET, uh, &g_up.sin_addr) != 1) {
    fprintf(stderr, "usage: PORT=P UPSTREAM_HOST=A UPSTREAM_PORT=Q [MODE=splice|copy] [PIPE_SIZE=B] splice_proxy\n");
    return 64;
  }
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  if (lfd < 0) die("socket");
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&la, sizeof la) < 0) die("bind");
  if (listen(lfd, SOMAXCONN) < 0) die("listen");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &g_lref};  // level-triggered
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl");
  printf("READY splice_proxy mode=%s port=%d upstream=%s:%d\n", mode, port, uh, uport);
  fflush(stdout);

  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      ref_t *r = evs[i].data.ptr;
      if (r->side < 0) accept_some(ep, lfd);
      else if (!r->s->dead) on_event(r->s, r->side, evs[i].events);
    }
    while (g_dead) {  // now no event of this batch can refer to them
      sess_t *s = g_dead;
      g_dead = s->next_dead;
      free(s);
    }
  }
}
