/*
 * Integration tests for common/cc_pg_pool.c against the stack's PostgreSQL: many threads share
 * a small pool without ever holding one connection at once, an exhausted pool gives NULL after
 * its timeout (not before, not much later), release rolls back what a borrower left open.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cc_pg_pool.h"
#include "cc_time.h"
#include "itest.h"

#define PP_THREADS 8
#define PP_ROUNDS  100
#define PP_SIZE    3

struct pp_shared {
    cc_pg_pool *pool;
    _Atomic int holders[PP_SIZE * 4]; /* per connection slot: how many hold it now */
    cc_pg *seen[PP_SIZE * 4];
    pthread_mutex_t seen_lock;
    _Atomic int overlaps, failures, timeouts;
};

/* A stable small index for pg (the pool has PP_SIZE distinct connections). */
static int pp_slot(struct pp_shared *s, cc_pg *pg)
{
    int i;

    pthread_mutex_lock(&s->seen_lock);
    for (i = 0; i < PP_SIZE * 4 && s->seen[i] && s->seen[i] != pg; i++)
        ;
    if (i < PP_SIZE * 4)
        s->seen[i] = pg;
    pthread_mutex_unlock(&s->seen_lock);
    return i < PP_SIZE * 4 ? i : 0;
}

static void *pp_hammer(void *arg)
{
    struct pp_shared *s = arg;

    for (int r = 0; r < PP_ROUNDS; r++) {
        cc_pg *pg = cc_pg_pool_acquire(s->pool);
        int slot;
        PGresult *res;

        if (!pg) {
            atomic_fetch_add(&s->timeouts, 1);
            continue;
        }
        slot = pp_slot(s, pg);
        if (atomic_fetch_add(&s->holders[slot], 1) != 0)
            atomic_fetch_add(&s->overlaps, 1);
        res = cc_pg_query(pg, "SELECT pg_backend_pid()", 0, NULL);
        if (!res || PQntuples(res) != 1)
            atomic_fetch_add(&s->failures, 1);
        PQclear(res);
        atomic_fetch_sub(&s->holders[slot], 1);
        cc_pg_pool_release(s->pool, pg);
    }
    return NULL;
}

TestSuite(pg_pool, .timeout = 60);

Test(pg_pool, lends_each_connection_to_one_thread_at_a_time)
{
    static struct pp_shared s; /* zeroed; too big for comfort on a test thread's stack */
    pthread_t t[PP_THREADS];
    int distinct = 0;

    memset(&s, 0, sizeof(s));
    pthread_mutex_init(&s.seen_lock, NULL);
    s.pool = cc_pg_pool_new(itest_env("CC_PG_DSN"), PP_SIZE, 10000);
    cr_assert_not_null(s.pool, "expected a pool of %d on CC_PG_DSN", PP_SIZE);
    for (int i = 0; i < PP_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, pp_hammer, &s), 0);
    for (int i = 0; i < PP_THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < PP_SIZE * 4; i++)
        distinct += s.seen[i] != NULL;
    cr_assert_eq(atomic_load(&s.overlaps), 0, "expected no connection held by two threads");
    cr_assert_eq(atomic_load(&s.failures), 0, "expected every query to work");
    cr_assert_eq(atomic_load(&s.timeouts), 0, "expected no wait as long as 10 s");
    cr_assert_eq(distinct, PP_SIZE, "expected exactly the pool's %d connections used, saw %d",
                 PP_SIZE, distinct);
    cc_pg_pool_free(s.pool);
    pthread_mutex_destroy(&s.seen_lock);
}

Test(pg_pool, gives_null_after_the_timeout_when_exhausted)
{
    cc_pg_pool *pool = cc_pg_pool_new(itest_env("CC_PG_DSN"), 2, 300);
    cc_pg *a, *b, *c;
    char why[128] = "";
    int64_t t0, waited;

    cr_assert_not_null(pool);
    a = cc_pg_pool_acquire(pool);
    b = cc_pg_pool_acquire(pool);
    cr_assert(a && b && a != b, "expected two distinct connections");
    t0 = cc_time_mono_ms();
    c = cc_pg_pool_acquire(pool);
    waited = cc_time_mono_ms() - t0;
    cr_assert_null(c, "expected no third connection");
    cr_assert(waited >= 290 && waited < 1500, "expected NULL after about 300 ms, took %lld ms",
              (long long)waited);
    cr_assert_not(cc_pg_pool_ready(pool, why, sizeof(why)), "expected not ready when exhausted");
    cr_assert(strstr(why, "no pooled connection") != NULL, "expected the reason, got '%s'", why);
    cc_pg_pool_release(pool, b);
    c = cc_pg_pool_acquire(pool);
    cr_assert_eq(c, b, "expected the released connection lent again");
    cc_pg_pool_release(pool, c);
    cc_pg_pool_release(pool, a);
    cr_assert(cc_pg_pool_ready(pool, why, sizeof(why)), "expected ready: %s", why);
    cc_pg_pool_free(pool);
}

static void *pp_release_later(void *arg)
{
    void **args = arg;

    cc_time_sleep_ms(100);
    cc_pg_pool_release(args[0], args[1]);
    return NULL;
}

Test(pg_pool, wakes_a_waiter_when_a_connection_comes_back)
{
    cc_pg_pool *pool = cc_pg_pool_new(itest_env("CC_PG_DSN"), 1, 5000);
    void *args[2];
    pthread_t t;
    cc_pg *a, *b;
    int64_t t0, waited;

    cr_assert_not_null(pool);
    a = cc_pg_pool_acquire(pool);
    cr_assert_not_null(a);
    args[0] = pool;
    args[1] = a;
    t0 = cc_time_mono_ms();
    pthread_create(&t, NULL, pp_release_later, args);
    b = cc_pg_pool_acquire(pool);
    waited = cc_time_mono_ms() - t0;
    pthread_join(t, NULL);
    cr_assert_eq(b, a, "expected the released connection");
    cr_assert(waited >= 90 && waited < 2000, "expected a wake-up at the release, waited %lld ms",
              (long long)waited);
    cc_pg_pool_release(pool, b);
    cc_pg_pool_free(pool);
}

Test(pg_pool, rolls_back_what_a_borrower_left_open)
{
    cc_pg_pool *pool = cc_pg_pool_new(itest_env("CC_PG_DSN"), 1, 1000);
    char table[64], sql[256];
    PGresult *res;
    cc_pg *pg;

    cr_assert_not_null(pool);
    itest_unique(table, sizeof(table), "pp");
    pg = cc_pg_pool_acquire(pool);
    snprintf(sql, sizeof(sql), "CREATE TABLE %s (v int)", table);
    cr_assert_eq(cc_pg_exec(pg, sql, 0, NULL), 0);
    cr_assert_eq(cc_pg_begin(pg), 0);
    snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES (1)", table);
    cr_assert_eq(cc_pg_exec(pg, sql, 0, NULL), 0);
    cc_pg_pool_release(pool, pg); /* left open: the pool rolls it back */

    pg = cc_pg_pool_acquire(pool);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    res = cc_pg_query(pg, sql, 0, NULL);
    cr_assert_not_null(res, "expected a clean connection (no aborted transaction)");
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "0", "expected the open insert rolled back");
    PQclear(res);
    snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
    cc_pg_exec(pg, sql, 0, NULL);
    cc_pg_pool_release(pool, pg);
    cc_pg_pool_free(pool);
}

Test(pg_pool, refuses_bad_arguments)
{
    cr_assert_null(cc_pg_pool_new(itest_env("CC_PG_DSN"), 0, 100), "expected size 0 refused");
    cr_assert_null(cc_pg_pool_new(itest_env("CC_PG_DSN"), CC_PG_POOL_MAX + 1, 100));
    cr_assert_null(cc_pg_pool_new(itest_env("CC_PG_DSN"), 1, 0), "expected timeout 0 refused");
    cr_assert_null(cc_pg_pool_new(NULL, 1, 100));
}
