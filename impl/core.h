/* core.h: what every part of teardown_ref shares: the interpreter lifetime and its exit flag,
 * attach tracking for native threads, process-wide counters, fault selection, small helpers.
 *
 * Rule of the whole extension: a native thread touches Python only between tr_attach() and
 * tr_detach(), and tr_attach() refuses once the lifetime's exit flag is set. */
#ifndef TR_CORE_H
#define TR_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#if PY_VERSION_HEX < 0x030A0000
/* 3.9 lacks these two; same semantics as CPython 3.10's. */
static inline PyObject *Py_NewRef(PyObject *obj)
{
    Py_INCREF(obj);
    return obj;
}
static inline int PyModule_AddObjectRef(PyObject *module, const char *name, PyObject *value)
{
    Py_INCREF(value);
    int rc = PyModule_AddObject(module, name, value);
    if (rc < 0) {
        Py_DECREF(value);
    }
    return rc;
}
#endif

#if PY_VERSION_HEX < 0x030D0000
/* 3.13's strong-reference lookup. Returns 1 and a new reference in *result, 0 and NULL when
 * absent, -1 with an exception set. Safe before 3.13: the GIL is always there. */
static inline int PyDict_GetItemStringRef(PyObject *dict, const char *key, PyObject **result)
{
    PyObject *item = PyDict_GetItemString(dict, key); /* borrowed, held under the GIL */
    *result = item == NULL ? NULL : Py_NewRef(item);
    return item != NULL;
}
/* Critical sections lock an object on free-threaded builds (3.13+) and are no-ops otherwise. */
#define Py_BEGIN_CRITICAL_SECTION(op) {
#define Py_END_CRITICAL_SECTION() }
#endif

/* One interpreter lifetime (module exec to Py_Finalize). The atexit callback sets `exiting`.
 * Refcounted: a thread detached at exit keeps its own lifetime, so it never sees the cleared
 * flag of a later lifetime (embedders that initialize the interpreter again). */
typedef struct tr_life {
    atomic_int refs;
    atomic_int exiting;
    /* The attach gate: native threads between "the flag is clear" and "detached again". */
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    int in_gate;
} tr_life;

/* How long the atexit callback waits for attached sections to end before it lets
 * finalization go on (a section running user code that blocks forever must not hang exit). */
#define TR_EXIT_GATE_SECONDS 5.0

tr_life *tr_life_new(void);                 /* NULL on ENOMEM */
/* The atexit callback (attached): set the exit flag, then wait, with the GIL released, until
 * no thread is inside the attach gate. Afterwards no native thread attaches again. */
void tr_life_begin_exit(tr_life *life);
void tr_life_ref(tr_life *life);
void tr_life_unref(tr_life *life);
bool tr_life_exiting(tr_life *life);        /* exit flag only: no Python call, safe unattached */
bool tr_life_exiting_attached(tr_life *life); /* exit flag or Py_IsFinalizing(); caller attached */

/* Process-wide counters exposed by teardown_ref.stats(). */
typedef struct {
    atomic_long tools;        /* ScriptedTool/Bash objects alive */
    atomic_long workers;      /* private-loop worker threads not yet joined (or exited, if detached) */
    atomic_long pool_threads; /* pool threads not yet joined (or exited, if detached) */
    atomic_long open_loops;   /* asyncio loops held by workers (closed when released, but
                               * for the deferred_loop_close fault, which leaves it to GC) */
    atomic_long inflight;     /* callbacks invoked and not finished */
    atomic_long handoffs;     /* detached shutdown threads still running */
    atomic_long executions;   /* executions submitted and not finished (abandoned ones included) */
} tr_counters;
extern tr_counters tr_stats;

/* Attach tracking. A thread-local depth of our own, not PyGILState_Check(), which answers 1 for
 * every thread once a subinterpreter exists. */
/* Attach a native thread for a short section; false (not attached) once exiting. Checking the
 * flag and attaching are atomic with respect to the atexit callback (the attach gate), because
 * creating a thread state while Py_FinalizeEx runs crashes CPython. Not nested. */
bool tr_attach(tr_life *life);
void tr_detach(void);
/* For a thread that stays attached for its whole life (a loop worker): after tr_attach, leave
 * the gate; from then on it is an ordinary Python thread under CPython's exit rules. */
void tr_attach_leave_gate(void);
void tr_enter_python(void);        /* mark a thread that entered from Python (it holds the GIL) */
void tr_leave_python(void);
bool tr_is_attached(void);
/* Release the GIL around a blocking wait if this thread holds it; no-op otherwise. */
typedef struct { PyThreadState *saved; int depth; } tr_unattached;
tr_unattached tr_release_gil(void);
void tr_reacquire_gil(tr_unattached token);

/* Spawn a native thread with every signal blocked (signals belong to the main thread) and a
 * name visible in /proc (<= 15 chars). Returns 0 or an errno value. */
int tr_spawn(pthread_t *thread, void *(*fn)(void *), void *arg, const char *name);

/* Monotonic deadlines for condition variables created with tr_cond_init. */
void tr_cond_init(pthread_cond_t *cond);
struct timespec tr_deadline_after(double seconds);
bool tr_deadline_passed(const struct timespec *deadline);

/* Growable byte buffer. */
typedef struct { char *data; size_t len, cap; } tr_buf;
int tr_buf_append(tr_buf *buf, const char *data, size_t len);  /* 0, or -1 on ENOMEM */
int tr_buf_printf(tr_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tr_buf_free(tr_buf *buf);
char *tr_strndup(const char *s, size_t len);

#endif
