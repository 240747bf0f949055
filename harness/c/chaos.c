/* chaos.c: seeded, reproducible timing perturbation at thread start, join, mutex and condvar
 * operations, for any extension. TEARDOWN_PROBE_CHAOS=<seed>[:<max_us>[:<scope>]]
 *
 * Scope: a point fires when the calling thread's lineage or the call site is a library whose
 * path contains <scope> (default: any non-host library, i.e. the extensions, not libpython's
 * own locking on the main thread). Each thread draws from its own xorshift stream seeded by
 * (seed, order of first use), so a run is reproducible up to the OS's scheduling. Half the
 * points sleep a uniform 0..max_us, the other half yield.
 *
 * Process exit is a chaos point too (an atexit handler registered at load, so it runs after
 * Py_FinalizeEx has returned, whether main() returned or exit() was called): the classic exit
 * race (V3) is a native thread woken during finalization attaching after the interpreter is
 * gone; whether it crashes depends on the process still being there when it tries, so a seeded
 * delay here makes a late attach, if the extension can make one, actually happen. */
#define _GNU_SOURCE /* sched_yield is POSIX, but keep the units' feature set uniform */
#include "probe_internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

atomic_uint tp_chaos_on;
static unsigned chaos_seed, chaos_max_us = 2000;
static char chaos_scope[128];
static atomic_uint streams;
static atomic_llong delays;
static __thread unsigned state __attribute__((tls_model("initial-exec")));
static __thread int in_chaos __attribute__((tls_model("initial-exec")));

void tp_chaos_init(void)
{
    const char *env = getenv("TEARDOWN_PROBE_CHAOS");
    if (env == NULL || *env == '\0') {
        return;
    }
    char *end;
    unsigned long seed = strtoul(env, &end, 10);
    if (*end == ':') {
        unsigned long max_us = strtoul(end + 1, &end, 10);
        chaos_max_us = max_us > 0 && max_us <= 1000000 ? (unsigned)max_us : chaos_max_us;
    }
    if (*end == ':') {
        strncpy(chaos_scope, end + 1, sizeof(chaos_scope) - 1);
    }
    chaos_seed = (unsigned)seed;
    atomic_store(&tp_chaos_on, seed != 0);
    if (seed != 0) {
        atexit(tp_chaos_exit_delay);
    }
}

uint32_t tp_chaos_seed(void) { return atomic_load(&tp_chaos_on) ? chaos_seed : 0; }
int64_t tp_chaos_delays(void) { return atomic_load(&delays); }

static int in_scope(int lib)
{
    if (lib <= TP_LIB_UNKNOWN) {
        return 0;
    }
    if (chaos_scope[0] != '\0') {
        return strstr(tp_libs[lib].path, chaos_scope) != NULL;
    }
    return !tp_libs[lib].host && !tp_libs[lib].transparent;
}

static unsigned next(void)
{
    if (state == 0) {
        state = chaos_seed * 2654435761u + (atomic_fetch_add(&streams, 1) + 1) * 40503u;
        state = state ? state : 1;
    }
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

void tp_chaos_point(const void *ret)
{
    if (in_chaos) {
        return; /* nanosleep or a library lookup re-entering through a mutex */
    }
    in_chaos = 1;
    int saved_errno = errno; /* the wrapped call's caller must not see ours */
    if (in_scope(tp_self_lib) || in_scope(tp_lib_by_addr((uintptr_t)ret))) {
        unsigned r = next();
        if (r & 1) {
            long us = (long)((r >> 1) % chaos_max_us);
            struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        } else {
            sched_yield();
        }
        atomic_fetch_add(&delays, 1);
    }
    errno = saved_errno;
    in_chaos = 0;
}

void tp_chaos_exit_delay(void)
{
    /* Registered from the constructor; defined below. */
    int saved_errno = errno;
    in_chaos = 1; /* no further chaos points on the way out */
    struct timespec ts = {0, 0};
    long us = (long)(next() % chaos_max_us);
    ts.tv_sec = us / 1000000;
    ts.tv_nsec = (us % 1000000) * 1000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    atomic_fetch_add(&delays, 1);
    errno = saved_errno;
}
