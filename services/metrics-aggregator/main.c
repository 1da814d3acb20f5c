/*
 * cc-metrics-aggregator: the KPIs of the contact center. Consumes every fact of cc.interactions
 * and cc.agents into interval rollups and live tables in PostgreSQL (metrics_ingest +
 * metrics_store, one transaction per batch), and serves them over REST, Server-Sent Events, the
 * wallboard page and periodic cc.metrics snapshots (metrics_api).
 *
 * Start: config -> producer (deadletters, snapshots) -> CC_METRICS_CONSUMERS workers, each a
 * store connection (the first migrates) + handler + consumer, not yet polling -> PostgreSQL
 * pool for queries -> HTTP + API (routes, ready check, ticker) -> HTTP listening -> consumer
 * threads -> wait for the partitions -> sigwait.
 * Stop (SIGTERM/SIGINT), the reverse order: API (ticker) -> HTTP (in-flight handlers) -> pool ->
 * consumer threads joined (each finishes its batch), consumers freed (commit, leave the group),
 * stores -> producer (flushes).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_auth.h"
#include "cc_bus.h"
#include "cc_config.h"
#include "cc_http.h"
#include "cc_log.h"
#include "cc_metrics.h"
#include "cc_pg_pool.h"
#include "cc_time.h"
#include "metrics_api.h"
#include "metrics_config.h"
#include "metrics_ingest.h"
#include "metrics_retention.h"
#include "metrics_store.h"

#define ASSIGN_WAIT_MS 60000 /* longest wait for the first partition assignment */

/* One ingest thread: its consumer (a group member), its store connection, its handler. */
struct worker {
    pthread_t thread;
    metrics_store *store;
    metrics_ingest *ingest;
    cc_consumer *consumer;
    bool running;
};

/* What /readyz looks at: PostgreSQL through the pool, and every consumer's assignment. */
struct readiness {
    cc_pg_pool *pool;
    const struct worker *workers;
    long n;
};

/* The one shutdown flag (STYLE.md: config and the shutdown flag are the only globals). */
static volatile sig_atomic_t stopping;

static sigset_t block_stop_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    return set;
}

static bool ready_check(void *ctx, char *why, size_t len)
{
    const struct readiness *r = ctx;

    if (!cc_pg_pool_ready(r->pool, why, len))
        return false;
    for (long i = 0; i < r->n; i++) {
        if (!cc_consumer_assigned(r->workers[i].consumer)) {
            snprintf(why, len, "consumer %ld has no partition assignment yet", i + 1);
            return false;
        }
    }
    return true;
}

static void *consumer_main(void *arg)
{
    if (cc_consumer_run(arg, &stopping) < 0)
        CC_ERROR("consumer stopped on a fatal error");
    return NULL;
}

/* Makes worker i: its own store connection (the first one migrates the schema), handler and
 * consumer (not yet polling). */
static int worker_new(struct worker *w, long i, const struct metrics_config *cfg,
                      const struct cc_bus_config *bus, cc_metrics *metrics, cc_producer *producer)
{
    static const char *const topics[] = {CC_TOPIC_INTERACTIONS, CC_TOPIC_AGENTS};

    w->store = metrics_store_new(cfg->common.pg_dsn, cfg);
    if (!w->store || (i == 0 && metrics_store_migrate(w->store, cfg->migrations_dir) < 0))
        return -EIO;
    w->ingest = metrics_ingest_new(w->store, metrics);
    if (!w->ingest)
        return -ENOMEM;
    w->consumer =
        cc_consumer_new_batch(bus, cfg->consumer_group, topics, 2, metrics_ingest_handle_batch,
                              (size_t)cfg->batch_max, w->ingest, producer);
    return w->consumer ? 0 : -EIO;
}

/* Joins the running threads, then frees every worker (consumers commit and leave the group). */
static void workers_free(struct worker *ws, long n)
{
    stopping = 1;
    for (long i = 0; ws && i < n; i++)
        if (ws[i].running)
            pthread_join(ws[i].thread, NULL);
    for (long i = 0; ws && i < n; i++) {
        cc_consumer_free(ws[i].consumer);
        metrics_ingest_free(ws[i].ingest);
        metrics_store_free(ws[i].store);
    }
    free(ws);
}

/* Waits for every consumer's first assignment (a warning after ASSIGN_WAIT_MS: they keep trying
 * in the background). -EINTR on a stop signal. */
static int wait_assigned(const struct worker *ws, long n, const sigset_t *stop)
{
    int64_t until = cc_time_mono_ms() + ASSIGN_WAIT_MS;
    struct timespec ts = {0, 20 * 1000 * 1000};

    for (long i = 0; i < n;) {
        if (cc_consumer_assigned(ws[i].consumer)) {
            i++;
            continue;
        }
        if (cc_time_mono_ms() > until) {
            CC_WARN("no partitions after %d ms: consuming once the group assigns them",
                    ASSIGN_WAIT_MS);
            return 0;
        }
        if (sigtimedwait(stop, NULL, &ts) > 0)
            return -EINTR;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct metrics_config cfg = {0};
    cc_config_arena *arena = NULL;
    struct cc_bus_config bus;
    struct readiness ready = {0};
    struct worker *ws = NULL;
    metrics_retention *retention = NULL;
    metrics_api *api = NULL;
    cc_http *srv = NULL;
    char err[256] = "";
    cc_producer *producer;
    cc_pg_pool *pool;
    cc_metrics *metrics;
    cc_auth *auth;
    sigset_t stop;
    int sig = 0, rc = EXIT_FAILURE;

    cc_config_main(argc, argv, METRICS_SERVICE, metrics_config_vars, metrics_config_nvars, &cfg,
                   &cfg.common, METRICS_DEFAULT_HTTP_PORT, &arena);
    if (metrics_config_validate(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", METRICS_SERVICE, err);
        cc_config_free(arena);
        return 2;
    }
    stop = block_stop_signals();
    auth = cc_auth_new(cfg.common.auth_tokens, err, sizeof(err));
    if (!auth) {
        CC_ERROR("bad CC_AUTH_TOKENS: %s", err);
        goto out_config;
    }
    metrics = cc_metrics_new();
    if (!metrics)
        goto out_auth;
    if (cc_bus_config_load(&bus, &cfg.common) < 0)
        goto out_metrics;
    producer = cc_producer_new(&bus);
    if (!producer)
        goto out_metrics;
    ws = calloc((size_t)cfg.consumers, sizeof(*ws));
    if (!ws)
        goto out_producer;
    for (long i = 0; i < cfg.consumers; i++) {
        if (worker_new(&ws[i], i, &cfg, &bus, metrics, producer) < 0) {
            CC_ERROR("cannot start ingest %ld of group '%s'", i + 1, cfg.consumer_group);
            goto out_workers;
        }
    }
    retention = metrics_retention_start(
        &(struct metrics_retention_config){.dsn = cfg.common.pg_dsn,
                                           .dedupe_days = cfg.dedupe_days,
                                           .pending_days = cfg.pending_days});
    if (!retention)
        goto out_workers;
    pool = cc_pg_pool_new(cfg.common.pg_dsn, (unsigned)cfg.pg_pool_size, cfg.pg_acquire_timeout_ms);
    if (!pool)
        goto out_workers;

    srv = cc_http_new_common(METRICS_SERVICE, &cfg.common, auth, metrics);
    if (!srv)
        goto out_pool;
    ready = (struct readiness){.pool = pool, .workers = ws, .n = cfg.consumers};
    cc_http_set_ready_check(srv, ready_check, &ready);
    api = metrics_api_new(srv, pool, producer, &cfg);
    if (!api || cc_http_start(srv) < 0) {
        CC_ERROR("cannot serve http on %s:%ld", cfg.common.http_addr, cfg.common.http_port);
        goto out_http;
    }
    for (long i = 0; i < cfg.consumers; i++) {
        if (pthread_create(&ws[i].thread, NULL, consumer_main, ws[i].consumer) != 0) {
            CC_ERROR("cannot start consumer thread %ld", i + 1);
            goto out_http;
        }
        ws[i].running = true;
    }
    if (wait_assigned(ws, cfg.consumers, &stop) < 0) {
        rc = EXIT_SUCCESS; /* stopped while joining the group: a clean exit */
        goto out_http;
    }
    CC_INFO("metrics-aggregator '%s' consuming: http %s:%d, group '%s', %ld consumer(s), batch "
            "%ld",
            cfg.common.instance_id, cfg.common.http_addr, cc_http_port(srv), cfg.consumer_group,
            cfg.consumers, cfg.batch_max);
    sigwait(&stop, &sig);
    CC_INFO("stopping on signal %s", strsignal(sig));
    rc = EXIT_SUCCESS;
out_http:
    stopping = 1;          /* the consumer threads finish their batch; joined below */
    metrics_api_free(api); /* stops the ticker: before the server, per metrics_api.h */
    cc_http_free(srv);     /* waits for in-flight handlers (the ready check among them) */
out_pool:
    cc_pg_pool_free(pool);
out_workers:
    metrics_retention_stop(retention);
    workers_free(ws, cfg.consumers); /* joins, commits stored offsets, leaves the group */
out_producer:
    cc_producer_free(producer);
out_metrics:
    cc_metrics_free(metrics);
out_auth:
    cc_auth_free(auth);
out_config:
    cc_config_free(arena);
    return rc;
}
