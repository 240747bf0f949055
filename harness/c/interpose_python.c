/* interpose_python.c: PyGILState_Ensure as a chaos point (the "attach" of any extension).
 *
 * An extension's native thread enters Python through libpython's PyGILState_Ensure, called via
 * the PLT, so the preloaded probe sees it without any Python header. A seeded delay before the
 * attach widens exactly the windows that matter for teardown: an attach racing the atexit flag,
 * or racing Py_FinalizeEx freeing the interpreter. When the interpreter is linked statically
 * into the executable, the executable's definition wins and this wrapper is never called. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "interpose.h"

static int (*real_ensure)(void);

int PyGILState_Ensure(void)
{
    TP_RESOLVE(real_ensure, "PyGILState_Ensure");
    if (atomic_load_explicit(&tp_chaos_on, memory_order_relaxed)) {
        tp_chaos_point(__builtin_return_address(0));
    }
    return real_ensure();
}
