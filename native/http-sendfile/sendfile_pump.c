/*
 * The body of an HTTP boot file response, sent with sendfile(2) from a
 * native thread (`http.threads` of them, each a pump): the JS side (server/http/sendfile.ts) parses the request,
 * asks the boot decision, opens the file and writes the headers through
 * Node's HTTP server; this moves the file's bytes from the page cache to the
 * client's TCP socket and reports how it ended.
 *
 * Why native: 100 iPXE nodes fetching a 60 MiB initrd at once is ~7 GB for
 * one event loop. From Node every byte is copied from a Buffer into the
 * socket (write), on the event loop's thread: Sidereal used 1.7x nginx's CPU
 * and reached 0.71-0.75x its throughput (bench/http.ts). sendfile moves page
 * cache pages to the socket without the copy through user space, and this
 * thread does it beside the event loop instead of on it.
 *
 * How: each send holds dup()s of the socket and the file (the caller keeps
 * and later closes its own). The sockets are in one epoll set, level
 * triggered: every wake gives each writable socket one sendfile of up to
 * TURN_BYTES, so a hundred clients share the thread in turns and a fast one
 * cannot starve the others. A send that makes no progress for its stall
 * limit ends ("stalled"). The descriptors are taken out of the epoll set
 * before they are closed: Node still holds the same socket, so closing our
 * dup alone would leave its registration behind (epoll(7), "Q6").
 */
#define _GNU_SOURCE
#include "../common/pump_base.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One socket's turn: about what a loopback or 10 GbE socket buffer takes at once. */
#define TURN_BYTES (1024 * 1024)
#define MAX_EVENTS 128
/* How often stalled sends are looked for: a stall limit is honoured to within this. */
#define STALL_CHECK_NS (250ull * 1000000ull)

enum outcome { O_OK, O_PEER_CLOSED, O_STALLED, O_SHORT, O_ERROR, O_ABORTED, O_CLOSED };
static const char *const OUTCOME_NAMES[] = { "ok", "peer-closed", "stalled", "short", "error", "aborted", "closed" };

typedef struct job {
  uint32_t id;
  int sock, fd;
  uint64_t start, off, end;   /* bytes [start, end) of the file; off: the next to send */
  uint64_t stall_ns, deadline;
  int done;
  struct job *next;
} job;

typedef struct report {
  uint32_t id;
  int outcome;
  double bytes;
  char reason[160];
} report;

typedef struct pump {
  pump_base b;          /* first: the shared thread, callback and lifetime (common/pump_base.h) */
  job *start_queue;     /* under b.lock */
  job *jobs;            /* the thread's */
} pump;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void free_job(job *j) {
  if (j->sock >= 0) close(j->sock);
  if (j->fd >= 0) close(j->fd);
  free(j);
}

/* ---- the pump thread ---------------------------------------------------- */

static void finish(pump *p, job *j, int outcome, const char *reason) {
  if (j->done) return;
  j->done = 1;
  /* Uncorked, the last partial segment goes out now (and the socket is Node's again as it was). */
  int off = 0;
  setsockopt(j->sock, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
  epoll_ctl(p->b.epfd, EPOLL_CTL_DEL, j->sock, NULL);
  close(j->sock); j->sock = -1;
  close(j->fd); j->fd = -1;
  report *r = calloc(1, sizeof *r);
  if (!r) return;
  r->id = j->id;
  r->outcome = outcome;
  r->bytes = (double)(j->off - j->start);
  if (reason) snprintf(r->reason, sizeof r->reason, "%s", reason);
  if (napi_call_threadsafe_function(p->b.tsfn, r, napi_tsfn_nonblocking) != napi_ok) free(r);
}

/* One turn: up to TURN_BYTES, or until the socket buffer is full. */
static void send_turn(pump *p, job *j, uint64_t now) {
  uint64_t sent = 0;
  while (j->off < j->end && sent < TURN_BYTES) {
    uint64_t want = j->end - j->off;
    if (want > TURN_BYTES - sent) want = TURN_BYTES - sent;
    off_t o = (off_t)j->off;
    ssize_t n = sendfile(j->sock, j->fd, &o, (size_t)want);
    if (n > 0) {
      j->off += (uint64_t)n;
      sent += (uint64_t)n;
      j->deadline = now + j->stall_ns;
      continue;
    }
    if (n == 0) {
      char why[160];
      snprintf(why, sizeof why, "the file ended at byte %llu, before the %llu announced (changed while sent?)",
               (unsigned long long)j->off, (unsigned long long)j->end);
      finish(p, j, O_SHORT, why);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return; /* the socket is full: epoll says when it drains */
    char why[160];
    snprintf(why, sizeof why, "sendfile: %s", strerror(errno));
    finish(p, j, errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN ? O_PEER_CLOSED : O_ERROR, why);
    return;
  }
  if (j->off >= j->end) finish(p, j, O_OK, NULL);
}

static void begin(pump *p, job *j, uint64_t now) {
  /* Corked, only full segments leave: a sendfile that ends mid-segment (a full buffer, the end
   * of a turn) does not send a small one. Without it the clients' CPU rose by a fifth (bench/http.ts). */
  int on = 1;
  setsockopt(j->sock, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
  struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = j };
  if (epoll_ctl(p->b.epfd, EPOLL_CTL_ADD, j->sock, &ev) < 0) {
    char why[160];
    snprintf(why, sizeof why, "epoll: %s", strerror(errno));
    /* finish() would DEL what was never added: harmless (ENOENT). */
    finish(p, j, O_ERROR, why);
    return;
  }
  j->deadline = now + j->stall_ns;
  if (j->off >= j->end) finish(p, j, O_OK, NULL);
}

/* New sends and aborts from the JS thread; returns 1 when told to quit. */
static int take_commands(pump *p, uint64_t now) {
  pump_base_drain_wake(&p->b);
  uint32_t *aborts;
  size_t n_aborts;
  pthread_mutex_lock(&p->b.lock);
  job *q = p->start_queue;
  p->start_queue = NULL;
  int quit = pump_base_take_aborts_locked(&p->b, &aborts, &n_aborts);
  pthread_mutex_unlock(&p->b.lock);
  while (q) {
    job *n = q->next;
    q->next = p->jobs;
    p->jobs = q;
    begin(p, q, now);
    q = n;
  }
  for (size_t i = 0; i < n_aborts; i++)
    for (job *j = p->jobs; j; j = j->next)
      if (j->id == aborts[i]) finish(p, j, O_ABORTED, "aborted by the server");
  free(aborts);
  return quit;
}

static void reap(pump *p) {
  job **pp = &p->jobs;
  while (*pp) {
    job *j = *pp;
    if (j->done) { *pp = j->next; free_job(j); }
    else pp = &j->next;
  }
}

static void *pump_thread_main(void *arg) {
  pump *p = arg;
  struct epoll_event evs[MAX_EVENTS];
  uint64_t next_check = mono_ns() + STALL_CHECK_NS;
  for (;;) {
    int n = epoll_wait(p->b.epfd, evs, MAX_EVENTS, p->jobs ? (int)(STALL_CHECK_NS / 1000000ull) : -1);
    uint64_t now = mono_ns();
    int quit = 0;
    for (int i = 0; i < n; i++) {
      job *j = evs[i].data.ptr;
      if (!j) { quit |= take_commands(p, now); continue; }
      if (!j->done) send_turn(p, j, now);
    }
    if (now >= next_check) {
      next_check = now + STALL_CHECK_NS;
      for (job *j = p->jobs; j; j = j->next)
        if (!j->done && now >= j->deadline) finish(p, j, O_STALLED, "no progress within the stall limit: the client stopped reading");
    }
    if (quit) {
      for (job *j = p->jobs; j; j = j->next) finish(p, j, O_CLOSED, "server closing");
      reap(p);
      return NULL;
    }
    reap(p);
  }
}

/* ---- the JS side -------------------------------------------------------- */

static void call_js(napi_env env, napi_value cb, void *ctx, void *data) {
  pump *p = ctx;
  report *r = data;
  if (env && cb) {
    pump_base_work_ended(env, &p->b);
    napi_value args[4], undef;
    napi_get_undefined(env, &undef);
    napi_create_uint32(env, r->id, &args[0]);
    napi_create_string_utf8(env, OUTCOME_NAMES[r->outcome], NAPI_AUTO_LENGTH, &args[1]);
    napi_create_double(env, r->bytes, &args[2]);
    if (r->reason[0]) napi_create_string_utf8(env, r->reason, NAPI_AUTO_LENGTH, &args[3]);
    else args[3] = undef;
    napi_call_function(env, undef, cb, 4, args, NULL);
  }
  free(r);
}

static void drop_queued(pump_base *b) {
  pump *p = (pump *)b;
  while (p->start_queue) { job *j = p->start_queue; p->start_queue = j->next; free_job(j); }
}

/* createPump(onEnd(id, outcome, bytes, reason?)): pump */
static napi_value create_pump(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function)
    return pump_throw(env, "createPump(onEnd): onEnd must be a function");
  pump *p = calloc(1, sizeof *p);
  if (!p) return pump_throw(env, "out of memory");
  p->b.drop_queued = drop_queued;
  return pump_base_create(env, argv[0], &p->b, "http-sendfile", call_js, pump_thread_main);
}

static int get_num(napi_env env, napi_value v, double *out) {
  return napi_get_value_double(env, v, out) == napi_ok && *out >= 0 && *out <= 9007199254740991.0 && *out == (double)(uint64_t)*out;
}

/*
 * startSend(pump, socketFd, fileFd, offset, length, stallMs): id
 * Both descriptors are dup'ed: the caller closes its file when this returns,
 * and keeps its socket for the next request once the end is reported.
 */
static napi_value start_send(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6) return pump_throw(env, "startSend(pump, socketFd, fileFd, offset, length, stallMs)");
  pump *p = (pump *)pump_base_get(env, argv[0]);
  if (!p) return NULL;
  int32_t sock, fd;
  double off, len, stall_ms;
  if (napi_get_value_int32(env, argv[1], &sock) != napi_ok || sock < 0) return pump_throw(env, "socketFd must be a descriptor");
  if (napi_get_value_int32(env, argv[2], &fd) != napi_ok || fd < 0) return pump_throw(env, "fileFd must be a descriptor");
  if (!get_num(env, argv[3], &off)) return pump_throw(env, "offset must be an integer >= 0");
  if (!get_num(env, argv[4], &len)) return pump_throw(env, "length must be an integer >= 0");
  if (!get_num(env, argv[5], &stall_ms) || stall_ms < 1) return pump_throw(env, "stallMs must be an integer >= 1");
  job *j = calloc(1, sizeof *j);
  if (!j) return pump_throw(env, "out of memory");
  j->fd = -1;
  j->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  if (j->sock >= 0) j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (j->sock < 0 || j->fd < 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "dup: %s", strerror(errno));
    free_job(j);
    return pump_throw(env, msg);
  }
  j->start = j->off = (uint64_t)off;
  j->end = (uint64_t)off + (uint64_t)len;
  j->stall_ns = (uint64_t)stall_ms * 1000000ull;
  /* Read nothing of `j` once queued: the thread may finish and free it first. */
  uint32_t id = j->id = ++p->b.next_id;
  pump_base_work_started(env, &p->b);
  pthread_mutex_lock(&p->b.lock);
  j->next = p->start_queue;
  p->start_queue = j;
  pthread_mutex_unlock(&p->b.lock);
  pump_base_wake(&p->b);
  napi_value idv;
  napi_create_uint32(env, id, &idv);
  return idv;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "createPump", NULL, create_pump, NULL, NULL, NULL, napi_default, NULL },
    { "startSend", NULL, start_send, NULL, NULL, NULL, napi_default, NULL },
    { "abortSend", NULL, pump_base_abort, NULL, NULL, NULL, napi_default, NULL },
    { "closePump", NULL, pump_base_close, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
