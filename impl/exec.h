/* exec.h: one execution of a script, run by a pool job.
 *
 * The caller parses and resolves the script while attached, then hands it to the pool and waits
 * (execute_sync: GIL released) or awaits a future (execute). The job runs each command: builtins
 * in C, callbacks dispatched to a loop thread. On timeout the job reports the timeout, then keeps
 * waiting for the abandoned callback and attaches to release its references when it ends: the
 * structure that makes a dealloc joining the pool with the GIL held deadlock (TM-PY-030 V2). */
#ifndef TR_EXEC_H
#define TR_EXEC_H

#include "call.h"
#include "engine.h"
#include "parse.h"
#include "result.h"

typedef struct tr_exec tr_exec;

/* Parse `commands` (str) and resolve each command name against `callbacks` (dict name ->
 * callable). timeout < 0: none. Returns an execution with one reference; or NULL with an
 * exception set; or NULL with no exception and the syntax error message in *syntax_error. */
tr_exec *tr_exec_new(tr_engine *engine, PyObject *commands, PyObject *callbacks,
                     tr_call_kind kind, double timeout, tr_buf *syntax_error);
void tr_exec_unref(tr_exec *x);
/* execute_sync: run on a private loop (a fresh one, or the engine's shared one). Returns 0, or
 * -1 with an exception set. */
int tr_exec_submit_sync(tr_exec *x, bool fresh_loop);
/* Wait for the result with the GIL released. Caller entered from Python. Returns 0, or -1 with
 * an exception set (a signal handler raised, e.g. KeyboardInterrupt: the call is abandoned). */
int tr_exec_wait(tr_exec *x);
/* The reported result as an ExecResult (new reference), or NULL with an exception set. */
PyObject *tr_exec_result(tr_exec *x, PyObject *result_type);
/* execute(): run the callbacks on `loop` (the caller's running loop) and resolve `future` there.
 * The job keeps `tool` alive until it ends. Returns 0, or -1 with an exception set. */
int tr_exec_submit_async(tr_exec *x, PyObject *tool, PyObject *loop, PyObject *future,
                         PyObject *result_type);

#endif
