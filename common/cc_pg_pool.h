/*
 * cc_pg_pool: a fixed pool of cc_pg connections shared by threads (REST handlers, workers).
 *
 * cc_pg is one connection and not thread-safe; a pool opens size connections at start and
 * lends each to one caller at a time. A caller holds its connection for a whole unit of work
 * (a transaction never spans two connections) and gives it back; a transaction left open by a
 * failed path is rolled back on release, so the next borrower starts clean. Acquire waits on a
 * CLOCK_MONOTONIC condition variable, at most the pool's acquire timeout, so a stuck database
 * or an undersized pool turns into a quick NULL (-EAGAIN for the caller) instead of a hang.
 * Size it at least to the number of threads that use it so that they never wait for each other.
 *
 * Thread-safety: acquire, release, ready and cc_pg_pool_errno may be called from any thread
 * at once; _new/_free from one thread with no call in flight.
 */
#ifndef CC_PG_POOL_H
#define CC_PG_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "cc_pg.h"

#define CC_PG_POOL_MAX 64 /* connections in one pool */

typedef struct cc_pg_pool cc_pg_pool;

/* Opens size (1..CC_PG_POOL_MAX) connections to dsn; acquire waits at most acquire_timeout_ms
 * (>= 1). NULL (logged) on bad arguments or when any connection fails. */
cc_pg_pool *cc_pg_pool_new(const char *dsn, unsigned size, long acquire_timeout_ms);

/* Closes every connection and frees the pool; every connection must have been released.
 * NULL is a no-op. */
void cc_pg_pool_free(cc_pg_pool *pool);

/* Lends a free connection (exclusively the caller's until cc_pg_pool_release), waiting up to the
 * acquire timeout for one to come back. NULL when none came back in time (logged as a warning:
 * the pool is exhausted). */
cc_pg *cc_pg_pool_acquire(cc_pg_pool *pool);

/* Gives pg (from cc_pg_pool_acquire of this pool) back, rolling back any transaction it left
 * open, and wakes one waiter. NULL is a no-op. */
void cc_pg_pool_release(cc_pg_pool *pool, cc_pg *pg);

/* For /readyz: borrows a connection and pings PostgreSQL (cc_pg_ping, which reconnects once).
 * true when it answers; else false with the reason in why[len]. */
bool cc_pg_pool_ready(cc_pg_pool *pool, char *why, size_t len);

/* Maps the last failure on pg (cc_pg_last_sqlstate) to the errno-style codes stores return:
 * -EEXIST unique violation (23505), -EINVAL another integrity (23xxx) or data (22xxx) error,
 * -EAGAIN serialization failure or deadlock (40001, 40P01), -EIO anything else. */
int cc_pg_pool_errno(const cc_pg *pg);

#endif
