/*
 * cc-router: the ACD. Configuration over REST (PostgreSQL), live state in Redis changed by Lua
 * scripts, routing requests and facts consumed from Kafka, decisions and events published from
 * the Redis outbox, timers handled by a ticker.
 *
 * Start: config -> store (+ migrations) -> config listener (first full sync into Redis, or a
 * rebuild when Redis is empty) -> outbox publisher -> ticker -> HTTP -> consumers.
 * Stop (SIGTERM/SIGINT), the reverse order: consumers (commit, leave the group) -> HTTP ->
 * ticker -> outbox (drains what the others wrote, gives its lease up) -> listener -> store.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_bus.h"
#include "cc_config.h"
#include "cc_http.h"
#include "cc_log.h"
#include "cc_metrics.h"
#include "cc_time.h"
#include "router_api.h"
#include "router_api_live.h"
#include "router_config.h"
#include "router_engine.h"
#include "router_live.h"
#include "router_outbox.h"
#include "router_schedule.h"
#include "router_store.h"
#include "router_ticker.h"

/* One consumer thread: its own consumer group member and engine. */
struct consumer_thread {
    pthread_t thread;
    cc_consumer *consumer;
    router_engine *engine;
    volatile sig_atomic_t *stop;
    bool started;
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

static void *consumer_main(void *arg)
{
    struct consumer_thread *ct = arg;

    if (cc_consumer_run(ct->consumer, ct->stop) < 0)
        CC_ERROR("consumer stopped on a fatal error");
    return NULL;
}

/* Waits until the listener's first configuration sync is done, or the stop signal / timeout. */
static int wait_synced(router_live_listener *l, long timeout_ms, const sigset_t *stop)
{
    int64_t until = cc_time_mono_ms() + timeout_ms;
    struct timespec ts = {0, 50 * 1000 * 1000};

    while (!router_live_listen_synced(l)) {
        if (cc_time_mono_ms() > until)
            return -ETIMEDOUT;
        if (sigtimedwait(stop, NULL, &ts) > 0)
            return -EINTR;
    }
    return 0;
}

/* Waits until every consumer has its first partition assignment, so that "routing" is logged
 * (and tests and operators go on) only once requests are being read; gives up after timeout_ms
 * with a warning -- the consumers keep trying in the background. -EINTR on a stop signal. */
static int wait_assigned(const struct consumer_thread *cts, long n, long timeout_ms,
                         const sigset_t *stop)
{
    int64_t until = cc_time_mono_ms() + timeout_ms;
    struct timespec ts = {0, 20 * 1000 * 1000};
    long i = 0;

    while (i < n) {
        if (cc_consumer_assigned(cts[i].consumer)) {
            i++;
            continue;
        }
        if (cc_time_mono_ms() > until) {
            CC_WARN("consumer %ld of %ld has no partitions yet after %ld ms: routing starts when "
                    "the group assigns them",
                    i + 1, n, timeout_ms);
            return 0;
        }
        if (sigtimedwait(stop, NULL, &ts) > 0)
            return -EINTR;
    }
    return 0;
}

static int start_consumers(struct consumer_thread *cts, long n, const struct router_config *cfg,
                           const struct cc_bus_config *bus, const struct router_engine_config *ecfg,
                           cc_producer *deadletter)
{
    static const char *const topics[] = {CC_TOPIC_ROUTING_REQUESTS, CC_TOPIC_INTERACTIONS,
                                         CC_TOPIC_AGENTS};

    for (long i = 0; i < n; i++) {
        struct consumer_thread *ct = &cts[i];

        ct->stop = &stopping;
        ct->engine = router_engine_new(ecfg);
        if (!ct->engine)
            return -EIO;
        ct->consumer =
            cc_consumer_new_batch(bus, cfg->consumer_group, topics, 3, router_engine_handle_batch,
                                  (size_t)cfg->batch_max, ct->engine, deadletter);
        if (!ct->consumer)
            return -EIO;
        if (pthread_create(&ct->thread, NULL, consumer_main, ct) != 0)
            return -EAGAIN;
        ct->started = true;
    }
    return 0;
}

static void stop_consumers(struct consumer_thread *cts, long n)
{
    stopping = 1;
    for (long i = 0; cts && i < n; i++) {
        if (cts[i].started)
            pthread_join(cts[i].thread, NULL);
        cc_consumer_free(cts[i].consumer); /* commits stored offsets, leaves the group */
        router_engine_free(cts[i].engine);
    }
    free(cts);
}

int main(int argc, char **argv)
{
    struct router_config cfg = {0};
    cc_config_arena *arena = NULL;
    struct cc_bus_config bus;
    struct router_engine_config ecfg;
    struct consumer_thread *cts = NULL;
    router_live_listener *listener = NULL;
    router_outbox *outbox = NULL;
    router_ticker *ticker = NULL;
    router_api_live *api_live = NULL;
    router_api *api = NULL;
    cc_producer *deadletter = NULL;
    cc_http *srv = NULL;
    char err[256] = "";
    cc_metrics *metrics;
    router_store *store;
    cc_auth *auth;
    sigset_t stop;
    int sig = 0, rc = EXIT_FAILURE;

    cc_config_main(argc, argv, ROUTER_SERVICE, router_config_vars, router_config_nvars, &cfg,
                   &cfg.common, ROUTER_DEFAULT_HTTP_PORT, &arena);
    if (router_schedule_init() < 0) /* before any thread: see router_schedule.h */
        goto out_config;
    stop = block_stop_signals();
    auth = cc_auth_new(cfg.common.auth_tokens, err, sizeof(err));
    if (!auth) {
        CC_ERROR("bad CC_AUTH_TOKENS: %s", err);
        goto out_config;
    }
    metrics = cc_metrics_new();
    if (!metrics)
        goto out_auth;
    store =
        router_store_new(cfg.common.pg_dsn, (unsigned)cfg.pg_pool_size, cfg.pg_acquire_timeout_ms);
    if (!store)
        goto out_metrics;
    if (router_store_migrate(store, cfg.migrations_dir) < 0) {
        CC_ERROR("cannot migrate schema 'router' from '%s'", cfg.migrations_dir);
        goto out_store;
    }
    if (cc_bus_config_load(&bus, &cfg.common) < 0)
        goto out_store;
    ecfg = (struct router_engine_config){.redis_url = cfg.common.redis_url,
                                         .pg_dsn = cfg.common.pg_dsn,
                                         .store = store,
                                         .instance = cfg.common.instance_id,
                                         .metrics = metrics,
                                         .tenants = cfg.tenants};

    listener = router_live_listen_start(cfg.common.pg_dsn, cfg.common.redis_url, store,
                                        cfg.common.instance_id);
    if (!listener)
        goto out_store;
    rc = wait_synced(listener, cfg.sync_timeout_ms, &stop);
    if (rc < 0) {
        CC_ERROR("configuration not synced into redis: %s", strerror(-rc));
        rc = rc == -EINTR ? EXIT_SUCCESS : EXIT_FAILURE;
        goto out_listener;
    }
    rc = EXIT_FAILURE;
    outbox =
        router_outbox_start(&(struct router_outbox_config){.redis_url = cfg.common.redis_url,
                                                           .bus = &bus,
                                                           .instance = cfg.common.instance_id,
                                                           .batch = (int)cfg.outbox_batch,
                                                           .lease_ms = (int)cfg.outbox_lease_ms,
                                                           .metrics = metrics});
    if (!outbox)
        goto out_listener;
    ticker = router_ticker_start(&ecfg, cfg.tick_ms, 0, cfg.closed_keep_s);
    if (!ticker)
        goto out_outbox;

    srv = cc_http_new_common(ROUTER_SERVICE, &cfg.common, auth, metrics);
    if (!srv)
        goto out_ticker;
    api = router_api_new(srv, store);
    api_live = api ? router_api_live_new(srv, &ecfg, (unsigned)cfg.common.http_threads) : NULL;
    if (!api_live || cc_http_start(srv) < 0) {
        CC_ERROR("cannot serve http on %s:%ld", cfg.common.http_addr, cfg.common.http_port);
        goto out_http;
    }

    deadletter = cc_producer_new(&bus);
    cts = calloc((size_t)cfg.consumers, sizeof(*cts));
    if (!deadletter || !cts ||
        start_consumers(cts, cfg.consumers, &cfg, &bus, &ecfg, deadletter) < 0) {
        CC_ERROR("cannot start the kafka consumers of group '%s'", cfg.consumer_group);
        goto out_consumers;
    }
    if (wait_assigned(cts, cfg.consumers, cfg.sync_timeout_ms, &stop) < 0) {
        rc = EXIT_SUCCESS; /* stopped while joining the group: a clean exit */
        goto out_consumers;
    }
    CC_INFO("router '%s' routing: http %s:%d, %ld consumer(s) in group '%s', %zu token(s)",
            cfg.common.instance_id, cfg.common.http_addr, cc_http_port(srv), cfg.consumers,
            cfg.consumer_group, cc_auth_count(auth));
    sigwait(&stop, &sig);
    CC_INFO("stopping on signal %s", strsignal(sig));
    rc = EXIT_SUCCESS;
out_consumers:
    stop_consumers(cts, cfg.consumers);
    cc_producer_free(deadletter);
out_http:
    cc_http_free(srv); /* waits for in-flight handlers */
    router_api_live_free(api_live);
    router_api_free(api);
out_ticker:
    router_ticker_stop(ticker);
out_outbox:
    router_outbox_stop(outbox, (int)cfg.drain_ms);
out_listener:
    router_live_listen_stop(listener);
out_store:
    router_store_free(store);
out_metrics:
    cc_metrics_free(metrics);
out_auth:
    cc_auth_free(auth);
out_config:
    cc_config_free(arena);
    return rc;
}
