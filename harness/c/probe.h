/* probe.h: the public C API of libteardown_probe.so (LD_PRELOAD attribution probe).
 *
 * The probe interposes thread and fd creators/closers and attributes each thread to the shared
 * object whose code created it (with lineage), each fd to the lineage of the thread that opened
 * it. Everything here is read-only bookkeeping for a checker: counters per library, leak lists
 * between two mark points, and the event timeline. All functions are thread-safe. */
#ifndef TEARDOWN_PROBE_H
#define TEARDOWN_PROBE_H

#include <stdint.h>

#define TP_API_VERSION 1
#define TP_PATH_MAX 256

/* Event kinds in the timeline. */
enum tp_event_kind {
    TP_EV_THREAD_CREATE = 1,
    TP_EV_THREAD_START,
    TP_EV_THREAD_EXIT,
    TP_EV_THREAD_JOIN,
    TP_EV_THREAD_DETACH,
    TP_EV_FD_OPEN,
    TP_EV_FD_CLOSE,
    TP_EV_MARK,
};

/* What created an fd: the interposed function family. */
enum tp_fd_kind {
    TP_FD_FILE = 1, /* open/openat */
    TP_FD_SOCKET,   /* socket/socketpair/accept/accept4 */
    TP_FD_PIPE,     /* pipe/pipe2 */
    TP_FD_EVENTFD,
    TP_FD_EPOLL,
    TP_FD_DUP, /* dup/dup2/dup3/fcntl(F_DUPFD*) */
};

typedef struct {
    char path[TP_PATH_MAX]; /* shared object path; "[unattributed]" for library 0 */
    int32_t host;           /* 1: the interpreter itself (libpython, the executable) */
    int32_t pad;
    int64_t threads_created, threads_joined, threads_detached, threads_exited;
    int64_t fds_opened, fds_closed;
} tp_lib_stats;

typedef struct {
    uint64_t created_seq, started_seq, exited_seq, joined_seq, detached_seq; /* 0: not yet */
    int32_t lib, tid, parent_tid, slot;
    char name[16]; /* the kernel's comm at query time (pthread_setname_np), "" if gone */
} tp_thread_info;

typedef struct {
    uint64_t open_seq, close_seq; /* close_seq 0: still open */
    int32_t fd, lib, kind, tid;   /* tid of the opening thread */
} tp_fd_info;

typedef struct {
    uint64_t seq, t_ns; /* global order, CLOCK_MONOTONIC */
    int32_t kind, lib, tid;
    int32_t obj; /* fd, thread slot, or mark label index */
} tp_event;

/* 1 when the probe is loaded and initialised. */
int tp_loaded(void);
int tp_api_version(void);
/* Libraries seen so far (index 0 is "[unattributed]"). */
int tp_lib_count(void);
int tp_lib_stats_get(int lib, tp_lib_stats *out);
/* The library whose path contains `needle` (first match, non-host preferred), or -1. */
int tp_lib_find(const char *needle);
/* Registers the shared object containing `addr` (e.g. a module's function), returns its index. */
int tp_lib_of_address(const void *addr);
/* Current event sequence number (events so far); marks are events with a label. */
uint64_t tp_seq(void);
uint64_t tp_mark(const char *label);
const char *tp_mark_label(int index);
/* Threads of `lib` created in (since, until] not joined by `until`; returns the number found
 * (may exceed max; only max are written). */
int tp_thread_leaks(int lib, uint64_t since, uint64_t until, tp_thread_info *out, int max);
/* Fds of `lib` opened in (since, until] not closed by `until`. */
int tp_fd_leaks(int lib, uint64_t since, uint64_t until, tp_fd_info *out, int max);
/* Events with seq > since still in the ring (oldest first); returns how many were written. */
int tp_timeline(uint64_t since, tp_event *out, int max);
/* Events lost to ring overwrite since start (a reader asking for older ones gets fewer). */
uint64_t tp_timeline_capacity(void);

/* Native watchdog: the dedicated signal, the report path, arm a deadline (0 disarms), dump now. */
int tp_watchdog_signal(void);
const char *tp_watchdog_report_path(void);
int tp_watchdog_set_report_path(const char *path);
int tp_watchdog_arm(double seconds);
int tp_watchdog_dump(const char *reason);

/* Timing chaos: current seed (0: off) and the number of delays injected so far. */
uint32_t tp_chaos_seed(void);
int64_t tp_chaos_delays(void);

#endif
