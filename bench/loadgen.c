// loadgen.c - single-threaded epoll TCP echo load generator (Linux, 127.0.0.1).
//
//   cc -O2 -o bench/.build/loadgen bench/loadgen.c
//
// Modes
//   echo   N persistent connections. Each sends a batch of K pipelined
//          messages of S bytes, waits until all K*S bytes came back, checks
//          every byte, records the batch round trip (first write to last byte
//          read) and starts the next batch.
//   churn  C concurrent loops of: connect, send one S-byte message, read its
//          echo, check it, close. Closes with SO_LINGER 0 (RST) by default so
//          client ports do not pile up in TIME_WAIT; --fin closes gracefully.
//   probe  exit 0 if a TCP connect to 127.0.0.1:PORT succeeds, 1 otherwise.
//
// Verification: each connection (churn: each cycle) owns a byte stream
// seeded by its id, and the first 8 bytes of every message carry
// (id << 40 | message number). The echo must equal what was sent, byte for
// byte, so cross-talk between connections, lost/duplicated/reordered
// messages and bit flips are all caught. Any corruption => exit status 2.
//
// Timing: after all connections are up, W seconds of warm-up, then D
// measured seconds. Throughput counts messages (churn: cycles) completed in
// the window; latency percentiles use batches that start and end in it.
//
// CPU: lg_cpu is our own CPU (getrusage) in the window, in cores. With
// --cpu-pgid PGID, srv_cpu is the summed utime+stime (all threads) of every
// process in that process group over the same window, read from /proc.
// machine_cpu: busy cores of the whole machine in the window (/proc/stat), so
// a reader can see what else ran: interrupt work and other processes.
//
// Output: one JSON line on stdout. Exit 0 ok, 2 corruption, 3 no connection
// could be made, 64 usage, 1 system error.
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

#define SCRATCH (256 * 1024)
#define MAX_PENDING_CONNECTS 64
#define CONNECT_TIMEOUT_S 10

enum { MODE_ECHO, MODE_CHURN, MODE_PROBE };
enum { ST_IDLE, ST_CONNECTING, ST_ACTIVE, ST_DEAD };

typedef struct {
  int fd, state, wblocked;
  uint32_t id;
  uint64_t seq;        // batches (echo) / cycles (churn) started
  size_t total, sent, recvd;
  uint64_t t_start;    // ns, CLOCK_MONOTONIC
  unsigned char *buf;  // the bytes of the current batch = the expected echo
} conn_t;

static int g_mode = MODE_ECHO, g_port = 0, g_conns = 100, g_size = 64, g_pipeline = 1;
static int g_linger0 = 1, g_cpu_pgid = 0;
static double g_warmup = 1.0, g_duration = 4.0;
static struct sockaddr_in g_addr;
static int g_ep;
static unsigned char *g_scratch;
static uint64_t g_t_measure = UINT64_MAX, g_t_end = UINT64_MAX;
static uint64_t g_msgs, g_bytes, g_errors, g_corrupt, g_connect_failures;

// latency samples (ns, clamped to 4.29 s), sorted at the end
static uint32_t *g_lat;
static size_t g_nlat, g_caplat;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void add_latency(uint64_t ns) {
  if (g_nlat == g_caplat) {
    if (g_caplat >= (64u << 20)) return;  // 256 MB of samples is plenty
    size_t cap = g_caplat ? g_caplat * 2 : 1 << 16;
    uint32_t *p = realloc(g_lat, cap * sizeof *p);
    if (!p) return;
    g_lat = p;
    g_caplat = cap;
  }
  g_lat[g_nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}
static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}
static double pct_us(double p) {  // nearest-rank percentile, microseconds
  if (!g_nlat) return 0;
  size_t i = (size_t)(p * (double)g_nlat);
  if (i >= g_nlat) i = g_nlat - 1;
  return g_lat[i] / 1e3;
}

// ---- payload ----
static void fill_stream(unsigned char *b, size_t n, uint32_t id) {
  uint64_t x = ((uint64_t)id + 1) * 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b[i] = (unsigned char)(x >> 29);
  }
}
// Stamp message number and connection id into each message of the batch.
static void stamp(conn_t *c, int k) {
  size_t n = g_size < 8 ? (size_t)g_size : 8;
  for (int j = 0; j < k; j++) {
    uint64_t v = ((uint64_t)c->id << 40) | ((c->seq * (uint64_t)k + (uint64_t)j) & 0xFFFFFFFFFFull);
    memcpy(c->buf + (size_t)j * (size_t)g_size, &v, n);
  }
}

// ---- sockets ----
static int start_connect(conn_t *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (g_mode == MODE_CHURN && g_linger0) {
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  if (connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
  if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
    close(fd);
    return -1;
  }
  c->fd = fd;
  c->state = ST_CONNECTING;
  c->sent = c->recvd = 0;
  c->wblocked = 0;
  return 0;
}
static int connect_ok(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}
static void drop(conn_t *c, int state) {
  if (c->fd >= 0) close(c->fd);  // also leaves the epoll set
  c->fd = -1;
  c->state = state;
}

// Send what is left of the batch. -1 on a hard error.
static int do_send(conn_t *c) {
  while (c->sent < c->total) {
    ssize_t n = send(c->fd, c->buf + c->sent, c->total - c->sent, MSG_NOSIGNAL);
    if (n > 0) { c->sent += (size_t)n; continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) { c->wblocked = 1; return 0; }
    return -1;
  }
  return 0;
}
// Read and verify. 1 batch complete, 0 need more, -1 EOF/error, -2 corrupt.
// A short read means the socket is drained (the next data raises a new
// edge), unless the peer hung up: then keep reading to EOF.
static int do_recv(conn_t *c, int hup) {
  while (c->recvd < c->total) {
    size_t want = c->total - c->recvd;
    if (want > SCRATCH) want = SCRATCH;
    ssize_t n = recv(c->fd, g_scratch, want, 0);
    if (n > 0) {
      if (memcmp(g_scratch, c->buf + c->recvd, (size_t)n) != 0) {
        size_t off = 0;
        while (off < (size_t)n && g_scratch[off] == c->buf[c->recvd + off]) off++;
        if (g_corrupt == 0)
          fprintf(stderr, "loadgen: CORRUPT echo: conn %u batch %llu byte %zu of %zu\n", c->id,
                  (unsigned long long)c->seq, c->recvd + off, c->total);
        return -2;
      }
      c->recvd += (size_t)n;
      if ((size_t)n < want && !hup) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    return -1;
  }
  return c->recvd == c->total;
}

static int in_window(uint64_t t) { return t >= g_t_measure && t < g_t_end; }

static void completed(conn_t *c, uint64_t now, int msgs) {
  if (!in_window(now)) return;
  g_msgs += (uint64_t)msgs;
  g_bytes += c->total;
  if (c->t_start >= g_t_measure) add_latency(now - c->t_start);
}

// ---- echo mode ----
static void echo_start(conn_t *c, uint64_t now) {
  stamp(c, g_pipeline);
  c->sent = c->recvd = 0;
  c->t_start = now;
}
static void echo_event(conn_t *c, uint32_t ev) {
  int hup = (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
  if (ev & EPOLLOUT) c->wblocked = 0;
  if (!c->wblocked && do_send(c) < 0) goto fail;
  if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  int r = do_recv(c, hup);
  if (r == -2) { g_corrupt++; drop(c, ST_DEAD); return; }
  if (r < 0) goto fail;
  if (r == 0) return;
  uint64_t now = now_ns();
  completed(c, now, g_pipeline);
  if (now >= g_t_end) return;
  c->seq++;
  echo_start(c, now);
  if (do_send(c) < 0) goto fail;
  return;
fail:
  if (now_ns() < g_t_end) g_errors++;
  drop(c, ST_DEAD);
}

// ---- churn mode ----
static void churn_start(conn_t *c, uint64_t now) {
  c->seq++;
  c->id = (uint32_t)(c->id & 0xFFFF) | (uint32_t)((c->seq & 0xFFFF) << 16);  // new stream per cycle
  fill_stream(c->buf, c->total, c->id);
  stamp(c, 1);
  c->t_start = now;
  if (start_connect(c) < 0) {
    if (in_window(now)) g_connect_failures++;
    c->state = ST_IDLE;  // retried by the main loop
  }
}
static void churn_event(conn_t *c, uint32_t ev) {
  int hup = (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
  if (c->state == ST_CONNECTING) {
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    if (!connect_ok(c->fd)) {
      if (in_window(now_ns())) g_connect_failures++;
      drop(c, ST_IDLE);
      return;
    }
    c->state = ST_ACTIVE;
    ev |= EPOLLOUT;
  }
  if (ev & EPOLLOUT) c->wblocked = 0;
  if (!c->wblocked && do_send(c) < 0) goto fail;
  if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  int r = do_recv(c, hup);
  if (r == -2) { g_corrupt++; drop(c, ST_DEAD); return; }
  if (r < 0) goto fail;
  if (r == 0) return;
  drop(c, ST_IDLE);  // RST with SO_LINGER 0, else FIN
  uint64_t now = now_ns();
  completed(c, now, 1);
  if (now < g_t_end) churn_start(c, now);
  return;
fail:
  if (in_window(now_ns())) g_errors++;
  drop(c, ST_IDLE);
}

// ---- /proc accounting ----
// utime+stime (clock ticks, all threads) of every process in group pgid.
static uint64_t pgid_ticks(int pgid) {
  uint64_t sum = 0;
  DIR *d = opendir("/proc");
  if (!d) return 0;
  struct dirent *de;
  char path[288], line[1024];
  while ((de = readdir(d))) {
    if (!isdigit((unsigned char)de->d_name[0])) continue;
    snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    char *p = strrchr(line, ')');  // the command name may hold spaces and parens
    int pgrp;
    unsigned long ut, st;
    // after "comm)": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    if (p && sscanf(p + 2, "%*c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &pgrp, &ut, &st) == 3 &&
        pgrp == pgid)
      sum += ut + st;
  }
  closedir(d);
  return sum;
}
// Machine-wide /proc/stat "cpu" line: all ticks, steal, and busy (not idle,
// iowait or steal: our two processes, interrupt work and everything else).
static void machine_ticks(uint64_t *total, uint64_t *steal, uint64_t *busy) {
  unsigned long long v[8] = {0};
  *total = *steal = *busy = 0;
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return;
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
             &v[6], &v[7]) == 8) {
    for (int i = 0; i < 8; i++) *total += v[i];
    *steal = v[7];
    *busy = *total - v[3] - v[4] - v[7];
  }
  fclose(f);
}
static long long listen_overflows(void) {  // TcpExt ListenOverflows, machine-wide
  FILE *f = fopen("/proc/net/netstat", "r");
  if (!f) return -1;
  static char names[8192], vals[8192];
  long long out = -1;
  while (out < 0 && fgets(names, sizeof names, f) && fgets(vals, sizeof vals, f)) {
    if (strncmp(names, "TcpExt:", 7)) continue;
    char *sn, *sv;
    char *n = strtok_r(names + 7, " \n", &sn), *v = strtok_r(vals + 7, " \n", &sv);
    for (; n && v; n = strtok_r(NULL, " \n", &sn), v = strtok_r(NULL, " \n", &sv))
      if (!strcmp(n, "ListenOverflows")) { out = atoll(v); break; }
  }
  fclose(f);
  return out;
}
static double self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static void raise_nofile(int need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur >= (rlim_t)need) return;
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)need ? (rlim_t)need : rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < (rlim_t)need)
    fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE is %llu, %d wanted\n", (unsigned long long)rl.rlim_cur,
            need);
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --port P [--mode echo|churn|probe] [--conns N] [--size BYTES]\n"
          "               [--pipeline K] [--warmup S] [--duration S] [--cpu-pgid PGID] [--fin]\n");
  exit(64);
}

int main(int argc, char **argv) {
  static struct option opts[] = {{"port", 1, 0, 'p'},     {"mode", 1, 0, 'm'},   {"conns", 1, 0, 'c'},
                                 {"size", 1, 0, 's'},     {"pipeline", 1, 0, 'k'}, {"warmup", 1, 0, 'w'},
                                 {"duration", 1, 0, 'd'}, {"cpu-pgid", 1, 0, 'g'}, {"fin", 0, 0, 'f'},
                                 {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'p': g_port = atoi(optarg); break;
      case 'c': g_conns = atoi(optarg); break;
      case 's': g_size = atoi(optarg); break;
      case 'k': g_pipeline = atoi(optarg); break;
      case 'w': g_warmup = atof(optarg); break;
      case 'd': g_duration = atof(optarg); break;
      case 'g': g_cpu_pgid = atoi(optarg); break;
      case 'f': g_linger0 = 0; break;
      case 'm':
        if (!strcmp(optarg, "echo")) g_mode = MODE_ECHO;
        else if (!strcmp(optarg, "churn")) g_mode = MODE_CHURN;
        else if (!strcmp(optarg, "probe")) g_mode = MODE_PROBE;
        else usage();
        break;
      default: usage();
    }
  }
  if (g_port <= 0 || g_port > 65535 || g_conns < 1 || g_conns > 60000 || g_size < 1 || g_pipeline < 1 ||
      (uint64_t)g_size * (uint64_t)g_pipeline > (1ull << 30) || g_warmup < 0 || g_warmup > 600 ||
      g_duration <= 0 || g_duration > 3600)
    usage();
  if (g_mode == MODE_CHURN) g_pipeline = 1;
  memset(&g_addr, 0, sizeof g_addr);
  g_addr.sin_family = AF_INET;
  g_addr.sin_port = htons((uint16_t)g_port);
  g_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  signal(SIGPIPE, SIG_IGN);

  if (g_mode == MODE_PROBE) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) == 0;
    if (fd >= 0) close(fd);
    return ok ? 0 : 1;
  }
  alarm((unsigned)(g_warmup + g_duration) + CONNECT_TIMEOUT_S + 20);  // hard stop, whatever happens
  raise_nofile(g_conns + 64);

  g_ep = epoll_create1(EPOLL_CLOEXEC);
  g_scratch = malloc(SCRATCH);
  conn_t *conns = calloc((size_t)g_conns, sizeof *conns);
  size_t per_conn = (size_t)g_size * (size_t)g_pipeline;
  if (g_ep < 0 || !g_scratch || !conns) { perror("loadgen: setup"); return 1; }
  for (int i = 0; i < g_conns; i++) {
    conn_t *c = &conns[i];
    c->fd = -1;
    c->id = (uint32_t)i;
    c->total = per_conn;
    c->buf = malloc(per_conn);
    if (!c->buf) { perror("loadgen: malloc"); return 1; }
    fill_stream(c->buf, per_conn, c->id);
  }
  long long ovf0 = listen_overflows();
  struct epoll_event evs[512];
  uint64_t connected = 0;

  if (g_mode == MODE_ECHO) {  // ramp-up: at most MAX_PENDING_CONNECTS in flight
    int next = 0, pending = 0, done = 0;
    uint64_t deadline = now_ns() + CONNECT_TIMEOUT_S * 1000000000ull;
    while (done < g_conns && now_ns() < deadline) {
      while (pending < MAX_PENDING_CONNECTS && next < g_conns) {
        conn_t *c = &conns[next++];
        if (start_connect(c) < 0) { g_connect_failures++; c->state = ST_DEAD; done++; }
        else pending++;
      }
      int n = epoll_wait(g_ep, evs, 512, 50);
      for (int i = 0; i < n; i++) {
        conn_t *c = evs[i].data.ptr;
        if (c->state != ST_CONNECTING || !(evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
        pending--, done++;
        if (connect_ok(c->fd)) { c->state = ST_ACTIVE; connected++; }
        else { g_connect_failures++; drop(c, ST_DEAD); }
      }
    }
    for (int i = 0; i < g_conns; i++)
      if (conns[i].state == ST_CONNECTING || conns[i].state == ST_IDLE) {
        g_connect_failures++;
        drop(&conns[i], ST_DEAD);
      }
    if (!connected) {
      fprintf(stderr, "loadgen: no connection to 127.0.0.1:%d could be made\n", g_port);
      return 3;
    }
  }

  uint64_t now = now_ns();
  g_t_measure = now + (uint64_t)(g_warmup * 1e9);
  g_t_end = g_t_measure + (uint64_t)(g_duration * 1e9);
  for (int i = 0; i < g_conns; i++) {
    conn_t *c = &conns[i];
    if (g_mode == MODE_CHURN) churn_start(c, now);
    else if (c->state == ST_ACTIVE) {
      echo_start(c, now);
      if (do_send(c) < 0) { g_errors++; drop(c, ST_DEAD); }
    }
  }

  // The window edges are sampled at the top of the loop, before any event of
  // that iteration is handled, so batches timed in the window start after it.
  int phase = 0;  // 0 warm-up, 1 measuring, 2 done
  uint64_t srv0 = 0, srv1 = 0, tot0 = 0, tot1 = 0, st0 = 0, st1 = 0, busy0 = 0, busy1 = 0, last_retry = now;
  double lg0 = 0, lg1 = 0;
  for (;;) {
    now = now_ns();
    if (phase == 0 && now >= g_t_measure) {
      phase = 1;
      lg0 = self_cpu_s();
      if (g_cpu_pgid) srv0 = pgid_ticks(g_cpu_pgid);
      machine_ticks(&tot0, &st0, &busy0);
    }
    if (phase == 1 && now >= g_t_end) {
      lg1 = self_cpu_s();
      if (g_cpu_pgid) srv1 = pgid_ticks(g_cpu_pgid);
      machine_ticks(&tot1, &st1, &busy1);
      break;
    }
    uint64_t next = phase == 0 ? g_t_measure : g_t_end;
    int ms = (int)((next - now) / 1000000) + 1;
    if (ms > 10) ms = 10;
    int n = epoll_wait(g_ep, evs, 512, ms);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->fd < 0 || c->state == ST_DEAD || c->state == ST_IDLE) continue;
      if (g_mode == MODE_ECHO) echo_event(c, evs[i].events);
      else churn_event(c, evs[i].events);
    }
    if (g_mode == MODE_CHURN && (now = now_ns()) - last_retry > 1000000) {
      last_retry = now;  // slots whose connect failed get a new one, at most every 1 ms
      for (int i = 0; i < g_conns; i++)
        if (conns[i].state == ST_IDLE && conns[i].fd < 0) churn_start(&conns[i], now);
    }
  }
  for (int i = 0; i < g_conns; i++)
    if (conns[i].fd >= 0) drop(&conns[i], ST_DEAD);
  long long ovf1 = listen_overflows();

  qsort(g_lat, g_nlat, sizeof *g_lat, cmp_u32);
  double secs = g_duration, tck = (double)sysconf(_SC_CLK_TCK);
  int echo = g_mode == MODE_ECHO;
  printf("{\"mode\":\"%s\",\"conns\":%d,\"size\":%d,\"pipeline\":%d,\"warmup_s\":%.2f,\"duration_s\":%.2f,"
         "\"%s\":%llu,\"%s\":%.0f,\"mbytes_per_s\":%.2f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
         "\"samples\":%zu,\"errors\":%llu,\"corrupt\":%llu,\"connect_failures\":%llu,"
         "\"lg_cpu\":%.3f,\"srv_cpu\":%.3f,\"machine_cpu\":%.3f,\"steal_pct\":%.1f,\"listen_overflows\":%lld}\n",
         echo ? "echo" : "churn", g_conns, g_size, g_pipeline, g_warmup, secs, echo ? "msgs" : "cycles",
         (unsigned long long)g_msgs, echo ? "msgs_per_s" : "conns_per_s", (double)g_msgs / secs,
         (double)g_bytes / secs / 1e6, pct_us(0.50), pct_us(0.99), pct_us(0.999), g_nlat,
         (unsigned long long)g_errors, (unsigned long long)g_corrupt, (unsigned long long)g_connect_failures,
         (lg1 - lg0) / secs, g_cpu_pgid ? (double)(srv1 - srv0) / tck / secs : -1.0,
         (double)(busy1 - busy0) / tck / secs,
         tot1 > tot0 ? 100.0 * (double)(st1 - st0) / (double)(tot1 - tot0) : 0.0,
         ovf0 >= 0 && ovf1 >= 0 ? ovf1 - ovf0 : -1);
  fflush(stdout);
  return g_corrupt ? 2 : 0;
}
