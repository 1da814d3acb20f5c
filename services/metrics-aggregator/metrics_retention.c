/* metrics_retention: the purge of old event ids and orphan pending facts (see the header). */
#include "metrics_retention.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc_log.h"
#include "metrics_sql.h"

/* Forgets ids applied before the window, oldest first ($1 days, $2 rows). */
#define RT_SQL_SEEN                                                                                \
    "DELETE FROM %s.events_seen WHERE id IN (SELECT id FROM %s.events_seen WHERE seen_at < now() " \
    "- make_interval(days => $1::int) ORDER BY seen_at LIMIT $2::int)"

/* Drops facts parked before the window, oldest first, and says which ones went. */
#define RT_SQL_PENDING                                                                             \
    "WITH d AS (DELETE FROM %s.pending WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s.pending WHERE " \
    "parked_at < now() - make_interval(days => $1::int) ORDER BY parked_at LIMIT $2::int)) "       \
    "RETURNING tenant, subj) SELECT count(*), count(DISTINCT (tenant, subj)), min(tenant), "       \
    "min(subj) FROM d"

struct metrics_retention {
    struct metrics_retention_config cfg;
    char *dsn, *schema;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping; /* under lock */
};

static bool rt_config_ok(const struct metrics_retention_config *cfg)
{
    const char *schema = cfg && cfg->schema ? cfg->schema : "metrics";

    if (!cfg || !metrics_sql_schema_valid(schema) || cfg->dedupe_days < 1 ||
        cfg->pending_days < 1 || cfg->interval_ms < 0 || cfg->batch < 0) {
        CC_ERROR("bad metrics retention config: schema '%s', dedupe %ld days, pending %ld days",
                 schema, cfg ? cfg->dedupe_days : 0, cfg ? cfg->pending_days : 0);
        return false;
    }
    return true;
}

static bool rt_stopping(metrics_retention *r)
{
    bool s;

    if (!r)
        return false;
    pthread_mutex_lock(&r->lock);
    s = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return s;
}

/* Deletes batches of sql_fmt (schema pasted twice) until one deletes fewer than batch rows;
 * *total gets the rows deleted. The pending statement's examples are logged. */
static int rt_purge_table(cc_pg *pg, const char *sql_fmt, const char *schema, long days, long batch,
                          bool pending, metrics_retention *r, long *total)
{
    char sql[1024], d[24], b[24];
    const char *params[2] = {d, b};

    snprintf(sql, sizeof(sql), sql_fmt, schema, schema);
    snprintf(d, sizeof(d), "%ld", days);
    snprintf(b, sizeof(b), "%ld", batch);
    *total = 0;
    for (;;) {
        PGresult *res = cc_pg_query(pg, sql, 2, params);
        long n;

        if (!res)
            return -EIO;
        n = strtol(pending ? PQgetvalue(res, 0, 0) : PQcmdTuples(res), NULL, 10);
        if (pending && n > 0)
            CC_WARN("pending facts dropped: %ld fact(s) of %s interaction(s) never got their "
                    "created event within %ld days (e.g. tenant '%s' interaction '%s')",
                    n, PQgetvalue(res, 0, 1), days, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
        PQclear(res);
        *total += n;
        if (n < batch || rt_stopping(r))
            return 0;
    }
}

/* One pass, stopping early when r (may be NULL) is told to stop. */
static int rt_pass(cc_pg *pg, const struct metrics_retention_config *cfg, metrics_retention *r,
                   struct metrics_retention_result *out)
{
    const char *schema = cfg->schema ? cfg->schema : "metrics";
    long batch = cfg->batch ? cfg->batch : METRICS_RETENTION_BATCH;
    struct metrics_retention_result res = {0};
    int rc;

    rc = rt_purge_table(pg, RT_SQL_SEEN, schema, cfg->dedupe_days, batch, false, r,
                        &res.events_seen);
    if (rc == 0)
        rc = rt_purge_table(pg, RT_SQL_PENDING, schema, cfg->pending_days, batch, true, r,
                            &res.pending);
    if (res.events_seen > 0)
        CC_INFO("retention: %ld applied event id(s) older than %ld days forgotten", res.events_seen,
                cfg->dedupe_days);
    if (out)
        *out = res;
    return rc;
}

int metrics_retention_purge(cc_pg *pg, const struct metrics_retention_config *cfg,
                            struct metrics_retention_result *out)
{
    if (!pg || !rt_config_ok(cfg))
        return -EINVAL;
    return rt_pass(pg, cfg, NULL, out);
}

/* Waits ms or until stopped; true when stopped. */
static bool rt_wait(metrics_retention *r, long ms)
{
    struct timespec until;
    bool s;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (!r->stopping && pthread_cond_timedwait(&r->wake, &r->lock, &until) != ETIMEDOUT)
        ;
    s = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return s;
}

static void *rt_main(void *arg)
{
    metrics_retention *r = arg;
    long interval = r->cfg.interval_ms ? r->cfg.interval_ms : METRICS_RETENTION_INTERVAL_MS;
    cc_pg *pg = NULL;

    do {
        if (!pg)
            pg = cc_pg_new(r->dsn); /* logged when PostgreSQL is away: next pass */
        if (pg && rt_pass(pg, &r->cfg, r, NULL) < 0)
            CC_WARN("retention pass failed: tried again in %ld ms", interval);
    } while (!rt_wait(r, interval));
    cc_pg_free(pg);
    return NULL;
}

metrics_retention *metrics_retention_start(const struct metrics_retention_config *cfg)
{
    metrics_retention *r;
    pthread_condattr_t ca;

    if (!rt_config_ok(cfg) || !cfg->dsn)
        return NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cfg = *cfg;
    r->dsn = strdup(cfg->dsn);
    r->schema = strdup(cfg->schema ? cfg->schema : "metrics");
    if (!r->dsn || !r->schema)
        goto out_strings;
    r->cfg.dsn = r->dsn;
    r->cfg.schema = r->schema;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&r->thread, NULL, rt_main, r) != 0) {
        CC_ERROR("cannot start the metrics retention thread");
        goto out_sync;
    }
    return r;
out_sync:
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
out_strings:
    free(r->dsn);
    free(r->schema);
    free(r);
    return NULL;
}

void metrics_retention_stop(metrics_retention *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r->dsn);
    free(r->schema);
    free(r);
}
