/* The shared part of the native pumps: see pump_base.h. */
#define _GNU_SOURCE
#include "pump_base.h"
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

napi_value pump_throw(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

void pump_base_wake(pump_base *p) {
  uint64_t one = 1;
  ssize_t r = write(p->wakefd, &one, sizeof one);
  (void)r;
}

void pump_base_drain_wake(pump_base *p) {
  uint64_t v;
  ssize_t r = read(p->wakefd, &v, sizeof v);
  (void)r;
}

static void stop_thread(pump_base *p) {
  if (p->closed) return;
  p->closed = 1;
  if (p->thread_started) {
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    pthread_mutex_unlock(&p->lock);
    pump_base_wake(p);
    pthread_join(p->thread, NULL);
  }
  p->drop_queued(p);
  free(p->aborts);
  p->aborts = NULL;
  close(p->epfd);
  close(p->wakefd);
}

static void env_cleanup(void *arg) { stop_thread(arg); }

static void unref_pump(pump_base *p) {
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
  stop_thread(data);
  unref_pump(data);
}

napi_value pump_base_create(napi_env env, napi_value on_end, pump_base *p, const char *name,
                            napi_threadsafe_function_call_js call_js, void *(*thread_main)(void *)) {
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->epfd < 0 || p->wakefd < 0) {
    if (p->epfd >= 0) close(p->epfd);
    if (p->wakefd >= 0) close(p->wakefd);
    free(p);
    return pump_throw(env, "epoll/eventfd failed");
  }
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev);
  pthread_mutex_init(&p->lock, NULL);
  p->refs = 1; /* the thread-safe function's */
  napi_value nm;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &nm);
  if (napi_create_threadsafe_function(env, on_end, NULL, nm, 0, 1, p, tsfn_finalize, p, call_js, &p->tsfn) != napi_ok) {
    close(p->epfd); close(p->wakefd); pthread_mutex_destroy(&p->lock); free(p);
    return pump_throw(env, "could not create the pump's callback");
  }
  /* Idle, the pump does not keep the process alive; work in flight does (as its socket would). */
  napi_unref_threadsafe_function(env, p->tsfn);
  if (pthread_create(&p->thread, NULL, thread_main, p) != 0) {
    p->closed = 1;
    close(p->epfd); close(p->wakefd);
    napi_release_threadsafe_function(p->tsfn, napi_tsfn_abort);
    return pump_throw(env, "could not start the pump thread");
  }
  p->thread_started = 1;
  napi_add_env_cleanup_hook(env, env_cleanup, p);
  napi_value ext;
  if (napi_create_external(env, p, handle_finalize, NULL, &ext) != napi_ok) return pump_throw(env, "could not create the pump handle");
  p->refs++;
  return ext;
}

pump_base *pump_base_get(napi_env env, napi_value v) {
  pump_base *p = NULL;
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

void pump_base_work_started(napi_env env, pump_base *p) {
  if (p->active++ == 0) napi_ref_threadsafe_function(env, p->tsfn);
}

void pump_base_work_ended(napi_env env, pump_base *p) {
  if (p->active > 0 && --p->active == 0) napi_unref_threadsafe_function(env, p->tsfn);
}

int pump_base_take_aborts_locked(pump_base *p, uint32_t **aborts, size_t *n) {
  *aborts = p->aborts;
  *n = p->n_aborts;
  p->aborts = NULL;
  p->n_aborts = p->cap_aborts = 0;
  return p->quit;
}

napi_value pump_base_abort(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return pump_throw(env, "abort(pump, id)");
  pump_base *p = pump_base_get(env, argv[0]);
  if (!p) return NULL;
  uint32_t id;
  if (napi_get_value_uint32(env, argv[1], &id) != napi_ok) return pump_throw(env, "id must be an integer");
  pthread_mutex_lock(&p->lock);
  if (p->n_aborts == p->cap_aborts) {
    size_t cap = p->cap_aborts ? p->cap_aborts * 2 : 16;
    uint32_t *a = realloc(p->aborts, cap * sizeof *a);
    if (!a) { pthread_mutex_unlock(&p->lock); return pump_throw(env, "out of memory"); }
    p->aborts = a;
    p->cap_aborts = cap;
  }
  p->aborts[p->n_aborts++] = id;
  pthread_mutex_unlock(&p->lock);
  pump_base_wake(p);
  return NULL;
}

napi_value pump_base_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  pump_base *p = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&p) != napi_ok || !p) return pump_throw(env, "closePump(pump)");
  if (p->closed) return NULL;
  stop_thread(p);
  napi_remove_env_cleanup_hook(env, env_cleanup, p);
  /* Pending end reports are still delivered; then the finalizer frees the pump. */
  napi_release_threadsafe_function(p->tsfn, napi_tsfn_release);
  return NULL;
}
