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
 * recvmmsg (every queued datagram in one call) and one sendmsg, with no
 * allocation.
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
#include "pump.h"

/* ---- the JS side -------------------------------------------------------- */

static void call_js(napi_env env, napi_value cb, void *ctx, void *data) {
  pump *p = ctx;
  end_report *r = data;
  if (env && cb) {
    pump_base_work_ended(env, &p->b);
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

static void drop_queued(pump_base *b) {
  pump *p = (pump *)b;
  while (p->start_queue) { session *s = p->start_queue; p->start_queue = s->next; free_session(s); }
}

static napi_value throw_errno(napi_env env, const char *what) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  return pump_throw(env, msg);
}

static pump *get_pump(napi_env env, napi_value v) {
  return (pump *)pump_base_get(env, v);
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
    return pump_throw(env, "createPump(onEnd): onEnd must be a function");
  pump *p = calloc(1, sizeof *p);
  if (!p) return pump_throw(env, "out of memory");
  p->b.drop_queued = drop_queued;
  return pump_base_create(env, argv[0], &p->b, "tftp-pump", call_js, pump_thread_main);
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
  if (napi_get_named_property(env, o, "fd", &fdv) != napi_ok || napi_get_value_int32(env, fdv, &fd) != napi_ok) return pump_throw(env, "fd must be an integer");
  if (napi_get_named_property(env, o, "size", &sizev) != napi_ok || napi_get_value_double(env, sizev, &size) != napi_ok || size < 0) return pump_throw(env, "size must be a number >= 0");
  if (!get_str(env, o, "local", local, sizeof local)) return pump_throw(env, "local must be an IPv4 address");
  if (!get_str(env, o, "peer", peer, sizeof peer)) return pump_throw(env, "peer must be an IPv4 address");
  if (!get_u32(env, o, "peerPort", &peer_port) || peer_port == 0 || peer_port > 65535) return pump_throw(env, "peerPort must be 1..65535");
  if (!get_u32(env, o, "blksize", &blksize) || blksize < 8 || blksize > 65464) return pump_throw(env, "blksize must be 8..65464");
  if (!get_u32(env, o, "windowsize", &windowsize) || windowsize < 1 || windowsize > 65535) return pump_throw(env, "windowsize must be 1..65535");
  if (!get_u32(env, o, "timeoutMs", &timeout_ms) || timeout_ms < 1) return pump_throw(env, "timeoutMs must be >= 1");
  if (!get_u32(env, o, "retries", &retries)) return pump_throw(env, "retries must be >= 0");
  if (!get_u32(env, o, "sndbuf", &sndbuf) || !get_u32(env, o, "rcvbuf", &rcvbuf)) return pump_throw(env, "sndbuf and rcvbuf must be integers");

  struct sockaddr_in la = { .sin_family = AF_INET }, pa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)peer_port) };
  if (inet_pton(AF_INET, local, &la.sin_addr) != 1) return pump_throw(env, "local must be an IPv4 address");
  if (inet_pton(AF_INET, peer, &pa.sin_addr) != 1) return pump_throw(env, "peer must be an IPv4 address");

  session *s = calloc(1, sizeof *s);
  if (!s) return pump_throw(env, "out of memory");
  s->sock = -1;
  s->fd = -1;
  size_t mem_len = 0;
  if (!get_bytes(env, o, "data", &s->mem, &mem_len) || !get_bytes(env, o, "oack", &s->oack, &s->oack_len)) {
    free_session(s);
    return pump_throw(env, "data and oack must be Buffers");
  }
  if (s->mem ? mem_len != (size_t)size : fd < 0) {
    free_session(s);
    return pump_throw(env, "give either data (of `size` bytes) or an open fd");
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
    if (!s->chunk) { free_session(s); return pump_throw(env, "out of memory"); }
  }
  /* Read nothing of `s` once it is queued: the pump thread may run the whole transfer and free
   * it before this returns (an empty file to a fast client, this thread preempted). */
  uint32_t id = s->id = ++p->b.next_id;
  pump_base_work_started(env, &p->b);

  pthread_mutex_lock(&p->b.lock);
  s->next = p->start_queue;
  p->start_queue = s;
  pthread_mutex_unlock(&p->b.lock);
  pump_base_wake(&p->b);

  napi_value result, idv, portv;
  napi_create_object(env, &result);
  napi_create_uint32(env, id, &idv);
  napi_create_uint32(env, ntohs(bound.sin_port), &portv);
  napi_set_named_property(env, result, "id", idv);
  napi_set_named_property(env, result, "port", portv);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "createPump", NULL, create_pump, NULL, NULL, NULL, napi_default, NULL },
    { "startSession", NULL, start_session, NULL, NULL, NULL, napi_default, NULL },
    { "abortSession", NULL, pump_base_abort, NULL, NULL, NULL, napi_default, NULL },
    { "closePump", NULL, pump_base_close, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
