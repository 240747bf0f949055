/* loopcall.h: running one call on an asyncio loop, on that loop's thread (attached). Used by
 * the private-loop worker and by `await execute()` on the caller's loop. */
#ifndef TR_LOOPCALL_H
#define TR_LOOPCALL_H

#include "call.h"

/* Invoke the callback inside a copy of the caller's context. A plain result completes the call
 * at once; an awaitable becomes a published asyncio.Task (stored in call->task) whose
 * done-callback completes the call. Returns a new reference to the task, or NULL when the call
 * is already complete (never with an exception set). */
PyObject *tr_loopcall_start(tr_call *call, PyObject *loop);
/* Python-callable: schedule with loop.call_soon_threadsafe(fn, capsule) to start a call on a
 * loop owned by another thread, and likewise to cancel its task. The capsule owns a call ref. */
PyObject *tr_loopcall_capsule(tr_call *call); /* new reference, NULL with an exception set */
extern PyMethodDef tr_loopcall_start_def;
extern PyMethodDef tr_loopcall_cancel_def;

#endif
