/* loopcall.c: invoke a callback on a loop thread, publish its task, classify its outcome. */
#include "loopcall.h"

#include "ploop.h"

#define CALL_CAPSULE "teardown_ref.call"
#define TASK_CAPSULE "teardown_ref.task"

/* A call scheduled on a loop that is closed before running it would never complete, and its
 * job would wait forever: dropping the last handle to it completes it instead. */
static void call_capsule_release(PyObject *capsule)
{
    tr_call *call = PyCapsule_GetPointer(capsule, CALL_CAPSULE);
    pthread_mutex_lock(&call->mu);
    bool queued = call->state == TR_CALL_QUEUED;
    pthread_mutex_unlock(&call->mu);
    if (queued) {
        tr_call_fail(call, 1, "event loop closed before the call started");
    }
    tr_call_unref(call);
}

/* Likewise for a task destroyed while pending (its loop was closed under it). */
static void task_capsule_release(PyObject *capsule)
{
    tr_call *call = PyCapsule_GetPointer(capsule, TASK_CAPSULE);
    tr_call_fail(call, 1, "task destroyed before it finished (event loop closed)");
    tr_call_unref(call);
}

static PyObject *new_capsule(tr_call *call, const char *name, PyCapsule_Destructor release)
{
    tr_call_ref(call);
    PyObject *capsule = PyCapsule_New(call, name, release);
    if (capsule == NULL) {
        tr_call_unref(call);
    }
    return capsule;
}

PyObject *tr_loopcall_capsule(tr_call *call)
{
    return new_capsule(call, CALL_CAPSULE, call_capsule_release);
}

/* stderr "name: ExcType: message" from the current exception, which is cleared. */
static void complete_from_exception(tr_call *call)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    const char *tname = type ? ((PyTypeObject *)type)->tp_name : "Exception";
    const char *dot = strrchr(tname, '.');
    PyObject *text = value ? PyObject_Str(value) : NULL;
    const char *msg = text ? PyUnicode_AsUTF8(text) : NULL;
    if (msg == NULL) {
        PyErr_Clear();
        msg = "<unprintable>";
    }
    tr_buf err = {0};
    (void)tr_buf_printf(&err, "%s: %s: %s\n", call->name, dot ? dot + 1 : tname, msg);
    tr_call_complete(call, 1, NULL, 0, err.data, err.len, false);
    tr_buf_free(&err);
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* Completes the call from the callback's return value (borrowed). */
static void complete_from_result(tr_call *call, PyObject *result)
{
    if (!PyUnicode_Check(result)) {
        tr_buf msg = {0};
        (void)tr_buf_printf(&msg, "callback returned %s, expected str", Py_TYPE(result)->tp_name);
        tr_call_fail(call, 1, msg.data ? msg.data : "callback returned a non-str");
        tr_buf_free(&msg);
        return;
    }
    Py_ssize_t len;
    const char *out = PyUnicode_AsUTF8AndSize(result, &len);
    if (out == NULL) {
        complete_from_exception(call);
        return;
    }
    tr_call_complete(call, 0, out, (size_t)len, NULL, 0, false);
}

static void finish_started(tr_call *call)
{
    if (call->started) {
        call->started = false;
        atomic_fetch_sub(&tr_stats.inflight, 1);
    }
}

/* Parses `--key value`, `--key=value` and a bare `--flag` (True). Returns a new dict, or NULL
 * with the call completed (exit 2) or an exception set. */
static PyObject *scripted_params(tr_call *call)
{
    PyObject *params = PyDict_New();
    for (size_t i = 0; params != NULL && i < call->nargs; i++) {
        const char *arg = call->args[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0' || arg[2] == '=') {
            tr_buf msg = {0};
            (void)tr_buf_printf(&msg, "unexpected argument '%s'", arg);
            tr_call_fail(call, 2, msg.data ? msg.data : "unexpected argument");
            tr_buf_free(&msg);
            Py_CLEAR(params);
            return NULL;
        }
        const char *key = arg + 2;
        const char *eq = strchr(key, '=');
        PyObject *k, *v;
        if (eq != NULL) {
            k = PyUnicode_FromStringAndSize(key, eq - key);
            v = PyUnicode_FromString(eq + 1);
        } else if (i + 1 < call->nargs && strncmp(call->args[i + 1], "--", 2) != 0) {
            k = PyUnicode_FromString(key);
            v = PyUnicode_FromString(call->args[++i]);
        } else {
            k = PyUnicode_FromString(key);
            v = Py_NewRef(Py_True);
        }
        if (k == NULL || v == NULL || PyDict_SetItem(params, k, v) < 0) {
            Py_CLEAR(params);
        }
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return params;
}

static PyObject *builtin_context(tr_call *call, PyObject *stdin_obj)
{
    PyObject *types = PyImport_ImportModule("types");
    PyObject *ns = types ? PyObject_GetAttrString(types, "SimpleNamespace") : NULL;
    PyObject *argv = PyList_New((Py_ssize_t)call->nargs);
    PyObject *kwargs = NULL, *ctx = NULL, *empty = NULL;
    for (size_t i = 0; argv != NULL && i < call->nargs; i++) {
        PyObject *word = PyUnicode_FromString(call->args[i]);
        if (word == NULL) {
            Py_CLEAR(argv);
            break;
        }
        PyList_SET_ITEM(argv, (Py_ssize_t)i, word);
    }
    if (ns != NULL && argv != NULL) {
        kwargs = Py_BuildValue("{s:s,s:O,s:O}", "name", call->name, "argv", argv, "stdin",
                               stdin_obj);
        empty = PyTuple_New(0);
    }
    if (kwargs != NULL && empty != NULL) {
        ctx = PyObject_Call(ns, empty, kwargs);
    }
    Py_XDECREF(types);
    Py_XDECREF(ns);
    Py_XDECREF(argv);
    Py_XDECREF(kwargs);
    Py_XDECREF(empty);
    return ctx;
}

static PyObject *invoke(tr_call *call)
{
    PyObject *stdin_obj = call->stdin_data == NULL
                              ? Py_NewRef(Py_None)
                              : PyUnicode_DecodeUTF8(call->stdin_data,
                                                     (Py_ssize_t)call->stdin_len, "replace");
    if (stdin_obj == NULL) {
        return NULL;
    }
    PyObject *result = NULL;
    if (call->kind == TR_CALL_SCRIPTED) {
        PyObject *params = scripted_params(call);
        if (params != NULL) {
            call->started = true;
            atomic_fetch_add(&tr_stats.inflight, 1);
            result = PyObject_CallFunctionObjArgs(call->callback, params, stdin_obj, NULL);
            Py_DECREF(params);
        }
    } else {
        PyObject *ctx = builtin_context(call, stdin_obj);
        if (ctx != NULL) {
            call->started = true;
            atomic_fetch_add(&tr_stats.inflight, 1);
            result = PyObject_CallOneArg(call->callback, ctx);
            Py_DECREF(ctx);
        }
    }
    Py_DECREF(stdin_obj);
    return result;
}

static PyObject *task_done(PyObject *capsule, PyObject *task)
{
    tr_call *call = PyCapsule_GetPointer(capsule, TASK_CAPSULE);
    if (call == NULL) {
        return NULL;
    }
    PyObject *cancelled = PyObject_CallMethod(task, "cancelled", NULL);
    if (cancelled == NULL) {
        complete_from_exception(call);
    } else if (PyObject_IsTrue(cancelled)) {
        tr_buf err = {0};
        (void)tr_buf_printf(&err, "%s: cancelled\n", call->name);
        tr_call_complete(call, 1, NULL, 0, err.data, err.len, true);
        tr_buf_free(&err);
    } else {
        PyObject *exc = PyObject_CallMethod(task, "exception", NULL);
        if (exc == NULL) {
            complete_from_exception(call);
        } else if (exc != Py_None) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            complete_from_exception(call);
        } else {
            PyObject *result = PyObject_CallMethod(task, "result", NULL);
            if (result == NULL) {
                complete_from_exception(call);
            } else {
                complete_from_result(call, result);
                Py_DECREF(result);
            }
        }
        Py_XDECREF(exc);
    }
    Py_XDECREF(cancelled);
    finish_started(call);
    Py_CLEAR(call->task);
    if (call->host != NULL) {
        tr_ploop_task_done(call->host, task, call);
    }
    Py_RETURN_NONE;
}

static PyMethodDef task_done_def = {"_task_done", (PyCFunction)task_done, METH_O, NULL};

static bool is_awaitable(PyObject *obj)
{
    PyAsyncMethods *am = Py_TYPE(obj)->tp_as_async;
    return PyCoro_CheckExact(obj) || (am != NULL && am->am_await != NULL);
}

PyObject *tr_loopcall_start(tr_call *call, PyObject *loop)
{
    pthread_mutex_lock(&call->mu);
    bool done = call->state == TR_CALL_DONE;
    call->state = done ? TR_CALL_DONE : TR_CALL_RUNNING;
    pthread_cond_broadcast(&call->cv); /* a rendezvous dispatch waits for this */
    pthread_mutex_unlock(&call->mu);
    if (done) {
        return NULL;
    }
    /* A copy per call: what a callback sets stays its own, as in a subshell. */
    PyObject *ctx = PyContext_Copy(call->context);
    if (ctx == NULL || PyContext_Enter(ctx) < 0) {
        Py_XDECREF(ctx);
        complete_from_exception(call);
        return NULL;
    }
    PyObject *task = NULL;
    PyObject *result = invoke(call);
    if (result == NULL) {
        if (!tr_call_is_done(call)) {
            complete_from_exception(call);
        }
        PyErr_Clear();
    } else if (is_awaitable(result)) {
        /* Created inside ctx, so the task runs in (a copy of) the caller's context. */
        PyObject *asyncio = PyImport_ImportModule("asyncio");
        PyObject *ensure = asyncio ? PyObject_GetAttrString(asyncio, "ensure_future") : NULL;
        PyObject *args = ensure ? PyTuple_Pack(1, result) : NULL;
        PyObject *kwargs = args ? Py_BuildValue("{s:O}", "loop", loop) : NULL;
        task = kwargs ? PyObject_Call(ensure, args, kwargs) : NULL;
        PyObject *capsule = task ? new_capsule(call, TASK_CAPSULE, task_capsule_release) : NULL;
        PyObject *on_done = capsule ? PyCFunction_New(&task_done_def, capsule) : NULL;
        PyObject *added =
            on_done ? PyObject_CallMethod(task, "add_done_callback", "O", on_done) : NULL;
        if (added == NULL) {
            complete_from_exception(call);
            Py_CLEAR(task);
        } else {
            call->task = Py_NewRef(task);
        }
        Py_XDECREF(added);
        Py_XDECREF(on_done);
        Py_XDECREF(capsule);
        Py_XDECREF(kwargs);
        Py_XDECREF(args);
        Py_XDECREF(ensure);
        Py_XDECREF(asyncio);
    } else {
        complete_from_result(call, result);
    }
    Py_XDECREF(result);
    if (PyContext_Exit(ctx) < 0) {
        PyErr_WriteUnraisable(ctx);
    }
    Py_DECREF(ctx);
    if (task == NULL) {
        finish_started(call);
    }
    return task;
}

/* loop.call_soon_threadsafe(_start, capsule): start a call on a loop owned by another thread. */
static PyObject *start_on_loop(PyObject *Py_UNUSED(module), PyObject *const *args,
                               Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_start(capsule, loop)");
        return NULL;
    }
    tr_call *call = PyCapsule_GetPointer(args[0], CALL_CAPSULE);
    if (call == NULL) {
        return NULL;
    }
    Py_XDECREF(tr_loopcall_start(call, args[1]));
    Py_RETURN_NONE;
}

/* loop.call_soon_threadsafe(_cancel, capsule): cancel the call's task on its own thread. */
static PyObject *cancel_on_loop(PyObject *Py_UNUSED(module), PyObject *capsule)
{
    tr_call *call = PyCapsule_GetPointer(capsule, CALL_CAPSULE);
    if (call == NULL) {
        return NULL;
    }
    if (call->task != NULL) {
        PyObject *r = PyObject_CallMethod(call->task, "cancel", NULL);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

PyMethodDef tr_loopcall_start_def = {"_start", (PyCFunction)(void (*)(void))start_on_loop,
                                     METH_FASTCALL, NULL};
PyMethodDef tr_loopcall_cancel_def = {"_cancel", (PyCFunction)cancel_on_loop, METH_O, NULL};
