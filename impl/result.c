/* result.c: the ExecResult heap type. */
#include "result.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *exit_code;
    PyObject *stdout_;
    PyObject *stderr_;
    PyObject *error;
} ResultObject;

PyObject *tr_result_new(PyObject *type, int exit_code, const char *out, size_t out_len,
                        const char *err, size_t err_len, const char *error)
{
    PyTypeObject *tp = (PyTypeObject *)type;
    ResultObject *self = (ResultObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->exit_code = PyLong_FromLong(exit_code);
    self->stdout_ = PyUnicode_DecodeUTF8(out ? out : "", out ? (Py_ssize_t)out_len : 0, "replace");
    self->stderr_ = PyUnicode_DecodeUTF8(err ? err : "", err ? (Py_ssize_t)err_len : 0, "replace");
    self->error = error ? PyUnicode_FromString(error) : Py_NewRef(Py_None);
    if (!self->exit_code || !self->stdout_ || !self->stderr_ || !self->error) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int result_traverse(ResultObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0; /* members are ints, strs and None: they cannot form cycles */
}

static void result_dealloc(ResultObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->exit_code);
    Py_CLEAR(self->stdout_);
    Py_CLEAR(self->stderr_);
    Py_CLEAR(self->error);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *result_success(ResultObject *self, void *Py_UNUSED(closure))
{
    long code = PyLong_AsLong(self->exit_code);
    if (code == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyBool_FromLong(code == 0);
}

static PyObject *result_repr(ResultObject *self)
{
    return PyUnicode_FromFormat("ExecResult(exit_code=%R, stdout=%R, stderr=%R, error=%R)",
                                self->exit_code, self->stdout_, self->stderr_, self->error);
}

static PyMemberDef result_members[] = {
    {"exit_code", T_OBJECT_EX, offsetof(ResultObject, exit_code), READONLY, NULL},
    {"stdout", T_OBJECT_EX, offsetof(ResultObject, stdout_), READONLY, NULL},
    {"stderr", T_OBJECT_EX, offsetof(ResultObject, stderr_), READONLY, NULL},
    {"error", T_OBJECT_EX, offsetof(ResultObject, error), READONLY, NULL},
    {NULL},
};

static PyGetSetDef result_getset[] = {
    {"success", (getter)result_success, NULL, "exit_code == 0", NULL},
    {NULL},
};

static PyType_Slot result_slots[] = {
    {Py_tp_dealloc, result_dealloc},
    {Py_tp_traverse, result_traverse},
    {Py_tp_repr, result_repr},
    {Py_tp_members, result_members},
    {Py_tp_getset, result_getset},
    {Py_tp_doc, "Outcome of one execution: exit_code, stdout, stderr, error, success."},
    {0, NULL},
};

PyType_Spec tr_result_spec = {
    .name = "teardown_ref.ExecResult",
    .basicsize = sizeof(ResultObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = result_slots,
};
