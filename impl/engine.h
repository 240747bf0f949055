/* engine.h: a tool's runtime: its pool, its registry of live private loops (the only path from
 * a dropping thread to the task of an abandoned call), the shared loop of Bash, and the
 * teardown protocol (see specs/protocol.md). Refcounted: the tool holds it, and so does every
 * execution job, so a job never outlives the memory it uses. */
#ifndef TR_ENGINE_H
#define TR_ENGINE_H

#include "pool.h"
#include "ploop.h"

typedef struct tr_engine {
    atomic_int refs;
    tr_life *life;
    tr_pool *pool;
    pthread_mutex_t mu;
    bool closing;      /* no new loop once set */
    tr_ploop *shared;  /* Bash's loop, created by the first call that needs it */
    tr_ploop **loops;  /* registry: every live private loop, shared one included */
    size_t nloops, cap;
} tr_engine;

tr_engine *tr_engine_new(tr_life *life); /* one reference; NULL on ENOMEM */
void tr_engine_ref(tr_engine *engine);
void tr_engine_unref(tr_engine *engine);
/* A loop for one execution: the shared one, or a fresh registered one. Returns a reference, or
 * NULL when the engine is closing or no thread could be spawned. No Python call. */
tr_ploop *tr_engine_acquire_loop(tr_engine *engine, bool fresh);
/* Give the loop back; a fresh loop is closed, joined and unregistered. Call unattached. */
void tr_engine_release_loop(tr_engine *engine, tr_ploop *pl, bool fresh);
/* The teardown protocol; called from the tool's dealloc (attached). Consumes the reference. */
void tr_engine_teardown(tr_engine *engine);

#endif
