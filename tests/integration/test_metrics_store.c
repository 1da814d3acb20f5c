/*
 * metrics_store against the stack's PostgreSQL, without the service around it: the staged batch
 * (metrics_store_batch_begin / _stage / _commit) as the ingest drives it, one message at a time
 * with each fact released as soon as it is staged. Checks the in-batch id set beyond its first
 * table size, the batch-to-batch deduplication and the COPY escaping of free text.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_pg.h"
#include "cc_time.h"
#include "itest.h"
#include "metrics_config.h"
#include "metrics_ingest.h"
#include "metrics_store.h"

#define MS_EVENTS 1500 /* beyond the id table's first 1024 slots (grows at 512 ids) */

static metrics_store *ms_store;
static cc_pg *ms_pg;
static char ms_tenant[64];

static void ms_init(void)
{
    struct metrics_config cfg = {.sl_default_s = 20, .short_abandon_s = {10, 5, 5, 5}};
    char dir[1024];

    itest_unique(ms_tenant, sizeof(ms_tenant), "mst");
    snprintf(dir, sizeof(dir), "%s/services/metrics-aggregator/migrations",
             itest_env("CC_TEST_TOP"));
    ms_store = metrics_store_new(itest_env("CC_PG_DSN"), &cfg);
    cr_assert_not_null(ms_store, "expected a store connected to CC_PG_DSN");
    cr_assert_eq(metrics_store_migrate(ms_store, dir), 0, "expected the migrations of %s", dir);
    ms_pg = cc_pg_new(itest_env("CC_PG_DSN"));
    cr_assert_not_null(ms_pg, "expected a second connection for the checks");
}

static void ms_fini(void)
{
    metrics_store_free(ms_store);
    cc_pg_free(ms_pg);
}

TestSuite(metrics_store, .init = ms_init, .fini = ms_fini, .timeout = 120);

/* Parses a created event of interaction "<tenant>-ix-<i>" with event id "<tenant>-<i>" (the
 * channel as given, already JSON-escaped) into *f. */
static void ms_created(struct metrics_fact *f, int i, const char *channel_json)
{
    char msg[1024], when[CC_TIME_ISO8601_LEN], err[256];

    cc_time_format_iso8601(cc_time_now_ms() - 3600 * 1000 + i, when);
    snprintf(msg, sizeof(msg),
             "{\"specversion\":\"1.0\",\"id\":\"%s-%d\",\"source\":\"/test\",\"type\":"
             "\"cc.interaction.created\",\"time\":\"%s\",\"subject\":\"%s-ix-%d\",\"tenant\":"
             "\"%s\",\"data\":{\"channel\":\"%s\",\"direction\":\"inbound\",\"queue_id\":\"q1\","
             "\"from\":\"+49301\",\"to\":\"+49302\",\"priority\":0}}",
             ms_tenant, i, when, ms_tenant, i, ms_tenant, channel_json);
    cr_assert_eq(metrics_fact_parse(msg, strlen(msg), f, err, sizeof(err)), 0,
                 "expected event %d to parse: %s", i, err);
}

static long ms_count(const char *sql)
{
    const char *params[] = {ms_tenant};
    PGresult *res = cc_pg_query(ms_pg, sql, 1, params);
    long v;

    cr_assert_not_null(res, "expected the query to run: %s", sql);
    v = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* Stages events [0, n) twice each, one fact at a time, released after staging; commits. */
static struct metrics_store_result ms_batch_twice(int n)
{
    struct metrics_store_result res = {0};
    struct metrics_fact f;

    metrics_store_batch_begin(ms_store);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < n; i++) {
            ms_created(&f, i, "voice");
            cr_assert_eq(metrics_store_stage(ms_store, &f), 0, "expected event %d staged", i);
            metrics_fact_clear(&f);
        }
    }
    cr_assert_eq(metrics_store_commit(ms_store, &res), 0, "expected the batch committed");
    return res;
}

Test(metrics_store, applies_each_id_once_when_a_batch_repeats_more_ids_than_its_first_table)
{
    struct metrics_store_result res = ms_batch_twice(MS_EVENTS);

    cr_expect_eq(res.applied, MS_EVENTS, "expected %d applied, got %zu", MS_EVENTS, res.applied);
    cr_expect_eq(res.duplicates, MS_EVENTS, "expected %d in-batch repeats, got %zu", MS_EVENTS,
                 res.duplicates);
    cr_expect_eq(ms_count("SELECT count(*) FROM metrics.interactions WHERE tenant = $1"), MS_EVENTS,
                 "expected one interaction row per created event");

    res = ms_batch_twice(MS_EVENTS); /* a redelivery: every id is known to events_seen */
    cr_expect_eq(res.applied, 0, "expected nothing applied again, got %zu", res.applied);
    cr_expect_eq(res.duplicates, 2 * MS_EVENTS, "expected every staged event a duplicate, got %zu",
                 res.duplicates);
    cr_expect_eq(ms_count("SELECT COALESCE(sum(entered), 0) FROM metrics.rollup WHERE tenant = "
                          "$1"),
                 MS_EVENTS, "expected each interaction entered once");
}

Test(metrics_store, keeps_tabs_newlines_and_backslashes_of_free_text_through_copy)
{
    struct metrics_store_result res = {0};
    struct metrics_fact f;
    const char *params[2] = {ms_tenant, NULL};
    char subject[96];
    PGresult *q;

    metrics_store_batch_begin(ms_store);
    ms_created(&f, 90000, "a\\tb\\nc\\rd\\\\e\\\\N"); /* JSON for a<TAB>b<LF>c<CR>d\e\N */
    cr_assert_eq(metrics_store_stage(ms_store, &f), 0, "expected the event staged");
    metrics_fact_clear(&f);
    cr_assert_eq(metrics_store_commit(ms_store, &res), 0, "expected the batch committed");
    cr_expect_eq(res.applied, 1, "expected the event applied");

    snprintf(subject, sizeof(subject), "%s-ix-90000", ms_tenant);
    params[1] = subject;
    q = cc_pg_query(ms_pg,
                    "SELECT channel FROM metrics.interactions WHERE tenant = $1 AND "
                    "interaction_id = $2",
                    2, params);
    cr_assert(q && PQntuples(q) == 1, "expected the interaction row");
    cr_expect_str_eq(PQgetvalue(q, 0, 0), "a\tb\nc\rd\\e\\N",
                     "expected the channel byte for byte, got '%s'", PQgetvalue(q, 0, 0));
    PQclear(q);
}

Test(metrics_store, commits_nothing_for_a_batch_of_ignored_events)
{
    struct metrics_store_result res = {.applied = 7, .duplicates = 7};
    struct metrics_fact f = {.kind = METRICS_KIND_IGNORE};

    metrics_store_batch_begin(ms_store);
    cr_assert_eq(metrics_store_stage(ms_store, &f), 0, "expected an ignored fact skipped");
    cr_assert_eq(metrics_store_commit(ms_store, &res), 0, "expected an empty batch to succeed");
    cr_expect_eq(res.applied + res.duplicates, 0, "expected an empty result");
}
