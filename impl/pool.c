/* pool.c: on-demand native threads running jobs from an unbounded FIFO. */
#include "pool.h"

#include <stdlib.h>
#include <unistd.h>

#include "fault.h"

#define TR_POOL_MAX_THREADS 64
#define TR_HANDS_OFF_LINGER_US 300000

typedef struct tr_job {
    tr_job_fn fn;
    void *arg;
    struct tr_job *next;
} tr_job;

typedef struct {
    pthread_t thread;
    bool finished; /* its loop ended; set under mu */
} tr_pool_thread;

struct tr_pool {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tr_job *head, *tail;
    tr_pool_thread threads[TR_POOL_MAX_THREADS];
    size_t nthreads;
    size_t idle;
    bool closing;
    bool detached;
};

tr_pool *tr_pool_new(void)
{
    tr_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        return NULL;
    }
    atomic_init(&pool->refs, 1);
    pthread_mutex_init(&pool->mu, NULL);
    tr_cond_init(&pool->cv);
    return pool;
}

void tr_pool_unref(tr_pool *pool)
{
    if (atomic_fetch_sub(&pool->refs, 1) == 1) {
        pthread_mutex_destroy(&pool->mu);
        pthread_cond_destroy(&pool->cv);
        free(pool);
    }
}

static void *pool_thread_main(void *arg)
{
    tr_pool *pool = arg;
    pthread_t self = pthread_self();
    tr_chaos_delay("pool-start");
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (pool->head == NULL && !pool->closing) {
            pool->idle++;
            pthread_cond_wait(&pool->cv, &pool->mu);
            pool->idle--;
        }
        tr_job *job = pool->head;
        if (job == NULL) {
            break; /* closing and nothing left to run */
        }
        pool->head = job->next;
        if (pool->head == NULL) {
            pool->tail = NULL;
        }
        pthread_mutex_unlock(&pool->mu);
        job->fn(job->arg);
        free(job);
        pthread_mutex_lock(&pool->mu);
    }
    for (size_t i = 0; i < pool->nthreads; i++) {
        if (pthread_equal(pool->threads[i].thread, self)) {
            pool->threads[i].finished = true;
        }
    }
    bool detached = pool->detached;
    pthread_mutex_unlock(&pool->mu);
    if (detached && FAULT(TR_FAULT_HANDS_OFF)) {
        /* FAULT (V4a): the background shutdown finishes in its own time: the thread outlives
         * the drop by a while (tokio's shutdown_background), not by a lucky microsecond. */
        usleep(TR_HANDS_OFF_LINGER_US);
    }
    /* A joined thread is counted down by its joiner, once the join returned. */
    if (detached) {
        atomic_fetch_sub(&tr_stats.pool_threads, 1);
    }
    tr_pool_unref(pool);
    return NULL;
}

int tr_pool_submit(tr_pool *pool, tr_job_fn fn, void *arg)
{
    tr_job *job = malloc(sizeof(*job));
    if (job == NULL) {
        return -1;
    }
    *job = (tr_job){fn, arg, NULL};
    pthread_mutex_lock(&pool->mu);
    if (pool->closing) {
        pthread_mutex_unlock(&pool->mu);
        free(job);
        return -1;
    }
    if (pool->idle == 0 && pool->nthreads < TR_POOL_MAX_THREADS) {
        atomic_fetch_add(&pool->refs, 1);
        pthread_t *slot = &pool->threads[pool->nthreads].thread;
        if (tr_spawn(slot, pool_thread_main, pool, "tr-pool") == 0) {
            pool->threads[pool->nthreads++].finished = false;
            atomic_fetch_add(&tr_stats.pool_threads, 1);
        } else {
            atomic_fetch_sub(&pool->refs, 1);
            if (pool->nthreads == 0) {
                pthread_mutex_unlock(&pool->mu);
                free(job);
                return -1;
            }
        }
    }
    if (pool->tail != NULL) {
        pool->tail->next = job;
    } else {
        pool->head = job;
    }
    pool->tail = job;
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    return 0;
}

bool tr_pool_owns_current_thread(tr_pool *pool)
{
    pthread_t self = pthread_self();
    pthread_mutex_lock(&pool->mu);
    bool found = false;
    for (size_t i = 0; i < pool->nthreads && !found; i++) {
        found = pthread_equal(pool->threads[i].thread, self);
    }
    pthread_mutex_unlock(&pool->mu);
    return found;
}

void tr_pool_join(tr_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    pool->closing = true;
    pthread_cond_broadcast(&pool->cv);
    size_t n = pool->nthreads;
    pthread_mutex_unlock(&pool->mu);
    /* No thread is added once closing is set, so threads[0..n) is stable. */
    for (size_t i = 0; i < n; i++) {
        if (FAULT(TR_FAULT_JOIN_SELF) && pthread_equal(pool->threads[i].thread, pthread_self())) {
            /* FAULT (V5): a blocking join of the pool from one of its own threads waits for
             * that thread to finish, which it never does. */
            pthread_mutex_lock(&pool->mu);
            while (!pool->threads[i].finished) {
                pthread_cond_wait(&pool->cv, &pool->mu);
            }
            pthread_mutex_unlock(&pool->mu);
        }
        tr_chaos_delay("pool-join");
        pthread_join(pool->threads[i].thread, NULL);
        atomic_fetch_sub(&tr_stats.pool_threads, 1);
    }
}

void tr_pool_detach(tr_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    pool->closing = true;
    pool->detached = true;
    for (size_t i = 0; i < pool->nthreads; i++) {
        pthread_detach(pool->threads[i].thread);
        /* Threads that ended before the flag was set did not count themselves down. */
        if (pool->threads[i].finished) {
            atomic_fetch_sub(&tr_stats.pool_threads, 1);
        }
    }
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
}
