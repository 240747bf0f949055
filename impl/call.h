/* call.h: one callback invocation, handed from an execution job to a loop thread.
 *
 * Ownership: the job owns `callback` and `context` (strong references it releases, attached,
 * once the call is done); the loop thread borrows them while starting the call. The struct
 * itself is refcounted because a queue, a task's done-callback and the job may all hold it. */
#ifndef TR_CALL_H
#define TR_CALL_H

#include "core.h"

typedef enum {
    TR_CALL_SCRIPTED, /* callback(params: dict, stdin: str | None) */
    TR_CALL_BUILTIN,  /* callback(ctx) with ctx.name, ctx.argv, ctx.stdin */
} tr_call_kind;

typedef enum { TR_CALL_QUEUED, TR_CALL_RUNNING, TR_CALL_DONE } tr_call_state;

struct tr_ploop;

typedef struct tr_call {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* request: immutable once dispatched */
    tr_call_kind kind;
    PyObject *callback; /* borrowed from the job */
    PyObject *context;  /* borrowed from the job: contextvars.Context captured by the caller */
    char *name;
    char **args; /* words after the command name */
    size_t nargs;
    char *stdin_data; /* NULL: no stdin */
    size_t stdin_len;
    /* loop side: touched only on the loop thread, attached */
    struct tr_ploop *host; /* private loop running the task, NULL on the caller's loop */
    PyObject *task;        /* the published asyncio.Task while it runs */
    bool started;          /* the callback was invoked (counted in tr_stats.inflight) */
    /* result: written once under mu, then state = DONE */
    tr_call_state state;
    bool cancelled;
    int exit_code;
    tr_buf out, err;
    struct tr_call *next; /* queue link, owned by the queue holding it */
    struct tr_call *inflight_prev, *inflight_next; /* a private loop's in-flight list */
} tr_call;

/* Returns a call with one reference, or NULL on ENOMEM. Copies the strings. */
tr_call *tr_call_new(tr_call_kind kind, PyObject *callback, PyObject *context, const char *name,
                     char *const *args, size_t nargs, const char *stdin_data, size_t stdin_len);
void tr_call_ref(tr_call *call);
void tr_call_unref(tr_call *call);
/* Record the result and wake waiters. The first completion wins; later ones are ignored. */
void tr_call_complete(tr_call *call, int exit_code, const char *out, size_t out_len,
                      const char *err, size_t err_len, bool cancelled);
void tr_call_fail(tr_call *call, int exit_code, const char *message); /* stderr "name: message\n" */
/* Wait until done. deadline NULL: no bound. Returns true when done, false on timeout. Call
 * unattached: it blocks. */
bool tr_call_wait(tr_call *call, const struct timespec *deadline);
bool tr_call_is_done(tr_call *call);

#endif
