/* watchdog.c: native stacks of every thread without ptrace.
 *
 * Trigger (a process-directed signal: the harness's kill(pid, SIG), a deadline timer armed with
 * tp_watchdog_arm/TEARDOWN_PROBE_WATCHDOG, or tp_watchdog_dump): the receiving thread lists
 * /proc/self/task with raw syscalls, then, one thread at a time, tgkill()s it with the same
 * dedicated signal; a thread-directed delivery (SI_TKILL from our own pid) writes that thread's
 * backtrace to the report file and says done. Everything on the signal path is
 * async-signal-safe: raw syscalls, backtrace() (pre-warmed at load so it never loads libgcc_s
 * in a handler; libgcc 12 + glibc 2.35+ find unwind tables via the lock-free
 * _dl_find_object) and backtrace_symbols_fd (no malloc). The pthread_sigmask interposer keeps
 * the signal deliverable in threads that block everything. */
#define _GNU_SOURCE /* tgkill via syscall, SI_TKILL, getdents64 record layout */
#include "probe_internal.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_TASKS 4096
#define ANSWER_NS 500000000L /* per thread: a thread blocked in the kernel still answers at once */

static int dump_signal;
static char report_path[TP_PATH_MAX];
static atomic_int dumping, answer_tid, answered, report_fd = -1;
static timer_t deadline_timer;
static atomic_int timer_made;
static int tasks[MAX_TASKS];

int tp_watchdog_signal(void) { return dump_signal; }
const char *tp_watchdog_report_path(void) { return report_path; }

int tp_watchdog_set_report_path(const char *path)
{
    if (path == NULL || strlen(path) >= sizeof(report_path)) {
        return -1;
    }
    strcpy(report_path, path);
    return 0;
}

static void put(int fd, const char *s) { (void)!write(fd, s, strlen(s)); }

static void put_int(int fd, long v)
{
    char buf[24];
    int i = (int)sizeof(buf);
    int neg = v < 0;
    unsigned long u = neg ? (unsigned long)-v : (unsigned long)v;
    do {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u && i > 1);
    if (neg) {
        buf[--i] = '-';
    }
    (void)!write(fd, buf + i, sizeof(buf) - (size_t)i);
}

static void dump_self(int fd)
{
    char name[17] = {0};
    prctl(PR_GET_NAME, name);
    int lib = tp_self_lib;
    put(fd, "--- thread ");
    put_int(fd, tp_gettid());
    put(fd, " '");
    put(fd, name);
    put(fd, "' lineage ");
    put(fd, lib >= 0 ? tp_libs[lib].path : "[root]");
    put(fd, "\n");
    void *frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, fd);
    put(fd, "--- end thread\n");
}

static int list_tasks(void)
{
    int dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY);
    if (dir < 0) {
        return 0;
    }
    char buf[4096];
    int n = 0;
    long got;
    while ((got = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < got;) {
            /* struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name */
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof(reclen));
            const char *name = buf + off + 19;
            if (name[0] >= '0' && name[0] <= '9' && n < MAX_TASKS) {
                tasks[n++] = atoi(name); /* atoi: no locale, no allocation */
            }
            off += reclen;
        }
    }
    syscall(SYS_close, dir);
    return n;
}

static int open_report(void)
{
    char path[TP_PATH_MAX + 32];
    if (report_path[0] != '\0') {
        strcpy(path, report_path);
    } else {
        /* /tmp/teardown-probe-<pid>.txt, formatted without snprintf */
        char digits[16];
        int i = 15, pid = getpid();
        digits[i] = '\0';
        do {
            digits[--i] = (char)('0' + pid % 10);
            pid /= 10;
        } while (pid);
        strcpy(path, "/tmp/teardown-probe-");
        strcat(path, digits + i);
        strcat(path, ".txt");
    }
    return (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                        0644);
}

static void trigger(const char *reason)
{
    if (atomic_exchange(&dumping, 1)) {
        return; /* one report at a time */
    }
    int fd = open_report();
    if (fd < 0) {
        atomic_store(&dumping, 0);
        return;
    }
    int self = tp_gettid(), pid = getpid();
    int n = list_tasks(), ok = 0;
    put(fd, "teardown-probe watchdog report: pid ");
    put_int(fd, pid);
    put(fd, ", ");
    put_int(fd, n);
    put(fd, " threads, reason: ");
    put(fd, reason);
    put(fd, "\n");
    atomic_store(&report_fd, fd);
    for (int i = 0; i < n; i++) {
        if (tasks[i] == self) {
            dump_self(fd);
            ok++;
            continue;
        }
        atomic_store(&answered, 0);
        atomic_store(&answer_tid, tasks[i]);
        if (syscall(SYS_tgkill, pid, tasks[i], dump_signal) != 0) {
            continue; /* exited meanwhile */
        }
        struct timespec step = {0, 1000000};
        long waited = 0;
        while (!atomic_load(&answered) && waited < ANSWER_NS) {
            nanosleep(&step, NULL);
            waited += step.tv_nsec;
        }
        if (atomic_load(&answered)) {
            ok++;
        } else {
            put(fd, "--- thread ");
            put_int(fd, tasks[i]);
            put(fd, ": no answer within 0.5 s (signal blocked or ignored)\n");
        }
        atomic_store(&answer_tid, 0);
    }
    atomic_store(&report_fd, -1);
    put(fd, "=== end of report: ");
    put_int(fd, ok);
    put(fd, "/");
    put_int(fd, n);
    put(fd, " threads dumped\n");
    syscall(SYS_close, fd);
    atomic_store(&dumping, 0);
}

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    int saved = errno;
    if (si->si_code == SI_TKILL && si->si_pid == getpid()) {
        int fd = atomic_load(&report_fd);
        if (fd >= 0 && atomic_load(&answer_tid) == tp_gettid()) {
            dump_self(fd);
            atomic_store(&answered, 1);
        }
    } else {
        trigger(si->si_code == SI_TIMER ? "deadline" : "signal");
    }
    errno = saved;
}

int tp_watchdog_dump(const char *reason)
{
    trigger(reason ? reason : "requested");
    return 0;
}

int tp_watchdog_arm(double seconds)
{
    if (!atomic_load(&timer_made)) {
        struct sigevent ev;
        memset(&ev, 0, sizeof(ev));
        ev.sigev_notify = SIGEV_SIGNAL;
        ev.sigev_signo = dump_signal;
        if (timer_create(CLOCK_MONOTONIC, &ev, &deadline_timer) != 0) {
            return -1;
        }
        atomic_store(&timer_made, 1);
    }
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)seconds;
    its.it_value.tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9);
    return timer_settime(deadline_timer, 0, &its, NULL);
}

int tp_watchdog_filter_mask(const void *set, void *copy)
{
    if (set == NULL || dump_signal == 0 || !sigismember((const sigset_t *)set, dump_signal)) {
        return 0;
    }
    memcpy(copy, set, sizeof(sigset_t));
    sigdelset((sigset_t *)copy, dump_signal);
    return 1;
}

void tp_watchdog_thread_start(void)
{
    if (dump_signal != 0) {
        sigset_t only;
        sigemptyset(&only);
        sigaddset(&only, dump_signal);
        pthread_sigmask(SIG_UNBLOCK, &only, NULL);
    }
}

void tp_watchdog_init(void)
{
    const char *sig = getenv("TEARDOWN_PROBE_SIGNAL");
    dump_signal = sig && *sig ? atoi(sig) : SIGRTMAX - 2;
    const char *path = getenv("TEARDOWN_PROBE_REPORT");
    if (path != NULL) {
        tp_watchdog_set_report_path(path);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigdelset(&sa.sa_mask, dump_signal); /* the dumping thread's own tgkill targets others */
    sigaction(dump_signal, &sa, NULL);
    const char *deadline = getenv("TEARDOWN_PROBE_WATCHDOG");
    if (deadline != NULL && atof(deadline) > 0) {
        tp_watchdog_arm(atof(deadline));
    }
}
