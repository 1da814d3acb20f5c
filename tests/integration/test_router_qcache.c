/*
 * Integration tests of the queue change feed that keeps the engines' queue caches fresh
 * (router_store_queue_changed / _generation / _changes) and of its producer, the configuration
 * listener of router_live: a queue written in PostgreSQL shows in the feed once the NOTIFY has
 * arrived, which is what makes an engine re-read that queue on its next request.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cc_time.h"
#include "itest.h"
#include "router_live.h"
#include "router_store.h"

#define QC_SEEN_MAX 512

struct qc_seen {
    size_t n, all; /* entries recorded; "every queue" entries */
    char key[QC_SEEN_MAX][160];
};

static router_store *qc_store;
static char qc_tenant[80];
static struct qc_seen qc_seen;

static void qc_setup(void)
{
    char dir[512];

    itest_unique(qc_tenant, sizeof(qc_tenant), "qc");
    qc_store = router_store_new(itest_env("CC_PG_DSN"), 2, 5000);
    cr_assert_not_null(qc_store, "expected a store on CC_PG_DSN");
    snprintf(dir, sizeof(dir), "%s/services/router/migrations", itest_env("CC_TEST_TOP"));
    cr_assert_eq(router_store_migrate(qc_store, dir), 0, "expected the migrations of %s", dir);
    memset(&qc_seen, 0, sizeof(qc_seen));
}

static void qc_teardown(void)
{
    router_store_free(qc_store);
}

TestSuite(router_qcache, .init = qc_setup, .fini = qc_teardown, .timeout = 60);

static void qc_collect(void *arg, const char *tenant, const char *queue_id)
{
    struct qc_seen *s = arg;

    if (!tenant || !queue_id) {
        s->all++;
        return;
    }
    if (s->n < QC_SEEN_MAX)
        snprintf(s->key[s->n++], sizeof(s->key[0]), "%s/%s", tenant, queue_id);
}

static bool qc_saw(const char *tenant, const char *queue_id)
{
    char key[160];

    snprintf(key, sizeof(key), "%s/%s", tenant, queue_id);
    for (size_t i = 0; i < qc_seen.n; i++) {
        if (strcmp(qc_seen.key[i], key) == 0)
            return true;
    }
    return false;
}

Test(router_qcache, lists_each_change_after_a_generation_once)
{
    uint64_t g0 = router_store_queue_generation(qc_store), g;

    router_store_queue_changed(qc_store, qc_tenant, "q1");
    router_store_queue_changed(qc_store, qc_tenant, "q2");
    cr_assert_eq(router_store_queue_generation(qc_store), g0 + 2, "expected two new generations");
    g = router_store_queue_changes(qc_store, g0, qc_collect, &qc_seen);
    cr_assert_eq(g, g0 + 2, "expected the reader to reach the newest generation");
    cr_assert_eq(qc_seen.n, 2, "expected exactly the two changes, got %zu", qc_seen.n);
    cr_assert(qc_saw(qc_tenant, "q1") && qc_saw(qc_tenant, "q2"), "expected q1 and q2 listed");
    cr_assert_eq(qc_seen.all, 0, "expected no 'every queue' entry");

    memset(&qc_seen, 0, sizeof(qc_seen));
    g = router_store_queue_changes(qc_store, g, qc_collect, &qc_seen);
    cr_assert_eq(qc_seen.n + qc_seen.all, 0, "expected nothing new for an up-to-date reader");

    router_store_queue_changed(qc_store, NULL, NULL);
    router_store_queue_changes(qc_store, g, qc_collect, &qc_seen);
    cr_assert_eq(qc_seen.all, 1, "expected the 'every queue' entry");
}

Test(router_qcache, tells_a_reader_too_far_behind_that_everything_changed)
{
    uint64_t g0 = router_store_queue_generation(qc_store);

    for (int i = 0; i < 300; i++) {
        char q[16];
        snprintf(q, sizeof(q), "q%d", i);
        router_store_queue_changed(qc_store, qc_tenant, q);
    }
    router_store_queue_changes(qc_store, g0, qc_collect, &qc_seen);
    cr_assert_eq(qc_seen.all, 1, "expected one 'every queue' entry for a reader 300 behind");
    cr_assert_eq(qc_seen.n, 0, "expected no single entries instead");
}

Test(router_qcache, the_listener_feeds_a_queue_written_in_postgresql, .timeout = 90)
{
    router_live_listener *l;
    struct router_queue q = {.channels = 0xf,
                             .strategy = ROUTER_STRAT_LONGEST_IDLE,
                             .ring_timeout_s = 20,
                             .sl_threshold_s = 20,
                             .ring_progressive_interval_s = 5,
                             .no_agent_action = ROUTER_NOAGENT_JOIN};
    int64_t deadline;
    uint64_t g0;

    l = router_live_listen_start(itest_env("CC_PG_DSN"), itest_env("CC_REDIS_URL"), qc_store,
                                 "itest-qcache");
    cr_assert_not_null(l, "expected the listener to start");
    deadline = cc_time_mono_ms() + 60000;
    while (!router_live_listen_synced(l) && cc_time_mono_ms() < deadline)
        usleep(50 * 1000);
    cr_assert(router_live_listen_synced(l), "expected the listener's first full sync");
    g0 = router_store_queue_generation(qc_store);

    snprintf(q.id, sizeof(q.id), "qc-queue");
    snprintf(q.name, sizeof(q.name), "feed");
    snprintf(q.timezone, sizeof(q.timezone), "UTC");
    snprintf(q.closed_reason, sizeof(q.closed_reason), "closed");
    cr_assert_eq(router_store_queue_create(qc_store, qc_tenant, &q), 0, "expected the queue");
    router_queue_clear(&q);

    deadline = cc_time_mono_ms() + 10000;
    do {
        usleep(20 * 1000);
        g0 = router_store_queue_changes(qc_store, g0, qc_collect, &qc_seen);
    } while (!qc_saw(qc_tenant, "qc-queue") && cc_time_mono_ms() < deadline);
    router_live_listen_stop(l);
    cr_assert(qc_saw(qc_tenant, "qc-queue"),
              "expected the NOTIFY of the new queue to reach the feed within 10 s");
}
