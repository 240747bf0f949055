/* ploop.c: the private-loop worker thread. */
#include "ploop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fault.h"
#include "loopcall.h"

struct tr_ploop {
    atomic_int refs;
    tr_life *life;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int efd; /* -1 once the worker closed it; written and closed under mu */
    tr_call *head, *tail;
    tr_call *inflight; /* calls whose task is published, for tr_ploop_abandon_all */
    bool closing;
    bool exited;   /* the worker function returned (or is about to) */
    bool joining;  /* one thread claimed the pthread_join */
    bool joined;
    bool detached;
    /* loop thread only, attached */
    PyObject *loop;
    PyObject *tasks; /* set of in-flight tasks: the cancellation targets */
};

#define PLOOP_CAPSULE "teardown_ref.ploop"

void tr_ploop_ref(tr_ploop *pl) { atomic_fetch_add(&pl->refs, 1); }

void tr_ploop_unref(tr_ploop *pl)
{
    if (atomic_fetch_sub(&pl->refs, 1) != 1) {
        return;
    }
    pthread_mutex_destroy(&pl->mu);
    pthread_cond_destroy(&pl->cv);
    tr_life_unref(pl->life);
    free(pl);
}

/* Caller holds pl->mu. */
static void wake_locked(tr_ploop *pl)
{
    if (pl->efd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(pl->efd, &one, sizeof(one));
        (void)n; /* EAGAIN means the counter is already non-zero: the worker wakes anyway */
    }
}

static tr_call *take_queue(tr_ploop *pl, bool *closing)
{
    pthread_mutex_lock(&pl->mu);
    tr_call *calls = pl->head;
    pl->head = pl->tail = NULL;
    *closing = pl->closing;
    pthread_mutex_unlock(&pl->mu);
    return calls;
}

static void reject_all(tr_call *calls)
{
    while (calls != NULL) {
        tr_call *next = calls->next;
        tr_call_fail(calls, 1, "tool is closing; call not started");
        tr_call_unref(calls);
        calls = next;
    }
}

/* Loop thread, attached. Returns 0, or -1 with an exception set. */
static int maybe_stop(tr_ploop *pl)
{
    bool closing;
    bool queued;
    if (FAULT(TR_FAULT_RACY_FLAG)) {
        closing = pl->closing; /* FAULT: unsynchronized read */
        pthread_mutex_lock(&pl->mu);
        queued = pl->head != NULL;
        pthread_mutex_unlock(&pl->mu);
    } else {
        pthread_mutex_lock(&pl->mu);
        closing = pl->closing;
        queued = pl->head != NULL;
        pthread_mutex_unlock(&pl->mu);
    }
    /* A non-empty queue means a drain is pending (every submit wakes the loop): it rejects the
     * queued calls and stops the loop then. */
    if (!closing || queued || PySet_GET_SIZE(pl->tasks) > 0) {
        return 0;
    }
    PyObject *r = PyObject_CallMethod(pl->loop, "stop", NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* Cancel every in-flight task. Returns 0, or -1 with an exception set. */
static int cancel_tasks(tr_ploop *pl)
{
    PyObject *snapshot = PySequence_List(pl->tasks);
    if (snapshot == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(snapshot); i++) {
        PyObject *r = PyObject_CallMethod(PyList_GET_ITEM(snapshot, i), "cancel", NULL);
        if (r == NULL) {
            Py_DECREF(snapshot);
            return -1;
        }
        Py_DECREF(r);
    }
    Py_DECREF(snapshot);
    return 0;
}

/* The eventfd is readable: start queued calls, or reject them and cancel when closing. */
static PyObject *drain(PyObject *capsule, PyObject *Py_UNUSED(arg))
{
    tr_ploop *pl = PyCapsule_GetPointer(capsule, PLOOP_CAPSULE);
    if (pl == NULL) {
        return NULL;
    }
    uint64_t count;
    ssize_t n = read(pl->efd, &count, sizeof(count));
    (void)n; /* EAGAIN: a spurious wake-up, the queue tells what to do */
    bool closing;
    tr_call *calls = take_queue(pl, &closing);
    /* FAULT no_cancel and hands_off: teardown waits for callbacks to finish by themselves. */
    bool cancel = closing && !FAULT(TR_FAULT_NO_CANCEL) && !FAULT(TR_FAULT_HANDS_OFF);
    if (cancel && cancel_tasks(pl) < 0) {
        reject_all(calls);
        return NULL;
    }
    if (closing && !FAULT(TR_FAULT_NO_CLOSING_FLAG)) {
        reject_all(calls); /* queued but not started: they never run once closing */
        calls = NULL;
    } /* FAULT no_closing_flag: they start below, after the cancellation, and run */
    while (calls != NULL) {
        tr_call *call = calls;
        calls = call->next;
        call->host = pl;
        PyObject *task = tr_loopcall_start(call, pl->loop);
        int rc = task ? PySet_Add(pl->tasks, task) : 0;
        if (task != NULL) {
            pthread_mutex_lock(&pl->mu);
            call->inflight_prev = NULL;
            call->inflight_next = pl->inflight;
            if (pl->inflight != NULL) {
                pl->inflight->inflight_prev = call;
            }
            pl->inflight = call; /* the list keeps the queue's reference */
            pthread_mutex_unlock(&pl->mu);
        } else {
            tr_call_unref(call);
        }
        Py_XDECREF(task);
        if (rc < 0) {
            reject_all(calls);
            return NULL;
        }
    }
    if (closing && maybe_stop(pl) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef drain_def = {"_drain", drain, METH_NOARGS, NULL};

void tr_ploop_task_done(tr_ploop *pl, PyObject *task, tr_call *call)
{
    pthread_mutex_lock(&pl->mu);
    if (call->inflight_prev != NULL) {
        call->inflight_prev->inflight_next = call->inflight_next;
    } else {
        pl->inflight = call->inflight_next;
    }
    if (call->inflight_next != NULL) {
        call->inflight_next->inflight_prev = call->inflight_prev;
    }
    pthread_mutex_unlock(&pl->mu);
    tr_call_unref(call);
    if (PySet_Discard(pl->tasks, task) < 0 || maybe_stop(pl) < 0) {
        PyErr_WriteUnraisable(task);
    }
}

void tr_ploop_abandon_all(tr_ploop *pl)
{
    pthread_mutex_lock(&pl->mu);
    for (tr_call *c = pl->inflight; c != NULL; c = c->inflight_next) {
        tr_call_fail(c, 1, "abandoned at exit");
    }
    for (tr_call *c = pl->head; c != NULL; c = c->next) {
        tr_call_fail(c, 1, "abandoned at exit");
    }
    pthread_mutex_unlock(&pl->mu);
}

/* Loop thread, attached: create the loop, run it until closing and idle, close it. Any
 * failure is reported as unraisable; queued calls are then rejected by the caller. */
static void run_loop(tr_ploop *pl)
{
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    PyObject *capsule = NULL, *drain_fn = NULL, *r = NULL;
    pl->tasks = PySet_New(NULL);
    pl->loop = asyncio && pl->tasks ? PyObject_CallMethod(asyncio, "new_event_loop", NULL) : NULL;
    if (pl->loop == NULL) {
        goto done;
    }
    atomic_fetch_add(&tr_stats.open_loops, 1);
    capsule = PyCapsule_New(pl, PLOOP_CAPSULE, NULL);
    drain_fn = capsule ? PyCFunction_New(&drain_def, capsule) : NULL;
    r = drain_fn ? PyObject_CallMethod(pl->loop, "add_reader", "iO", pl->efd, drain_fn) : NULL;
    if (r != NULL) {
        Py_DECREF(r);
        r = PyObject_CallMethod(pl->loop, "run_forever", NULL);
    }
    if (r == NULL) {
        PyErr_WriteUnraisable(pl->loop);
    }
    Py_XDECREF(r);
    /* The loop stopped with calls still in flight (run_forever failed, or a fault started
     * calls during teardown): their tasks will never run again, so complete the calls here;
     * a job must never wait on a dead loop. Dropping call->task breaks the cycle
     * call -> task -> done-callback capsule -> call. */
    pthread_mutex_lock(&pl->mu);
    tr_call *left = pl->inflight;
    pl->inflight = NULL;
    pthread_mutex_unlock(&pl->mu);
    while (left != NULL) {
        tr_call *next = left->inflight_next;
        tr_call_fail(left, 1, "event loop stopped before the call finished");
        Py_CLEAR(left->task);
        tr_call_unref(left); /* the list's reference */
        left = next;
    }
    r = PyObject_CallMethod(pl->loop, "remove_reader", "i", pl->efd);
    Py_XDECREF(r);
    if (FAULT(TR_FAULT_DEFERRED_LOOP_CLOSE)) {
        /* FAULT (V4b): the loop is left to BaseEventLoop.__del__: its reference cycle keeps
         * its fds open until a GC pass, and it warns "unclosed event loop" then. The counter
         * still drops: it counts loops held by workers, and the fds tell the rest. */
    } else {
        r = PyObject_CallMethod(pl->loop, "close", NULL);
        if (r == NULL) {
            PyErr_WriteUnraisable(pl->loop);
        }
        Py_XDECREF(r);
    }
    atomic_fetch_sub(&tr_stats.open_loops, 1);
done:
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(NULL);
    }
    Py_CLEAR(pl->loop);
    Py_CLEAR(pl->tasks);
    Py_XDECREF(drain_fn);
    Py_XDECREF(capsule);
    Py_XDECREF(asyncio);
}

static void *worker_main(void *arg)
{
    tr_ploop *pl = arg;
    tr_chaos_delay("loop-start");
    if (tr_attach(pl->life)) {
        tr_attach_leave_gate(); /* attached for its whole life: a Python thread from now on */
        run_loop(pl);
        tr_detach();
    }
    /* Never attached (exiting) or the loop ended: nothing still queued will run. */
    pthread_mutex_lock(&pl->mu);
    pl->closing = true;
    tr_call *left = pl->head;
    pl->head = pl->tail = NULL;
    close(pl->efd);
    pl->efd = -1;
    pthread_mutex_unlock(&pl->mu);
    reject_all(left);
    pthread_mutex_lock(&pl->mu);
    pl->exited = true;
    if (pl->detached) {
        atomic_fetch_sub(&tr_stats.workers, 1);
    }
    pthread_cond_broadcast(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
    tr_ploop_unref(pl);
    return NULL;
}

tr_ploop *tr_ploop_start(tr_life *life)
{
    tr_ploop *pl = calloc(1, sizeof(*pl));
    if (pl == NULL) {
        return NULL;
    }
    atomic_init(&pl->refs, 2); /* the caller's and the worker's */
    tr_life_ref(life);
    pl->life = life;
    pthread_mutex_init(&pl->mu, NULL);
    tr_cond_init(&pl->cv);
    pl->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int err = pl->efd < 0 ? errno : tr_spawn(&pl->thread, worker_main, pl, "tr-loop");
    if (err != 0) {
        if (pl->efd >= 0) {
            close(pl->efd);
        }
        pthread_mutex_destroy(&pl->mu);
        pthread_cond_destroy(&pl->cv);
        tr_life_unref(life);
        free(pl);
        errno = err;
        return NULL;
    }
    atomic_fetch_add(&tr_stats.workers, 1);
    return pl;
}

void tr_ploop_submit(tr_ploop *pl, tr_call *call)
{
    pthread_mutex_lock(&pl->mu);
    if ((pl->closing && !FAULT(TR_FAULT_NO_CLOSING_FLAG)) || pl->efd < 0) {
        pthread_mutex_unlock(&pl->mu);
        tr_call_fail(call, 1, "tool is closing; call not started");
        return;
    }
    tr_call_ref(call);
    call->next = NULL;
    if (pl->tail != NULL) {
        pl->tail->next = call;
    } else {
        pl->head = call;
    }
    pl->tail = call;
    wake_locked(pl);
    pthread_mutex_unlock(&pl->mu);
}

void tr_ploop_close(tr_ploop *pl)
{
    if (FAULT(TR_FAULT_RACY_FLAG)) {
        pl->closing = true; /* FAULT: unsynchronized write, read by the loop thread */
    }
    pthread_mutex_lock(&pl->mu);
    pl->closing = true;
    wake_locked(pl);
    pthread_mutex_unlock(&pl->mu);
}

void tr_ploop_join(tr_ploop *pl)
{
    tr_ploop_close(pl);
    pthread_mutex_lock(&pl->mu);
    if (pl->detached) {
        /* Detached by a teardown (exit regime, or a hand-off that could not start): it is not
         * ours to pthread_join any more; wait for it to finish (it counts itself down). */
        while (!pl->exited) {
            pthread_cond_wait(&pl->cv, &pl->mu);
        }
        pthread_mutex_unlock(&pl->mu);
        return;
    }
    if (!pl->joining) {
        pl->joining = true;
        pthread_mutex_unlock(&pl->mu);
        tr_chaos_delay("loop-join");
        pthread_join(pl->thread, NULL);
        atomic_fetch_sub(&tr_stats.workers, 1);
        pthread_mutex_lock(&pl->mu);
        pl->joined = true;
        pthread_cond_broadcast(&pl->cv);
    }
    while (!pl->joined) {
        pthread_cond_wait(&pl->cv, &pl->mu);
    }
    pthread_mutex_unlock(&pl->mu);
}

void tr_ploop_detach(tr_ploop *pl)
{
    pthread_mutex_lock(&pl->mu);
    pl->closing = true;
    if (!pl->joining && !pl->detached) {
        pl->detached = true;
        pthread_detach(pl->thread);
        if (pl->exited) {
            atomic_fetch_sub(&tr_stats.workers, 1);
        }
    }
    pthread_mutex_unlock(&pl->mu);
}

bool tr_ploop_is_current(tr_ploop *pl) { return pthread_equal(pl->thread, pthread_self()); }
