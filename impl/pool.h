/* pool.h: a small native thread pool, the analogue of tokio's blocking pool. Threads are spawned
 * on demand, stay until the pool is closed, and never touch Python themselves: jobs attach when
 * they must. Shared by its owner and its threads (refcounted), so detached threads can outlive
 * the owner. */
#ifndef TR_POOL_H
#define TR_POOL_H

#include "core.h"

typedef struct tr_pool tr_pool;
typedef void (*tr_job_fn)(void *arg);

tr_pool *tr_pool_new(void); /* one reference for the owner; NULL on ENOMEM */
/* Queue a job; never blocks. Returns 0, or -1 when the pool is closed or no thread could be
 * spawned while none is idle (the job was not queued). */
int tr_pool_submit(tr_pool *pool, tr_job_fn fn, void *arg);
bool tr_pool_owns_current_thread(tr_pool *pool);
/* Close, let the queued jobs finish, join every thread. Blocks: call unattached. */
void tr_pool_join(tr_pool *pool);
/* Close and detach every thread (exit regime): they finish their job and exit on their own. */
void tr_pool_detach(tr_pool *pool);
void tr_pool_unref(tr_pool *pool);

#endif
