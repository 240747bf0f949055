/* gil_deadlock: a deliberately broken extension, used to prove that the hang
 * watchdog captures real deadlocks and names them correctly.
 *
 * join_holding_gil()  the classic dealloc deadlock: start a native thread that
 *                     calls PyGILState_Ensure(), then pthread_join() it while
 *                     still holding the GIL. Neither can proceed.
 * lock_order()        two native threads take two mutexes in opposite order
 *                     and deadlock on each other; the caller releases the GIL
 *                     around its join, so this is a hang *without* the GIL.
 * block_holding_gil() a native thread waits for the GIL while the caller
 *                     sits in a plain blocking syscall (pause) holding it.
 * crash()             raise(SIGSEGV) for the "killed by a signal" test.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static void *
ensure_gil(void *arg)
{
    (void)arg;
    PyGILState_STATE st = PyGILState_Ensure(); /* blocks forever: the GIL is held by the joiner */
    PyGILState_Release(st);
    return NULL;
}

static int
start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    int rc = pthread_create(t, NULL, fn, arg);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static PyObject *
join_holding_gil(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    pthread_t t;
    if (start(&t, ensure_gil, NULL) < 0) {
        return NULL;
    }
    pthread_join(t, NULL); /* the bug: no Py_BEGIN_ALLOW_THREADS around the join */
    Py_RETURN_NONE;
}

static PyObject *
block_holding_gil(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    pthread_t t;
    if (start(&t, ensure_gil, NULL) < 0) {
        return NULL;
    }
    for (;;) {
        pause(); /* the bug: a blocking syscall with the GIL held */
    }
    Py_RETURN_NONE;
}

static pthread_mutex_t mutex_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t mutex_b = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t both_locked;

static void *
take_a_then_b(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mutex_a);
    pthread_barrier_wait(&both_locked); /* make the deadlock certain, not a race */
    pthread_mutex_lock(&mutex_b);
    return NULL;
}

static void *
take_b_then_a(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mutex_b);
    pthread_barrier_wait(&both_locked);
    pthread_mutex_lock(&mutex_a);
    return NULL;
}

static PyObject *
lock_order(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    pthread_t t1, t2;
    pthread_barrier_init(&both_locked, NULL, 2);
    if (start(&t1, take_a_then_b, NULL) < 0) {
        return NULL;
    }
    if (start(&t2, take_b_then_a, NULL) < 0) {
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS /* correct here: the hang is between t1 and t2 only */
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *
crash(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    raise(SIGSEGV);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"join_holding_gil", join_holding_gil, METH_NOARGS, "Join a GIL-waiting thread with the GIL held."},
    {"block_holding_gil", block_holding_gil, METH_NOARGS, "pause() with the GIL held."},
    {"lock_order", lock_order, METH_NOARGS, "Two native threads in a lock-order deadlock."},
    {"crash", crash, METH_NOARGS, "raise(SIGSEGV)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "gil_deadlock", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit_gil_deadlock(void)
{
    return PyModule_Create(&module);
}
