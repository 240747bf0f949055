/* broken_memory.c: a test-only extension with the two memory bugs ASan and memcheck must catch.
 *
 * use_after_free() reads a heap block after freeing it (a heap-use-after-free / Invalid read);
 * leak() drops the only pointer to a fresh block (a definite leak); bad_shift() shifts an int
 * by more than its width (undefined behaviour, for UBSan: not signed overflow, which CPython's
 * -fwrapv makes defined, so UBSan would not check it). Each bug is on a line of its
 * own, marked BUG, so a test can check that the verdict quotes exactly that line.
 * ok() touches memory correctly: the control that must give no report. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

/* Kept global so the compiler cannot prove the use after free and drop it. */
static volatile int sink;
static void *volatile escape;

static PyObject *use_after_free(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args))
{
    int *block = malloc(16 * sizeof(int));
    if (block == NULL) {
        return PyErr_NoMemory();
    }
    memset(block, 7, 16 * sizeof(int));
    int *volatile alias = block; /* hides the bug from gcc's -Wuse-after-free, not from ASan */
    free(block);
    sink = alias[3]; /* BUG: use after free */
    return PyLong_FromLong(sink);
}

/* Small on purpose: memcheck calls a block "possibly lost" (not an error) when any word of live
 * memory happens to point inside it. Measured on 3.12.1 with PYTHONMALLOC=malloc: 4 KiB was
 * possibly lost under pytest's environment, 1 MiB and 16 MiB under a plain shell's, 64 bytes
 * never (16 environment sizes). */
#define LEAKED_BYTES 64

static PyObject *leak(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args))
{
    char *block = malloc(LEAKED_BYTES); /* BUG: leaked, the pointer is dropped below */
    if (block == NULL) {
        return PyErr_NoMemory();
    }
    memset(block, 1, LEAKED_BYTES);
    escape = block;
    escape = NULL;
    Py_RETURN_NONE;
}

static PyObject *bad_shift(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args))
{
    volatile int width = 40;
    int result = 1 << width; /* BUG: shift exponent too large */
    return PyLong_FromLong(result);
}

static PyObject *ok(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args))
{
    int *block = malloc(16 * sizeof(int));
    if (block == NULL) {
        return PyErr_NoMemory();
    }
    memset(block, 7, 16 * sizeof(int));
    sink = block[3];
    free(block);
    return PyLong_FromLong(sink);
}

static PyMethodDef methods[] = {
    {"use_after_free", use_after_free, METH_NOARGS, "read a freed block"},
    {"leak", leak, METH_NOARGS, "leak 64 bytes"},
    {"bad_shift", bad_shift, METH_NOARGS, "shift by more than the width of int"},
    {"ok", ok, METH_NOARGS, "correct use of a block"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "broken_memory", "test-only memory bugs", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_broken_memory(void)
{
    return PyModule_Create(&module);
}
