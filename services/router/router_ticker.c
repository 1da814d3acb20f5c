/* router_ticker: due timers -> router_engine_timer (see the header). */
#include "router_ticker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc_log.h"
#include "cc_time.h"
#include "router_live.h"

struct router_ticker {
    pthread_t thread;
    atomic_int stop;
    router_engine *engine;
    long period_ms;
    size_t batch;
    long closed_keep_s;
};

#define TICKER_PURGE_EVERY_MS 60000

int router_ticker_tick(router_engine *e, int64_t now_ms, size_t max, size_t *handled)
{
    struct router_timer *timers;
    size_t n = 0;
    int rc, first = 0;

    if (handled)
        *handled = 0;
    if (max == 0)
        return 0;
    timers = calloc(max, sizeof(*timers));
    if (!timers)
        return -ENOMEM;
    rc = ROUTER_ENGINE_RETRY_STALE(
        e, router_state_pop_due_timers(router_engine_state(e), now_ms, max, timers, &n));
    if (rc < 0) {
        free(timers);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        rc = router_engine_timer(e, &timers[i], now_ms);
        if (rc < 0) {
            CC_WARN("cannot handle timer '%s|%s|%s': %s", timers[i].kind, timers[i].tenant,
                    timers[i].id, strerror(-rc));
            if (!first)
                first = rc;
        }
    }
    if (handled)
        *handled = n;
    free(timers);
    return first;
}

static void *ticker_main(void *arg)
{
    router_ticker *t = arg;
    int64_t last_purge = cc_time_mono_ms();

    while (!atomic_load(&t->stop)) {
        if (cc_time_mono_ms() - last_purge > TICKER_PURGE_EVERY_MS) {
            router_live_purge(router_engine_live(t->engine), t->closed_keep_s);
            last_purge = cc_time_mono_ms();
        }
        size_t n = 0;
        int rc = router_ticker_tick(t->engine, cc_time_now_ms(), t->batch, &n);

        if (rc < 0 && n == 0)
            CC_DEBUG("timer tick failed: %s", strerror(-rc));
        if (n < t->batch) /* more may be due right away when the batch was full */
            usleep((useconds_t)t->period_ms * 1000);
    }
    return NULL;
}

router_ticker *router_ticker_start(const struct router_engine_config *cfg, long period_ms,
                                   size_t batch, long closed_keep_s)
{
    router_ticker *t;

    if (period_ms < 1 || period_ms > 60000) {
        CC_ERROR("ticker period %ld ms out of range 1..60000", period_ms);
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->period_ms = period_ms;
    t->batch = batch ? batch : ROUTER_TICKER_BATCH;
    t->closed_keep_s = closed_keep_s;
    t->engine = router_engine_new(cfg);
    if (!t->engine)
        goto out_free;
    if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
        CC_ERROR("cannot start the timer thread");
        goto out_engine;
    }
    return t;

out_engine:
    router_engine_free(t->engine);
out_free:
    free(t);
    return NULL;
}

void router_ticker_stop(router_ticker *t)
{
    if (!t)
        return;
    atomic_store(&t->stop, 1);
    pthread_join(t->thread, NULL);
    router_engine_free(t->engine);
    free(t);
}
