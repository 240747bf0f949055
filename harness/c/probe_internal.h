/* probe_internal.h: the probe's fixed-size tables, shared by its translation units.
 *
 * Why fixed-size: the probe runs inside pthread_create, close, mutex operations and signal
 * handlers of arbitrary programs, so its hot paths must not call malloc (which may itself lock,
 * or re-enter us) and must not take locks a signal handler could re-take. Every table is a
 * static array updated with atomics. */
#ifndef TEARDOWN_PROBE_INTERNAL_H
#define TEARDOWN_PROBE_INTERNAL_H

#include "probe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define TP_MAX_LIBS 256
#define TP_MAX_THREADS 4096
#define TP_MAX_FDS 65536
#define TP_RING 65536 /* timeline events kept (power of two) */
#define TP_MAX_MARKS 64

#define TP_LIB_UNKNOWN 0

typedef struct {
    atomic_int ready; /* 0 while being filled */
    uintptr_t base, lo, hi; /* load base and [lo, hi) of its mapped segments */
    int host;
    int transparent; /* libc, libgcc, the probe: look further up the stack */
    char path[TP_PATH_MAX];
    atomic_llong threads_created, threads_joined, threads_detached, threads_exited;
    atomic_llong fds_opened, fds_closed;
} tp_lib;

/* Thread slot flags. */
enum {
    TP_T_USED = 1,
    TP_T_STARTED = 2,
    TP_T_EXITED = 4,
    TP_T_JOINED = 8,
    TP_T_DETACHED = 16,
};

typedef struct {
    atomic_int flags;
    atomic_int tid;
    atomic_ulong handle; /* pthread_t (unsigned long on Linux), written by both sides */
    int lib, parent_tid;
    void *(*fn)(void *);
    void *arg;
    atomic_ullong created_seq, started_seq, exited_seq, joined_seq, detached_seq;
    char name[16]; /* from pthread_setname_np: kept after the thread is gone */
} tp_thread;

typedef struct {
    atomic_int lib; /* lib index + 1; 0: never tracked */
    int kind, tid;
    atomic_ullong open_seq, close_seq;
} tp_fd;

typedef struct {
    atomic_ullong seq; /* written last: a reader trusts the slot only if it matches */
    uint64_t t_ns;
    int32_t kind, lib, tid, obj;
} tp_slot_event;

extern tp_lib tp_libs[TP_MAX_LIBS];
extern atomic_int tp_nlibs;
extern tp_thread tp_threads[TP_MAX_THREADS];
extern tp_fd tp_fds[TP_MAX_FDS];
extern atomic_ullong tp_next_seq;

/* tables.c: bookkeeping (no interposition; unit-tested on its own). */
void tp_tables_init(void);
uint64_t tp_now_ns(void);
uint64_t tp_record(int kind, int lib, int tid, int obj);
int tp_lib_add(uintptr_t base, uintptr_t lo, uintptr_t hi, const char *path, int host,
               int transparent);
int tp_lib_by_addr(uintptr_t addr); /* -1 when not in any known range */
int tp_thread_alloc(int lib, int parent_tid, void *(*fn)(void *), void *arg);
void tp_thread_release(int slot); /* pthread_create failed */
void tp_thread_started(int slot, int tid);
void tp_thread_exited(int slot);
int tp_thread_find(pthread_t handle); /* a live (not joined) slot with this handle, or -1 */
void tp_thread_joined(int slot);
void tp_thread_detached(int slot);
int tp_thread_lib_of_tid(int tid);
void tp_fd_opened(int fd, int lib, int kind, int tid);
void tp_fd_closing(int fd); /* call BEFORE the real close: the number may be reused at once */
int tp_fd_lib(int fd);

/* libmap.c: address → library, lineage of the current thread. */
void tp_libmap_init(void);
int tp_lib_for_addr(const void *addr); /* registers the object on first sight */
int tp_lib_is_host(int lib);
extern __thread int tp_self_lib __attribute__((tls_model("initial-exec")));
extern __thread int tp_self_slot __attribute__((tls_model("initial-exec")));
int tp_gettid(void);
/* The library a new thread / fd created by the caller at `ret` belongs to (lineage rule). */
int tp_attribute(const void *ret);

/* chaos.c */
void tp_chaos_init(void);
void tp_chaos_point(const void *ret);
void tp_chaos_exit_delay(void); /* a delay in exit(), whatever the scope */
extern atomic_uint tp_chaos_on;

/* watchdog.c */
void tp_watchdog_init(void);
void tp_watchdog_thread_start(void); /* unblock the dump signal in a new thread */
int tp_watchdog_filter_mask(const void *set, void *copy); /* 1 when `copy` was filled */

#endif
