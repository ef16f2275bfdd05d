/*
 * What the TFTP data-phase thread (pump_loop.c) and its N-API binding (tftp_pump.c) share:
 * a session, the pump that owns the sessions, and the report of a transfer's end.
 * How the transfer works and why it is native: tftp_pump.c's opening comment.
 */
#ifndef SIDEREAL_TFTP_PUMP_H
#define SIDEREAL_TFTP_PUMP_H

#define _GNU_SOURCE
#include "../common/pump_base.h"
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
extern const char *const OUTCOME_NAMES[];
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
  pump_base b;           /* first: the shared thread, callback and lifetime (common/pump_base.h) */
  session *start_queue;  /* under b.lock */
  /* Thread-owned from here. */
  session *sessions;
  /* Sessions finished since the last reap: the list is walked only then, not on every wake. */
  unsigned finished;
  uint64_t next_deadline;
  uint64_t now;
} pump;


/* The thread's body (pthread_create); it runs until told to quit through the wake eventfd. */
void *pump_thread_main(void *arg);
/* Close a session's socket and file and free it (the thread's reap, the binding's failed starts). */
void free_session(session *s);

#endif
