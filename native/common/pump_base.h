/*
 * What the native pumps (tftp-pump, http-sendfile) share: one thread with an epoll set and a
 * wake eventfd, a thread-safe function that carries end reports to JS, the hand-over of aborts
 * and of "quit" under a lock, and the N-API lifetime of it all: the JS handle and the callback
 * each hold a reference, and the last to let go frees the pump. A pump embeds `pump_base` as
 * its first member, so a pump_base pointer is also the pump's.
 */
#ifndef SIDEREAL_PUMP_BASE_H
#define SIDEREAL_PUMP_BASE_H

#include <node_api.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pump_base {
  napi_threadsafe_function tsfn;
  pthread_t thread;
  int thread_started;
  int epfd;
  int wakefd;
  pthread_mutex_t lock;  /* guards the pump's start queue, the abort list and quit */
  uint32_t *aborts;
  size_t n_aborts, cap_aborts;
  int quit;
  int closed;
  /* The JS thread's: ids handed out, and work in flight (while > 0 the callback keeps the process alive). */
  uint32_t next_id;
  uint32_t active;
  int refs;
  /* Frees work queued but never started, once the thread has stopped. */
  void (*drop_queued)(struct pump_base *);
} pump_base;

napi_value pump_throw(napi_env env, const char *msg);

/*
 * createPump's body: `p` (calloc'ed, drop_queued set) gets its epoll set, wake eventfd,
 * callback and thread. Returns the JS handle, or NULL with a JS exception pending (p freed).
 */
napi_value pump_base_create(napi_env env, napi_value on_end, pump_base *p, const char *name,
                            napi_threadsafe_function_call_js call_js, void *(*thread_main)(void *));

/* The pump of a JS handle; NULL with a JS exception pending when it is not one, or closed. */
pump_base *pump_base_get(napi_env env, napi_value v);

void pump_base_wake(pump_base *p);

/* The JS thread, as work is handed to the thread and as its end is delivered. */
void pump_base_work_started(napi_env env, pump_base *p);
void pump_base_work_ended(napi_env env, pump_base *p);

/* The thread, holding the lock: the aborts asked for since last time (free them) and whether to quit. */
int pump_base_take_aborts_locked(pump_base *p, uint32_t **aborts, size_t *n);

/* The thread: empty the wake eventfd. */
void pump_base_drain_wake(pump_base *p);

/* The addons' abort(pump, id) (abortSession, abortSend): queue it and wake the thread, which ends that work and reports it. */
napi_value pump_base_abort(napi_env env, napi_callback_info info);

/* The addons' closePump(pump): stops the thread, which ends all work first; the end reports still arrive. */
napi_value pump_base_close(napi_env env, napi_callback_info info);

#endif
