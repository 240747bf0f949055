/* interpose_sync.c: mutex and condition-variable operations, only as chaos points.
 *
 * With chaos off each wrapper costs one relaxed atomic load and an indirect call. The cond
 * functions are resolved by version: plain dlsym would hand back the pre-2.3.2 ABI. */
#define _GNU_SOURCE /* RTLD_NEXT, dlvsym */
#include "interpose.h"

static int (*real_lock)(pthread_mutex_t *);
static int (*real_unlock)(pthread_mutex_t *);
static int (*real_wait)(pthread_cond_t *, pthread_mutex_t *);
static int (*real_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
static int (*real_signal)(pthread_cond_t *);
static int (*real_broadcast)(pthread_cond_t *);

void tp_resolve_sync(void)
{
    TP_RESOLVE(real_lock, "pthread_mutex_lock");
    TP_RESOLVE(real_unlock, "pthread_mutex_unlock");
    TP_RESOLVE_V(real_wait, "pthread_cond_wait", "GLIBC_2.3.2");
    TP_RESOLVE_V(real_timedwait, "pthread_cond_timedwait", "GLIBC_2.3.2");
    TP_RESOLVE_V(real_signal, "pthread_cond_signal", "GLIBC_2.3.2");
    TP_RESOLVE_V(real_broadcast, "pthread_cond_broadcast", "GLIBC_2.3.2");
}

#define CHAOS()                                                                                \
    do {                                                                                       \
        if (atomic_load_explicit(&tp_chaos_on, memory_order_relaxed)) {                        \
            tp_chaos_point(__builtin_return_address(0));                                       \
        }                                                                                      \
    } while (0)

int pthread_mutex_lock(pthread_mutex_t *m)
{
    TP_RESOLVE(real_lock, "pthread_mutex_lock");
    CHAOS();
    return real_lock(m);
}

int pthread_mutex_unlock(pthread_mutex_t *m)
{
    TP_RESOLVE(real_unlock, "pthread_mutex_unlock");
    int rc = real_unlock(m);
    CHAOS(); /* after: another thread may now win the lock */
    return rc;
}

int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    TP_RESOLVE_V(real_wait, "pthread_cond_wait", "GLIBC_2.3.2");
    CHAOS();
    int rc = real_wait(c, m);
    CHAOS(); /* just woken: the interleavings after a wake-up are the interesting ones */
    return rc;
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t)
{
    TP_RESOLVE_V(real_timedwait, "pthread_cond_timedwait", "GLIBC_2.3.2");
    CHAOS();
    int rc = real_timedwait(c, m, t);
    CHAOS();
    return rc;
}

int pthread_cond_signal(pthread_cond_t *c)
{
    TP_RESOLVE_V(real_signal, "pthread_cond_signal", "GLIBC_2.3.2");
    CHAOS();
    return real_signal(c);
}

int pthread_cond_broadcast(pthread_cond_t *c)
{
    TP_RESOLVE_V(real_broadcast, "pthread_cond_broadcast", "GLIBC_2.3.2");
    CHAOS();
    return real_broadcast(c);
}
