/* core.c: interpreter lifetime, attach tracking, thread spawning, deadlines, buffers. */
#include "core.h"

#include "fault.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tr_counters tr_stats;

tr_life *tr_life_new(void)
{
    tr_life *life = calloc(1, sizeof(*life));
    if (life != NULL) {
        atomic_init(&life->refs, 1);
        atomic_init(&life->exiting, 0);
        pthread_mutex_init(&life->gate_mu, NULL);
        tr_cond_init(&life->gate_cv);
    }
    return life;
}

void tr_life_begin_exit(tr_life *life)
{
    pthread_mutex_lock(&life->gate_mu);
    atomic_store(&life->exiting, 1);
    bool busy = life->in_gate > 0;
    pthread_mutex_unlock(&life->gate_mu);
    if (!busy) {
        return;
    }
    struct timespec deadline = tr_deadline_after(TR_EXIT_GATE_SECONDS);
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&life->gate_mu);
    while (life->in_gate > 0 &&
           pthread_cond_timedwait(&life->gate_cv, &life->gate_mu, &deadline) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&life->gate_mu);
    Py_END_ALLOW_THREADS
}

void tr_life_ref(tr_life *life) { atomic_fetch_add(&life->refs, 1); }

void tr_life_unref(tr_life *life)
{
    if (atomic_fetch_sub(&life->refs, 1) == 1) {
        pthread_mutex_destroy(&life->gate_mu);
        pthread_cond_destroy(&life->gate_cv);
        free(life);
    }
}

bool tr_life_exiting(tr_life *life) { return atomic_load(&life->exiting) != 0; }

bool tr_life_exiting_attached(tr_life *life)
{
#if PY_VERSION_HEX >= 0x030D0000
    return tr_life_exiting(life) || Py_IsFinalizing();
#else
    return tr_life_exiting(life) || _Py_IsFinalizing();
#endif
}

static _Thread_local int attach_depth;
static _Thread_local PyGILState_STATE attach_state;
static _Thread_local tr_life *gate_life; /* set while this thread is inside the gate */

static void leave_gate(void)
{
    tr_life *life = gate_life;
    if (life == NULL) {
        return;
    }
    gate_life = NULL;
    pthread_mutex_lock(&life->gate_mu);
    if (--life->in_gate == 0) {
        pthread_cond_broadcast(&life->gate_cv);
    }
    pthread_mutex_unlock(&life->gate_mu);
}

bool tr_attach(tr_life *life)
{
    if (FAULT(TR_FAULT_ATTACH_AT_EXIT)) {
        /* FAULT (V3): no exit flag, no gate: attach even while the interpreter finalizes. */
        tr_chaos_delay("attach");
        attach_state = PyGILState_Ensure();
        attach_depth++;
        return true;
    }
    pthread_mutex_lock(&life->gate_mu);
    bool exiting = atomic_load(&life->exiting) != 0;
    if (!exiting) {
        life->in_gate++;
        gate_life = life;
    }
    pthread_mutex_unlock(&life->gate_mu);
    if (exiting) {
        return false;
    }
    tr_chaos_delay("attach");
    attach_state = PyGILState_Ensure();
    /* The flag may have been set while we waited for the GIL (the atexit callback runs with
     * the GIL held, then waits for us with it released). Leave at once, no Python call. */
    if (tr_life_exiting(life)) {
        PyGILState_Release(attach_state);
        leave_gate();
        return false;
    }
    attach_depth++;
    return true;
}

void tr_detach(void)
{
    attach_depth--;
    PyGILState_Release(attach_state);
    leave_gate();
}

void tr_attach_leave_gate(void) { leave_gate(); }

void tr_enter_python(void) { attach_depth++; }
void tr_leave_python(void) { attach_depth--; }
bool tr_is_attached(void) { return attach_depth > 0; }

tr_unattached tr_release_gil(void)
{
    tr_unattached token = {NULL, attach_depth};
    if (attach_depth > 0) {
        token.saved = PyEval_SaveThread();
        attach_depth = 0;
    }
    return token;
}

void tr_reacquire_gil(tr_unattached token)
{
    if (token.saved != NULL) {
        PyEval_RestoreThread(token.saved);
        attach_depth = token.depth;
    }
}

int tr_spawn(pthread_t *thread, void *(*fn)(void *), void *arg, const char *name)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err == 0) {
        pthread_setname_np(*thread, name);
    }
    return err;
}

void tr_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

struct timespec tr_deadline_after(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (seconds > 1e9) {
        seconds = 1e9;
    }
    long long whole = (long long)seconds;
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - (double)whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

bool tr_deadline_passed(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

int tr_buf_append(tr_buf *buf, const char *data, size_t len)
{
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 64;
        while (cap < buf->len + len + 1) {
            cap *= 2;
        }
        char *grown = realloc(buf->data, cap);
        if (grown == NULL) {
            return -1;
        }
        buf->data = grown;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

int tr_buf_printf(tr_buf *buf, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -1;
    }
    if ((size_t)n < sizeof(small)) {
        return tr_buf_append(buf, small, (size_t)n);
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = tr_buf_append(buf, big, (size_t)n);
    free(big);
    return rc;
}

void tr_buf_free(tr_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

char *tr_strndup(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}
