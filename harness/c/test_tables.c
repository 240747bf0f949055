/* test_tables.c: unit tests of the probe's bookkeeping (tables.c, libmap.c), no LD_PRELOAD.
 * The runner's last line is "N passed, N failed"; exit status 1 when any failed. */
#define _GNU_SOURCE /* pthread_t handles as integers, dladdr in libmap */
#include "probe_internal.h"

#include <stdio.h>
#include <string.h>

static int passed, failed, current_failed;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            printf("  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                           \
            current_failed = 1;                                                                \
        }                                                                                      \
    } while (0)

#define RUN(test)                                                                              \
    do {                                                                                       \
        current_failed = 0;                                                                    \
        test();                                                                                \
        printf("%s %s\n", current_failed ? "FAIL" : "ok  ", #test);                            \
        current_failed ? failed++ : passed++;                                                  \
    } while (0)

static int lib_a, lib_b;

static void test_libraries_by_range_and_name(void)
{
    lib_a = tp_lib_add(0x1000, 0x1000, 0x2000, "/x/liba.so", 0, 0);
    lib_b = tp_lib_add(0x5000, 0x5000, 0x6000, "/x/libpython3.11.so", 1, 0);
    CHECK(lib_a >= 1 && lib_b > lib_a);
    CHECK(tp_lib_add(0x1000, 0x1000, 0x2000, "/x/liba.so", 0, 0) == lib_a); /* no duplicate */
    CHECK(tp_lib_by_addr(0x1800) == lib_a);
    CHECK(tp_lib_by_addr(0x2000) == -1); /* end is exclusive */
    CHECK(tp_lib_find("liba") == lib_a);
    CHECK(tp_lib_find("nothing-like-this") == -1);
    tp_lib_stats s;
    CHECK(tp_lib_stats_get(0, &s) == 0 && strcmp(s.path, "[unattributed]") == 0);
    CHECK(tp_lib_stats_get(999, &s) == -1);
}

static void test_thread_lifecycle_counts_and_window(void)
{
    uint64_t since = tp_mark("drop started");
    int s1 = tp_thread_alloc(lib_a, 1, NULL, NULL);
    int s2 = tp_thread_alloc(lib_a, 1, NULL, NULL);
    CHECK(s1 >= 0 && s2 >= 0 && s1 != s2);
    atomic_store(&tp_threads[s1].handle, 111);
    atomic_store(&tp_threads[s2].handle, 222);
    tp_thread_started(s1, 5001);
    tp_thread_started(s2, 5002);
    CHECK(tp_thread_find((pthread_t)222) == s2);
    tp_thread_exited(s1);
    tp_thread_exited(s1); /* pthread_exit + cleanup handler: counted once */
    tp_thread_joined(tp_thread_find((pthread_t)111));
    uint64_t until = tp_mark("drop returned");
    tp_thread_info leaks[4];
    int n = tp_thread_leaks(lib_a, since, until, leaks, 4);
    CHECK(n == 1 && leaks[0].tid == 5002 && leaks[0].joined_seq == 0);
    CHECK(tp_thread_find((pthread_t)111) == -1); /* joined: no longer findable */
    tp_lib_stats s;
    tp_lib_stats_get(lib_a, &s);
    CHECK(s.threads_created == 2 && s.threads_joined == 1 && s.threads_exited == 1);
    /* Joined after the window closed: still a leak of that window. */
    tp_thread_exited(s2);
    tp_thread_joined(s2);
    CHECK(tp_thread_leaks(lib_a, since, until, leaks, 4) == 1);
    CHECK(tp_thread_leaks(lib_a, since, tp_seq(), leaks, 4) == 0);
    CHECK(tp_thread_leaks(lib_b, since, tp_seq(), leaks, 4) == 0); /* other library */
}

static void test_detached_thread_is_a_leak_and_its_slot_survives(void)
{
    uint64_t since = tp_seq();
    int s = tp_thread_alloc(lib_a, 1, NULL, NULL);
    tp_thread_started(s, 6001);
    tp_thread_detached(s);
    tp_thread_exited(s); /* slot free again, record kept */
    uint64_t until = tp_seq();
    int other = tp_thread_alloc(lib_b, 1, NULL, NULL); /* round-robin: not the freed slot */
    CHECK(other != s);
    tp_thread_info leaks[2];
    CHECK(tp_thread_leaks(lib_a, since, until, leaks, 2) == 1);
    CHECK(leaks[0].detached_seq != 0 && leaks[0].exited_seq != 0 && leaks[0].tid == 6001);
    tp_thread_release(other);
}

static void test_fd_open_close_and_reuse(void)
{
    uint64_t since = tp_seq();
    tp_fd_opened(40, lib_a, TP_FD_EPOLL, 7);
    tp_fd_opened(41, lib_a, TP_FD_SOCKET, 7);
    tp_fd_opened(42, lib_b, TP_FD_FILE, 8);
    tp_fd_closing(41);
    tp_fd_closing(41); /* double close books once */
    CHECK(tp_fd_lib(40) == lib_a && tp_fd_lib(41) == -1);
    uint64_t until = tp_seq();
    tp_fd_info leaks[4];
    int n = tp_fd_leaks(lib_a, since, until, leaks, 4);
    CHECK(n == 1 && leaks[0].fd == 40 && leaks[0].kind == TP_FD_EPOLL && leaks[0].tid == 7);
    /* Number 41 reused by library b: a's closed fd stays closed, b's is open. */
    tp_fd_opened(41, lib_b, TP_FD_PIPE, 8);
    CHECK(tp_fd_leaks(lib_a, since, tp_seq(), leaks, 4) == 1);
    CHECK(tp_fd_leaks(lib_b, until, tp_seq(), leaks, 4) == 1 && leaks[0].fd == 41);
    tp_fd_closing(40);
    tp_fd_closing(41);
    tp_fd_closing(42);
    tp_fd_closing(-1);     /* out of range: ignored */
    tp_fd_opened(TP_MAX_FDS + 5, lib_a, TP_FD_FILE, 1);
    tp_lib_stats s;
    tp_lib_stats_get(lib_a, &s);
    CHECK(s.fds_opened == 2 && s.fds_closed == 2);
    tp_fd_closing(43); /* never opened through the probe: no count */
    tp_lib_stats_get(lib_b, &s);
    CHECK(s.fds_opened == 2 && s.fds_closed == 2);
}

static void test_timeline_order_and_marks(void)
{
    uint64_t since = tp_seq();
    uint64_t m = tp_mark("drop started");
    tp_fd_opened(50, lib_a, TP_FD_EVENTFD, 9);
    tp_fd_closing(50);
    tp_event ev[8];
    int n = tp_timeline(since, ev, 8);
    CHECK(n == 3);
    CHECK(ev[0].seq == m && ev[0].kind == TP_EV_MARK && strcmp(tp_mark_label(ev[0].obj), "drop started") == 0);
    CHECK(ev[1].kind == TP_EV_FD_OPEN && ev[1].obj == 50 && ev[2].kind == TP_EV_FD_CLOSE);
    CHECK(ev[0].t_ns <= ev[1].t_ns && ev[1].t_ns <= ev[2].t_ns);
    CHECK(tp_timeline(since, ev, 1) == 1); /* max honoured */
}

static void test_timeline_ring_overwrites_oldest(void)
{
    uint64_t since = tp_seq();
    for (int i = 0; i < TP_RING + 10; i++) {
        tp_mark(NULL);
    }
    static tp_event ev[TP_RING];
    int n = tp_timeline(since, ev, TP_RING);
    CHECK(n == TP_RING);
    CHECK(ev[0].seq == since + 11 && ev[n - 1].seq == tp_seq());
}

enum { WORKERS = 4, ROUNDS = 20000 };

static void *fd_worker(void *arg)
{
    int base = 1000 + 100 * (int)(intptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int fd = base + i % 100;
        tp_fd_opened(fd, lib_b, TP_FD_SOCKET, base);
        tp_fd_closing(fd);
    }
    return NULL;
}

static void test_concurrent_bookkeeping_is_exact(void)
{
    tp_lib_stats before, after;
    tp_lib_stats_get(lib_b, &before);
    pthread_t th[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        pthread_create(&th[i], NULL, fd_worker, (void *)(intptr_t)i);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(th[i], NULL);
    }
    tp_lib_stats_get(lib_b, &after);
    CHECK(after.fds_opened - before.fds_opened == WORKERS * ROUNDS);
    CHECK(after.fds_closed - before.fds_closed == WORKERS * ROUNDS);
}

static void test_lineage_rule(void)
{
    /* A thread of a non-host library: its lineage wins over any call site. */
    tp_self_lib = lib_a;
    CHECK(tp_attribute((const void *)0x5800) == lib_a);
    /* A host thread: the call site decides. */
    tp_self_lib = lib_b;
    CHECK(tp_attribute((const void *)0x1800) == lib_a);
    tp_self_lib = -1;
    CHECK(tp_attribute((const void *)0x5800) == lib_b);
    /* A real address: this test binary, the executable, is host. */
    int self = tp_lib_for_addr((const void *)test_lineage_rule);
    CHECK(self > 0 && tp_lib_is_host(self));
}

int main(void)
{
    tp_tables_init();
    tp_libmap_init();
    RUN(test_libraries_by_range_and_name);
    RUN(test_thread_lifecycle_counts_and_window);
    RUN(test_detached_thread_is_a_leak_and_its_slot_survives);
    RUN(test_fd_open_close_and_reuse);
    RUN(test_timeline_order_and_marks);
    RUN(test_timeline_ring_overwrites_oldest);
    RUN(test_concurrent_bookkeeping_is_exact);
    RUN(test_lineage_rule);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
