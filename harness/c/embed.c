/* embed.c: teardown-embed, N Py_InitializeEx/Py_FinalizeEx cycles of a scenario in one process.
 *
 *   teardown-embed [-n CYCLES] [-t SECONDS] SCENARIO.py
 *
 * Before each cycle it records the live threads (/proc/self/task, without exiting tasks) and
 * open fds (/proc/self/fd); after Py_FinalizeEx it waits a bounded moment for threads that were
 * joined but are still leaving the kernel, then reports every thread and fd created in the
 * cycle that is still there, by name (comm) and link target. A scenario that raises, a failed
 * finalization, a crash (the signal kills the process) or a hang (SIGALRM after SECONDS per
 * cycle, reporting the cycle and phase) fails the run. Last line:
 *   teardown-embed: N cycles, T with leftover threads, F with leftover fds, E errors */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_IDS 4096
#define SETTLE_SECONDS 2.0 /* a joined thread leaves /proc within microseconds; bound only */
#define PF_EXITING 0x4

typedef struct {
    int n;
    int ids[MAX_IDS];
} id_set;

static volatile sig_atomic_t cycle_now;
static const char *volatile phase_now = "start";

static int task_alive(int tid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = '\0';
    char *close_paren = strrchr(buf, ')');
    if (close_paren == NULL) {
        return 0;
    }
    char state = close_paren[2];
    unsigned long flags = 0;
    /* fields after ')': state ppid pgrp session tty tpgid flags */
    sscanf(close_paren + 2, "%*c %*d %*d %*d %*d %*d %lu", &flags);
    return state != 'Z' && state != 'X' && !(flags & PF_EXITING);
}

static void list_dir(const char *dir, id_set *out, int threads)
{
    out->n = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    int self_fd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && out->n < MAX_IDS) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        int id = atoi(e->d_name);
        if ((threads && !task_alive(id)) || (!threads && id == self_fd)) {
            continue;
        }
        out->ids[out->n++] = id;
    }
    closedir(d);
}

static int contains(const id_set *s, int id)
{
    for (int i = 0; i < s->n; i++) {
        if (s->ids[i] == id) {
            return 1;
        }
    }
    return 0;
}

static int new_ids(const id_set *before, const id_set *after, id_set *out)
{
    out->n = 0;
    for (int i = 0; i < after->n; i++) {
        if (!contains(before, after->ids[i])) {
            out->ids[out->n++] = after->ids[i];
        }
    }
    return out->n;
}

static void describe_thread(int tid, char *buf, size_t size)
{
    char path[64], name[32] = "?";
    snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fgets(name, sizeof(name), f) != NULL) {
            name[strcspn(name, "\n")] = '\0';
        }
        fclose(f);
    }
    snprintf(buf, size, "tid %d '%s'", tid, name);
}

static void describe_fd(int fd, char *buf, size_t size)
{
    char path[64], target[256];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    snprintf(buf, size, "fd %d %s", fd, target);
}

static void on_alarm(int sig)
{
    (void)sig;
    char msg[160];
    int n = snprintf(msg, sizeof(msg), "teardown-embed: hang in cycle %d during %s\n",
                     (int)cycle_now, phase_now);
    (void)!write(2, msg, (size_t)n);
    _exit(124);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    if (text != NULL && fread(text, 1, (size_t)size, f) == (size_t)size) {
        text[size] = '\0';
    } else {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int cycles = 50, opt;
    unsigned timeout = 30;
    while ((opt = getopt(argc, argv, "n:t:")) != -1) {
        if (opt == 'n') {
            cycles = atoi(optarg);
        } else if (opt == 't') {
            timeout = (unsigned)atoi(optarg);
        } else {
            fprintf(stderr, "usage: %s [-n CYCLES] [-t SECONDS] SCENARIO.py\n", argv[0]);
            return 2;
        }
    }
    char *code = optind < argc ? read_file(argv[optind]) : NULL;
    if (code == NULL || cycles < 1 || timeout < 1) {
        fprintf(stderr, "teardown-embed: error: need a readable scenario file and N >= 1\n");
        return 2;
    }
    signal(SIGALRM, on_alarm);
    int thread_leaks = 0, fd_leaks = 0, errors = 0;
    static id_set t0, f0, t1, f1, extra;
    for (int c = 1; c <= cycles; c++) {
        cycle_now = c;
        alarm(timeout);
        list_dir("/proc/self/task", &t0, 1);
        list_dir("/proc/self/fd", &f0, 0);
        phase_now = "Py_InitializeEx";
        Py_InitializeEx(0);
        phase_now = "the scenario";
        if (PyRun_SimpleString(code) != 0) {
            fprintf(stderr, "cycle %d: the scenario raised (traceback above)\n", c);
            errors++;
        }
        phase_now = "Py_FinalizeEx";
        if (Py_FinalizeEx() < 0) {
            fprintf(stderr, "cycle %d: Py_FinalizeEx failed (flushing buffered data)\n", c);
            errors++;
        }
        phase_now = "the leftover check";
        double deadline = now() + SETTLE_SECONDS;
        do {
            list_dir("/proc/self/task", &t1, 1);
        } while (new_ids(&t0, &t1, &extra) > 0 && now() < deadline && usleep(1000) == 0);
        char line[320];
        if (extra.n > 0) {
            thread_leaks++;
            fprintf(stderr, "cycle %d: +%d thread(s) still alive after Py_FinalizeEx:", c,
                    extra.n);
            for (int i = 0; i < extra.n && i < 8; i++) {
                describe_thread(extra.ids[i], line, sizeof(line));
                fprintf(stderr, " %s", line);
            }
            fprintf(stderr, "\n");
        }
        list_dir("/proc/self/fd", &f1, 0);
        if (new_ids(&f0, &f1, &extra) > 0) {
            fd_leaks++;
            fprintf(stderr, "cycle %d: +%d fd(s) still open after Py_FinalizeEx:", c, extra.n);
            for (int i = 0; i < extra.n && i < 8; i++) {
                describe_fd(extra.ids[i], line, sizeof(line));
                fprintf(stderr, " %s", line);
            }
            fprintf(stderr, "\n");
        }
        alarm(0);
    }
    free(code);
    printf("teardown-embed: %d cycles, %d with leftover threads, %d with leftover fds, "
           "%d errors\n", cycles, thread_leaks, fd_leaks, errors);
    return thread_leaks || fd_leaks || errors ? 1 : 0;
}
