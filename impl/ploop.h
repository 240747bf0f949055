/* ploop.h: a private-loop worker: a native thread owning an asyncio loop that runs each
 * callback as a published asyncio.Task.
 *
 * Dispatch never blocks and never needs the GIL: calls go on an unbounded queue and an eventfd
 * wakes the loop (it is watched with loop.add_reader). Closing is a flag plus the same wake-up:
 * the worker rejects queued calls, cancels its in-flight tasks itself, stops when none is left,
 * closes its loop (freeing its fds) and exits. */
#ifndef TR_PLOOP_H
#define TR_PLOOP_H

#include "call.h"

typedef struct tr_ploop tr_ploop;

/* Spawn the worker. Returns it with one reference, or NULL (errno set). */
tr_ploop *tr_ploop_start(tr_life *life);
void tr_ploop_ref(tr_ploop *pl);
void tr_ploop_unref(tr_ploop *pl);
/* Queue a call; never blocks. A closed loop completes the call at once with an error. */
void tr_ploop_submit(tr_ploop *pl, tr_call *call);
/* Set the closing flag and wake the worker. No Python call, never blocks. */
void tr_ploop_close(tr_ploop *pl);
/* Close, then wait until the worker has exited and is joined (or, once detached, has exited).
 * Any number of threads may call it; one joins, the others wait. Blocks: call unattached,
 * never on the worker itself. */
void tr_ploop_join(tr_ploop *pl);
/* Exit regime: set the closing flag without waking anyone and detach the thread. */
void tr_ploop_detach(tr_ploop *pl);
bool tr_ploop_is_current(tr_ploop *pl);
/* Loop thread, attached: a published task finished (called by its done-callback). */
void tr_ploop_task_done(tr_ploop *pl, PyObject *task, tr_call *call);
/* FAULT attach_at_exit only: complete every queued and in-flight call natively, which wakes
 * the jobs waiting on them (V3: threads woken at exit so that they clean up). */
void tr_ploop_abandon_all(tr_ploop *pl);

#endif
