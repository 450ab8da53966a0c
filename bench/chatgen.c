// Copied from the team's shared benchmark harness (shared/bench/chat/chatgen.c)
// so that `npm run bench:chat` needs nothing outside this repository.
// chatgen.c - epoll load generator for line-based chat servers (Linux only).
//
// Protocol: client i sends "/nick c<i>\n" and "/join r<i % R>\n", then text
// lines. The server must deliver every text line to every *other* client of
// the room, the text verbatim somewhere inside one line (any prefix/suffix,
// e.g. "c7: <text>\n"). Lines without our marker (notices) are ignored.
//
// Text = "#M:<sender>:<seq>:<send_ns>:" + padding up to --size bytes, the
// padding derived from (sender, seq). A receiver checks the room, the
// padding, and that seq is exactly the next one expected from that sender:
// per-sender order, no duplicates, no gaps.
//
// Phases: connect all clients; /nick + /join; settle; a hello round (seq 0)
// that must reach every room peer (proves the joins took effect, else exit
// 3); warm-up + measured window with sending; then sending stops and the
// messages in flight drain (bounded by --drain). Whatever has not reached
// all peers by then counts as lost.
//
// Sending: --rate M msgs/s per client (staggered schedule) or --rate 0 (as
// fast as possible); either way at most --inflight W messages per client not
// yet received by all its room peers. A client alone in its room only says
// hello.
//
// Output: one JSON line. deliveries_per_s = lines received in the measured
// window / s; latency per delivery = receive time - embedded send time (one
// clock, one process), for messages sent inside the window. --cpu-pgid PGID
// reports the server's CPU use in the window (srv_cpu, cores), like loadgen.
// Exit 0 ok, 1 connection errors, 2 loss/order/corruption, 3 setup failed.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#define MAX_LINE 4096          // longest line we accept from the server
#define SCRATCH (64 * 1024)    // recv buffer
#define HBUCKETS 1920          // log-linear latency histogram (~3 %)
#define MAX_PENDING_CONNECTS 64
#define PHASE_TIMEOUT_NS (10ull * 1000000000ull)  // connect and hello phases

enum { PH_CONNECT, PH_SETTLE, PH_HELLO, PH_RUN, PH_DRAIN, PH_DONE };

typedef struct cl {
  int fd, id, room, connecting, dead, ready;
  uint32_t peers;           // recipients per message: room size - 1
  uint64_t seq_next;        // next seq to send (0 = hello)
  uint64_t acked;           // every seq < acked reached all peers
  uint32_t *remaining;      // [inflight] peers still missing seq (slot seq % W)
  uint64_t next_due;        // rate mode: next scheduled send (ns)
  uint64_t *expect;         // [room size] next seq expected from member k (id = room + k*R)
  char *out;                // queued outgoing bytes [ooff, olen)
  size_t olen, ooff, ocap;
  size_t llen;              // partial incoming line
  char line[MAX_LINE];
  struct cl *next_ready;
} cl_t;

static struct {
  const char *host;
  int port, clients, rooms, inflight, size, cpu_pgid;
  double rate, duration, warmup, settle, drain;
} cfg = {"127.0.0.1", 0, 100, 1, 1, 64, 0, 0, 5, 1, 0.5, 10};

static struct {  // results; window counters only count inside [t_measure, t_end)
  uint64_t sent, deliveries, deliveries_total;
  uint64_t gaps, out_of_order, misrouted, corrupt, self_lines, other_lines, errors, long_lines;
  uint64_t hist[HBUCKETS], max_lat;
} g;

static cl_t *cls;
static int g_ep, g_phase = PH_CONNECT;
static uint64_t g_t0, t_measure = UINT64_MAX, t_end = UINT64_MAX;
static cl_t *g_ready;  // clients that may send again (fast mode)
static char *g_scratch;
static struct sockaddr_in g_addr;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// ---- latency histogram (ns) ----
static int hidx(uint64_t v) {
  if (v < 32) return (int)v;
  int e = 63 - __builtin_clzll(v);
  int i = (e - 4) * 32 + (int)((v >> (e - 5)) & 31);
  return i < HBUCKETS ? i : HBUCKETS - 1;
}
static double hval(int i) {
  if (i < 32) return i;
  int e = i / 32 + 4;
  double unit = (double)(1ull << (e - 5));
  return (32 + i % 32) * unit + unit / 2;
}
static double hpct(double p) {
  uint64_t n = 0, acc = 0;
  for (int i = 0; i < HBUCKETS; i++) n += g.hist[i];
  if (!n) return 0;
  uint64_t want = (uint64_t)(p * (double)n);
  if (want < 1) want = 1;
  for (int i = 0; i < HBUCKETS; i++)
    if ((acc += g.hist[i]) >= want) return hval(i);
  return hval(HBUCKETS - 1);
}

static uint32_t room_size(int r) { return (uint32_t)((cfg.clients - r + cfg.rooms - 1) / cfg.rooms); }
static char pad_char(uint64_t sender, uint64_t seq, size_t i) {
  return (char)('a' + (sender * 7 + seq * 13 + i) % 26);
}

static void fail_client(cl_t *c, const char *why) {
  if (c->dead) return;
  if (g_phase < PH_DONE && g.errors++ < 5) fprintf(stderr, "chatgen: client %d: %s\n", c->id, why);
  close(c->fd);
  c->dead = 1;
}

// ---- sending ----
static void flush_out(cl_t *c) {
  while (!c->dead && c->ooff < c->olen) {
    ssize_t n = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
    if (n > 0) { c->ooff += (size_t)n; continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;  // EPOLLOUT edge resumes
    fail_client(c, "send failed");
  }
  if (c->ooff == c->olen) c->ooff = c->olen = 0;
}

static void queue(cl_t *c, const char *p, size_t n) {
  if (c->olen + n > c->ocap) {
    if (c->ooff) {  // compact first
      memmove(c->out, c->out + c->ooff, c->olen - c->ooff);
      c->olen -= c->ooff;
      c->ooff = 0;
    }
    while (c->olen + n > c->ocap) c->ocap = c->ocap ? c->ocap * 2 : 1024;
    if (!(c->out = realloc(c->out, c->ocap))) { perror("realloc"); exit(1); }
  }
  memcpy(c->out + c->olen, p, n);
  c->olen += n;
}

static uint64_t inflight(const cl_t *c) { return c->seq_next - c->acked; }

// Record that one more peer got (c, seq); advance c->acked over completed
// messages and, if that frees a slot, mark c ready to send again.
static void delivered(cl_t *c, uint64_t seq) {
  uint32_t *slot = &c->remaining[seq % (uint64_t)cfg.inflight];
  if (*slot == 0) return;
  if (--*slot || seq != c->acked) return;
  while (c->acked < c->seq_next && c->remaining[c->acked % (uint64_t)cfg.inflight] == 0) c->acked++;
  if (!c->ready) { c->ready = 1; c->next_ready = g_ready; g_ready = c; }
}

static void send_msg(cl_t *c, uint64_t now) {
  char buf[MAX_LINE];
  uint64_t seq = c->seq_next++;
  int n = snprintf(buf, sizeof buf, "#M:%d:%llu:%llu:", c->id, (unsigned long long)seq,
                   (unsigned long long)(now - g_t0));
  for (size_t i = 0; (int)n < cfg.size && n < MAX_LINE - 2; i++) buf[n++] = pad_char((uint64_t)c->id, seq, i);
  buf[n++] = '\n';
  c->remaining[seq % (uint64_t)cfg.inflight] = c->peers;
  if (c->peers == 0) c->acked = c->seq_next;  // alone in the room
  if (now >= t_measure && now < t_end) g.sent++;
  queue(c, buf, (size_t)n);
  flush_out(c);
}

// ---- receiving ----
static uint64_t parse_u64(const char **p, const char *end, int *ok) {
  uint64_t v = 0;
  const char *s = *p;
  while (s < end && *s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
  *ok = s > *p && s < end && *s == ':';
  *p = s + 1;
  return v;
}

static void on_line(cl_t *r, const char *p, size_t n, uint64_t now) {
  const char *end = p + n, *m = memmem(p, n, "#M:", 3);
  if (!m) { g.other_lines++; return; }
  const char *q = m + 3;
  int ok1, ok2, ok3;
  uint64_t sender = parse_u64(&q, end, &ok1), seq = parse_u64(&q, end, &ok2), ts = parse_u64(&q, end, &ok3);
  if (!ok1 || !ok2 || !ok3 || sender >= (uint64_t)cfg.clients || g_t0 + ts > now) { g.corrupt++; return; }
  size_t pad = (size_t)(q - m) < (size_t)cfg.size ? (size_t)cfg.size - (size_t)(q - m) : 0;
  if ((size_t)(end - q) < pad) { g.corrupt++; return; }
  for (size_t i = 0; i < pad; i++)
    if (q[i] != pad_char(sender, seq, i)) { g.corrupt++; return; }
  if ((int)sender == r->id) { g.self_lines++; return; }
  if ((int)(sender % (uint64_t)cfg.rooms) != r->room) { g.misrouted++; return; }
  uint64_t *ex = &r->expect[sender / (uint64_t)cfg.rooms];
  if (seq < *ex) { g.out_of_order++; return; }  // duplicate or late
  if (seq > *ex) g.gaps += seq - *ex;           // skipped some: lost or reordered
  *ex = seq + 1;
  g.deliveries_total++;
  if (now >= t_measure && now < t_end) g.deliveries++;
  uint64_t sent_at = g_t0 + ts;
  if (sent_at >= t_measure && now < t_end) {
    uint64_t lat = now - sent_at;
    g.hist[hidx(lat)]++;
    if (lat > g.max_lat) g.max_lat = lat;
  }
  cl_t *s = &cls[sender];
  if (seq < s->seq_next && seq >= s->acked) delivered(s, seq);
}

// Split received bytes into lines; a partial line waits in r->line.
static void on_bytes(cl_t *r, const char *p, size_t n, uint64_t now) {
  const char *end = p + n;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t k = (size_t)((nl ? nl : end) - p);
    if (r->llen + k > MAX_LINE) {  // absurdly long line: drop it
      g.long_lines++;
      r->llen = 0;
      if (!nl) return;
    } else if (!nl || r->llen) {
      memcpy(r->line + r->llen, p, k);
      r->llen += k;
      if (nl) { on_line(r, r->line, r->llen, now); r->llen = 0; }
    } else {
      on_line(r, p, k, now);
    }
    if (!nl) return;
    p = nl + 1;
  }
}

static void on_readable(cl_t *c, int hup) {
  for (;;) {
    ssize_t n = recv(c->fd, g_scratch, SCRATCH, 0);
    if (n > 0) {
      on_bytes(c, g_scratch, (size_t)n, now_ns());
      if ((size_t)n < SCRATCH && !hup) return;  // drained; a new edge will come
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    fail_client(c, n == 0 ? "server closed the connection" : "recv failed");
    return;
  }
}

// ---- connections ----
static int start_connect(cl_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&g_addr, sizeof g_addr) < 0 && errno != EINPROGRESS) {
    close(c->fd);
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
  if (epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) { close(c->fd); return -1; }
  c->connecting = 1;
  return 0;
}

static int g_pending, g_next_connect, g_connected;

static void on_event(cl_t *c, uint32_t evs) {
  if (c->dead) return;
  if (c->connecting) {
    if (!(evs & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    g_pending--;
    c->connecting = 0;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
      fail_client(c, "connect failed");
      return;
    }
    g_connected++;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "/nick c%d\n/join r%d\n", c->id, c->room);
    queue(c, buf, (size_t)n);
  }
  if (evs & (EPOLLOUT | EPOLLERR | EPOLLHUP)) flush_out(c);
  if (!c->dead && (evs & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
    on_readable(c, (evs & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
}

// ---- CPU accounting (as loadgen's --cpu-pgid) ----
static uint64_t pgid_ticks(int pgid) {  // utime+stime of every process in pgid
  uint64_t sum = 0;
  DIR *d = opendir("/proc");
  struct dirent *de;
  char path[300], buf[1024];
  while (d && (de = readdir(d))) {
    if (!isdigit((unsigned char)de->d_name[0])) continue;
    snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');  // the command name may hold spaces
    int pg;
    unsigned long ut, st;
    if (p && sscanf(p + 2, "%*c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &pg, &ut, &st) == 3 && pg == pgid)
      sum += ut + st;
  }
  if (d) closedir(d);
  return sum;
}
static void cpu_stat(uint64_t *total, uint64_t *steal) {  // /proc/stat "cpu" line
  unsigned long long v[8] = {0};
  *total = *steal = 0;
  FILE *f = fopen("/proc/stat", "r");
  if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
    for (int i = 0; i < 8; i++) *total += v[i];
    *steal = v[7];
  }
  if (f) fclose(f);
}
static double self_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
typedef struct { uint64_t srv, tot, steal; double self; } cpu_t;
static void cpu_sample(cpu_t *s) {
  s->srv = cfg.cpu_pgid ? pgid_ticks(cfg.cpu_pgid) : 0;
  cpu_stat(&s->tot, &s->steal);
  s->self = self_cpu_s();
}

static void usage(void) {
  fprintf(stderr,
          "usage: chatgen --port P [--host 127.0.0.1] [--clients N] [--rooms R] [--rate MSGS_PER_S]\n"
          "               [--inflight W] [--size BYTES] [--duration S] [--warmup S] [--settle S]\n"
          "               [--drain S] [--cpu-pgid PGID]\n");
  exit(64);
}

int main(int argc, char **argv) {
  static struct option opts[] = {
      {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},   {"clients", 1, 0, 'n'}, {"rooms", 1, 0, 'r'},
      {"rate", 1, 0, 'm'},     {"inflight", 1, 0, 'w'}, {"size", 1, 0, 's'},  {"duration", 1, 0, 'd'},
      {"warmup", 1, 0, 'u'},   {"settle", 1, 0, 'e'}, {"drain", 1, 0, 'D'},   {"cpu-pgid", 1, 0, 'g'},
      {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'h': cfg.host = optarg; break;
      case 'p': cfg.port = atoi(optarg); break;
      case 'n': cfg.clients = atoi(optarg); break;
      case 'r': cfg.rooms = atoi(optarg); break;
      case 'm': cfg.rate = atof(optarg); break;
      case 'w': cfg.inflight = atoi(optarg); break;
      case 's': cfg.size = atoi(optarg); break;
      case 'd': cfg.duration = atof(optarg); break;
      case 'u': cfg.warmup = atof(optarg); break;
      case 'e': cfg.settle = atof(optarg); break;
      case 'D': cfg.drain = atof(optarg); break;
      case 'g': cfg.cpu_pgid = atoi(optarg); break;
      default: usage();
    }
  }
  if (cfg.port <= 0 || cfg.port > 65535 || cfg.clients < 1 || cfg.clients > 100000 || cfg.rooms < 1 ||
      cfg.rooms > cfg.clients || cfg.inflight < 1 || cfg.inflight > 1024 || cfg.size < 1 ||
      cfg.size > MAX_LINE / 2 || cfg.rate < 0 || cfg.duration <= 0 || cfg.duration > 3600 ||
      cfg.warmup < 0 || cfg.warmup > 600 || cfg.settle < 0 || cfg.settle > 60 || cfg.drain < 0 || cfg.drain > 600)
    usage();
  g_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port)};
  if (inet_pton(AF_INET, cfg.host, &g_addr.sin_addr) != 1) usage();
  signal(SIGPIPE, SIG_IGN);
  // Hard stop whatever the server does: every phase is bounded.
  alarm((unsigned)(cfg.settle + cfg.warmup + cfg.duration + cfg.drain) + 2 * PHASE_TIMEOUT_NS / 1000000000ull + 20);
  struct rlimit rl;  // one fd per client
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  cls = calloc((size_t)cfg.clients, sizeof *cls);
  g_scratch = malloc(SCRATCH);
  g_ep = epoll_create1(EPOLL_CLOEXEC);
  if (!cls || !g_scratch || g_ep < 0) { perror("setup"); return 1; }
  for (int i = 0; i < cfg.clients; i++) {
    cl_t *c = &cls[i];
    c->id = i;
    c->fd = -1;
    c->room = i % cfg.rooms;
    c->peers = room_size(c->room) - 1;
    c->remaining = calloc((size_t)cfg.inflight, sizeof *c->remaining);
    c->expect = calloc(room_size(c->room), sizeof *c->expect);
    if (!c->remaining || !c->expect) { perror("calloc"); return 1; }
  }

  g_t0 = now_ns();
  uint64_t deadline = g_t0 + PHASE_TIMEOUT_NS, period = cfg.rate > 0 ? (uint64_t)(1e9 / cfg.rate) : 0;
  uint64_t hello_start = 0, drain_start = 0, t_done = 0;
  cpu_t c0 = {0}, c1 = {0};
  int measuring = 0, setup_failed = 0;
  struct epoll_event evs[512];
  while (g_phase != PH_DONE) {
    uint64_t now = now_ns();
    // Phase transitions, all time-bounded.
    if (g_phase == PH_CONNECT) {
      while (g_pending < MAX_PENDING_CONNECTS && g_next_connect < cfg.clients) {
        cl_t *c = &cls[g_next_connect++];
        if (start_connect(c) < 0) { c->dead = 1; g.errors++; } else g_pending++;
      }
      if (g_next_connect == cfg.clients && g_pending == 0) {
        if (g.errors) {
          fprintf(stderr, "chatgen: %llu of %d clients failed to connect\n", (unsigned long long)g.errors, cfg.clients);
          setup_failed = 1;
          break;
        }
        g_phase = PH_SETTLE;
        deadline = now + (uint64_t)(cfg.settle * 1e9);
      } else if (now >= deadline) {
        fprintf(stderr, "chatgen: connect phase timed out\n");
        setup_failed = 1;
        break;
      }
    }
    if (g_phase == PH_SETTLE && now >= deadline) {  // joins had time: say hello
      g_phase = PH_HELLO;
      hello_start = now;
      deadline = now + PHASE_TIMEOUT_NS;
      for (int i = 0; i < cfg.clients; i++) if (!cls[i].dead) send_msg(&cls[i], now);
    }
    if (g_phase == PH_HELLO) {
      int done = 1;
      for (int i = 0; i < cfg.clients && done; i++) done = cls[i].dead || cls[i].acked >= 1;
      if (done) {  // every room is complete: start the clock
        g_phase = PH_RUN;
        t_measure = now + (uint64_t)(cfg.warmup * 1e9);
        t_end = t_measure + (uint64_t)(cfg.duration * 1e9);
        g_ready = NULL;
        for (int i = 0; i < cfg.clients; i++) {
          cl_t *c = &cls[i];
          c->ready = 0;
          c->next_due = now + (period ? period * (uint64_t)i / (uint64_t)cfg.clients : 0);
          if (!period && !c->dead && c->peers) while (inflight(c) < (uint64_t)cfg.inflight) send_msg(c, now);
        }
      } else if (now >= deadline) {
        fprintf(stderr, "chatgen: hello round incomplete after 10 s: the server did not relay every "
                        "member's first line to all other members of its room\n");
        setup_failed = 1;
        break;
      }
    }
    if (g_phase == PH_RUN) {
      if (!measuring && now >= t_measure) { cpu_sample(&c0); measuring = 1; }
      if (now >= t_end) {
        cpu_sample(&c1);
        g_phase = PH_DRAIN;
        drain_start = now;
        deadline = now + (uint64_t)(cfg.drain * 1e9);
      } else if (period) {  // scheduled sends that are due and allowed
        for (int i = 0; i < cfg.clients; i++) {
          cl_t *c = &cls[i];
          while (!c->dead && c->peers && c->next_due <= now && inflight(c) < (uint64_t)cfg.inflight) {
            send_msg(c, now);
            c->next_due += period;
          }
        }
      } else {  // fast mode: refill the clients whose messages completed
        while (g_ready) {
          cl_t *c = g_ready;
          g_ready = c->next_ready;
          c->ready = 0;
          while (!c->dead && c->peers && inflight(c) < (uint64_t)cfg.inflight) send_msg(c, now);
        }
      }
    }
    if (g_phase == PH_DRAIN) {
      int done = 1;
      for (int i = 0; i < cfg.clients && done; i++) done = cls[i].dead || inflight(&cls[i]) == 0;
      if (done || now >= deadline) { t_done = now; g_phase = PH_DONE; break; }
    }

    int n = epoll_wait(g_ep, evs, 512, 1);  // 1 ms: schedules and phase edges
    if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
    for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
  }

  // What never reached all peers is lost (hello included).
  uint64_t lost = 0, lost_msgs = 0, sent_total = 0, alive = 0, senders = 0;
  for (int i = 0; i < cfg.clients; i++) {
    cl_t *c = &cls[i];
    sent_total += c->seq_next;
    alive += !c->dead;
    senders += c->peers > 0;
    for (uint64_t s = c->acked; s < c->seq_next; s++) {
      lost += c->remaining[s % (uint64_t)cfg.inflight];
      lost_msgs++;
    }
  }
  double secs = cfg.duration, tck = (double)sysconf(_SC_CLK_TCK);
  uint32_t rs_max = room_size(0);
  printf("{\"mode\":\"chat\",\"clients\":%d,\"rooms\":%d,\"room_size\":%u,\"rate\":%g,\"inflight\":%d,"
         "\"size\":%d,\"duration_s\":%.2f,\"warmup_s\":%.2f,\"setup_ok\":%d,\"hello_s\":%.3f,"
         "\"msgs\":%llu,\"msgs_per_s\":%.0f,\"offered_msgs_per_s\":%.0f,"
         "\"deliveries\":%llu,\"deliveries_per_s\":%.0f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
         "\"sent_total\":%llu,\"deliveries_total\":%llu,\"lost\":%llu,\"lost_msgs\":%llu,\"gaps\":%llu,"
         "\"out_of_order\":%llu,\"misrouted\":%llu,\"corrupt\":%llu,\"long_lines\":%llu,"
         "\"self_lines\":%llu,\"other_lines\":%llu,\"errors\":%llu,\"clients_alive\":%llu,\"drain_s\":%.3f,"
         "\"lg_cpu\":%.2f,\"srv_cpu\":%.2f,\"steal_pct\":%.1f}\n",
         cfg.clients, cfg.rooms, rs_max, cfg.rate, cfg.inflight, cfg.size, secs, cfg.warmup, !setup_failed,
         hello_start && t_measure != UINT64_MAX ? (double)(t_measure - (uint64_t)(cfg.warmup * 1e9) - hello_start) / 1e9 : -1.0,
         (unsigned long long)g.sent, (double)g.sent / secs, cfg.rate * (double)senders,
         (unsigned long long)g.deliveries, (double)g.deliveries / secs,
         hpct(0.50) / 1e3, hpct(0.99) / 1e3, hpct(0.999) / 1e3, (double)g.max_lat / 1e3,
         (unsigned long long)sent_total, (unsigned long long)g.deliveries_total, (unsigned long long)lost,
         (unsigned long long)lost_msgs, (unsigned long long)g.gaps, (unsigned long long)g.out_of_order,
         (unsigned long long)g.misrouted, (unsigned long long)g.corrupt, (unsigned long long)g.long_lines,
         (unsigned long long)g.self_lines, (unsigned long long)g.other_lines, (unsigned long long)g.errors,
         (unsigned long long)alive, drain_start && t_done ? (double)(t_done - drain_start) / 1e9 : -1.0,
         c1.self > 0 ? (c1.self - c0.self) / secs : -1.0,
         c1.self > 0 && cfg.cpu_pgid ? (double)(c1.srv - c0.srv) / tck / secs : -1.0,
         c1.tot > c0.tot ? 100.0 * (double)(c1.steal - c0.steal) / (double)(c1.tot - c0.tot) : 0.0);
  fflush(stdout);
  if (setup_failed) return 3;
  if (lost || g.gaps || g.out_of_order || g.misrouted || g.corrupt || g.long_lines) return 2;
  if (g.errors) return 1;
  return 0;
}
