/*
 * The TFTP data phase (RFC 1350 lock-step, RFC 7440 windows) in one native
 * thread per server: the JS side takes the RRQ, asks the boot decision,
 * opens the file and negotiates the options (server/tftp/server.ts); this
 * sends the OACK and every DATA block, takes the ACKs, retransmits and
 * reports how the transfer ended.
 *
 * Why native: a lock-step transfer is one ACK in and one DATA out per block,
 * ~50,000 of each a second per client at blksize 1468. In Node each of them
 * cost 11-13 us of event-loop time (dgram callback, JS, libuv send), against
 * ~9 us per block for tftpd-hpa, so Sidereal ran at 0.81-0.86x tftpd-hpa and
 * a 500-node storm was CPU-bound (bench/RESULTS.md). Here a block is one
 * recv and one sendmsg, with no allocation.
 *
 * One thread serves every session of a server with epoll; each session has
 * its own UDP socket (the server's TID, RFC 1350 section 4), connect()ed to
 * the client so the kernel drops other TIDs and an ICMP port unreachable
 * ends the transfer. Blocks are read with pread into a per-session buffer
 * (boot files live in the page cache; a cold read stalls this thread the way
 * it stalls dnsmasq's one loop) or come from a copy of a rendered menu.
 *
 * Protocol rules, as the JS session had them:
 * - a whole window goes out without waiting; the ACK of block n moves the
 *   window to n+1; an ACK inside what was sent (a gap, RFC 7440 section 4)
 *   restarts the window after it;
 * - a duplicate ACK never sends anything, and ACKs older than the window are
 *   ignored: echoes of our own retransmissions cannot multiply traffic (the
 *   sorcerer's apprentice, RFC 1123 section 4.2.3.1);
 * - a timeout resends the window from the oldest unacknowledged block, up to
 *   `retries` times without progress, then ERROR 0 and give up;
 * - ERROR 8 answering the OACK is a UEFI size probe, not a failure.
 * Blocks are numbered absolutely (1..n); the wire carries them modulo 65536.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum outcome { O_OK, O_ABORTED_PROBE, O_TIMEOUT, O_CLIENT_ERROR, O_PEER_UNREACHABLE, O_ERROR, O_CLOSED };
static const char *const OUTCOME_NAMES[] = {
  "ok", "aborted-probe", "timeout", "client-error", "peer-unreachable", "error", "closed",
};
enum state { S_OACK, S_DATA, S_DONE };

/* Bytes read from the file at once (or one window, or one block, if larger): a session's whole buffer. */
#define CHUNK_BYTES (128 * 1024)
#define MAX_EVENTS 64

typedef struct session {
  uint32_t id;
  int sock;
  int fd;                /* the file, or -1 when `mem` holds the content */
  uint8_t *mem;
  uint64_t size;
  uint32_t blksize, window, retries;
  uint64_t timeout_ns;
  uint8_t *oack;         /* the OACK to send first, or NULL: DATA 1 first */
  size_t oack_len;
  int state;
  uint64_t n_blocks, base, send_next, highest_sent;
  uint32_t tries;
  uint64_t retransmits;
  uint32_t malformed;
  uint64_t deadline;     /* monotonic ns; 0 when no timer */
  int want_out;          /* waiting for EPOLLOUT after EAGAIN */
  uint8_t *chunk;
  size_t chunk_cap;
  uint64_t chunk_off;
  size_t chunk_len;
  int abort_requested;
  struct session *next;  /* in the pump's session list, or its start queue */
} session;

typedef struct end_report {
  uint32_t id;
  int outcome;
  double bytes;
  double retransmits;
  double malformed;
  char reason[200];
} end_report;

typedef struct pump {
  napi_env env;
  napi_threadsafe_function tsfn;
  pthread_t thread;
  int thread_started;
  int epfd;
  int wakefd;
  pthread_mutex_t lock;  /* guards start_queue, quit and the abort flags' hand-over */
  session *start_queue;
  uint32_t *aborts;
  size_t n_aborts, cap_aborts;
  int quit;
  int closed;
  /* Thread-owned from here. */
  session *sessions;
  uint64_t next_deadline;
  uint64_t now;
  /* JS-thread-owned. */
  uint32_t next_id;
  uint32_t active;
  /* Holders of this struct: the thread-safe function and the JS handle; the last to let go frees it. */
  int refs;
} pump;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void free_session(session *s) {
  if (s->sock >= 0) close(s->sock);
  if (s->fd >= 0) close(s->fd);
  free(s->mem);
  free(s->oack);
  free(s->chunk);
  free(s);
}

/* ---- the pump thread ---------------------------------------------------- */

static void arm(pump *p, session *s) {
  s->deadline = p->now + s->timeout_ns;
  if (p->next_deadline == 0 || s->deadline < p->next_deadline) p->next_deadline = s->deadline;
}

static void send_error(session *s, uint16_t code, const char *msg) {
  uint8_t buf[128];
  size_t len = strlen(msg);
  if (len > sizeof buf - 5) len = sizeof buf - 5;
  buf[0] = 0; buf[1] = 5; buf[2] = (uint8_t)(code >> 8); buf[3] = (uint8_t)code;
  memcpy(buf + 4, msg, len);
  buf[4 + len] = 0;
  /* Best effort: the transfer is over either way. */
  ssize_t r = send(s->sock, buf, 5 + len, MSG_DONTWAIT);
  (void)r;
}

/* End the transfer: tell the client (when `errmsg`), free the socket and file, report to JS. */
static void finish(pump *p, session *s, int outcome, const char *reason, const char *errmsg) {
  if (s->state == S_DONE) return;
  s->state = S_DONE;
  if (errmsg) send_error(s, 0, errmsg);
  epoll_ctl(p->epfd, EPOLL_CTL_DEL, s->sock, NULL);
  close(s->sock);
  s->sock = -1;
  if (s->fd >= 0) { close(s->fd); s->fd = -1; }
  free(s->chunk); s->chunk = NULL;
  end_report *r = calloc(1, sizeof *r);
  if (!r) return;
  r->id = s->id;
  r->outcome = outcome;
  uint64_t acked = s->base > 0 ? (s->base - 1) * (uint64_t)s->blksize : 0;
  r->bytes = (double)(outcome == O_OK ? s->size : (acked < s->size ? acked : s->size));
  r->retransmits = (double)s->retransmits;
  r->malformed = (double)s->malformed;
  if (reason) snprintf(r->reason, sizeof r->reason, "%s", reason);
  if (napi_call_threadsafe_function(p->tsfn, r, napi_tsfn_nonblocking) != napi_ok) free(r);
}

static uint64_t window_end(session *s) {
  uint64_t e = s->base + s->window - 1;
  return e < s->n_blocks ? e : s->n_blocks;
}

static size_t block_len(session *s, uint64_t b) {
  return b < s->n_blocks ? s->blksize : (size_t)(s->size - (s->n_blocks - 1) * (uint64_t)s->blksize);
}

/* Bytes of block `b`, from memory or the chunk buffer (refilled from the file when `b` is outside it). */
static const uint8_t *block_data(pump *p, session *s, uint64_t b, size_t len) {
  uint64_t off = (b - 1) * (uint64_t)s->blksize;
  if (s->mem) return s->mem + off;
  if (len == 0) return (const uint8_t *)"";
  if (off >= s->chunk_off && off + len <= s->chunk_off + s->chunk_len) return s->chunk + (off - s->chunk_off);
  size_t got = 0;
  while (got < s->chunk_cap) {
    ssize_t n = pread(s->fd, s->chunk + got, s->chunk_cap - got, (off_t)(off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  s->chunk_off = off;
  s->chunk_len = got;
  if (got < len) {
    char why[160];
    snprintf(why, sizeof why, "read failed: short read at block %llu: %zu of %zu bytes (file changed?)",
             (unsigned long long)b, got, len);
    finish(p, s, O_ERROR, why, "read error");
    return NULL;
  }
  return s->chunk;
}

static void want_writable(pump *p, session *s, int on) {
  struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = s };
  s->want_out = on;
  epoll_ctl(p->epfd, EPOLL_CTL_MOD, s->sock, &ev);
}

static void socket_failed(pump *p, session *s, int err, const char *what) {
  if (err == ECONNREFUSED) {
    finish(p, s, O_PEER_UNREACHABLE, "ICMP port unreachable from the client", NULL);
  } else {
    char why[160];
    snprintf(why, sizeof why, "socket error: %s: %s", what, strerror(err));
    finish(p, s, O_ERROR, why, NULL);
  }
}

/* Put blocks send_next..window end on the wire; stops early when the socket buffer is full. */
static void pump_blocks(pump *p, session *s) {
  if (s->state != S_DATA || s->want_out) return;
  int sent = 0;
  uint64_t end = window_end(s);
  while (s->send_next <= end) {
    uint64_t b = s->send_next;
    size_t len = block_len(s, b);
    const uint8_t *data = block_data(p, s, b, len);
    if (!data) return;
    uint8_t hdr[4] = { 0, 3, (uint8_t)((b >> 8) & 0xff), (uint8_t)(b & 0xff) };
    struct iovec iov[2] = { { hdr, 4 }, { (void *)data, len } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
    if (sendmsg(s->sock, &mh, MSG_DONTWAIT) < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        want_writable(p, s, 1);
        break;
      }
      socket_failed(p, s, errno, "send");
      return;
    }
    s->send_next = b + 1;
    if (b > s->highest_sent) s->highest_sent = b;
    sent++;
  }
  if (sent) arm(p, s);
}

static void send_oack(pump *p, session *s) {
  if (send(s->sock, s->oack, s->oack_len, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED) {
    socket_failed(p, s, errno, "send");
    return;
  }
  arm(p, s);
}

static void on_ack(pump *p, session *s, uint16_t wire) {
  uint64_t last = s->base - 1;
  uint64_t diff = (uint64_t)((wire - (uint16_t)(last & 0xffff)) & 0xffff);
  /* 0: a duplicate of the ACK that already moved the window. Doing nothing is what stops the sorcerer's apprentice. */
  if (diff == 0) return;
  /* Older than the window, or beyond what we sent: stale. */
  if (diff > s->highest_sent - last) return;
  uint64_t acked = last + diff;
  s->base = acked + 1;
  s->tries = 0;
  if (s->base > s->n_blocks) {
    finish(p, s, O_OK, NULL, NULL);
    return;
  }
  if (acked < s->highest_sent && s->send_next > s->base) {
    uint64_t upto = s->highest_sent < s->send_next - 1 ? s->highest_sent : s->send_next - 1;
    s->retransmits += upto - acked;
    s->send_next = s->base;
  }
  if (s->send_next < s->base) s->send_next = s->base;
  /* Progress restarts the retransmit clock even when nothing new goes out. */
  arm(p, s);
  pump_blocks(p, s);
}

static void on_packet(pump *p, session *s, const uint8_t *m, size_t len) {
  if (len < 4 || m[0] != 0) { s->malformed++; return; }
  switch (m[1]) {
  case 4: /* ACK */
    if (len != 4) { s->malformed++; return; }
    if (s->state == S_OACK) {
      if (m[2] || m[3]) return; /* an ACK of data we never sent */
      s->state = S_DATA;
      s->tries = 0;
      pump_blocks(p, s);
      return;
    }
    on_ack(p, s, (uint16_t)((m[2] << 8) | m[3]));
    return;
  case 5: { /* ERROR */
    uint16_t code = (uint16_t)((m[2] << 8) | m[3]);
    char msg[100];
    size_t n = 0;
    for (size_t i = 4; i < len && m[i] && n < sizeof msg - 1; i++) msg[n++] = (m[i] >= 0x20 && m[i] < 0x7f) ? (char)m[i] : '?';
    msg[n] = 0;
    char why[200];
    if (s->state == S_OACK && code == 8) {
      /* RFC 2347: the client refuses the OACK. UEFI does it after reading tsize, then sends a new RRQ. */
      snprintf(why, sizeof why, "client aborted after OACK: %s", msg);
      finish(p, s, O_ABORTED_PROBE, why, NULL);
    } else {
      snprintf(why, sizeof why, "client sent ERROR %u: %s", code, msg);
      finish(p, s, O_CLIENT_ERROR, why, NULL);
    }
    return;
  }
  case 1: case 2: case 3: case 6:
    return; /* well-formed enough, but not for a read transfer: dropped */
  default:
    s->malformed++;
  }
}

static void on_readable(pump *p, session *s) {
  uint8_t buf[2048];
  /* Bounded: a flood on one session cannot starve the others. */
  for (int i = 0; i < 64 && s->state != S_DONE; i++) {
    ssize_t n = recv(s->sock, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) socket_failed(p, s, errno, "recv");
      return;
    }
    on_packet(p, s, buf, (size_t)n);
  }
}

static void on_timeout(pump *p, session *s) {
  s->deadline = 0;
  if (++s->tries > s->retries) {
    char why[160];
    snprintf(why, sizeof why, "no ACK after %u retransmissions (window at block %llu)", s->retries, (unsigned long long)s->base);
    finish(p, s, O_TIMEOUT, why, "timed out");
    return;
  }
  if (s->state == S_OACK) {
    send_oack(p, s);
    return;
  }
  uint64_t hi = s->highest_sent < window_end(s) ? s->highest_sent : window_end(s);
  if (hi >= s->base) s->retransmits += hi - s->base + 1;
  s->send_next = s->base;
  if (s->want_out) want_writable(p, s, 0);
  pump_blocks(p, s);
  if (s->state != S_DONE && s->deadline == 0) arm(p, s);
}

static void begin(pump *p, session *s) {
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
  if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, s->sock, &ev) < 0) {
    socket_failed(p, s, errno, "epoll");
    return;
  }
  if (s->oack) {
    send_oack(p, s);
  } else {
    s->state = S_DATA;
    pump_blocks(p, s);
  }
}

/* Take new sessions and abort requests from the JS thread. */
static int take_commands(pump *p) {
  uint64_t v;
  ssize_t r = read(p->wakefd, &v, sizeof v);
  (void)r;
  pthread_mutex_lock(&p->lock);
  session *q = p->start_queue;
  p->start_queue = NULL;
  uint32_t *aborts = p->aborts;
  size_t n_aborts = p->n_aborts;
  p->aborts = NULL;
  p->n_aborts = p->cap_aborts = 0;
  int quit = p->quit;
  pthread_mutex_unlock(&p->lock);
  /* The queue is newest first; start in arrival order. */
  session *rev = NULL;
  while (q) { session *n = q->next; q->next = rev; rev = q; q = n; }
  while (rev) {
    session *n = rev->next;
    rev->next = p->sessions;
    p->sessions = rev;
    begin(p, rev);
    rev = n;
  }
  for (size_t i = 0; i < n_aborts; i++)
    for (session *s = p->sessions; s; s = s->next)
      if (s->id == aborts[i]) finish(p, s, O_CLOSED, "server closing", "server shutting down");
  free(aborts);
  return quit;
}

static void reap(pump *p) {
  session **pp = &p->sessions;
  while (*pp) {
    session *s = *pp;
    if (s->state == S_DONE) { *pp = s->next; free_session(s); }
    else pp = &s->next;
  }
}

static void run_timers(pump *p) {
  uint64_t next = 0;
  for (session *s = p->sessions; s; s = s->next) {
    if (s->state == S_DONE || s->deadline == 0) continue;
    if (s->deadline <= p->now) on_timeout(p, s);
    if (s->state != S_DONE && s->deadline && (next == 0 || s->deadline < next)) next = s->deadline;
  }
  p->next_deadline = next;
}

static void *thread_main(void *arg) {
  pump *p = arg;
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    int timeout = -1;
    if (p->next_deadline) {
      uint64_t now = mono_ns();
      timeout = p->next_deadline <= now ? 0 : (int)((p->next_deadline - now + 999999) / 1000000);
    }
    int n = epoll_wait(p->epfd, evs, MAX_EVENTS, timeout);
    p->now = mono_ns();
    int quit = 0;
    for (int i = 0; i < n; i++) {
      session *s = evs[i].data.ptr;
      if (!s) { quit |= take_commands(p); continue; }
      if (s->state == S_DONE) continue;
      if (evs[i].events & EPOLLOUT) { want_writable(p, s, 0); pump_blocks(p, s); }
      if (s->state != S_DONE && (evs[i].events & (EPOLLIN | EPOLLERR))) on_readable(p, s);
    }
    if (p->next_deadline && p->now >= p->next_deadline) run_timers(p);
    if (quit) {
      for (session *s = p->sessions; s; s = s->next) finish(p, s, O_CLOSED, "server closing", "server shutting down");
      reap(p);
      return NULL;
    }
    reap(p);
  }
}

/* ---- the JS side -------------------------------------------------------- */

static void call_js(napi_env env, napi_value cb, void *ctx, void *data) {
  pump *p = ctx;
  end_report *r = data;
  if (env && cb) {
    if (p->active > 0 && --p->active == 0) napi_unref_threadsafe_function(env, p->tsfn);
    napi_value args[6], undef;
    napi_get_undefined(env, &undef);
    napi_create_uint32(env, r->id, &args[0]);
    napi_create_string_utf8(env, OUTCOME_NAMES[r->outcome], NAPI_AUTO_LENGTH, &args[1]);
    napi_create_double(env, r->bytes, &args[2]);
    napi_create_double(env, r->retransmits, &args[3]);
    napi_create_double(env, r->malformed, &args[4]);
    if (r->reason[0]) napi_create_string_utf8(env, r->reason, NAPI_AUTO_LENGTH, &args[5]);
    else args[5] = undef;
    napi_call_function(env, undef, cb, 6, args, NULL);
  }
  free(r);
}

static void stop_thread(pump *p) {
  if (p->closed) return;
  p->closed = 1;
  if (p->thread_started) {
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    pthread_mutex_unlock(&p->lock);
    uint64_t one = 1;
    ssize_t r = write(p->wakefd, &one, sizeof one);
    (void)r;
    pthread_join(p->thread, NULL);
  }
  /* Sessions queued but never started. */
  while (p->start_queue) { session *s = p->start_queue; p->start_queue = s->next; free_session(s); }
  free(p->aborts);
  p->aborts = NULL;
  close(p->epfd);
  close(p->wakefd);
}

static void env_cleanup(void *arg) {
  pump *p = arg;
  stop_thread(p);
}

static void unref_pump(pump *p) {
  if (--p->refs > 0) return;
  pthread_mutex_destroy(&p->lock);
  free(p);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  unref_pump(data);
}

/* The JS handle was collected: a closed pump is freed once its callback is finalized too. */
static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  pump *p = data;
  stop_thread(p);
  unref_pump(p);
}

static napi_value throw_msg(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value throw_errno(napi_env env, const char *what) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  return throw_msg(env, msg);
}

static pump *get_pump(napi_env env, napi_value v) {
  pump *p = NULL;
  if (napi_get_value_external(env, v, (void **)&p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "first argument must be a pump");
    return NULL;
  }
  if (p->closed) {
    napi_throw_error(env, NULL, "the pump is closed");
    return NULL;
  }
  return p;
}

/* The (pump, x) arguments every call but createPump takes; NULL with a JS exception pending when they are wrong. */
static pump *pump_and_arg(napi_env env, napi_callback_info info, napi_value *arg, const char *usage) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  *arg = argv[1];
  return get_pump(env, argv[0]);
}

/* createPump(onEnd(id, outcome, bytes, retransmits, malformed, reason?)): pump */
static napi_value create_pump(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function)
    return throw_msg(env, "createPump(onEnd): onEnd must be a function");
  pump *p = calloc(1, sizeof *p);
  if (!p) return throw_msg(env, "out of memory");
  p->env = env;
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->epfd < 0 || p->wakefd < 0) {
    if (p->epfd >= 0) close(p->epfd);
    if (p->wakefd >= 0) close(p->wakefd);
    free(p);
    return throw_errno(env, "epoll/eventfd");
  }
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev);
  pthread_mutex_init(&p->lock, NULL);
  p->refs = 1; /* the thread-safe function's */
  napi_value name;
  napi_create_string_utf8(env, "tftp-pump", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, p, tsfn_finalize, p, call_js, &p->tsfn) != napi_ok) {
    close(p->epfd); close(p->wakefd); pthread_mutex_destroy(&p->lock); free(p);
    return throw_msg(env, "could not create the pump's callback");
  }
  /* Idle, the pump does not keep the process alive; a transfer in flight does (as its socket would). */
  napi_unref_threadsafe_function(env, p->tsfn);
  if (pthread_create(&p->thread, NULL, thread_main, p) != 0) {
    p->closed = 1;
    close(p->epfd); close(p->wakefd);
    napi_release_threadsafe_function(p->tsfn, napi_tsfn_abort);
    return throw_msg(env, "could not start the pump thread");
  }
  p->thread_started = 1;
  napi_add_env_cleanup_hook(env, env_cleanup, p);
  napi_value ext;
  if (napi_create_external(env, p, handle_finalize, NULL, &ext) != napi_ok) return throw_msg(env, "could not create the pump handle");
  p->refs++;
  return ext;
}

static int get_u32(napi_env env, napi_value obj, const char *key, uint32_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return 0;
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

static int get_str(napi_env env, napi_value obj, const char *key, char *buf, size_t cap) {
  napi_value v;
  size_t len;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return 0;
  return napi_get_value_string_utf8(env, v, buf, cap, &len) == napi_ok && len > 0 && len < cap - 1;
}

/* Copy a Buffer property; 1 with *out NULL when absent or undefined. */
static int get_bytes(napi_env env, napi_value obj, const char *key, uint8_t **out, size_t *len) {
  napi_value v;
  napi_valuetype t;
  *out = NULL; *len = 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_undefined || t == napi_null) return 1;
  void *data;
  size_t n;
  if (napi_get_buffer_info(env, v, &data, &n) != napi_ok) return 0;
  *out = malloc(n ? n : 1);
  if (!*out) return 0;
  memcpy(*out, data, n);
  *len = n;
  return 1;
}

/*
 * startSession(pump, { fd, data?, size, local, peer, peerPort, blksize, windowsize,
 *                      timeoutMs, retries, oack?, sndbuf, rcvbuf }): { id, port }
 * `fd` is dup'ed (the caller closes its own), -1 when `data` holds the content.
 * The session socket is made here, so a bind or connect failure throws at once.
 */
static napi_value start_session(napi_env env, napi_callback_info info) {
  napi_value o;
  pump *p = pump_and_arg(env, info, &o, "startSession(pump, options)");
  if (!p) return NULL;
  int32_t fd = -1;
  napi_value fdv;
  double size = 0;
  napi_value sizev;
  uint32_t peer_port, blksize, windowsize, timeout_ms, retries, sndbuf, rcvbuf;
  char local[64], peer[64];
  if (napi_get_named_property(env, o, "fd", &fdv) != napi_ok || napi_get_value_int32(env, fdv, &fd) != napi_ok) return throw_msg(env, "fd must be an integer");
  if (napi_get_named_property(env, o, "size", &sizev) != napi_ok || napi_get_value_double(env, sizev, &size) != napi_ok || size < 0) return throw_msg(env, "size must be a number >= 0");
  if (!get_str(env, o, "local", local, sizeof local)) return throw_msg(env, "local must be an IPv4 address");
  if (!get_str(env, o, "peer", peer, sizeof peer)) return throw_msg(env, "peer must be an IPv4 address");
  if (!get_u32(env, o, "peerPort", &peer_port) || peer_port == 0 || peer_port > 65535) return throw_msg(env, "peerPort must be 1..65535");
  if (!get_u32(env, o, "blksize", &blksize) || blksize < 8 || blksize > 65464) return throw_msg(env, "blksize must be 8..65464");
  if (!get_u32(env, o, "windowsize", &windowsize) || windowsize < 1 || windowsize > 65535) return throw_msg(env, "windowsize must be 1..65535");
  if (!get_u32(env, o, "timeoutMs", &timeout_ms) || timeout_ms < 1) return throw_msg(env, "timeoutMs must be >= 1");
  if (!get_u32(env, o, "retries", &retries)) return throw_msg(env, "retries must be >= 0");
  if (!get_u32(env, o, "sndbuf", &sndbuf) || !get_u32(env, o, "rcvbuf", &rcvbuf)) return throw_msg(env, "sndbuf and rcvbuf must be integers");

  struct sockaddr_in la = { .sin_family = AF_INET }, pa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)peer_port) };
  if (inet_pton(AF_INET, local, &la.sin_addr) != 1) return throw_msg(env, "local must be an IPv4 address");
  if (inet_pton(AF_INET, peer, &pa.sin_addr) != 1) return throw_msg(env, "peer must be an IPv4 address");

  session *s = calloc(1, sizeof *s);
  if (!s) return throw_msg(env, "out of memory");
  s->sock = -1;
  s->fd = -1;
  size_t mem_len = 0;
  if (!get_bytes(env, o, "data", &s->mem, &mem_len) || !get_bytes(env, o, "oack", &s->oack, &s->oack_len)) {
    free_session(s);
    return throw_msg(env, "data and oack must be Buffers");
  }
  if (s->mem ? mem_len != (size_t)size : fd < 0) {
    free_session(s);
    return throw_msg(env, "give either data (of `size` bytes) or an open fd");
  }
  if (!s->mem) {
    s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (s->fd < 0) { free_session(s); return throw_errno(env, "dup"); }
  }
  s->sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->sock < 0) { free_session(s); return throw_errno(env, "socket"); }
  int sb = (int)sndbuf, rb = (int)rcvbuf;
  setsockopt(s->sock, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
  setsockopt(s->sock, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
  if (bind(s->sock, (struct sockaddr *)&la, sizeof la) < 0) { int e = errno; free_session(s); errno = e; return throw_errno(env, "bind"); }
  if (connect(s->sock, (struct sockaddr *)&pa, sizeof pa) < 0) { int e = errno; free_session(s); errno = e; return throw_errno(env, "connect"); }
  struct sockaddr_in bound;
  socklen_t bl = sizeof bound;
  getsockname(s->sock, (struct sockaddr *)&bound, &bl);

  s->size = (uint64_t)size;
  s->blksize = blksize;
  s->window = windowsize;
  s->retries = retries;
  s->timeout_ns = (uint64_t)timeout_ms * 1000000ull;
  /* The last block is shorter than blksize, possibly empty: a file that is a multiple of blksize ends with a 0-byte DATA (RFC 1350 section 6). */
  s->n_blocks = s->size / blksize + 1;
  s->base = 1;
  s->send_next = 1;
  s->state = S_OACK;
  if (!s->mem) {
    /* 128 KiB, or one window if larger: a resent window is read again from the page cache at most once. */
    size_t blocks = CHUNK_BYTES / blksize;
    if (blocks < windowsize) blocks = windowsize;
    if (blocks < 1) blocks = 1;
    if (blocks > s->n_blocks) blocks = (size_t)s->n_blocks;
    s->chunk_cap = blocks * blksize;
    s->chunk = malloc(s->chunk_cap ? s->chunk_cap : 1);
    if (!s->chunk) { free_session(s); return throw_msg(env, "out of memory"); }
  }
  /* Read nothing of `s` once it is queued: the pump thread may run the whole transfer and free
   * it before this returns (an empty file to a fast client, this thread preempted). */
  uint32_t id = s->id = ++p->next_id;
  if (p->active++ == 0) napi_ref_threadsafe_function(env, p->tsfn);

  pthread_mutex_lock(&p->lock);
  s->next = p->start_queue;
  p->start_queue = s;
  pthread_mutex_unlock(&p->lock);
  uint64_t one = 1;
  ssize_t wr = write(p->wakefd, &one, sizeof one);
  (void)wr;

  napi_value result, idv, portv;
  napi_create_object(env, &result);
  napi_create_uint32(env, id, &idv);
  napi_create_uint32(env, ntohs(bound.sin_port), &portv);
  napi_set_named_property(env, result, "id", idv);
  napi_set_named_property(env, result, "port", portv);
  return result;
}

/* abortSession(pump, id): ends it with ERROR 0 "server shutting down"; its end report follows. */
static napi_value abort_session(napi_env env, napi_callback_info info) {
  napi_value idv;
  pump *p = pump_and_arg(env, info, &idv, "abortSession(pump, id)");
  if (!p) return NULL;
  uint32_t id;
  if (napi_get_value_uint32(env, idv, &id) != napi_ok) return throw_msg(env, "id must be an integer");
  pthread_mutex_lock(&p->lock);
  if (p->n_aborts == p->cap_aborts) {
    size_t cap = p->cap_aborts ? p->cap_aborts * 2 : 16;
    uint32_t *a = realloc(p->aborts, cap * sizeof *a);
    if (!a) { pthread_mutex_unlock(&p->lock); return throw_msg(env, "out of memory"); }
    p->aborts = a;
    p->cap_aborts = cap;
  }
  p->aborts[p->n_aborts++] = id;
  pthread_mutex_unlock(&p->lock);
  uint64_t one = 1;
  ssize_t wr = write(p->wakefd, &one, sizeof one);
  (void)wr;
  return NULL;
}

/* closePump(pump): ends every session ("closed"), stops the thread; their end reports still arrive. */
static napi_value close_pump(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  pump *p = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&p) != napi_ok || !p) return throw_msg(env, "closePump(pump)");
  if (p->closed) return NULL;
  stop_thread(p);
  napi_remove_env_cleanup_hook(env, env_cleanup, p);
  /* Pending end reports are still delivered; then the finalizer frees the pump. */
  napi_release_threadsafe_function(p->tsfn, napi_tsfn_release);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "createPump", NULL, create_pump, NULL, NULL, NULL, napi_default, NULL },
    { "startSession", NULL, start_session, NULL, NULL, NULL, napi_default, NULL },
    { "abortSession", NULL, abort_session, NULL, NULL, NULL, napi_default, NULL },
    { "closePump", NULL, close_pump, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
