/* interpose.h: shared by the interposing units (threads, fds, sync primitives, init). */
#ifndef TEARDOWN_PROBE_INTERPOSE_H
#define TEARDOWN_PROBE_INTERPOSE_H

#include "probe_internal.h"

#include <dlfcn.h>

/* Resolved in the constructor; lazily too, because another object's constructor may call us
 * before ours has run. */
#define TP_RESOLVE(ptr, name)                                                                  \
    do {                                                                                       \
        if ((ptr) == NULL) {                                                                   \
            *(void **)&(ptr) = dlsym(RTLD_NEXT, name);                                         \
        }                                                                                      \
    } while (0)
/* pthread_cond_* exist in two versions; dlsym would return the old 2.2.5 ABI one. */
#define TP_RESOLVE_V(ptr, name, version)                                                       \
    do {                                                                                       \
        if ((ptr) == NULL) {                                                                   \
            *(void **)&(ptr) = dlvsym(RTLD_NEXT, name, version);                               \
        }                                                                                      \
    } while (0)

extern atomic_int tp_ready_flag;
#define tp_ready (atomic_load_explicit(&tp_ready_flag, memory_order_acquire))

void tp_resolve_threads(void);
void tp_resolve_fds(void);
void tp_resolve_sync(void);

#endif
