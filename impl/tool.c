/* tool.c: ScriptedTool and Bash, the two tool types. Both own an engine; their dealloc runs the
 * teardown protocol (engine.c) before it returns. */
#include "exec.h"
#include "module.h"

#include <math.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    tr_engine *engine;
    PyObject *callbacks;    /* dict: command name -> callable */
    PyObject *descriptions; /* dict: command name -> str (ScriptedTool) */
    PyObject *name;         /* str (ScriptedTool) or NULL */
    PyObject *result_type;
    PyObject *weakrefs;
    double timeout; /* < 0: none */
    bool scripted;
} ToolObject;

static tr_state *state_of(PyObject *self) { return PyType_GetModuleState(Py_TYPE(self)); }

/* Returns 0 with *out set (-1 for None), or -1 with TypeError/ValueError set. */
static int parse_timeout(PyObject *obj, double *out)
{
    if (obj == NULL || obj == Py_None) {
        *out = -1;
        return 0;
    }
    if (PyBool_Check(obj) || !(PyFloat_Check(obj) || PyLong_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "timeout_seconds must be a number or None, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    double value = PyFloat_AsDouble(obj);
    if (value == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!isfinite(value) || value < 0) {
        PyErr_Format(PyExc_ValueError,
                     "timeout_seconds must be a finite number >= 0, got %R", obj);
        return -1;
    }
    *out = value;
    return 0;
}

/* A command name: non-empty, no whitespace, quotes or shell operators. Returns 0 or -1 with
 * TypeError/ValueError set. */
static int check_command_name(PyObject *name, const char *what)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", what,
                     Py_TYPE(name)->tp_name);
        return -1;
    }
    const char *s = PyUnicode_AsUTF8(name);
    if (s == NULL) {
        return -1;
    }
    if (*s == '\0') {
        PyErr_Format(PyExc_ValueError, "%s must not be empty", what);
        return -1;
    }
    if (strpbrk(s, " \t\n\r'\"\\|;&<>()`#") != NULL) {
        PyErr_Format(PyExc_ValueError, "%s must be one word without quotes or operators, got %R",
                     what, name);
        return -1;
    }
    return 0;
}

static int check_callable(PyObject *cb, PyObject *name)
{
    if (!PyCallable_Check(cb)) {
        PyErr_Format(PyExc_TypeError, "callback for %R must be callable, not %.100s", name,
                     Py_TYPE(cb)->tp_name);
        return -1;
    }
    return 0;
}

/* Allocates a tool with its engine. Returns a new reference or NULL with an exception set. */
static ToolObject *tool_alloc(PyTypeObject *type, bool scripted, double timeout)
{
    tr_state *st = PyType_GetModuleState(type);
    ToolObject *self = (ToolObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->scripted = scripted;
    self->timeout = timeout;
    self->result_type = Py_NewRef(st->result_type);
    self->callbacks = PyDict_New();
    self->descriptions = PyDict_New();
    if (self->callbacks == NULL || self->descriptions == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->engine = tr_engine_new(st->life);
    if (self->engine == NULL) {
        Py_DECREF(self);
        PyErr_NoMemory();
        return NULL;
    }
    atomic_fetch_add(&tr_stats.tools, 1);
    return self;
}

static PyObject *scripted_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"name", "timeout_seconds", NULL};
    PyObject *name, *timeout_obj = NULL;
    double timeout;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:ScriptedTool", kwlist, &name,
                                     &timeout_obj) ||
        check_command_name(name, "name") < 0 || parse_timeout(timeout_obj, &timeout) < 0) {
        return NULL;
    }
    ToolObject *self = tool_alloc(type, true, timeout);
    if (self != NULL) {
        self->name = Py_NewRef(name);
    }
    return (PyObject *)self;
}

static PyObject *bash_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"custom_builtins", "timeout_seconds", NULL};
    PyObject *builtins = NULL, *timeout_obj = NULL;
    double timeout;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OO:Bash", kwlist, &builtins,
                                     &timeout_obj) ||
        parse_timeout(timeout_obj, &timeout) < 0) {
        return NULL;
    }
    if (builtins != NULL && builtins != Py_None && !PyDict_Check(builtins)) {
        PyErr_Format(PyExc_TypeError, "custom_builtins must be a dict or None, not %.100s",
                     Py_TYPE(builtins)->tp_name);
        return NULL;
    }
    /* Validate and install a private copy: the caller's dict may change meanwhile (another
     * thread, on a free-threaded build), and a dict subclass could show validation one set of
     * items and the install another. PyDict_Copy locks the source. */
    PyObject *snapshot = builtins == NULL || builtins == Py_None ? PyDict_New()
                                                                 : PyDict_Copy(builtins);
    if (snapshot == NULL) {
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *cb;
    while (PyDict_Next(snapshot, &pos, &key, &cb)) { /* private: nothing else can change it */
        if (check_command_name(key, "builtin name") < 0 || check_callable(cb, key) < 0) {
            Py_DECREF(snapshot);
            return NULL;
        }
    }
    ToolObject *self = tool_alloc(type, false, timeout);
    if (self != NULL && PyDict_Update(self->callbacks, snapshot) < 0) {
        Py_CLEAR(self);
    }
    Py_DECREF(snapshot);
    return (PyObject *)self;
}

static PyObject *tool_add_tool(ToolObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"name", "description", "callback", NULL};
    PyObject *name, *description, *callback;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:add_tool", kwlist, &name, &description,
                                     &callback) ||
        check_command_name(name, "tool name") < 0 || check_callable(callback, name) < 0) {
        return NULL;
    }
    if (!PyUnicode_Check(description)) {
        PyErr_Format(PyExc_TypeError, "description must be a str, not %.100s",
                     Py_TYPE(description)->tp_name);
        return NULL;
    }
    /* Both entries as one step: concurrent add_tool calls for one name leave a matching pair. */
    int rc;
    Py_BEGIN_CRITICAL_SECTION((PyObject *)self);
    rc = PyDict_SetItem(self->callbacks, name, callback);
    if (rc == 0) {
        rc = PyDict_SetItem(self->descriptions, name, description);
    }
    Py_END_CRITICAL_SECTION();
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Whether an asyncio loop runs on this thread (Jupyter, or a callback of ours). Returns 1, 0,
 * or -1 with an exception set. */
static int running_loop_here(void)
{
    PyObject *name = PyUnicode_FromString("asyncio");
    PyObject *asyncio = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    if (asyncio == NULL) {
        return PyErr_Occurred() ? -1 : 0; /* not even imported: no loop can run */
    }
    PyObject *loop = PyObject_CallMethod(asyncio, "_get_running_loop", NULL);
    Py_DECREF(asyncio);
    if (loop == NULL) {
        return -1;
    }
    int running = loop != Py_None;
    Py_DECREF(loop);
    return running;
}

/* Builds the execution, or a ready result for a syntax error / an exiting interpreter.
 * Returns 0 with *x set, 1 with *ready set, -1 with an exception set. */
static int prepare(ToolObject *self, PyObject *commands, tr_exec **x, PyObject **ready)
{
    if (!PyUnicode_Check(commands)) {
        PyErr_Format(PyExc_TypeError, "commands must be a str, not %.100s",
                     Py_TYPE(commands)->tp_name);
        return -1;
    }
    if (tr_life_exiting_attached(state_of((PyObject *)self)->life)) {
        *ready = tr_result_new(self->result_type, 1, NULL, 0,
                               "interpreter is exiting; nothing runs\n", 37, "exiting");
        return *ready ? 1 : -1;
    }
    tr_buf syntax = {0};
    tr_call_kind kind = self->scripted ? TR_CALL_SCRIPTED : TR_CALL_BUILTIN;
    *x = tr_exec_new(self->engine, commands, self->callbacks, kind, self->timeout, &syntax);
    if (*x == NULL) {
        if (PyErr_Occurred()) {
            tr_buf_free(&syntax);
            return -1;
        }
        *ready = tr_result_new(self->result_type, 2, NULL, 0, syntax.data, syntax.len, NULL);
        tr_buf_free(&syntax);
        return *ready ? 1 : -1;
    }
    return 0;
}

static PyObject *tool_execute_sync(ToolObject *self, PyObject *commands)
{
    tr_exec *x = NULL;
    PyObject *result = NULL;
    int rc = prepare(self, commands, &x, &result);
    if (rc != 0) {
        return rc > 0 ? result : NULL;
    }
    int fresh = self->scripted ? 1 : running_loop_here();
    if (fresh < 0 || tr_exec_submit_sync(x, fresh) < 0) {
        tr_exec_unref(x);
        return NULL;
    }
    tr_enter_python();
    rc = tr_exec_wait(x);
    tr_leave_python();
    result = rc == 0 ? tr_exec_result(x, self->result_type) : NULL;
    tr_exec_unref(x);
    return result;
}

static PyObject *tool_execute(ToolObject *self, PyObject *commands)
{
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    PyObject *loop = asyncio ? PyObject_CallMethod(asyncio, "get_running_loop", NULL) : NULL;
    PyObject *future = loop ? PyObject_CallMethod(loop, "create_future", NULL) : NULL;
    Py_XDECREF(asyncio);
    if (future == NULL) {
        Py_XDECREF(loop);
        return NULL;
    }
    tr_exec *x = NULL;
    PyObject *ready = NULL;
    int rc = prepare(self, commands, &x, &ready);
    if (rc == 0 &&
        tr_exec_submit_async(x, (PyObject *)self, loop, future, self->result_type) < 0) {
        rc = -1;
    }
    if (x != NULL) {
        tr_exec_unref(x);
    }
    if (rc == 1) {
        PyObject *r = PyObject_CallMethod(future, "set_result", "O", ready);
        Py_XDECREF(r);
        Py_DECREF(ready);
        rc = r ? 0 : -1;
    }
    Py_DECREF(loop);
    if (rc < 0) {
        Py_CLEAR(future);
    }
    return future;
}

static int tool_traverse(ToolObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->callbacks);
    Py_VISIT(self->descriptions);
    Py_VISIT(self->name);
    Py_VISIT(self->result_type);
    return 0;
}

static int tool_clear(ToolObject *self)
{
    Py_CLEAR(self->callbacks);
    Py_CLEAR(self->descriptions);
    Py_CLEAR(self->name);
    Py_CLEAR(self->result_type);
    return 0;
}

/* The teardown protocol runs here, before dealloc returns (specs/protocol.md). */
static void tool_dealloc(ToolObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    tr_enter_python();
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    /* Unconditionally: on a free-threaded build another thread may be unlinking a weakref
     * (gh-135607); it is a no-op when there are none. */
    PyObject_ClearWeakRefs((PyObject *)self);
    if (self->engine != NULL) {
        tr_engine_teardown(self->engine);
        self->engine = NULL;
        atomic_fetch_sub(&tr_stats.tools, 1);
    }
    tool_clear(self);
    PyErr_Restore(et, ev, etb);
    tr_leave_python();
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *tool_repr(ToolObject *self)
{
    if (self->scripted) {
        return PyUnicode_FromFormat("<ScriptedTool %R with %zd tools>", self->name,
                                    self->callbacks ? PyDict_GET_SIZE(self->callbacks) : 0);
    }
    return PyUnicode_FromFormat("<Bash with %zd custom builtins>",
                                self->callbacks ? PyDict_GET_SIZE(self->callbacks) : 0);
}

static PyObject *tool_get_name(ToolObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name ? self->name : Py_None);
}

/* Bash has the same methods but add_tool: it uses this table from its second entry. */
static PyMethodDef scripted_methods[] = {
    {"add_tool", (PyCFunction)(void (*)(void))tool_add_tool, METH_VARARGS | METH_KEYWORDS,
     "add_tool(name, description, callback): callback(params: dict, stdin: str | None) -> str,"
     " plain or async."},
    {"execute_sync", (PyCFunction)tool_execute_sync, METH_O,
     "execute_sync(commands) -> ExecResult. Blocks with the GIL released."},
    {"execute", (PyCFunction)tool_execute, METH_O,
     "execute(commands) -> awaitable ExecResult; callbacks run on the caller's loop."},
    {NULL},
};

static PyMemberDef tool_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ToolObject, weakrefs), READONLY, NULL},
    {NULL},
};

static PyGetSetDef tool_getset[] = {
    {"name", (getter)tool_get_name, NULL, "the tool's name (None for Bash)", NULL},
    {NULL},
};

static PyType_Slot scripted_slots[] = {
    {Py_tp_new, scripted_new},
    {Py_tp_dealloc, tool_dealloc},
    {Py_tp_traverse, tool_traverse},
    {Py_tp_clear, tool_clear},
    {Py_tp_repr, tool_repr},
    {Py_tp_methods, scripted_methods},
    {Py_tp_members, tool_members},
    {Py_tp_getset, tool_getset},
    {Py_tp_doc, "ScriptedTool(name, *, timeout_seconds=None): commands dispatched to Python "
                "callbacks, each execution on a private asyncio loop of its own."},
    {0, NULL},
};

static PyType_Slot bash_slots[] = {
    {Py_tp_new, bash_new},
    {Py_tp_dealloc, tool_dealloc},
    {Py_tp_traverse, tool_traverse},
    {Py_tp_clear, tool_clear},
    {Py_tp_repr, tool_repr},
    {Py_tp_methods, &scripted_methods[1]},
    {Py_tp_members, tool_members},
    {Py_tp_getset, tool_getset},
    {Py_tp_doc, "Bash(*, custom_builtins=None, timeout_seconds=None): builtins dispatched to "
                "Python callbacks cb(ctx) on one shared private asyncio loop."},
    {0, NULL},
};

PyType_Spec tr_scripted_spec = {
    .name = "teardown_ref.ScriptedTool",
    .basicsize = sizeof(ToolObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = scripted_slots,
};

PyType_Spec tr_bash_spec = {
    .name = "teardown_ref.Bash",
    .basicsize = sizeof(ToolObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = bash_slots,
};
