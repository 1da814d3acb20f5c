/* cc_pg_pool: see cc_pg_pool.h. */
#include "cc_pg_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc_log.h"

struct cc_pg_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed; /* signalled when a connection comes back (CLOCK_MONOTONIC) */
    unsigned n;
    cc_pg *conns[CC_PG_POOL_MAX];
    bool busy[CC_PG_POOL_MAX];
    long acquire_timeout_ms;
};

cc_pg_pool *cc_pg_pool_new(const char *dsn, unsigned size, long acquire_timeout_ms)
{
    pthread_condattr_t attr;
    cc_pg_pool *pool;

    if (!dsn || size < 1 || size > CC_PG_POOL_MAX || acquire_timeout_ms < 1) {
        CC_ERROR("pg pool: bad arguments (size %u of 1..%d, timeout %ld ms)", size, CC_PG_POOL_MAX,
                 acquire_timeout_ms);
        return NULL;
    }
    pool = calloc(1, sizeof(*pool));
    if (!pool)
        return NULL;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->freed, &attr);
    pthread_condattr_destroy(&attr);
    pool->acquire_timeout_ms = acquire_timeout_ms;
    for (; pool->n < size; pool->n++) {
        pool->conns[pool->n] = cc_pg_new(dsn);
        if (!pool->conns[pool->n])
            goto err_pool;
    }
    return pool;
err_pool:
    cc_pg_pool_free(pool);
    return NULL;
}

void cc_pg_pool_free(cc_pg_pool *pool)
{
    if (!pool)
        return;
    for (unsigned i = 0; i < pool->n; i++)
        cc_pg_free(pool->conns[i]);
    pthread_cond_destroy(&pool->freed);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

static struct timespec deadline_after(long ms)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* A free connection marked busy, or NULL. Under the lock. */
static cc_pg *take_free(cc_pg_pool *pool)
{
    for (unsigned i = 0; i < pool->n; i++) {
        if (!pool->busy[i]) {
            pool->busy[i] = true;
            return pool->conns[i];
        }
    }
    return NULL;
}

cc_pg *cc_pg_pool_acquire(cc_pg_pool *pool)
{
    struct timespec deadline = deadline_after(pool->acquire_timeout_ms);
    cc_pg *pg;

    pthread_mutex_lock(&pool->lock);
    while (!(pg = take_free(pool))) {
        if (pthread_cond_timedwait(&pool->freed, &pool->lock, &deadline) == ETIMEDOUT) {
            pg = take_free(pool); /* one may have come back with the timeout */
            break;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    if (!pg)
        CC_WARN("pg pool exhausted: no connection free within %ld ms", pool->acquire_timeout_ms);
    return pg;
}

void cc_pg_pool_release(cc_pg_pool *pool, cc_pg *pg)
{
    if (!pg)
        return;
    cc_pg_rollback(pg); /* no-op unless a failed path left a transaction open */
    pthread_mutex_lock(&pool->lock);
    for (unsigned i = 0; i < pool->n; i++)
        if (pool->conns[i] == pg)
            pool->busy[i] = false;
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
}

bool cc_pg_pool_ready(cc_pg_pool *pool, char *why, size_t len)
{
    cc_pg *pg = cc_pg_pool_acquire(pool);
    bool ok;

    if (!pg) {
        snprintf(why, len, "postgresql: no pooled connection free");
        return false;
    }
    ok = cc_pg_ping(pg);
    cc_pg_pool_release(pool, pg);
    if (!ok)
        snprintf(why, len, "postgresql does not answer");
    return ok;
}

int cc_pg_pool_errno(const cc_pg *pg)
{
    const char *state = cc_pg_last_sqlstate(pg);

    if (strcmp(state, "23505") == 0)
        return -EEXIST;
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
        return -EINVAL;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return -EAGAIN;
    return -EIO;
}
