/* call.c: lifetime, completion and waiting of one callback invocation. No Python here. */
#include "call.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

tr_call *tr_call_new(tr_call_kind kind, PyObject *callback, PyObject *context, const char *name,
                     char *const *args, size_t nargs, const char *stdin_data, size_t stdin_len)
{
    tr_call *call = calloc(1, sizeof(*call));
    if (call == NULL) {
        return NULL;
    }
    atomic_init(&call->refs, 1);
    pthread_mutex_init(&call->mu, NULL);
    tr_cond_init(&call->cv);
    call->kind = kind;
    call->callback = callback;
    call->context = context;
    call->name = strdup(name);
    call->args = calloc(nargs ? nargs : 1, sizeof(char *));
    bool ok = call->name != NULL && call->args != NULL;
    for (size_t i = 0; ok && i < nargs; i++) {
        call->args[i] = strdup(args[i]);
        ok = call->args[i] != NULL;
    }
    call->nargs = nargs;
    if (ok && stdin_data != NULL) {
        call->stdin_data = tr_strndup(stdin_data, stdin_len);
        call->stdin_len = stdin_len;
        ok = call->stdin_data != NULL;
    }
    if (!ok) {
        tr_call_unref(call);
        return NULL;
    }
    return call;
}

void tr_call_ref(tr_call *call) { atomic_fetch_add(&call->refs, 1); }

void tr_call_unref(tr_call *call)
{
    if (atomic_fetch_sub(&call->refs, 1) != 1) {
        return;
    }
    free(call->name);
    if (call->args != NULL) {
        for (size_t i = 0; i < call->nargs; i++) {
            free(call->args[i]);
        }
        free(call->args);
    }
    free(call->stdin_data);
    tr_buf_free(&call->out);
    tr_buf_free(&call->err);
    pthread_mutex_destroy(&call->mu);
    pthread_cond_destroy(&call->cv);
    free(call);
}

void tr_call_complete(tr_call *call, int exit_code, const char *out, size_t out_len,
                      const char *err, size_t err_len, bool cancelled)
{
    pthread_mutex_lock(&call->mu);
    if (call->state != TR_CALL_DONE) {
        call->exit_code = exit_code;
        call->cancelled = cancelled;
        /* On ENOMEM the output is cut; the exit code still says what happened. */
        (void)tr_buf_append(&call->out, out ? out : "", out ? out_len : 0);
        (void)tr_buf_append(&call->err, err ? err : "", err ? err_len : 0);
        call->state = TR_CALL_DONE;
        pthread_cond_broadcast(&call->cv);
    }
    pthread_mutex_unlock(&call->mu);
}

void tr_call_fail(tr_call *call, int exit_code, const char *message)
{
    tr_buf err = {0};
    (void)tr_buf_printf(&err, "%s: %s\n", call->name, message);
    tr_call_complete(call, exit_code, NULL, 0, err.data, err.len, false);
    tr_buf_free(&err);
}

bool tr_call_wait(tr_call *call, const struct timespec *deadline)
{
    pthread_mutex_lock(&call->mu);
    while (call->state != TR_CALL_DONE) {
        if (deadline == NULL) {
            pthread_cond_wait(&call->cv, &call->mu);
        } else if (pthread_cond_timedwait(&call->cv, &call->mu, deadline) == ETIMEDOUT) {
            break;
        }
    }
    bool done = call->state == TR_CALL_DONE;
    pthread_mutex_unlock(&call->mu);
    return done;
}

bool tr_call_is_done(tr_call *call)
{
    pthread_mutex_lock(&call->mu);
    bool done = call->state == TR_CALL_DONE;
    pthread_mutex_unlock(&call->mu);
    return done;
}
