/* module.c: teardown_ref's module: state, the atexit exit flag, stats(), interpreter_at_exit().
 *
 * The exit flag is set by a Python-level atexit callback registered at import: atexit runs at
 * the start of Py_FinalizeEx, before the phase in which native threads may no longer attach,
 * so the flag splits "alive: join deterministically" from "exiting: hands off". */
#include "module.h"

#include "fault.h"
#include "result.h"

static tr_state *get_state(PyObject *module) { return PyModule_GetState(module); }

/* atexit callback. */
static PyObject *at_exit(PyObject *module, PyObject *Py_UNUSED(arg))
{
    tr_life_begin_exit(get_state(module)->life);
    Py_RETURN_NONE;
}

static PyMethodDef at_exit_def = {"_at_exit", at_exit, METH_NOARGS, NULL};

static PyObject *stats(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    return Py_BuildValue(
        "{s:l,s:l,s:l,s:l,s:l,s:l,s:l}", "tools", atomic_load(&tr_stats.tools), "workers",
        atomic_load(&tr_stats.workers), "pool_threads", atomic_load(&tr_stats.pool_threads),
        "open_loops", atomic_load(&tr_stats.open_loops), "inflight",
        atomic_load(&tr_stats.inflight), "handoffs", atomic_load(&tr_stats.handoffs),
        "executions", atomic_load(&tr_stats.executions));
}

static PyObject *interpreter_at_exit(PyObject *module, PyObject *Py_UNUSED(arg))
{
    return PyBool_FromLong(tr_life_exiting_attached(get_state(module)->life));
}

static PyObject *set_fault(PyObject *Py_UNUSED(module), PyObject *name)
{
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (s == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_TypeError, "fault name must be a str, not %.100s",
                         Py_TYPE(name)->tp_name);
        }
        return NULL;
    }
    int id = tr_fault_lookup(s);
    if (id < 0) {
        PyErr_Format(PyExc_ValueError, "unknown fault %R (see teardown_ref.FAULTS)", name);
        return NULL;
    }
    atomic_store(&tr_fault_current, id);
    Py_RETURN_NONE;
}

static PyObject *fault(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    return PyUnicode_FromString(tr_fault_names[atomic_load(&tr_fault_current)]);
}

/* Py_AtExit: runs after the interpreter state is gone. With chaos on, keep the process alive
 * for the full chaos maximum there: the window in which a late attach crashes (V3) is then as
 * wide as the attach delays themselves. */
static void chaos_after_finalize(void) { tr_chaos_hold(); }

static PyMethodDef module_methods[] = {
    {"set_fault", set_fault, METH_O,
     "set_fault(name): inject a historical teardown bug (see FAULTS); 'none' is correct."},
    {"fault", fault, METH_NOARGS, "fault() -> the name of the injected fault ('none')."},
    {"stats", stats, METH_NOARGS,
     "stats() -> dict: process-wide counts of tools, workers (private-loop threads), "
     "pool_threads, open_loops, inflight callbacks, handoffs (detached shutdowns running) and "
     "executions (jobs not finished, abandoned ones included)."},
    {"interpreter_at_exit", interpreter_at_exit, METH_NOARGS,
     "interpreter_at_exit() -> bool: the exit flag is set (atexit ran) or the interpreter is "
     "finalizing."},
    {NULL},
};

/* Creates a heap type and adds it to the module. Returns 0 or -1 with an exception set. */
static int add_type(PyObject *module, PyType_Spec *spec, PyObject **slot, bool instantiable)
{
    *slot = PyType_FromModuleAndSpec(module, spec, NULL);
    if (*slot == NULL) {
        return -1;
    }
    if (!instantiable) {
        /* ExecResult is made by us only (Py_TPFLAGS_DISALLOW_INSTANTIATION is 3.10+). */
        ((PyTypeObject *)*slot)->tp_new = NULL;
    }
    return PyModule_AddObjectRef(module, strrchr(spec->name, '.') + 1, *slot);
}

static int module_exec(PyObject *module)
{
    tr_state *st = get_state(module);
    if (tr_fault_init_from_env() < 0) {
        return -1;
    }
    st->life = tr_life_new();
    if (st->life == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (add_type(module, &tr_result_spec, &st->result_type, false) < 0 ||
        add_type(module, &tr_scripted_spec, &st->scripted_type, true) < 0 ||
        add_type(module, &tr_bash_spec, &st->bash_type, true) < 0) {
        return -1;
    }
    PyObject *atexit = PyImport_ImportModule("atexit");
    PyObject *fn = atexit ? PyCFunction_New(&at_exit_def, module) : NULL;
    PyObject *r = fn ? PyObject_CallMethod(atexit, "register", "O", fn) : NULL;
    Py_XDECREF(r);
    Py_XDECREF(fn);
    Py_XDECREF(atexit);
    if (r == NULL) {
        return -1;
    }
    PyObject *names = PyTuple_New(TR_FAULT_COUNT);
    for (int i = 0; names != NULL && i < TR_FAULT_COUNT; i++) {
        PyObject *n = PyUnicode_FromString(tr_fault_names[i]);
        if (n == NULL) {
            Py_CLEAR(names);
            break;
        }
        PyTuple_SET_ITEM(names, i, n);
    }
    int rc = names ? PyModule_AddObjectRef(module, "FAULTS", names) : -1;
    Py_XDECREF(names);
    if (rc < 0) {
        return -1;
    }
    (void)Py_AtExit(chaos_after_finalize); /* a full table only costs the chaos delay */
    return 0;
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    tr_state *st = get_state(module);
    Py_VISIT(st->result_type);
    Py_VISIT(st->scripted_type);
    Py_VISIT(st->bash_type);
    return 0;
}

static int module_clear(PyObject *module)
{
    tr_state *st = get_state(module);
    Py_CLEAR(st->result_type);
    Py_CLEAR(st->scripted_type);
    Py_CLEAR(st->bash_type);
    return 0;
}

static void module_free(void *module)
{
    module_clear(module);
    tr_state *st = get_state(module);
    if (st->life != NULL) {
        tr_life_unref(st->life);
        st->life = NULL;
    }
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* Process-wide counters and PyGILState-based attaching: one interpreter only. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* Safe without the GIL: native state is mutexes and atomics, Python objects shared
     * between threads are reached by strong references (specs/protocol.md, free-threaded). */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "teardown_ref",
    .m_doc = "Reference implementation of deterministic teardown for native threads running "
             "Python callbacks (see specs/protocol.md).",
    .m_size = sizeof(tr_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit_teardown_ref(void) { return PyModuleDef_Init(&module_def); }
