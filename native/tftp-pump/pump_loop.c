/*
 * The TFTP data phase's thread: epoll over every session's socket, the protocol rules of
 * tftp_pump.c's opening comment (windows, duplicate ACKs, retransmission, the end report).
 * Everything here runs on the pump's own thread; the JS side reaches it only through the
 * start queue and the abort list under the pump's lock, and the wake eventfd.
 */
#include "pump.h"

const char *const OUTCOME_NAMES[] = {
  "ok", "aborted-probe", "timeout", "client-error", "peer-unreachable", "error", "closed",
};

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void free_session(session *s) {
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
  p->finished++;
  if (errmsg) send_error(s, 0, errmsg);
  epoll_ctl(p->b.epfd, EPOLL_CTL_DEL, s->sock, NULL);
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
  if (napi_call_threadsafe_function(p->b.tsfn, r, napi_tsfn_nonblocking) != napi_ok) free(r);
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
  epoll_ctl(p->b.epfd, EPOLL_CTL_MOD, s->sock, &ev);
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

#define RECV_BATCH 8
/* Larger than any packet a client may send a read transfer (an ERROR with its message); longer ones are cut, and malformed. */
#define RECV_BYTES 1024

/*
 * Every datagram queued on the session, by recvmmsg: in lock-step that is one ACK, read in one
 * call, where recv would need a second one to learn that nothing else is queued.
 */
static void on_readable(pump *p, session *s) {
  static __thread uint8_t bufs[RECV_BATCH][RECV_BYTES];
  struct iovec iov[RECV_BATCH];
  struct mmsghdr msgs[RECV_BATCH];
  /* Bounded: a flood on one session cannot starve the others. */
  for (int round = 0; round < 64 / RECV_BATCH && s->state != S_DONE; round++) {
    for (int k = 0; k < RECV_BATCH; k++) {
      iov[k] = (struct iovec){ bufs[k], RECV_BYTES };
      msgs[k] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[k], .msg_iovlen = 1 } };
    }
    int n = recvmmsg(s->sock, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) socket_failed(p, s, errno, "recv");
      return;
    }
    for (int k = 0; k < n && s->state != S_DONE; k++) on_packet(p, s, bufs[k], msgs[k].msg_len);
    /* Fewer than asked for: the queue is empty now. */
    if (n < RECV_BATCH) return;
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
  if (epoll_ctl(p->b.epfd, EPOLL_CTL_ADD, s->sock, &ev) < 0) {
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
  pump_base_drain_wake(&p->b);
  uint32_t *aborts;
  size_t n_aborts;
  pthread_mutex_lock(&p->b.lock);
  session *q = p->start_queue;
  p->start_queue = NULL;
  int quit = pump_base_take_aborts_locked(&p->b, &aborts, &n_aborts);
  pthread_mutex_unlock(&p->b.lock);
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
  if (p->finished == 0) return;
  p->finished = 0;
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

void *pump_thread_main(void *arg) {
  pump *p = arg;
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    int timeout = -1;
    if (p->next_deadline) {
      uint64_t now = mono_ns();
      timeout = p->next_deadline <= now ? 0 : (int)((p->next_deadline - now + 999999) / 1000000);
    }
    int n = epoll_wait(p->b.epfd, evs, MAX_EVENTS, timeout);
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

