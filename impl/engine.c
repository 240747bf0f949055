/* engine.c: registry of live loops and the teardown protocol with its three regimes. */
#include "engine.h"

#include <stdlib.h>

#include "fault.h"

tr_engine *tr_engine_new(tr_life *life)
{
    tr_engine *engine = calloc(1, sizeof(*engine));
    if (engine == NULL) {
        return NULL;
    }
    engine->pool = tr_pool_new();
    if (engine->pool == NULL) {
        free(engine);
        return NULL;
    }
    atomic_init(&engine->refs, 1);
    tr_life_ref(life);
    engine->life = life;
    pthread_mutex_init(&engine->mu, NULL);
    return engine;
}

void tr_engine_ref(tr_engine *engine) { atomic_fetch_add(&engine->refs, 1); }

void tr_engine_unref(tr_engine *engine)
{
    if (atomic_fetch_sub(&engine->refs, 1) != 1) {
        return;
    }
    for (size_t i = 0; i < engine->nloops; i++) {
        tr_ploop_unref(engine->loops[i]);
    }
    free(engine->loops);
    if (engine->shared != NULL) {
        tr_ploop_unref(engine->shared);
    }
    tr_pool_unref(engine->pool);
    pthread_mutex_destroy(&engine->mu);
    tr_life_unref(engine->life);
    free(engine);
}

/* Caller holds engine->mu. Returns 0, or -1 on ENOMEM. */
static int register_locked(tr_engine *engine, tr_ploop *pl)
{
    if (engine->nloops == engine->cap) {
        size_t cap = engine->cap ? engine->cap * 2 : 4;
        tr_ploop **grown = realloc(engine->loops, cap * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        engine->loops = grown;
        engine->cap = cap;
    }
    tr_ploop_ref(pl);
    engine->loops[engine->nloops++] = pl;
    return 0;
}

static void unregister(tr_engine *engine, tr_ploop *pl)
{
    pthread_mutex_lock(&engine->mu);
    for (size_t i = 0; i < engine->nloops; i++) {
        if (engine->loops[i] == pl) {
            engine->loops[i] = engine->loops[--engine->nloops];
            tr_ploop_unref(pl);
            break;
        }
    }
    pthread_mutex_unlock(&engine->mu);
}

tr_ploop *tr_engine_acquire_loop(tr_engine *engine, bool fresh)
{
    pthread_mutex_lock(&engine->mu);
    tr_ploop *pl = NULL;
    if (engine->closing) {
        /* no new loop during teardown */
    } else if (!fresh && engine->shared != NULL) {
        pl = engine->shared;
        tr_ploop_ref(pl);
    } else if ((pl = tr_ploop_start(engine->life)) != NULL) {
        if (register_locked(engine, pl) < 0) {
            tr_ploop_close(pl); /* ENOMEM: woken with nothing to run, it exits on its own */
            tr_ploop_detach(pl);
            tr_ploop_unref(pl);
            pl = NULL;
        } else if (!fresh) {
            engine->shared = pl;
            tr_ploop_ref(pl); /* the engine's own reference to its shared loop */
        }
    }
    pthread_mutex_unlock(&engine->mu);
    return pl;
}

void tr_engine_release_loop(tr_engine *engine, tr_ploop *pl, bool fresh)
{
    if (fresh) {
        tr_ploop_join(pl);
        unregister(engine, pl);
    }
    tr_ploop_unref(pl);
}

/* Takes references to the registered loops. Caller frees the array and the references. */
static tr_ploop **snapshot_loops(tr_engine *engine, size_t *n)
{
    pthread_mutex_lock(&engine->mu);
    engine->closing = true;
    tr_ploop **loops = calloc(engine->nloops ? engine->nloops : 1, sizeof(*loops));
    *n = 0;
    for (size_t i = 0; loops != NULL && i < engine->nloops; i++) {
        if (FAULT(TR_FAULT_NO_REGISTRY) && engine->loops[i] != engine->shared) {
            continue; /* FAULT: per-execution loops unreachable from the dropping thread */
        }
        loops[(*n)++] = engine->loops[i];
        tr_ploop_ref(engine->loops[i]);
    }
    pthread_mutex_unlock(&engine->mu);
    return loops;
}

static void release_loops(tr_ploop **loops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tr_ploop_unref(loops[i]);
    }
    free(loops);
}

/* Join every loop, then the pool. Unattached. Consumes the loops and the engine reference. */
static void join_all(tr_engine *engine, tr_ploop **loops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tr_ploop_join(loops[i]);
    }
    release_loops(loops, n);
    tr_pool_join(engine->pool);
    tr_engine_unref(engine);
}

typedef struct {
    tr_engine *engine;
    tr_ploop **loops;
    size_t n;
} handoff;

static void *handoff_main(void *arg)
{
    handoff *h = arg;
    tr_chaos_delay("handoff-start");
    join_all(h->engine, h->loops, h->n);
    free(h);
    atomic_fetch_sub(&tr_stats.handoffs, 1);
    return NULL;
}

/* Whether joining would join the current thread: the last reference was dropped on one of the
 * engine's own pool threads or loop workers. */
static bool runs_on_own_thread(tr_engine *engine, tr_ploop **loops, size_t n)
{
    if (tr_pool_owns_current_thread(engine->pool)) {
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (tr_ploop_is_current(loops[i])) {
            return true;
        }
    }
    return false;
}

void tr_engine_teardown(tr_engine *engine)
{
    size_t n;
    tr_ploop **loops = snapshot_loops(engine, &n);
    if (loops == NULL) {
        /* ENOMEM: nothing can be joined safely without the list; leave it to exit. */
        tr_pool_detach(engine->pool);
        tr_engine_unref(engine);
        return;
    }
    if (tr_life_exiting_attached(engine->life)) {
        /* Exit regime: threads may no longer attach, so nothing is joined and no thread is
         * woken into the finalizing interpreter. The OS reclaims threads and fds. */
        for (size_t i = 0; i < n; i++) {
            if (FAULT(TR_FAULT_ATTACH_AT_EXIT)) {
                /* FAULT (V3): wake every thread so that it cleans up; the jobs then attach to
                 * release their references while the interpreter is finalizing. */
                tr_ploop_abandon_all(loops[i]);
            }
            tr_ploop_detach(loops[i]);
        }
        release_loops(loops, n);
        tr_pool_detach(engine->pool);
        tr_engine_unref(engine);
        return;
    }
    /* Cancel first: joins are then bounded by cancellation, not by callback duration. */
    for (size_t i = 0; i < n; i++) {
        tr_ploop_close(loops[i]);
    }
    if (FAULT(TR_FAULT_HANDS_OFF)) {
        /* FAULT (V4a): no joins; threads finish (abandoned callbacks run to completion) and
         * exit after the drop returned. */
        for (size_t i = 0; i < n; i++) {
            tr_ploop_detach(loops[i]);
        }
        release_loops(loops, n);
        tr_pool_detach(engine->pool);
        tr_engine_unref(engine);
        return;
    }
    /* FAULT join_self (V5): no hand-off, the joins below run on the tool's own thread. */
    if (!FAULT(TR_FAULT_JOIN_SELF) && runs_on_own_thread(engine, loops, n)) {
        handoff *h = malloc(sizeof(*h));
        pthread_t thread;
        if (h != NULL) {
            *h = (handoff){engine, loops, n};
            atomic_fetch_add(&tr_stats.handoffs, 1);
            if (tr_spawn(&thread, handoff_main, h, "tr-shutdown") == 0) {
                pthread_detach(thread);
                return;
            }
            atomic_fetch_sub(&tr_stats.handoffs, 1);
            free(h);
        }
        /* Could not hand off: detach rather than join ourselves. */
        for (size_t i = 0; i < n; i++) {
            tr_ploop_detach(loops[i]);
        }
        release_loops(loops, n);
        tr_pool_detach(engine->pool);
        tr_engine_unref(engine);
        return;
    }
    /* Alive regime: join with the GIL released, so a thread that must attach to finish (an
     * abandoned call releasing its references) can. */
    tr_unattached token = {NULL, 0};
    if (!FAULT(TR_FAULT_JOIN_HOLDING_GIL)) { /* FAULT (V2): joins holding the GIL */
        token = tr_release_gil();
    }
    join_all(engine, loops, n);
    tr_reacquire_gil(token);
}
