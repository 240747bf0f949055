/* interpose_threads.c: pthread_create/join/detach/exit (and the sigmask calls) through the probe.
 *
 * pthread_create runs the new thread through start_wrapper: the slot index travels as the
 * argument (no allocation), the thread records its tid and lineage in thread-locals, unblocks
 * the watchdog's dump signal, and marks its exit in a cancellation cleanup handler, which also
 * runs for pthread_exit and for CPython killing a thread that attaches during finalization. */
#define _GNU_SOURCE /* RTLD_NEXT, dlvsym, pthread_tryjoin_np: GNU extensions */
#include "interpose.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>

static int (*real_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static int (*real_join)(pthread_t, void **);
static int (*real_tryjoin)(pthread_t, void **);
static int (*real_timedjoin)(pthread_t, void **, const struct timespec *);
static int (*real_detach)(pthread_t);
static void (*real_exit)(void *);
static int (*real_setname)(pthread_t, const char *);
static int (*real_sigmask)(int, const sigset_t *, sigset_t *);
static int (*real_sigprocmask)(int, const sigset_t *, sigset_t *);

void tp_resolve_threads(void)
{
    TP_RESOLVE(real_create, "pthread_create");
    TP_RESOLVE(real_join, "pthread_join");
    TP_RESOLVE(real_tryjoin, "pthread_tryjoin_np");
    TP_RESOLVE(real_timedjoin, "pthread_timedjoin_np");
    TP_RESOLVE(real_detach, "pthread_detach");
    TP_RESOLVE(real_exit, "pthread_exit");
    TP_RESOLVE(real_setname, "pthread_setname_np");
    TP_RESOLVE(real_sigmask, "pthread_sigmask");
    TP_RESOLVE(real_sigprocmask, "sigprocmask");
}

static void on_thread_end(void *p) { tp_thread_exited((int)(intptr_t)p); }

static void *start_wrapper(void *p)
{
    int slot = (int)(intptr_t)p;
    tp_thread *t = &tp_threads[slot];
    atomic_store(&t->handle, (unsigned long)pthread_self());
    tp_self_lib = t->lib;
    tp_self_slot = slot;
    tp_watchdog_thread_start();
    tp_thread_started(slot, tp_gettid());
    void *(*fn)(void *) = t->fn;
    void *arg = t->arg;
    if (atomic_load_explicit(&tp_chaos_on, memory_order_relaxed)) {
        tp_chaos_point((const void *)fn);
    }
    void *result;
    pthread_cleanup_push(on_thread_end, p);
    result = fn(arg);
    pthread_cleanup_pop(1);
    return result;
}

int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    TP_RESOLVE(real_create, "pthread_create");
    if (!tp_ready) {
        return real_create(th, attr, fn, arg);
    }
    int lib = tp_attribute(__builtin_return_address(0));
    int slot = tp_thread_alloc(lib, tp_gettid(), fn, arg);
    if (slot < 0) {
        return real_create(th, attr, fn, arg);
    }
    int err = real_create(th, attr, start_wrapper, (void *)(intptr_t)slot);
    if (err != 0) {
        tp_thread_release(slot);
        return err;
    }
    atomic_store(&tp_threads[slot].handle, (unsigned long)*th);
    int state = PTHREAD_CREATE_JOINABLE;
    if (attr != NULL && pthread_attr_getdetachstate(attr, &state) == 0 &&
        state == PTHREAD_CREATE_DETACHED) {
        tp_thread_detached(slot);
    }
    return 0;
}

static void joined(int slot, int err)
{
    if (err == 0 && slot >= 0) {
        tp_thread_joined(slot);
    }
}

int pthread_join(pthread_t th, void **ret)
{
    TP_RESOLVE(real_join, "pthread_join");
    int slot = tp_ready ? tp_thread_find(th) : -1;
    if (atomic_load_explicit(&tp_chaos_on, memory_order_relaxed)) {
        tp_chaos_point(__builtin_return_address(0));
    }
    int err = real_join(th, ret);
    joined(slot, err);
    return err;
}

int pthread_tryjoin_np(pthread_t th, void **ret)
{
    TP_RESOLVE(real_tryjoin, "pthread_tryjoin_np");
    int slot = tp_ready ? tp_thread_find(th) : -1;
    int err = real_tryjoin(th, ret);
    joined(slot, err);
    return err;
}

int pthread_timedjoin_np(pthread_t th, void **ret, const struct timespec *abstime)
{
    TP_RESOLVE(real_timedjoin, "pthread_timedjoin_np");
    int slot = tp_ready ? tp_thread_find(th) : -1;
    int err = real_timedjoin(th, ret, abstime);
    joined(slot, err);
    return err;
}

int pthread_detach(pthread_t th)
{
    TP_RESOLVE(real_detach, "pthread_detach");
    int slot = tp_ready ? tp_thread_find(th) : -1;
    int err = real_detach(th);
    if (err == 0 && slot >= 0) {
        tp_thread_detached(slot);
    }
    return err;
}

void pthread_exit(void *ret)
{
    TP_RESOLVE(real_exit, "pthread_exit");
    tp_record(TP_EV_THREAD_EXIT, tp_self_lib < 0 ? TP_LIB_UNKNOWN : tp_self_lib, tp_gettid(), -1);
    /* The exit itself is counted by start_wrapper's cleanup handler (pthread_exit runs it). */
    real_exit(ret);
    __builtin_unreachable();
}

/* Names are kept in the slot: a leaked thread that already exited still has one in reports. */
int pthread_setname_np(pthread_t th, const char *name)
{
    TP_RESOLVE(real_setname, "pthread_setname_np");
    int slot = tp_ready ? tp_thread_find(th) : -1;
    if (slot >= 0) {
        strncpy(tp_threads[slot].name, name, sizeof(tp_threads[slot].name) - 1);
    }
    return real_setname(th, name);
}

/* Native threads often block every signal (teardown_ref does): keep the watchdog's dump signal
 * deliverable, or a deadlocked thread could never report its stack. */
int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    TP_RESOLVE(real_sigmask, "pthread_sigmask");
    sigset_t copy;
    return real_sigmask(how, tp_watchdog_filter_mask(set, &copy) ? &copy : set, old);
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    TP_RESOLVE(real_sigprocmask, "sigprocmask");
    sigset_t copy;
    return real_sigprocmask(how, tp_watchdog_filter_mask(set, &copy) ? &copy : set, old);
}
