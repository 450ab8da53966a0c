// Copied from the team's shared benchmark harness (shared/bench/chat/c_chat_epoll.c) so that
// `npm run bench` and its published figures are reproducible from a clone alone.
// c_chat_epoll.c - the chat anchor's ceiling: a single-threaded C epoll chat
// server speaking chat_node_net.js's line protocol.
//   /nick NAME   set the nick (default "anon")
//   /join ROOM   leave the current room and join ROOM
//   other lines  relayed as "NAME: text\n" to every other client in the room
// Edge-triggered epoll; every relayed line is formatted once and appended to
// each peer's output buffer; buffers are flushed once per epoll batch (so a
// peer gets one write per batch, not one per line), and on EPOLLOUT when a
// write came back short. No slow-consumer policy (like the node:net one).
// env PORT (127.0.0.1). Prints "READY c_chat_epoll port=N".
#define _GNU_SOURCE
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

#define MAX_LINE (64 * 1024)
#define MAX_ROOMS 4096

typedef struct client client;
typedef struct room {
  char name[64];
  client **members;
  int n, cap;
} room;

struct client {
  int fd;
  char nick[64];
  int room;   // index into rooms, -1 if none
  int slot;   // index in the room's members
  char *in;
  size_t in_len;
  char *out;
  size_t out_len, out_off, out_cap;
  int dirty;
};

static room rooms[MAX_ROOMS];
static int nrooms;
static client **dirty;
static int ndirty, dirty_cap;

static void die(const char *what) { perror(what); exit(1); }

static int find_room(const char *name) {
  for (int i = 0; i < nrooms; i++)
    if (strcmp(rooms[i].name, name) == 0) return i;
  if (nrooms == MAX_ROOMS) return -1;
  snprintf(rooms[nrooms].name, sizeof rooms[nrooms].name, "%s", name);
  return nrooms++;
}

static void leave(client *c) {
  if (c->room < 0) return;
  room *r = &rooms[c->room];
  client *last = r->members[--r->n];
  r->members[c->slot] = last;
  last->slot = c->slot;
  c->room = -1;
}

static void join(client *c, const char *name) {
  leave(c);
  int i = find_room(name);
  if (i < 0) return;
  room *r = &rooms[i];
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->members = realloc(r->members, sizeof(client *) * r->cap);
    if (!r->members) die("realloc");
  }
  c->room = i;
  c->slot = r->n;
  r->members[r->n++] = c;
}

static void append(client *c, const char *p, size_t n) {
  if (c->out_len + n > c->out_cap) {
    if (c->out_off > 0) {  // compact first
      memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
      c->out_len -= c->out_off;
      c->out_off = 0;
    }
    while (c->out_len + n > c->out_cap) c->out_cap = c->out_cap ? c->out_cap * 2 : 4096;
    c->out = realloc(c->out, c->out_cap);
    if (!c->out) die("realloc");
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  if (!c->dirty) {
    c->dirty = 1;
    if (ndirty == dirty_cap) {
      dirty_cap = dirty_cap ? dirty_cap * 2 : 1024;
      dirty = realloc(dirty, sizeof(client *) * dirty_cap);
      if (!dirty) die("realloc");
    }
    dirty[ndirty++] = c;
  }
}

static void flush(client *c) {
  while (c->out_off < c->out_len) {
    ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: EPOLLOUT will come; an error: the read side sees it
    }
    c->out_off += (size_t)w;
  }
  c->out_off = c->out_len = 0;
}

static void on_line(client *c, char *line, size_t n) {
  if (n > 0 && line[n - 1] == '\r') n--;
  line[n] = 0;
  if (strncmp(line, "/nick ", 6) == 0) {
    snprintf(c->nick, sizeof c->nick, "%s", line + 6);
  } else if (strncmp(line, "/join ", 6) == 0) {
    join(c, line + 6);
  } else if (c->room >= 0 && n > 0) {
    static char msg[MAX_LINE + 128];
    int len = snprintf(msg, sizeof msg, "%s: %.*s\n", c->nick, (int)n, line);
    room *r = &rooms[c->room];
    for (int i = 0; i < r->n; i++)
      if (r->members[i] != c) append(r->members[i], msg, (size_t)len);
  }
}

static void drop(int ep, client *c) {
  leave(c);
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;  // freed after the batch: it may still be on the dirty list
}

// Returns 0 when the client is gone.
static int on_readable(int ep, client *c) {
  for (;;) {
    ssize_t r = read(c->fd, c->in + c->in_len, MAX_LINE - c->in_len);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return 1;
      drop(ep, c);
      return 0;
    }
    if (r == 0) { drop(ep, c); return 0; }
    c->in_len += (size_t)r;
    size_t start = 0;
    for (size_t i = c->in_len - (size_t)r; i < c->in_len; i++) {
      if (c->in[i] == '\n') {
        on_line(c, c->in + start, i - start);
        start = i + 1;
      }
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    if (c->in_len == MAX_LINE) { drop(ep, c); return 0; }  // no newline in sight
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const char *p = getenv("PORT");
  int port = p ? atoi(p) : 9000;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ls < 0) die("socket");
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(ls, 4096) < 0) die("listen");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0) die("epoll_ctl");
  printf("READY c_chat_epoll port=%d\n", port);
  fflush(stdout);

  struct epoll_event evs[512];
  client **gone = NULL;
  int ngone = 0, gone_cap = 0;
  for (;;) {
    int n = epoll_wait(ep, evs, 512, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      client *c = evs[i].data.ptr;
      if (c == NULL) {  // listener
        for (;;) {
          int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          client *nc = calloc(1, sizeof *nc);
          if (!nc) die("calloc");
          nc->fd = fd;
          nc->room = -1;
          strcpy(nc->nick, "anon");
          nc->in = malloc(MAX_LINE + 1);
          if (!nc->in) die("malloc");
          struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = nc};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) die("epoll_ctl");
        }
        continue;
      }
      if (c->fd < 0) continue;
      if (evs[i].events & EPOLLOUT) flush(c);
      if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (!on_readable(ep, c)) {
          if (ngone == gone_cap) {
            gone_cap = gone_cap ? gone_cap * 2 : 64;
            gone = realloc(gone, sizeof(client *) * gone_cap);
            if (!gone) die("realloc");
          }
          gone[ngone++] = c;
        }
      }
    }
    for (int i = 0; i < ndirty; i++) {
      client *c = dirty[i];
      c->dirty = 0;
      if (c->fd >= 0) flush(c);
    }
    ndirty = 0;
    for (int i = 0; i < ngone; i++) {
      free(gone[i]->in);
      free(gone[i]->out);
      free(gone[i]);
    }
    ngone = 0;
  }
}
