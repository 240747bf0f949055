/* exec.c: the execution job: resolve, dispatch, wait with a deadline, report, clean up. */
#include "exec.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "loopcall.h"

typedef enum { T_CALLBACK, T_NOT_FOUND, T_ECHO, T_CAT, T_TRUE, T_FALSE } tr_target;

struct tr_exec {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tr_engine *engine;
    tr_script script;
    tr_target *targets;    /* one per command, in script order */
    PyObject **callbacks;  /* strong, one per command (NULL unless T_CALLBACK) */
    size_t ncommands;
    tr_call_kind call_kind;
    PyObject *context;     /* strong: the caller's contextvars.Context */
    double timeout;        /* < 0: none */
    struct timespec deadline;
    bool fresh_loop;
    bool is_async;
    PyObject *loop, *future, *tool, *result_type; /* strong, async only */
    /* the reported result, under mu */
    bool reported;
    int exit_code;
    tr_buf out, err;
    const char *error;
};

static void release_python_refs(tr_exec *x)
{
    for (size_t i = 0; i < x->ncommands; i++) {
        Py_CLEAR(x->callbacks[i]);
    }
    Py_CLEAR(x->context);
    Py_CLEAR(x->loop);
    Py_CLEAR(x->future);
    Py_CLEAR(x->result_type);
    Py_CLEAR(x->tool); /* last: this may run the tool's dealloc on this very thread */
}

void tr_exec_unref(tr_exec *x)
{
    if (atomic_fetch_sub(&x->refs, 1) != 1) {
        return;
    }
    /* Python references were released (attached) by their owner, or leaked at exit. */
    tr_script_free(&x->script);
    free(x->targets);
    free(x->callbacks);
    tr_buf_free(&x->out);
    tr_buf_free(&x->err);
    tr_engine_unref(x->engine);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    free(x);
}

static tr_target builtin_target(const char *name)
{
    static const struct { const char *name; tr_target target; } builtins[] = {
        {"echo", T_ECHO}, {"cat", T_CAT}, {"true", T_TRUE}, {"false", T_FALSE}};
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (strcmp(name, builtins[i].name) == 0) {
            return builtins[i].target;
        }
    }
    return T_NOT_FOUND;
}

/* Resolves every command: a registered callback wins over a builtin. Returns 0 or -1 with an
 * exception set. */
static int resolve(tr_exec *x, PyObject *callbacks)
{
    size_t n = 0;
    for (size_t p = 0; p < x->script.npipelines; p++) {
        n += x->script.pipelines[p].ncommands;
    }
    x->targets = calloc(n ? n : 1, sizeof(*x->targets));
    x->callbacks = calloc(n ? n : 1, sizeof(*x->callbacks));
    if (x->targets == NULL || x->callbacks == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    x->ncommands = n;
    size_t i = 0;
    for (size_t p = 0; p < x->script.npipelines; p++) {
        tr_pipeline *pipe = &x->script.pipelines[p];
        for (size_t c = 0; c < pipe->ncommands; c++, i++) {
            const char *name = pipe->commands[c].words[0];
            /* A strong reference: on a free-threaded build another thread's add_tool may
             * replace (and free) the value while a borrowed one is being used. */
            PyObject *cb;
            if (PyDict_GetItemStringRef(callbacks, name, &cb) < 0) {
                return -1;
            }
            x->targets[i] = cb ? T_CALLBACK : builtin_target(name);
            x->callbacks[i] = cb;
        }
    }
    return 0;
}

tr_exec *tr_exec_new(tr_engine *engine, PyObject *commands, PyObject *callbacks,
                     tr_call_kind kind, double timeout, tr_buf *syntax_error)
{
    Py_ssize_t len;
    const char *src = PyUnicode_AsUTF8AndSize(commands, &len);
    if (src == NULL) {
        return NULL;
    }
    if (memchr(src, '\0', (size_t)len) != NULL) {
        PyErr_SetString(PyExc_ValueError, "commands must not contain NUL characters");
        return NULL;
    }
    tr_exec *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    atomic_init(&x->refs, 1);
    pthread_mutex_init(&x->mu, NULL);
    tr_cond_init(&x->cv);
    tr_engine_ref(engine);
    x->engine = engine;
    x->call_kind = kind;
    x->timeout = timeout;
    char msg[256];
    int rc = tr_parse(src, (size_t)len, &x->script, msg, sizeof(msg));
    if (rc == -1) {
        (void)tr_buf_printf(syntax_error, "%s\n", msg);
    } else if (rc == -2) {
        PyErr_NoMemory();
    } else if (resolve(x, callbacks) == 0 && (x->context = PyContext_CopyCurrent()) != NULL) {
        return x;
    }
    release_python_refs(x);
    tr_exec_unref(x);
    return NULL;
}

/* Job side: publish the result once; later reports (after a timeout) are ignored. */
static bool report(tr_exec *x, int exit_code, const tr_buf *out, const tr_buf *err,
                   const char *error)
{
    pthread_mutex_lock(&x->mu);
    bool first = !x->reported;
    if (first) {
        x->exit_code = exit_code;
        (void)tr_buf_append(&x->out, out->data ? out->data : "", out->len);
        (void)tr_buf_append(&x->err, err->data ? err->data : "", err->len);
        x->error = error;
        x->reported = true;
        pthread_cond_broadcast(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    return first;
}

/* async: resolve the caller's future on its own loop, unless the awaiting side gave up. */
static PyObject *deliver(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_deliver(future, result)");
        return NULL;
    }
    PyObject *done = PyObject_CallMethod(args[0], "done", NULL);
    if (done == NULL) {
        return NULL;
    }
    int is_done = PyObject_IsTrue(done);
    Py_DECREF(done);
    if (is_done == 0) {
        return PyObject_CallMethod(args[0], "set_result", "O", args[1]);
    }
    Py_RETURN_NONE;
}

static PyMethodDef deliver_def = {"_deliver", (PyCFunction)(void (*)(void))deliver,
                                  METH_FASTCALL, NULL};

/* async, attached: loop.call_soon_threadsafe(fn, arg, arg2). Returns 0 or -1 (cleared,
 * reported as unraisable: a closed loop has nobody left to tell). */
static int call_soon_threadsafe(PyObject *loop, PyMethodDef *def, PyObject *a, PyObject *b)
{
    PyObject *fn = PyCFunction_New(def, NULL);
    PyObject *r = fn ? PyObject_CallMethod(loop, "call_soon_threadsafe", "OOO", fn, a, b) : NULL;
    Py_XDECREF(fn);
    if (r == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* async, attached: deliver the reported result to the future. */
static void deliver_reported(tr_exec *x)
{
    pthread_mutex_lock(&x->mu);
    PyObject *result = tr_result_new(x->result_type, x->exit_code, x->out.data, x->out.len,
                                     x->err.data, x->err.len, x->error);
    pthread_mutex_unlock(&x->mu);
    if (result == NULL) {
        /* Not the future as context: its repr would touch it off its loop's thread. */
        PyErr_WriteUnraisable(NULL);
        return;
    }
    (void)call_soon_threadsafe(x->loop, &deliver_def, x->future, result);
    Py_DECREF(result);
}

/* Starts `call` on its loop. Returns the loop used (sync) through *pl. */
static void dispatch(tr_exec *x, tr_call *call, tr_ploop **pl)
{
    if (!x->is_async) {
        if (*pl == NULL) {
            *pl = tr_engine_acquire_loop(x->engine, x->fresh_loop);
        }
        if (*pl == NULL) {
            tr_call_fail(call, 1, "tool is closing; call not started");
        } else if (FAULT(TR_FAULT_RENDEZVOUS_DISPATCH) && tr_attach(x->engine->life)) {
            /* FAULT (V1): a zero-capacity channel, sent while attached: wait, holding the GIL,
             * until the worker takes the call; the worker needs the GIL to take it. */
            tr_ploop_submit(*pl, call);
            pthread_mutex_lock(&call->mu);
            while (call->state == TR_CALL_QUEUED) {
                pthread_cond_wait(&call->cv, &call->mu);
            }
            pthread_mutex_unlock(&call->mu);
            tr_detach();
        } else {
            tr_ploop_submit(*pl, call);
        }
        return;
    }
    if (!tr_attach(x->engine->life)) {
        tr_call_fail(call, 1, "interpreter is exiting; call not started");
        return;
    }
    PyObject *capsule = tr_loopcall_capsule(call);
    if (capsule == NULL || call_soon_threadsafe(x->loop, &tr_loopcall_start_def, capsule,
                                                x->loop) < 0) {
        PyErr_Clear();
        tr_call_fail(call, 1, "the caller's event loop is closed; call not started");
    }
    Py_XDECREF(capsule);
    tr_detach();
}

/* async, on timeout: cancel the task on the caller's loop (what asyncio.wait_for does). */
static void cancel_on_caller_loop(tr_exec *x, tr_call *call)
{
    if (!tr_attach(x->engine->life)) {
        return;
    }
    PyObject *capsule = tr_loopcall_capsule(call);
    if (capsule != NULL) {
        (void)call_soon_threadsafe(x->loop, &tr_loopcall_cancel_def, capsule, Py_None);
    }
    PyErr_Clear();
    Py_XDECREF(capsule);
    tr_detach();
}

typedef struct {
    int status;
    tr_buf out, err;
} tr_outcome;

/* Runs the script into *o. Returns the abandoned call (a reference) when it timed out. */
static tr_call *run_script(tr_exec *x, tr_ploop **pl, tr_outcome *o)
{
    tr_buf out = {0}, err = {0};
    int status = 0;
    tr_call *abandoned = NULL;
    size_t i = 0;
    for (size_t p = 0; p < x->script.npipelines && abandoned == NULL; p++) {
        tr_pipeline *pipe = &x->script.pipelines[p];
        tr_buf in = {0};
        bool has_in = false;
        for (size_t c = 0; c < pipe->ncommands; c++, i++) {
            tr_command *cmd = &pipe->commands[c];
            tr_buf cout = {0};
            switch (x->targets[i]) {
            case T_ECHO:
                for (size_t w = 1; w < cmd->nwords; w++) {
                    (void)tr_buf_printf(&cout, w > 1 ? " %s" : "%s", cmd->words[w]);
                }
                (void)tr_buf_append(&cout, "\n", 1);
                status = 0;
                break;
            case T_CAT:
                (void)tr_buf_append(&cout, in.data ? in.data : "", in.len);
                status = 0;
                break;
            case T_TRUE:
            case T_FALSE:
                status = x->targets[i] == T_FALSE;
                break;
            case T_NOT_FOUND:
                (void)tr_buf_printf(&err, "%s: command not found\n", cmd->words[0]);
                status = 127;
                break;
            case T_CALLBACK: {
                tr_call *call = tr_call_new(x->call_kind, x->callbacks[i], x->context,
                                            cmd->words[0], cmd->words + 1, cmd->nwords - 1,
                                            has_in ? (in.data ? in.data : "") : NULL, in.len);
                if (call == NULL) {
                    (void)tr_buf_printf(&err, "%s: out of memory\n", cmd->words[0]);
                    status = 1;
                    break;
                }
                dispatch(x, call, pl);
                bool no_deadline = x->timeout < 0 || FAULT(TR_FAULT_IGNORE_TIMEOUT); /* V0 */
                bool done = tr_call_wait(call, no_deadline ? NULL : &x->deadline);
                if (!done) {
                    (void)tr_buf_printf(&err, "%s: timed out after %gs\n", cmd->words[0],
                                        x->timeout);
                    status = 1;
                    abandoned = call;
                    break;
                }
                pthread_mutex_lock(&call->mu);
                (void)tr_buf_append(&cout, call->out.data ? call->out.data : "", call->out.len);
                (void)tr_buf_append(&err, call->err.data ? call->err.data : "", call->err.len);
                status = call->exit_code;
                pthread_mutex_unlock(&call->mu);
                tr_call_unref(call);
                break;
            }
            }
            tr_buf_free(&in);
            in = cout;
            has_in = true;
            if (abandoned != NULL) {
                break;
            }
        }
        (void)tr_buf_append(&out, in.data ? in.data : "", in.len);
        tr_buf_free(&in);
    }
    *o = (tr_outcome){status, out, err};
    return abandoned;
}

/* Publishes the outcome: wakes the execute_sync caller, or resolves the future (attaches). */
static void publish(tr_exec *x, const tr_outcome *o, const char *error)
{
    report(x, o->status, &o->out, &o->err, error);
    if (x->is_async && tr_attach(x->engine->life)) {
        deliver_reported(x);
        tr_detach();
    }
}

static void exec_job(void *arg)
{
    tr_exec *x = arg;
    tr_ploop *pl = NULL;
    tr_outcome o;
    tr_call *abandoned = run_script(x, &pl, &o);
    if (abandoned != NULL) {
        /* The timeout is reported at once; the callback is abandoned, not forgotten: it ends
         * when it returns or is cancelled by the tool's teardown (or, on the caller's loop,
         * by the cancel below), and only then may its references be released. */
        publish(x, &o, "timeout");
        if (x->is_async) {
            cancel_on_caller_loop(x, abandoned);
        }
        tr_call_wait(abandoned, NULL);
        tr_call_unref(abandoned);
    }
    if (abandoned == NULL && x->is_async) {
        publish(x, &o, NULL); /* before the references go: the tool may be the last one */
    }
    /* Every call is done, so no loop uses the references any more. */
    if (tr_attach(x->engine->life)) {
        release_python_refs(x);
        tr_detach();
    } /* else exiting: the references are leaked on purpose; the process is going away */
    if (pl != NULL) {
        tr_engine_release_loop(x->engine, pl, x->fresh_loop);
    }
    atomic_fetch_sub(&tr_stats.executions, 1);
    if (abandoned == NULL && !x->is_async) {
        /* Last: when execute_sync returns, nothing of this execution is left (its loop is
         * joined, its references released), so the caller's next step sees exact state. */
        publish(x, &o, NULL);
    }
    tr_buf_free(&o.out);
    tr_buf_free(&o.err);
    tr_exec_unref(x);
}

static int submit(tr_exec *x)
{
    if (x->timeout >= 0) {
        x->deadline = tr_deadline_after(x->timeout);
    }
    atomic_fetch_add(&x->refs, 1); /* the job's */
    atomic_fetch_add(&tr_stats.executions, 1);
    if (tr_pool_submit(x->engine->pool, exec_job, x) < 0) {
        atomic_fetch_sub(&tr_stats.executions, 1);
        atomic_fetch_sub(&x->refs, 1);
        release_python_refs(x);
        PyErr_SetString(PyExc_RuntimeError, "tool is closed or no thread could be started");
        return -1;
    }
    return 0;
}

int tr_exec_submit_sync(tr_exec *x, bool fresh_loop)
{
    x->fresh_loop = fresh_loop;
    return submit(x);
}

int tr_exec_submit_async(tr_exec *x, PyObject *tool, PyObject *loop, PyObject *future,
                         PyObject *result_type)
{
    x->is_async = true;
    x->tool = Py_NewRef(tool);
    x->loop = Py_NewRef(loop);
    x->future = Py_NewRef(future);
    x->result_type = Py_NewRef(result_type);
    return submit(x);
}

int tr_exec_wait(tr_exec *x)
{
    /* Slices, so that Ctrl-C in the main thread is seen while the call runs. */
    const double slice = 0.05;
    pthread_mutex_lock(&x->mu);
    while (!x->reported) {
        pthread_mutex_unlock(&x->mu);
        tr_unattached token = tr_release_gil();
        pthread_mutex_lock(&x->mu);
        if (!x->reported) {
            struct timespec until = tr_deadline_after(slice);
            pthread_cond_timedwait(&x->cv, &x->mu, &until);
        }
        pthread_mutex_unlock(&x->mu);
        tr_reacquire_gil(token);
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
        pthread_mutex_lock(&x->mu);
    }
    pthread_mutex_unlock(&x->mu);
    return 0;
}

PyObject *tr_exec_result(tr_exec *x, PyObject *result_type)
{
    pthread_mutex_lock(&x->mu);
    PyObject *r = tr_result_new(result_type, x->exit_code, x->out.data, x->out.len, x->err.data,
                                x->err.len, x->error);
    pthread_mutex_unlock(&x->mu);
    return r;
}
