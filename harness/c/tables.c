/* tables.c: the probe's bookkeeping — libraries, thread slots, fd slots, timeline, marks.
 *
 * No interposition here (the unit tests link this file alone). Lock-free: a thread slot is
 * claimed with a CAS on its flags, an fd slot is indexed by the fd number, the timeline is a
 * ring indexed by a global sequence counter. Library registration takes a try-lock spinlock and
 * gives up (library 0, "[unattributed]") rather than wait, so a signal handler that interrupts
 * a registration can never deadlock on it. */
#define _GNU_SOURCE /* strncpy of paths only; kept for consistency with the other units */
#include "probe_internal.h"

#include <string.h>
#include <time.h>

tp_lib tp_libs[TP_MAX_LIBS];
atomic_int tp_nlibs;
tp_thread tp_threads[TP_MAX_THREADS];
tp_fd tp_fds[TP_MAX_FDS];
atomic_ullong tp_next_seq;
static tp_slot_event ring[TP_RING];
static atomic_flag lib_lock = ATOMIC_FLAG_INIT;
static atomic_uint thread_cursor;
static char mark_labels[TP_MAX_MARKS][64];
static atomic_int nmarks;
static atomic_flag mark_lock = ATOMIC_FLAG_INIT;

uint64_t tp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO, async-signal-safe */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t tp_record(int kind, int lib, int tid, int obj)
{
    uint64_t seq = atomic_fetch_add(&tp_next_seq, 1) + 1;
    tp_slot_event *e = &ring[seq & (TP_RING - 1)];
    atomic_store_explicit(&e->seq, 0, memory_order_relaxed); /* invalidate while writing */
    atomic_thread_fence(memory_order_release);
    e->t_ns = tp_now_ns();
    e->kind = kind;
    e->lib = lib;
    e->tid = tid;
    e->obj = obj;
    atomic_store_explicit(&e->seq, seq, memory_order_release);
    return seq;
}

uint64_t tp_seq(void) { return atomic_load(&tp_next_seq); }
uint64_t tp_timeline_capacity(void) { return TP_RING; }

int tp_timeline(uint64_t since, tp_event *out, int max)
{
    uint64_t last = atomic_load(&tp_next_seq);
    uint64_t first = since + 1;
    if (last >= TP_RING && first <= last - TP_RING) {
        first = last - TP_RING + 1; /* older events were overwritten */
    }
    int n = 0;
    for (uint64_t s = first; s <= last && n < max; s++) {
        tp_slot_event *e = &ring[s & (TP_RING - 1)];
        if (atomic_load_explicit(&e->seq, memory_order_acquire) != s) {
            continue; /* being written, or already overwritten */
        }
        tp_event ev = {s, e->t_ns, e->kind, e->lib, e->tid, e->obj};
        if (atomic_load_explicit(&e->seq, memory_order_acquire) == s) {
            out[n++] = ev;
        }
    }
    return n;
}

uint64_t tp_mark(const char *label)
{
    int index = -1;
    if (label != NULL) {
        while (atomic_flag_test_and_set(&mark_lock)) {
        }
        int n = atomic_load(&nmarks);
        for (int i = 0; i < n; i++) {
            if (strcmp(mark_labels[i], label) == 0) {
                index = i;
            }
        }
        if (index < 0 && n < TP_MAX_MARKS) {
            strncpy(mark_labels[n], label, sizeof(mark_labels[n]) - 1);
            index = n;
            atomic_store(&nmarks, n + 1);
        }
        atomic_flag_clear(&mark_lock);
    }
    return tp_record(TP_EV_MARK, TP_LIB_UNKNOWN, 0, index);
}

const char *tp_mark_label(int index)
{
    return index >= 0 && index < atomic_load(&nmarks) ? mark_labels[index] : "";
}

/* ---- libraries ---------------------------------------------------------------------------- */

void tp_tables_init(void)
{
    if (atomic_load(&tp_nlibs) == 0) {
        strcpy(tp_libs[0].path, "[unattributed]");
        atomic_store(&tp_libs[0].ready, 1);
        atomic_store(&tp_nlibs, 1);
    }
}

int tp_lib_by_addr(uintptr_t addr)
{
    int n = atomic_load_explicit(&tp_nlibs, memory_order_acquire);
    for (int i = 1; i < n; i++) {
        tp_lib *l = &tp_libs[i];
        if (atomic_load_explicit(&l->ready, memory_order_acquire) && addr >= l->lo &&
            addr < l->hi) {
            return i;
        }
    }
    return -1;
}

int tp_lib_add(uintptr_t base, uintptr_t lo, uintptr_t hi, const char *path, int host,
               int transparent)
{
    for (int spins = 0; atomic_flag_test_and_set(&lib_lock); spins++) {
        if (spins > 1000) {
            return TP_LIB_UNKNOWN; /* never block: see the file comment */
        }
    }
    tp_tables_init(); /* slot 0 is the catch-all */
    int n = atomic_load(&tp_nlibs);
    int found = -1;
    for (int i = 1; i < n; i++) {
        if (tp_libs[i].base == base && strcmp(tp_libs[i].path, path) == 0) {
            found = i;
        }
    }
    if (found < 0 && n < TP_MAX_LIBS) {
        tp_lib *l = &tp_libs[n];
        l->base = base;
        l->lo = lo;
        l->hi = hi;
        l->host = host;
        l->transparent = transparent;
        strncpy(l->path, path, TP_PATH_MAX - 1);
        atomic_store_explicit(&l->ready, 1, memory_order_release);
        atomic_store_explicit(&tp_nlibs, n + 1, memory_order_release);
        found = n;
    }
    atomic_flag_clear(&lib_lock);
    return found < 0 ? TP_LIB_UNKNOWN : found;
}

int tp_lib_count(void) { return atomic_load(&tp_nlibs); }

int tp_lib_stats_get(int lib, tp_lib_stats *out)
{
    if (lib < 0 || lib >= atomic_load(&tp_nlibs)) {
        return -1;
    }
    tp_lib *l = &tp_libs[lib];
    memset(out, 0, sizeof(*out));
    strncpy(out->path, l->path, TP_PATH_MAX - 1);
    out->host = l->host;
    out->threads_created = atomic_load(&l->threads_created);
    out->threads_joined = atomic_load(&l->threads_joined);
    out->threads_detached = atomic_load(&l->threads_detached);
    out->threads_exited = atomic_load(&l->threads_exited);
    out->fds_opened = atomic_load(&l->fds_opened);
    out->fds_closed = atomic_load(&l->fds_closed);
    return 0;
}

int tp_lib_find(const char *needle)
{
    int n = atomic_load(&tp_nlibs), host_match = -1;
    for (int i = 1; i < n; i++) {
        if (strstr(tp_libs[i].path, needle) != NULL) {
            if (!tp_libs[i].host) {
                return i;
            }
            host_match = host_match < 0 ? i : host_match;
        }
    }
    return host_match;
}

/* ---- threads ------------------------------------------------------------------------------ */

int tp_thread_alloc(int lib, int parent_tid, void *(*fn)(void *), void *arg)
{
    /* Round-robin from a cursor: a freed slot is reused as late as possible, so the records of
     * a cycle's threads survive until the checker reads them. */
    for (int tries = 0; tries < TP_MAX_THREADS; tries++) {
        unsigned i = atomic_fetch_add(&thread_cursor, 1) % TP_MAX_THREADS;
        tp_thread *t = &tp_threads[i];
        int expected = 0;
        if (atomic_compare_exchange_strong(&t->flags, &expected, TP_T_USED)) {
            atomic_store(&t->handle, 0);
            memset(t->name, 0, sizeof(t->name));
            t->lib = lib;
            t->parent_tid = parent_tid;
            t->fn = fn;
            t->arg = arg;
            atomic_store(&t->tid, 0);
            atomic_store(&t->started_seq, 0);
            atomic_store(&t->exited_seq, 0);
            atomic_store(&t->joined_seq, 0);
            atomic_store(&t->detached_seq, 0);
            atomic_store(&t->created_seq, tp_record(TP_EV_THREAD_CREATE, lib, parent_tid, (int)i));
            atomic_fetch_add(&tp_libs[lib].threads_created, 1);
            return (int)i;
        }
    }
    return -1; /* table full: the thread runs untracked */
}

void tp_thread_release(int slot)
{
    tp_thread *t = &tp_threads[slot];
    atomic_fetch_sub(&tp_libs[t->lib].threads_created, 1);
    atomic_store(&t->created_seq, 0);
    atomic_store(&t->flags, 0);
}

void tp_thread_started(int slot, int tid)
{
    tp_thread *t = &tp_threads[slot];
    atomic_store(&t->tid, tid);
    atomic_store(&t->started_seq, tp_record(TP_EV_THREAD_START, t->lib, tid, slot));
    atomic_fetch_or(&t->flags, TP_T_STARTED);
}

/* A slot is free again once nobody can refer to it: joined, or detached and exited. */
static void maybe_free(tp_thread *t, int flags)
{
    if ((flags & TP_T_JOINED) || ((flags & TP_T_DETACHED) && (flags & TP_T_EXITED))) {
        /* Only the flags are cleared: the record stays readable until the slot is claimed
         * again (the checker reads it after the drop). */
        atomic_store(&t->flags, 0);
    }
}

void tp_thread_exited(int slot)
{
    tp_thread *t = &tp_threads[slot];
    if (atomic_load(&t->exited_seq) != 0) {
        return; /* pthread_exit then the cleanup handler: count once */
    }
    atomic_store(&t->exited_seq, tp_record(TP_EV_THREAD_EXIT, t->lib, atomic_load(&t->tid), slot));
    atomic_fetch_add(&tp_libs[t->lib].threads_exited, 1);
    int flags = atomic_fetch_or(&t->flags, TP_T_EXITED) | TP_T_EXITED;
    maybe_free(t, flags);
}

int tp_thread_find(pthread_t handle)
{
    for (int i = 0; i < TP_MAX_THREADS; i++) {
        tp_thread *t = &tp_threads[i];
        int flags = atomic_load(&t->flags);
        if ((flags & TP_T_USED) && !(flags & (TP_T_JOINED | TP_T_DETACHED)) &&
            atomic_load(&t->handle) == (unsigned long)handle) {
            return i;
        }
    }
    return -1;
}

void tp_thread_joined(int slot)
{
    tp_thread *t = &tp_threads[slot];
    atomic_store(&t->joined_seq, tp_record(TP_EV_THREAD_JOIN, t->lib, atomic_load(&t->tid), slot));
    atomic_fetch_add(&tp_libs[t->lib].threads_joined, 1);
    maybe_free(t, atomic_fetch_or(&t->flags, TP_T_JOINED) | TP_T_JOINED);
}

void tp_thread_detached(int slot)
{
    tp_thread *t = &tp_threads[slot];
    atomic_store(&t->detached_seq,
                 tp_record(TP_EV_THREAD_DETACH, t->lib, atomic_load(&t->tid), slot));
    atomic_fetch_add(&tp_libs[t->lib].threads_detached, 1);
    maybe_free(t, atomic_fetch_or(&t->flags, TP_T_DETACHED) | TP_T_DETACHED);
}

int tp_thread_lib_of_tid(int tid)
{
    for (int i = 0; i < TP_MAX_THREADS; i++) {
        if ((atomic_load(&tp_threads[i].flags) & TP_T_USED) &&
            atomic_load(&tp_threads[i].tid) == tid) {
            return tp_threads[i].lib;
        }
    }
    return -1;
}

int tp_thread_leaks(int lib, uint64_t since, uint64_t until, tp_thread_info *out, int max)
{
    int n = 0;
    for (int i = 0; i < TP_MAX_THREADS; i++) {
        tp_thread *t = &tp_threads[i];
        uint64_t created = atomic_load(&t->created_seq);
        if (t->lib != lib || created <= since || created > until) {
            continue;
        }
        uint64_t joined = atomic_load(&t->joined_seq);
        if (joined != 0 && joined <= until) {
            continue;
        }
        if (n < max) {
            tp_thread_info *o = &out[n];
            memset(o, 0, sizeof(*o));
            o->created_seq = created;
            o->started_seq = atomic_load(&t->started_seq);
            o->exited_seq = atomic_load(&t->exited_seq);
            o->joined_seq = joined;
            o->detached_seq = atomic_load(&t->detached_seq);
            o->lib = t->lib;
            o->tid = atomic_load(&t->tid);
            o->parent_tid = t->parent_tid;
            o->slot = i;
            memcpy(o->name, t->name, sizeof(o->name) - 1);
        }
        n++;
    }
    return n;
}

/* ---- fds ---------------------------------------------------------------------------------- */

void tp_fd_opened(int fd, int lib, int kind, int tid)
{
    if (fd < 0 || fd >= TP_MAX_FDS) {
        return;
    }
    tp_fd *f = &tp_fds[fd];
    atomic_store(&f->lib, 0);
    f->kind = kind;
    f->tid = tid;
    atomic_store(&f->close_seq, 0);
    atomic_store(&f->open_seq, tp_record(TP_EV_FD_OPEN, lib, tid, fd));
    atomic_fetch_add(&tp_libs[lib].fds_opened, 1);
    atomic_store(&f->lib, lib + 1);
}

void tp_fd_closing(int fd)
{
    if (fd < 0 || fd >= TP_MAX_FDS) {
        return;
    }
    tp_fd *f = &tp_fds[fd];
    int lib = atomic_load(&f->lib);
    if (lib == 0 || atomic_load(&f->close_seq) != 0) {
        return; /* not opened through us (inherited, or before the probe), or closed already */
    }
    uint64_t zero = 0;
    uint64_t seq = tp_record(TP_EV_FD_CLOSE, lib - 1, tp_gettid(), fd);
    if (atomic_compare_exchange_strong(&f->close_seq, &zero, seq)) {
        atomic_fetch_add(&tp_libs[lib - 1].fds_closed, 1);
    }
}

int tp_fd_lib(int fd)
{
    if (fd < 0 || fd >= TP_MAX_FDS) {
        return -1;
    }
    int lib = atomic_load(&tp_fds[fd].lib);
    return lib == 0 || atomic_load(&tp_fds[fd].close_seq) != 0 ? -1 : lib - 1;
}

int tp_fd_leaks(int lib, uint64_t since, uint64_t until, tp_fd_info *out, int max)
{
    int n = 0;
    for (int fd = 0; fd < TP_MAX_FDS; fd++) {
        tp_fd *f = &tp_fds[fd];
        if (atomic_load(&f->lib) != lib + 1) {
            continue;
        }
        uint64_t opened = atomic_load(&f->open_seq), closed = atomic_load(&f->close_seq);
        if (opened <= since || opened > until || (closed != 0 && closed <= until)) {
            continue;
        }
        if (n < max) {
            out[n] = (tp_fd_info){opened, closed, fd, lib, f->kind, f->tid};
        }
        n++;
    }
    return n;
}
