/*
 * Integration tests for the metrics-aggregator's REST API and live stream (metrics_api,
 * metrics_query, metrics_stream) against the stack's PostgreSQL: each test gets a schema of its
 * own with the service's migrations applied, rows written there with SQL, and the real HTTP
 * layer (cc_http) on a free port with the real modules behind it. The cc.metrics snapshots are
 * tested end to end: the real cc-metrics-aggregator (itest_metrics), events through the bus,
 * snapshots read back from the topic. Every expected figure is computed by hand in the comments
 * next to the rows.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_bus.h"
#include "cc_http.h"
#include "cc_pg.h"
#include "cc_pg_pool.h"
#include "cc_time.h"
#include "itest.h"
#include "itest_bus.h"
#include "itest_http.h"
#include "itest_metrics.h"
#include "metrics_api.h"
#include "metrics_config.h"
#include "metrics_kpi.h"

#define MA_SUP     "ma-supervisor-token" /* tenant ta, supervisor */
#define MA_ANALYST "ma-analyst-token"    /* tenant ta, analyst */
#define MA_AGENT   "ma-agent-token"      /* tenant ta, agent: 403 */
#define MA_OTHER   "ma-other-token"      /* tenant tb, supervisor */
#define MA_LIVE    "ma-live-token"       /* tenant tl, analyst */
#define MA_EMPTY   "ma-empty-token"      /* tenant te, analyst */

static char ma_schema[64];
static cc_pg *ma_pg;
static cc_pg_pool *ma_pool;
static cc_auth *ma_auth;
static cc_http *ma_srv;
static metrics_api *ma_api;
static struct metrics_config ma_cfg;
static int ma_port;
static struct itest_metrics ma_svc; /* the real service, for the snapshot test only */
static bool ma_svc_used;

static void ma_exec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ma_exec(const char *fmt, ...)
{
    char sql[4096], search[128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    snprintf(search, sizeof(search), "SET search_path TO %s", ma_schema);
    cr_assert_eq(cc_pg_exec(ma_pg, search, 0, NULL), 0);
    cr_assert_eq(cc_pg_exec(ma_pg, sql, 0, NULL), 0, "expected the SQL to run: %s", sql);
}

static void ma_setup(void)
{
    char spec[1024], err[256] = "", h[6][65], dir[512];
    const char *toks[6] = {MA_SUP, MA_ANALYST, MA_AGENT, MA_OTHER, MA_LIVE, MA_EMPTY};
    int applied = 0;

    itest_unique(ma_schema, sizeof(ma_schema), "ma");
    ma_pg = cc_pg_new(itest_env("CC_PG_DSN"));
    cr_assert_not_null(ma_pg, "expected PostgreSQL at CC_PG_DSN");
    snprintf(dir, sizeof(dir), "%s/services/metrics-aggregator/migrations",
             itest_env("CC_TEST_TOP"));
    cr_assert_eq(cc_pg_migrate(ma_pg, ma_schema, dir, &applied), 0,
                 "expected the service's migrations to apply to schema %s", ma_schema);
    cr_assert(applied >= 1);

    for (int i = 0; i < 6; i++)
        cr_assert_eq(cc_auth_hash_token(toks[i], h[i]), 0);
    snprintf(spec, sizeof(spec),
             "%s:ta:supervisor,%s:ta:analyst,%s:ta:agent:a1,%s:tb:supervisor,%s:tl:analyst,"
             "%s:te:analyst",
             h[0], h[1], h[2], h[3], h[4], h[5]);
    ma_auth = cc_auth_new(spec, err, sizeof(err));
    cr_assert_not_null(ma_auth, "expected the token spec to parse: %s", err);
    ma_pool = cc_pg_pool_new(itest_env("CC_PG_DSN"), 3, 2000);
    cr_assert_not_null(ma_pool);
    ma_srv = cc_http_new(&(struct cc_http_config){.addr = "127.0.0.1", .auth = ma_auth});
    cr_assert_not_null(ma_srv);
    ma_cfg = (struct metrics_config){.fcr_days = 7,
                                     .sl_default_s = 20,
                                     .stream_interval_ms = 200,
                                     .snapshot_interval_s = 0,
                                     .timezone = "UTC"};
    ma_cfg.common.instance_id = "itest";
    ma_api = metrics_api_new_schema(ma_srv, ma_pool, NULL, &ma_cfg, ma_schema);
    cr_assert_not_null(ma_api);
    cr_assert_eq(cc_http_start(ma_srv), 0);
    ma_port = cc_http_port(ma_srv);
}

static void ma_teardown(void)
{
    char sql[128];

    if (ma_svc_used)
        itest_metrics_teardown(&ma_svc); /* kills a service a failed test left running */
    metrics_api_free(ma_api);
    cc_http_free(ma_srv);
    cc_pg_pool_free(ma_pool);
    cc_auth_free(ma_auth);
    if (ma_pg) {
        snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", ma_schema);
        cc_pg_exec(ma_pg, sql, 0, NULL);
        cc_pg_free(ma_pg);
    }
}

TestSuite(metrics_api, .init = ma_setup, .fini = ma_teardown, .timeout = 60);

/* ---- fixtures ------------------------------------------------------------------------------ */

/*
 * Interval data of tenant ta on 2026-11-22 (UTC buckets):
 *   R1 09:00 q1/a1/voice: entered 3, answered 2 (1 in SL, waits 30000), abandoned 1 (in SL),
 *      1 short abandon, abandon waits 8000, max wait 25000, handled 2 (talk 200000, hold 10000),
 *      2 wrap-ups 40000, 1 transfer, 2 dispositions (1 conversion), CSAT 4+5, NPS 10,9,3.
 *   R2 09:15 q1/a2/chat: answered 1 in SL (5000), max wait 40000, handled 1 (talk 100000),
 *      1 wrap-up 20000, first response 12345 ms, resolution 600001 ms.
 *   R3 10:00 q2/a1/voice: answered 1 not in SL (50000), max 50000, handled 1 (talk 60000, hold
 *      5000), 1 wrap-up 15000.
 *   tenant tb 09:00 q1/a9: answered 100 (must never show).
 * Codes: 09:00 q1/a1 disposition sale 1, callback 1, contact_reason billing 2; 10:00 q2/a1
 * contact_reason billing 1.
 * Agent states: a1 09:00 available 300000, busy 400000, wrap_up 100000, not_ready/lunch 100000;
 * a2 09:15 available 600000, busy 300000; a1 10:00 busy 900000.
 */
static void ma_interval_rows(void)
{
    ma_exec("INSERT INTO rollup (tenant, bucket, queue_id, agent_id, channel, entered, answered, "
            "answered_in_sl, answer_wait_ms_sum, abandoned, abandoned_in_sl, abandoned_short, "
            "abandon_wait_ms_sum, max_wait_ms, handled, talk_ms_sum, hold_ms_sum, wrapup_count, "
            "wrapup_ms_sum, transfers, dispositions, conversions, csat_count, csat_sum, "
            "csat_satisfied, nps_count, nps_promoters, nps_detractors) VALUES "
            "('ta', '2026-11-22T09:00Z', 'q1', 'a1', 'voice', 3, 2, 1, 30000, 1, 1, 1, 8000, "
            "25000, 2, 200000, 10000, 2, 40000, 1, 2, 1, 2, 9, 2, 3, 2, 1)");
    ma_exec("INSERT INTO rollup (tenant, bucket, queue_id, agent_id, channel, answered, "
            "answered_in_sl, answer_wait_ms_sum, max_wait_ms, handled, talk_ms_sum, wrapup_count, "
            "wrapup_ms_sum, first_response_count, first_response_ms_sum, resolution_count, "
            "resolution_ms_sum) VALUES ('ta', '2026-11-22T09:15Z', 'q1', 'a2', 'chat', 1, 1, "
            "5000, 40000, 1, 100000, 1, 20000, 1, 12345, 1, 600001)");
    ma_exec("INSERT INTO rollup (tenant, bucket, queue_id, agent_id, channel, answered, "
            "answer_wait_ms_sum, max_wait_ms, handled, talk_ms_sum, hold_ms_sum, wrapup_count, "
            "wrapup_ms_sum) VALUES ('ta', '2026-11-22T10:00Z', 'q2', 'a1', 'voice', 1, 50000, "
            "50000, 1, 60000, 5000, 1, 15000), ('tb', '2026-11-22T09:00Z', 'q1', 'a9', 'voice', "
            "100, 0, 0, 0, 0, 0, 0, 0)");
    ma_exec("INSERT INTO code_rollup (tenant, bucket, queue_id, agent_id, channel, kind, code, "
            "count) VALUES ('ta', '2026-11-22T09:00Z', 'q1', 'a1', 'voice', 'disposition', "
            "'sale', 1), ('ta', '2026-11-22T09:00Z', 'q1', 'a1', 'voice', 'disposition', "
            "'callback', 1), ('ta', '2026-11-22T09:00Z', 'q1', 'a1', 'voice', 'contact_reason', "
            "'billing', 2), ('ta', '2026-11-22T10:00Z', 'q2', 'a1', 'voice', 'contact_reason', "
            "'billing', 1)");
    ma_exec("INSERT INTO agent_state_rollup (tenant, bucket, agent_id, state, reason_code, ms) "
            "VALUES ('ta', '2026-11-22T09:00Z', 'a1', 'available', '', 300000), ('ta', "
            "'2026-11-22T09:00Z', 'a1', 'busy', '', 400000), ('ta', '2026-11-22T09:00Z', 'a1', "
            "'wrap_up', '', 100000), ('ta', '2026-11-22T09:00Z', 'a1', 'not_ready', 'lunch', "
            "100000), ('ta', '2026-11-22T09:15Z', 'a2', 'available', '', 600000), ('ta', "
            "'2026-11-22T09:15Z', 'a2', 'busy', '', 300000), ('ta', '2026-11-22T10:00Z', 'a1', "
            "'busy', '', 900000)");
}

static json_t *ma_get(const char *path, const char *token, int want)
{
    struct itest_http_reply r;

    itest_http_fetch(ma_port, "GET", path, token, NULL, NULL, &r);
    return itest_http_expect_json(&r, want);
}

static void ma_expect_bad(const char *path, const char *param)
{
    struct itest_http_reply r;
    json_t *doc;

    itest_http_fetch(ma_port, "GET", path, MA_SUP, NULL, NULL, &r);
    doc = itest_http_expect_problem(&r, 400);
    cr_assert(strstr(json_string_value(json_object_get(doc, "detail")), param) != NULL,
              "expected the 400 for %s to name '%s': %s", path, param, r.body);
    json_decref(doc);
}

/* The member of o at a dotted path ("kpis.asa_ms"), NULL when absent. */
static const json_t *ma_at(const json_t *o, const char *path)
{
    char buf[256], *cursor, *tok;
    const json_t *v = o;

    snprintf(buf, sizeof(buf), "%s", path);
    cursor = buf;
    while ((tok = strsep(&cursor, ".")) != NULL)
        v = json_object_get(v, tok);
    return v;
}

static json_int_t ma_int(const json_t *o, const char *path)
{
    const json_t *v = ma_at(o, path);

    cr_assert(json_is_integer(v), "expected an integer at %s", path);
    return json_integer_value(v);
}

static double ma_num(const json_t *o, const char *path)
{
    const json_t *v = ma_at(o, path);

    cr_assert(json_is_number(v), "expected a number at %s", path);
    return json_number_value(v);
}

static bool ma_is_null(const json_t *o, const char *path)
{
    return json_is_null(ma_at(o, path));
}

/* One expected figure of a document: at path, an integer, a number (to 1e-9) or null; why (may
 * be NULL) is the hand computation, shown when the figure is not as expected. */
struct ma_fig {
    const char *path;
    enum { MA_INT, MA_NUM, MA_NULL } kind;
    double want;
    const char *why;
};

/* Asserts every figure of figs[n] on o (what names o in the messages). */
static void ma_expect_figs(const json_t *o, const char *what, const struct ma_fig *figs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct ma_fig *f = &figs[i];
        const char *why = f->why ? f->why : "";

        if (f->kind == MA_INT)
            cr_assert_eq(ma_int(o, f->path), (json_int_t)f->want, "expected %s %s = %.0f %s", what,
                         f->path, f->want, why);
        else if (f->kind == MA_NUM)
            cr_assert_float_eq(ma_num(o, f->path), f->want, 1e-9, "expected %s %s = %g %s", what,
                               f->path, f->want, why);
        else
            cr_assert(ma_is_null(o, f->path), "expected %s %s null %s", what, f->path, why);
    }
}
#define MA_EXPECT_FIGS(o, what, figs) ma_expect_figs(o, what, figs, sizeof(figs) / sizeof(figs[0]))

static const char *ma_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    cr_assert_not_null(s, "expected a string '%s'", key);
    return s;
}

/* The interval fixture (ma_interval_rows), then GET path with token: the document (new
 * reference) and its rows (borrowed, into *rows), asserted to be nrows. */
static json_t *ma_intervals(const char *path, const char *token, size_t nrows, json_t **rows)
{
    json_t *doc;

    ma_interval_rows();
    doc = ma_get(path, token, 200);
    *rows = json_object_get(doc, "rows");
    cr_assert_eq(json_array_size(*rows), nrows, "expected %zu rows from %s", nrows, path);
    return doc;
}

/* ---- intervals ----------------------------------------------------------------------------- */

Test(metrics_api, hours_in_berlin_sum_the_quarter_hours_and_compute_every_kpi)
{
    json_t *doc, *rows, *r0, *r1, *tot;

    ma_interval_rows();
    doc = ma_get("/v1/metrics/intervals?from=2026-11-22T10:00:00%2B01:00&to=2026-11-22T12:00:00"
                 "%2B01:00&interval=1h&tz=Europe/Berlin",
                 MA_SUP, 200);
    cr_assert_str_eq(ma_str(doc, "from"), "2026-11-22T10:00:00+01:00");
    cr_assert_str_eq(ma_str(doc, "interval"), "1h");
    rows = json_object_get(doc, "rows");
    cr_assert_eq(json_array_size(rows), 2, "expected two hours with data");
    r0 = json_array_get(rows, 0);
    r1 = json_array_get(rows, 1);
    cr_assert_str_eq(ma_str(r0, "start"), "2026-11-22T10:00:00+01:00");
    cr_assert_str_eq(ma_str(r0, "end"), "2026-11-22T11:00:00+01:00");
    cr_assert_str_eq(ma_str(r1, "start"), "2026-11-22T11:00:00+01:00");
    /* R1 + R2 */
    static const struct ma_fig hour1_figs[] = {
        {"counts.answered", MA_INT, 3},
        {"counts.answered_in_sl", MA_INT, 2},
        {"counts.max_wait_ms", MA_INT, 40000, "expected the max, not a sum"},
        {"counts.entered", MA_INT, 3},
        {"counts.abandoned_short", MA_INT, 1},
        {"kpis.service_level", MA_NUM, 0.6667, "SL1 = 2/3"},
        {"kpis.service_level_2", MA_NUM, 0.75, "SL2 = (2+1)/(3+1)"},
        {"kpis.asa_ms", MA_INT, 11667, "ASA = 35000/3 rounded half up"},
        {"kpis.aht_ms", MA_INT, 123333, "AHT = (300000+10000+60000)/3"},
        {"kpis.avg_talk_ms", MA_INT, 100000},
        {"kpis.avg_hold_ms", MA_INT, 3333},
        {"kpis.avg_wrapup_ms", MA_INT, 20000, "60000/3 wrap-ups"},
        {"kpis.longest_wait_ms", MA_INT, 40000},
        {"kpis.abandon_rate", MA_NUM, 0.25, "1/(3+1)"},
        {"kpis.first_response_ms", MA_INT, 12345},
        {"kpis.resolution_ms", MA_INT, 600001},
        {"kpis.csat", MA_NUM, 1.0},
        {"kpis.csat_avg", MA_NUM, 4.5},
        {"kpis.nps", MA_NUM, 33.3333, "(2-1)/3*100"},
        {"kpis.conversion_rate", MA_NUM, 0.5},
        /* agent states over all agents: available 900000, busy 700000, wrap_up 100000,
         * lunch 100000 */
        {"counts.agent_state_ms.available", MA_INT, 900000},
        {"counts.agent_state_ms.not_ready.lunch", MA_INT, 100000},
        {"kpis.occupancy", MA_NUM, 0.4706, "800000/1700000"},
        {"kpis.utilisation", MA_NUM, 0.4444, "800000/1800000"},
        {"codes.disposition.sale", MA_INT, 1},
        {"codes.contact_reason.billing", MA_INT, 2},
    };
    MA_EXPECT_FIGS(r0, "the 10:00 hour (R1 + R2)", hour1_figs);
    /* R3 */
    static const struct ma_fig hour2_figs[] = {
        {"counts.answered", MA_INT, 1},
        {"kpis.service_level", MA_NUM, 0.0},
        {"kpis.aht_ms", MA_INT, 80000},
        {"kpis.csat", MA_NULL, 0, "expected null CSAT without surveys"},
        {"kpis.first_response_ms", MA_NULL, 0, "expected null without messages"},
    };
    MA_EXPECT_FIGS(r1, "the 11:00 hour (R3)", hour2_figs);
    /* totals: tenant tb's 100 answers never count */
    tot = json_object_get(doc, "totals");
    static const struct ma_fig totals_figs[] = {
        {"counts.answered", MA_INT, 4},
        {"kpis.service_level", MA_NUM, 0.5},
        {"kpis.asa_ms", MA_INT, 21250, "85000/4"},
        {"kpis.aht_ms", MA_INT, 112500, "450000/4"},
        {"counts.max_wait_ms", MA_INT, 50000},
        {"codes.contact_reason.billing", MA_INT, 3},
        {"kpis.occupancy", MA_NUM, 0.6538, "1700000/2600000"},
        {"kpis.utilisation", MA_NUM, 0.6296, "1700000/2700000"},
        {"fcr.contacts", MA_INT, 0},
        {"fcr.rate", MA_NULL, 0},
    };
    MA_EXPECT_FIGS(tot, "the totals", totals_figs);
    json_decref(doc);
}

Test(metrics_api, hours_align_to_the_local_hour_of_a_half_hour_zone)
{
    json_t *doc, *rows;

    /* Kolkata is +05:30: local 14:00-15:00 is 08:30Z-09:30Z (R1, R2), 15:00-16:00 holds R3 */
    doc = ma_intervals("/v1/metrics/intervals?from=2026-11-22T14:00:00%2B05:30"
                       "&to=2026-11-22T16:00:00%2B05:30&interval=1h&tz=Asia/Kolkata",
                       MA_SUP, 2, &rows);
    cr_assert_str_eq(ma_str(json_array_get(rows, 0), "start"), "2026-11-22T14:00:00+05:30");
    cr_assert_eq(ma_int(json_array_get(rows, 0), "counts.answered"), 3);
    cr_assert_str_eq(ma_str(json_array_get(rows, 1), "start"), "2026-11-22T15:00:00+05:30");
    cr_assert_eq(ma_int(json_array_get(rows, 1), "counts.answered"), 1);
    json_decref(doc);
}

Test(metrics_api, a_day_is_the_local_day_of_the_time_zone)
{
    json_t *doc, *rows;

    doc = ma_intervals("/v1/metrics/intervals?from=2026-11-22T00:00:00-05:00&to=2026-11-23T00:00:00"
                       "-05:00&interval=1d&tz=America/New_York",
                       MA_SUP, 1, &rows);
    cr_assert_str_eq(ma_str(json_array_get(rows, 0), "start"), "2026-11-22T00:00:00-05:00");
    cr_assert_str_eq(ma_str(json_array_get(rows, 0), "end"), "2026-11-23T00:00:00-05:00");
    cr_assert_eq(ma_int(json_array_get(rows, 0), "counts.answered"), 4);
    json_decref(doc);
}

Test(metrics_api, group_by_queue_and_agent_gives_one_row_per_bucket_and_pair)
{
    json_t *doc, *rows, *r0;

    doc = ma_intervals("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                       "&interval=15m&group_by=queue,agent",
                       MA_ANALYST, 3, &rows);
    r0 = json_array_get(rows, 0);
    cr_assert_str_eq(ma_str(r0, "start"), "2026-11-22T09:00:00Z");
    cr_assert_str_eq(ma_str(r0, "queue_id"), "q1");
    cr_assert_str_eq(ma_str(r0, "agent_id"), "a1");
    cr_assert_str_eq(ma_str(json_array_get(rows, 2), "queue_id"), "q2");
    /* agent time has no queue: not attributed to queue rows */
    cr_assert(ma_is_null(r0, "counts.agent_state_ms"));
    cr_assert(ma_is_null(r0, "kpis.occupancy"));
    cr_assert_eq(json_array_size(json_object_get(doc, "group_by")), 2);
    json_decref(doc);
}

Test(metrics_api, group_by_agent_carries_the_agents_state_time)
{
    json_t *doc, *rows, *r0;

    /* a1's two buckets */
    doc = ma_intervals("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                       "&group_by=agent&agent_id=a1",
                       MA_SUP, 2, &rows);
    r0 = json_array_get(rows, 0);
    cr_assert_str_eq(ma_str(r0, "agent_id"), "a1");
    cr_assert_eq(ma_int(r0, "counts.agent_state_ms.busy"), 400000);
    /* (400000 + 100000) / (400000 + 100000 + 300000) */
    cr_assert_float_eq(ma_num(r0, "kpis.occupancy"), 0.625, 1e-9);
    cr_assert_eq(ma_int(json_object_get(doc, "totals"), "counts.answered"), 3, "R1 + R3");
    json_decref(doc);
}

Test(metrics_api, filters_narrow_the_rows)
{
    json_t *doc;

    ma_interval_rows();
    doc = ma_get("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                 "&queue_id=q2&channel=voice",
                 MA_SUP, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "rows")), 1);
    cr_assert_eq(ma_int(json_object_get(doc, "totals"), "counts.answered"), 1);
    json_decref(doc);
}

Test(metrics_api, csv_has_a_header_and_one_line_per_row)
{
    struct itest_http_reply r;
    char ctype[128];
    const char *line2;

    ma_interval_rows();
    itest_http_fetch(ma_port, "GET",
                     "/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                     "&interval=1h&group_by=queue&format=csv",
                     MA_SUP, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "expected 200: %s", r.body);
    cr_assert_not_null(itest_http_header(&r, "Content-Type", ctype, sizeof(ctype)));
    cr_assert(strncmp(ctype, "text/csv", 8) == 0, "expected text/csv, got %s", ctype);
    cr_assert(strncmp(r.body, "start,end,queue_id,entered,answered,answered_in_sl,", 51) == 0,
              "expected the header first: %s", r.body);
    cr_assert(strstr(r.body, ",service_level,service_level_2,asa_ms,") != NULL);
    line2 = strstr(r.body, "\r\n");
    cr_assert_not_null(line2);
    /* entered 3, answered 3, in SL 2, waits 35000, abandoned 1, in SL 1, short 1, 8000, max */
    cr_assert(strncmp(line2 + 2,
                      "2026-11-22T09:00:00Z,2026-11-22T10:00:00Z,q1,3,3,2,35000,1,1,1,8000,40000,",
                      73) == 0,
              "expected the q1 hour: %s", line2 + 2);
    cr_assert(strstr(line2, ",0.6667,0.75,11667,") != NULL, "expected SL1, SL2, ASA: %s", line2);
    /* header + 2 rows, CRLF each */
    int lines = 0;
    for (const char *p = r.body; (p = strstr(p, "\r\n")); p += 2)
        lines++;
    cr_assert_eq(lines, 3);

    itest_http_fetch(ma_port, "GET",
                     "/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z",
                     MA_SUP, "Accept: text/csv\r\n", NULL, &r);
    cr_assert(strncmp(r.body, "start,end,entered,", 18) == 0, "expected CSV by Accept: %s", r.body);
}

Test(metrics_api, bad_parameters_are_400_naming_the_parameter)
{
    ma_expect_bad("/v1/metrics/intervals?to=2026-11-22T11:00:00Z", "from");
    ma_expect_bad("/v1/metrics/intervals?from=yesterday&to=2026-11-22T11:00:00Z", "from");
    ma_expect_bad("/v1/metrics/intervals?from=2026-11-22T09:00:00Z", "to");
    ma_expect_bad("/v1/metrics/intervals?from=2026-11-22T09:07:00Z&to=2026-11-22T11:00:00Z",
                  "from");
    ma_expect_bad("/v1/metrics/intervals?from=2026-11-22T11:00:00Z&to=2026-11-22T09:00:00Z", "to");
    ma_expect_bad("/v1/metrics/intervals?from=2026-01-01T00:00:00Z&to=2026-11-22T00:00:00Z",
                  "from");
    ma_expect_bad("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                  "&interval=5m",
                  "interval");
    ma_expect_bad("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                  "&group_by=queue,skill",
                  "group_by");
    ma_expect_bad("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                  "&tz=Mars/Olympus_Mons",
                  "tz");
    ma_expect_bad("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                  "&tz=../etc",
                  "tz");
    ma_expect_bad("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                  "&channel=fax",
                  "channel");
    ma_expect_bad("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                  "&format=xml",
                  "format");
    ma_expect_bad("/v1/metrics/fcr?from=2026-11-01T00:00:00Z&to=2026-11-22T00:00:00Z"
                  "&group_by=agent",
                  "group_by");
    ma_expect_bad("/v1/metrics/live?tz=Nowhere/Land", "tz");
    ma_expect_bad("/v1/metrics/outbound?campaign_id=bad%20id", "campaign_id");
}

Test(metrics_api, a_bad_time_zone_is_refused_before_any_query_runs)
{
    char path[] = "/tmp/ma-log-XXXXXX", log[65536];
    int saved = dup(2), fd = mkstemp(path);
    ssize_t n;
    json_t *doc;

    cr_assert(saved >= 0 && fd >= 0, "expected a temporary log file");
    /* everything this process logs while the bad zones are asked for */
    fflush(stderr);
    cr_assert_eq(dup2(fd, 2), 2);
    ma_expect_bad("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z"
                  "&tz=Mars/Olympus_Mons",
                  "tz");
    ma_expect_bad("/v1/metrics/fcr?from=2026-11-01T00:00:00Z&to=2026-11-22T00:00:00Z"
                  "&tz=Mars/Olympus_Mons",
                  "tz");
    ma_expect_bad("/v1/metrics/live?tz=Nowhere/Land", "tz");
    ma_expect_bad("/v1/metrics/stream?tz=Nowhere/Land", "tz");
    fflush(stderr);
    cr_assert_eq(dup2(saved, 2), 2);
    close(saved);
    n = pread(fd, log, sizeof(log) - 1, 0);
    close(fd);
    unlink(path);
    cr_assert(n >= 0);
    log[n] = '\0';
    cr_assert_null(strstr(log, "\"level\":\"error\""),
                   "expected no error logged for a bad tz (no query may run): %s", log);
    ma_expect_bad("/v1/metrics/live?tz=UTC%2B3", "tz"); /* a POSIX spec, not a zone name */
    /* PostgreSQL compares zone names case-insensitively, and so does the check */
    doc = ma_get("/v1/metrics/live?tz=europe/berlin", MA_SUP, 200);
    cr_assert_str_eq(ma_str(doc, "tz"), "europe/berlin");
    json_decref(doc);
}

Test(metrics_api, agents_are_refused_and_tenants_see_only_their_data)
{
    struct itest_http_reply r;
    json_t *doc;

    ma_interval_rows();
    itest_http_fetch(ma_port, "GET", "/v1/metrics/live", MA_AGENT, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 403));
    itest_http_fetch(ma_port, "GET", "/v1/metrics/live", NULL, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 401));
    doc = ma_get("/v1/metrics/intervals?from=2026-11-22T09:00:00Z&to=2026-11-22T11:00:00Z",
                 MA_OTHER, 200);
    cr_assert_eq(ma_int(json_object_get(doc, "totals"), "counts.answered"), 100,
                 "expected tenant tb's own figures only");
    json_decref(doc);
}

/* ---- FCR ----------------------------------------------------------------------------------- */

/*
 * Inbound contacts of tenant ta handled by an agent (N = 7 days):
 *   i1 c1 now-20d q1 voice {billing}: c1 calls again 2 days later (i2)   -> unresolved
 *   i2 c1 now-18d q1 chat  {tech}:    no later contact within 7 days     -> resolved
 *   i3 c2 now-15d q2 voice {billing}: none                                -> resolved
 *   i4 c3 now-1d  q1 voice {}:        the window is still open            -> pending
 *   i5 c4 now-12d outbound; i6 c5 now-12d never answered: not contacts.
 * All: contacts 4, resolved 2, unresolved 1, pending 1, rate 2/3 = 0.6667.
 * By contact reason (a repeat must share the reason): billing i1 (i2 is tech: resolved) and i3
 * -> 2 resolved; tech i2 -> 1 resolved; "" i4 -> pending.
 */
static void ma_fcr_rows(void)
{
    ma_exec("INSERT INTO interactions (tenant, interaction_id, channel, direction, queue_id, "
            "customer_id, created_at, answered_at, agent_id, contact_reasons) VALUES "
            "('ta', 'i1', 'voice', 'inbound', 'q1', 'c1', now() - interval '20 days', now() - "
            "interval '20 days', 'a1', '{billing}'), ('ta', 'i2', 'chat', 'inbound', 'q1', 'c1', "
            "now() - interval '18 days', now() - interval '18 days', 'a1', '{tech}'), ('ta', "
            "'i3', 'voice', 'inbound', 'q2', 'c2', now() - interval '15 days', now() - interval "
            "'15 days', 'a2', '{billing}'), ('ta', 'i4', 'voice', 'inbound', 'q1', 'c3', now() - "
            "interval '1 day', now() - interval '1 day', 'a1', '{}'), ('ta', 'i5', 'voice', "
            "'outbound', 'q1', 'c4', now() - interval '12 days', now() - interval '12 days', "
            "'a1', '{}'), ('ta', 'i6', 'voice', 'inbound', 'q1', 'c5', now() - interval '12 "
            "days', NULL, NULL, '{}'), ('tb', 'i1', 'voice', 'inbound', 'q1', 'c1', now() - "
            "interval '10 days', now() - interval '10 days', 'a1', '{}')");
}

static void ma_fcr_path(char *out, size_t cap, const char *group)
{
    char from[CC_TIME_ISO8601_LEN], to[CC_TIME_ISO8601_LEN];
    int64_t now = cc_time_now_ms();

    cc_time_format_iso8601(now - 30LL * 86400000, from);
    cc_time_format_iso8601(now + 60000, to);
    snprintf(out, cap, "/v1/metrics/fcr?from=%s&to=%s%s%s", from, to, group ? "&group_by=" : "",
             group ? group : "");
}

Test(metrics_api, fcr_counts_resolved_unresolved_and_pending_contacts)
{
    char path[256];
    json_t *doc, *tot;

    ma_fcr_rows();
    ma_fcr_path(path, sizeof(path), NULL);
    doc = ma_get(path, MA_SUP, 200);
    tot = json_object_get(doc, "totals");
    cr_assert_eq(ma_int(doc, "days"), 7);
    static const struct ma_fig fcr_figs[] = {
        {"contacts", MA_INT, 4}, {"resolved", MA_INT, 2},  {"unresolved", MA_INT, 1},
        {"pending", MA_INT, 1},  {"rate", MA_NUM, 0.6667},
    };
    MA_EXPECT_FIGS(tot, "the FCR totals", fcr_figs);
    json_decref(doc);

    ma_fcr_path(path, sizeof(path), "queue");
    doc = ma_get(path, MA_SUP, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "rows")), 2);
    cr_assert_str_eq(ma_str(json_array_get(json_object_get(doc, "rows"), 0), "queue_id"), "q1");
    cr_assert_float_eq(ma_num(json_array_get(json_object_get(doc, "rows"), 0), "rate"), 0.5, 1e-9,
                       "q1: i2 resolved, i1 not, i4 pending");
    json_decref(doc);
}

Test(metrics_api, fcr_by_contact_reason_needs_a_repeat_with_the_same_reason)
{
    char path[256];
    json_t *doc, *rows;

    ma_fcr_rows();
    ma_fcr_path(path, sizeof(path), "contact_reason");
    doc = ma_get(path, MA_SUP, 200);
    rows = json_object_get(doc, "rows");
    cr_assert_eq(json_array_size(rows), 3, "expected '', billing, tech");
    cr_assert_str_eq(ma_str(json_array_get(rows, 0), "contact_reason"), "");
    cr_assert_eq(ma_int(json_array_get(rows, 0), "pending"), 1);
    cr_assert(ma_is_null(json_array_get(rows, 0), "rate"));
    cr_assert_str_eq(ma_str(json_array_get(rows, 1), "contact_reason"), "billing");
    cr_assert_eq(ma_int(json_array_get(rows, 1), "resolved"), 2);
    cr_assert_float_eq(ma_num(json_array_get(rows, 1), "rate"), 1.0, 1e-9);
    cr_assert_eq(ma_int(json_object_get(doc, "totals"), "unresolved"), 1,
                 "expected the totals over contacts, whatever their reasons");
    json_decref(doc);
}

/* ---- outbound ------------------------------------------------------------------------------ */

Test(metrics_api, outbound_windows_are_the_last_24_hours_and_30_days)
{
    json_t *doc, *c;

    /* k1: 10/8/1 an hour ago, 5/4/1 five days ago, 100/100/100 forty days ago (outside) */
    ma_exec("INSERT INTO rollup (tenant, bucket, queue_id, campaign_id, outbound_attempts, "
            "outbound_connects, outbound_abandoned) VALUES "
            "('ta', to_timestamp(floor(extract(epoch FROM now() - interval '1 hour') / 900) * "
            "900), '', 'k1', 10, 8, 1), ('ta', to_timestamp(floor(extract(epoch FROM now() - "
            "interval '5 days') / 900) * 900), '', 'k1', 5, 4, 1), ('ta', to_timestamp(floor("
            "extract(epoch FROM now() - interval '40 days') / 900) * 900), '', 'k1', 100, 100, "
            "100), ('tb', to_timestamp(floor(extract(epoch FROM now() - interval '1 hour') / "
            "900) * 900), '', 'k1', 7, 7, 7)");
    doc = ma_get("/v1/metrics/outbound", MA_SUP, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "campaigns")), 1);
    c = json_array_get(json_object_get(doc, "campaigns"), 0);
    cr_assert_str_eq(ma_str(c, "campaign_id"), "k1");
    static const struct ma_fig k1_figs[] = {
        {"last_24h.attempts", MA_INT, 10},
        {"last_24h.connects", MA_INT, 8},
        {"last_24h.abandon_rate", MA_NUM, 0.125, "1/8"},
        {"last_30d.attempts", MA_INT, 15},
        {"last_30d.abandoned", MA_INT, 2},
        {"last_30d.abandon_rate", MA_NUM, 0.1667, "2/12"},
    };
    MA_EXPECT_FIGS(c, "campaign k1", k1_figs);
    json_decref(doc);

    doc = ma_get("/v1/metrics/outbound?campaign_id=k9", MA_SUP, 200);
    c = json_array_get(json_object_get(doc, "campaigns"), 0);
    cr_assert_str_eq(ma_str(c, "campaign_id"), "k9");
    cr_assert(ma_is_null(c, "last_30d.abandon_rate"), "expected null without connects");
    json_decref(doc);
}

/* ---- live ---------------------------------------------------------------------------------- */

/*
 * Tenant tl now: waiting q1 since 30 s and 10 s, q2 since 5 s. Agents: a1 available {q1}, a2
 * busy {q1,q2}, a3 not_ready/lunch {q1}, a4 logged out {q1}, a5 wrap_up {q2}. Today (the current
 * bucket): q1 answered 4 (3 in SL, waits 40000), abandoned 1, max 30000, handled 4 (talk 400000,
 * wrap-up 80000), CSAT 1 satisfied, NPS 1 promoter; q2 answered 1 in SL (2000), handled 1 (talk
 * 50000, wrap-up 10000). q1's SL threshold 30 s (queue_settings), q2 the default 20.
 *   q1: SL 3/4 = 0.75, ASA 10000, AHT 480000/4 = 120000, abandon 1/5 = 0.2; staffed a1 + a2 = 2,
 *       estimated wait 2 x 120000 / 2 = 120000.
 *   q2: AHT 60000, staffed a2 + a5 = 2, estimated wait 1 x 60000 / 2 = 30000.
 *   all: answered 5, SL 4/5 = 0.8, ASA 42000/5 = 8400, AHT 540000/5 = 108000, handled 5, CSAT 1,
 *       NPS 100; agents logged in 4 (a4 is out).
 */
static void ma_live_rows(void)
{
    ma_exec("INSERT INTO live_waiting (tenant, interaction_id, queue_id, channel, since) VALUES "
            "('tl', 'w1', 'q1', 'voice', now() - interval '30 seconds'), ('tl', 'w2', 'q1', "
            "'voice', now() - interval '10 seconds'), ('tl', 'w3', 'q2', 'chat', now() - "
            "interval '5 seconds')");
    ma_exec("INSERT INTO live_agents (tenant, agent_id, state, reason_code, since, queue_ids, "
            "updated_at) VALUES ('tl', 'a1', 'available', '', now(), '{q1}', now()), ('tl', 'a2', "
            "'busy', '', now(), '{q1,q2}', now()), ('tl', 'a3', 'not_ready', 'lunch', now(), "
            "'{q1}', now()), ('tl', 'a4', 'logged_out', '', now(), '{q1}', now()), ('tl', 'a5', "
            "'wrap_up', '', now(), '{q2}', now())");
    ma_exec("INSERT INTO rollup (tenant, bucket, queue_id, agent_id, channel, answered, "
            "answered_in_sl, answer_wait_ms_sum, abandoned, max_wait_ms, handled, talk_ms_sum, "
            "wrapup_count, wrapup_ms_sum, csat_count, csat_sum, csat_satisfied, nps_count, "
            "nps_promoters) VALUES ('tl', to_timestamp(floor(extract(epoch FROM now()) / 900) * "
            "900), 'q1', 'a1', 'voice', 4, 3, 40000, 1, 30000, 4, 400000, 4, 80000, 1, 5, 1, 1, "
            "1), ('tl', to_timestamp(floor(extract(epoch FROM now()) / 900) * 900), 'q2', 'a2', "
            "'chat', 1, 1, 2000, 0, 2000, 1, 50000, 1, 10000, 0, 0, 0, 0, 0)");
    ma_exec("INSERT INTO queue_settings (tenant, queue_id, sl_threshold_s, updated_at) VALUES "
            "('tl', 'q1', 30, now())");
}

Test(metrics_api, live_shows_waiting_agents_and_todays_kpis)
{
    json_t *doc, *q1, *q2;

    ma_live_rows();
    doc = ma_get("/v1/metrics/live?access_token=" MA_LIVE, NULL, 200);
    cr_assert_str_eq(ma_str(doc, "tz"), "UTC");
    cr_assert_eq(json_array_size(json_object_get(doc, "queues")), 2);
    q1 = json_array_get(json_object_get(doc, "queues"), 0);
    q2 = json_array_get(json_object_get(doc, "queues"), 1);
    cr_assert_str_eq(ma_str(q1, "queue_id"), "q1");
    cr_assert_eq(ma_int(q1, "waiting"), 2);
    cr_assert(ma_int(q1, "oldest_wait_ms") >= 30000 && ma_int(q1, "oldest_wait_ms") < 40000,
              "expected the oldest wait of about 30 s, got %lld",
              (long long)ma_int(q1, "oldest_wait_ms"));
    static const struct ma_fig live_q1_figs[] = {
        {"agents.logged_in", MA_INT, 3},       {"agents.available", MA_INT, 1},
        {"agents.reserved", MA_INT, 0},        {"agents.not_ready_by_reason.lunch", MA_INT, 1},
        {"today.answered", MA_INT, 4},         {"today.service_level", MA_NUM, 0.75},
        {"today.asa_ms", MA_INT, 10000},       {"today.aht_ms", MA_INT, 120000},
        {"today.abandon_rate", MA_NUM, 0.2},   {"today.longest_wait_ms", MA_INT, 30000},
        {"estimated_wait_ms", MA_INT, 120000}, {"sl_threshold_s", MA_INT, 30},
    };
    MA_EXPECT_FIGS(q1, "live q1", live_q1_figs);
    cr_assert_eq(ma_int(q2, "agents.wrap_up"), 1);
    cr_assert_eq(ma_int(q2, "estimated_wait_ms"), 30000);
    cr_assert_eq(ma_int(q2, "sl_threshold_s"), 20);
    static const struct ma_fig live_figs[] = {
        {"agents.logged_in", MA_INT, 4}, {"today.answered", MA_INT, 5},
        {"today.handled", MA_INT, 5},    {"today.service_level", MA_NUM, 0.8},
        {"today.asa_ms", MA_INT, 8400},  {"today.aht_ms", MA_INT, 108000},
        {"today.csat", MA_NUM, 1.0},     {"today.nps", MA_NUM, 100.0},
    };
    MA_EXPECT_FIGS(doc, "the live view", live_figs);
    json_decref(doc);

    /* another tenant sees none of it */
    doc = ma_get("/v1/metrics/live", MA_SUP, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "queues")), 0);
    json_decref(doc);
}

/* ---- stream -------------------------------------------------------------------------------- */

/* The JSON of the data line of event id in buf (new reference). */
static json_t *ma_event(const char *buf, int id)
{
    char head[64];
    const char *at, *data, *end;
    json_error_t jerr;
    json_t *doc;

    snprintf(head, sizeof(head), "id: %d\nevent: snapshot\ndata: ", id);
    at = strstr(buf, head);
    cr_assert_not_null(at, "expected event %d in the stream: %s", id, buf);
    data = at + strlen(head);
    end = strchr(data, '\n');
    cr_assert_not_null(end);
    doc = json_loadb(data, (size_t)(end - data), 0, &jerr);
    cr_assert_not_null(doc, "expected JSON data in event %d: %s", id, jerr.text);
    return doc;
}

Test(metrics_api, the_stream_sends_the_view_at_once_and_again_when_it_changes)
{
    static char buf[65536];
    size_t have = 0;
    json_t *ev;
    int fd = itest_http_connect(ma_port);

    ma_live_rows();
    itest_http_request(fd, "GET", "/v1/metrics/stream?access_token=" MA_LIVE, NULL, NULL, NULL);
    cr_assert(itest_http_read_until(fd, buf, sizeof(buf), &have, "\n\n", 5000) &&
                  itest_http_read_until(fd, buf, sizeof(buf), &have, "id: 1\n", 5000),
              "expected the first event at once: %s", buf);
    cr_assert(strstr(buf, "Content-Type: text/event-stream") != NULL);
    itest_http_read_until(fd, buf, sizeof(buf), &have, "}\n\n", 2000);
    ev = ma_event(buf, 1);
    cr_assert_eq(ma_int(json_array_get(json_object_get(ev, "queues"), 0), "waiting"), 2);
    json_decref(ev);

    ma_exec("INSERT INTO live_waiting (tenant, interaction_id, queue_id, channel, since) VALUES "
            "('tl', 'w4', 'q1', 'voice', now())");
    cr_assert(itest_http_read_until(fd, buf, sizeof(buf), &have, "\"waiting\":3", 5000),
              "expected an event with 3 waiting in q1");
    close(fd);
}

Test(metrics_api, the_stream_stays_quiet_while_nothing_changes)
{
    static char buf[65536];
    size_t have = 0;
    int fd = itest_http_connect(ma_port);

    itest_http_request(fd, "GET", "/v1/metrics/stream", MA_EMPTY, NULL, NULL);
    cr_assert(itest_http_read_until(fd, buf, sizeof(buf), &have, "id: 1\n", 5000),
              "expected event 1");
    /* five stream intervals with nothing new: no second event */
    cr_assert_not(itest_http_read_until(fd, buf, sizeof(buf), &have, "id: 2\n", 1000),
                  "expected no event while the view is unchanged: %s", buf);
    ma_exec("INSERT INTO live_agents (tenant, agent_id, state, reason_code, since, queue_ids, "
            "updated_at) VALUES ('te', 'a1', 'available', '', now(), '{q9}', now())");
    cr_assert(itest_http_read_until(fd, buf, sizeof(buf), &have, "id: 2\n", 5000),
              "expected event 2 after an agent logged in");
    close(fd);
}

/* ---- wallboard ----------------------------------------------------------------------------- */

Test(metrics_api, the_wallboard_is_served_without_a_token)
{
    struct itest_http_reply r;
    char h[256];

    itest_http_fetch(ma_port, "GET", "/wallboard/", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "expected the page: %d", r.status);
    cr_assert_not_null(itest_http_header(&r, "Content-Type", h, sizeof(h)));
    cr_assert(strncmp(h, "text/html", 9) == 0, "expected HTML, got %s", h);
    cr_assert(strstr(r.body, "<html") || strstr(r.body, "<!doctype") || strstr(r.body, "<!DOCTYPE"),
              "expected an HTML page");
    itest_http_fetch(ma_port, "GET", "/wallboard/wallboard.js", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    itest_http_fetch(ma_port, "GET", "/wallboard/wallboard.css", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    itest_http_fetch(ma_port, "GET", "/wallboard/secret.txt", NULL, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 404));
    itest_http_fetch(ma_port, "GET", "/wallboard?token=a%20b%26c", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 301);
    cr_assert_not_null(itest_http_header(&r, "Location", h, sizeof(h)));
    cr_assert_str_eq(h, "/wallboard/?token=a%20b%26c");
}

/* ---- cc.metrics snapshots (the real service) ------------------------------------------------ */

/* What the cc.metrics consumer saw of the test's tenant. */
struct ma_snaps {
    const char *tenant;
    int64_t after_ms; /* snapshots built from here on reflect every event of the test */
    json_t *first;    /* queue id -> {"key", "envelope"}: the first snapshot after after_ms */
    json_t *ids;      /* envelope id -> true, every snapshot of the tenant */
    json_t *queues;   /* queue id -> snapshots of the tenant (any time) */
    int duplicates;
};

static enum cc_bus_verdict ma_snap_handler(void *ctx, const struct cc_bus_msg *m, char *reason,
                                           size_t reasonlen)
{
    struct ma_snaps *sn = ctx;
    json_t *env = json_loadb(m->value, m->len, 0, NULL);
    const char *tenant = json_string_value(json_object_get(env, "tenant"));
    const char *id = json_string_value(json_object_get(env, "id"));
    const char *subject = json_string_value(json_object_get(env, "subject"));
    int64_t at = 0;

    (void)reason, (void)reasonlen;
    if (!tenant || strcmp(tenant, sn->tenant) != 0 || !id || !subject) {
        json_decref(env);
        return CC_BUS_OK; /* another test's tenant */
    }
    if (json_object_get(sn->ids, id))
        sn->duplicates++;
    json_object_set_new(sn->ids, id, json_true());
    metrics_kpi_add_int(sn->queues, subject, 1);
    cc_time_parse_iso8601(json_string_value(json_object_get(env, "time")), &at);
    if (sn->after_ms && at >= sn->after_ms && !json_object_get(sn->first, subject))
        json_object_set_new(sn->first, subject,
                            json_pack("{s:s%, s:O}", "key", m->key ? (const char *)m->key : "",
                                      m->key ? m->keylen : 0, "envelope", env));
    json_decref(env);
    return CC_BUS_OK;
}

/* Checks doc against a JSON Schema's "type", "required" and "properties" (recursively; $ref
 * and the value constraints are the unit test's business: tests/unit/proto). */
static void ma_schema_check(const json_t *schema, const json_t *doc, const char *where)
{
    static const struct {
        const char *name;
        json_type t;
    } types[] = {{"object", JSON_OBJECT},   {"array", JSON_ARRAY}, {"string", JSON_STRING},
                 {"integer", JSON_INTEGER}, {"number", JSON_REAL}, {"null", JSON_NULL}};
    const json_t *type = json_object_get(schema, "type"), *req, *props, *sub;
    const char *name;
    bool ok = !type;
    size_t i;

    for (size_t k = 0; type && k < 1 + json_array_size(type); k++) {
        const char *tn = json_is_string(type) ? json_string_value(type)
                                              : json_string_value(json_array_get(type, k));
        for (size_t j = 0; tn && j < sizeof(types) / sizeof(types[0]); j++)
            ok = ok || (strcmp(tn, types[j].name) == 0 &&
                        (json_typeof(doc) == types[j].t ||
                         (types[j].t == JSON_REAL && json_is_integer(doc))));
        if (json_is_string(type))
            break;
    }
    cr_assert(ok, "expected %s to be of the schema's type", where);
    json_array_foreach(json_object_get(schema, "required"), i, req)
        cr_assert_not_null(json_object_get(doc, json_string_value(req)),
                           "expected the required member %s.%s", where, json_string_value(req));
    props = json_object_get(schema, "properties");
    json_object_foreach((json_t *)props, name, sub)
    {
        char path[256];
        const json_t *v = json_object_get(doc, name);

        snprintf(path, sizeof(path), "%s.%s", where, name);
        if (v)
            ma_schema_check(sub, v, path);
    }
}

/* The first snapshot of queue after sn->after_ms: its envelope, checked against the envelope's
 * rules and the schema. */
static json_t *ma_snapshot_of(const struct ma_snaps *sn, const char *queue, const json_t *schema)
{
    json_t *got = json_object_get(sn->first, queue), *env, *data;

    cr_assert_not_null(got, "expected a cc.metrics snapshot of queue %s", queue);
    env = json_object_get(got, "envelope");
    cr_assert_str_eq(json_string_value(json_object_get(got, "key")), queue,
                     "expected the message keyed by the queue id");
    cr_assert_str_eq(ma_str(env, "type"), "cc.metrics.snapshot");
    cr_assert_str_eq(ma_str(env, "subject"), queue, "expected the queue id as subject");
    cr_assert_str_eq(ma_str(env, "tenant"), ma_svc.tenant);
    cr_assert_str_eq(ma_str(env, "specversion"), "1.0");
    cr_assert(strncmp(ma_str(env, "source"), "/metrics-aggregator/", 20) == 0,
              "expected the service as source: %s", ma_str(env, "source"));
    data = json_object_get(env, "data");
    ma_schema_check(schema, data, "data");
    cr_assert_str_eq(ma_str(data, "queue_id"), queue);
    cr_assert_str_eq(ma_str(data, "tz"), ma_svc.tz);
    return data;
}

/*
 * The service with CC_METRICS_SNAPSHOT_S=1, its own tenant, events through the bus (times from
 * base = 3 h ago, the same local day in the fixture's zone):
 *   agents: a1 logged in at 0, available in sq1; a2 logged in at 0, not_ready/lunch in sq1, sq2.
 *   S1 sq1 (SL 30 s): queued 0, answered by a1 at 12 s (wait 12000), ended at 72 s (talk 60000).
 *   S2 sq1 queued at 100 s, S3 sq2 queued at 200 s: both still waiting.
 * sq1: waiting 1 (oldest: now - (base + 100 s)), agents logged_in 2, available 1, not_ready 1
 *      (lunch), today answered 1, SL 1, ASA 12000, AHT 60000, abandon rate 0, longest wait
 *      12000, estimated wait 1 x 60000 / 1 staffed = 60000, SL threshold 30.
 * sq2: waiting 1, agents logged_in 1 (a2, not ready), nothing answered today: SL, ASA, AHT,
 *      estimated wait null; SL threshold the default 20.
 */
Test(metrics_api, the_service_publishes_one_snapshot_per_queue_on_cc_metrics, .timeout = 150)
{
    static const char *const topics[] = {CC_TOPIC_METRICS};
    static const char *const env[] = {"CC_METRICS_SNAPSHOT_S=1", NULL};
    struct ma_snaps sn = {.first = json_object(), .ids = json_object(), .queues = json_object()};
    struct cc_bus_config bus;
    char group[96], schema_path[512];
    json_t *schema, *q1, *q2;
    json_error_t jerr;
    cc_consumer *c;
    int64_t until;

    itest_metrics_setup(&ma_svc, "mas");
    ma_svc_used = true;
    sn.tenant = ma_svc.tenant;
    snprintf(schema_path, sizeof(schema_path), "%s/proto/schemas/cc.metrics.snapshot.schema.json",
             itest_env("CC_TEST_TOP"));
    schema = json_load_file(schema_path, 0, &jerr);
    cr_assert_not_null(schema, "expected the snapshot schema: %s", jerr.text);

    /* a reader of cc.metrics from its end, joined before the service publishes anything */
    itest_unique(group, sizeof(group), "mas-snap");
    cr_assert_eq(itest_group_at_end(group, topics, 1), 0);
    cc_bus_config_defaults(&bus);
    bus.brokers = itest_env("CC_KAFKA_BROKERS");
    bus.client_id = "itest-metrics-snapshots";
    bus.session_timeout_ms = 6000;
    bus.heartbeat_interval_ms = 1000;
    bus.fetch_wait_max_ms = 10;
    bus.devbroker_control = getenv("CC_DEVBROKER_CONTROL");
    c = cc_consumer_new(&bus, group, topics, 1, ma_snap_handler, &sn, ma_svc.producer);
    cr_assert_not_null(c, "expected a consumer of cc.metrics");

    itest_metrics_start(&ma_svc, env);
    itest_metrics_send(&ma_svc, CC_TOPIC_AGENTS, "cc.agent.logged_in", "a1", 0,
                       "{'capacity':{'voice':1},'queue_ids':['sq1'],'state':'available'}", 1);
    itest_metrics_send(&ma_svc, CC_TOPIC_AGENTS, "cc.agent.logged_in", "a2", 0,
                       "{'capacity':{'voice':1},'queue_ids':['sq1','sq2'],'state':'not_ready',"
                       "'reason_code':'lunch'}",
                       2);
    itest_metrics_send(
        &ma_svc, CC_TOPIC_INTERACTIONS, "cc.interaction.created", "S1", 0,
        "{'channel':'voice','direction':'inbound','queue_id':'sq1','from':'+4930111',"
        "'to':'+4930222','priority':0}",
        3);
    itest_metrics_send(&ma_svc, CC_TOPIC_INTERACTIONS, "cc.interaction.queued", "S1", 0,
                       "{'queue_id':'sq1','priority':0,'sl_threshold_s':30}", 4);
    itest_metrics_send(&ma_svc, CC_TOPIC_INTERACTIONS, "cc.interaction.answered", "S1", 12000,
                       "{'answered_by':'agent','agent_id':'a1','queue_id':'sq1','wait_ms':12000}",
                       5);
    itest_metrics_send(&ma_svc, CC_TOPIC_INTERACTIONS, "cc.interaction.ended", "S1", 72000,
                       "{'ended_by':'customer','talk_ms':60000,'hold_ms':0,'duration_ms':72000,"
                       "'agent_id':'a1','queue_id':'sq1'}",
                       6);
    itest_metrics_send(
        &ma_svc, CC_TOPIC_INTERACTIONS, "cc.interaction.created", "S2", 100000,
        "{'channel':'voice','direction':'inbound','queue_id':'sq1','from':'+4930111',"
        "'to':'+4930222','priority':0}",
        7);
    itest_metrics_send(&ma_svc, CC_TOPIC_INTERACTIONS, "cc.interaction.queued", "S2", 100000,
                       "{'queue_id':'sq1','priority':0,'sl_threshold_s':30}", 8);
    itest_metrics_send(
        &ma_svc, CC_TOPIC_INTERACTIONS, "cc.interaction.created", "S3", 200000,
        "{'channel':'voice','direction':'inbound','queue_id':'sq2','from':'+4930111',"
        "'to':'+4930222','priority':0}",
        9);
    itest_metrics_send(&ma_svc, CC_TOPIC_INTERACTIONS, "cc.interaction.queued", "S3", 200000,
                       "{'queue_id':'sq2','priority':0}", 10);
    itest_metrics_wait_caught_up(&ma_svc);
    cr_assert_eq(itest_metrics_applied(&ma_svc), 10, "expected the 10 events applied");
    /* a round that starts a full period after the events were applied shows all of them */
    sn.after_ms = cc_time_now_ms() + 1100;

    until = cc_time_mono_ms() + 30000;
    while (json_object_size(sn.first) < 2 && cc_time_mono_ms() < until)
        cr_assert_geq(cc_consumer_poll(c, 100), 0, "expected no fatal consumer error");
    cc_consumer_free(c);

    cr_assert_eq(json_object_size(sn.queues), 2,
                 "expected snapshots of sq1 and sq2 only, got %zu queues",
                 json_object_size(sn.queues));
    cr_assert_eq(sn.duplicates, 0, "expected each snapshot once");
    q1 = ma_snapshot_of(&sn, "sq1", schema);
    q2 = ma_snapshot_of(&sn, "sq2", schema);
    cr_assert_eq(ma_int(q1, "waiting"), 1);
    cr_assert(ma_int(q1, "oldest_wait_ms") >= 3 * 3600 * 1000LL - 100000,
              "expected S2's wait since base + 100 s, got %lld",
              (long long)ma_int(q1, "oldest_wait_ms"));
    static const struct ma_fig sq1_figs[] = {
        {"agents.logged_in", MA_INT, 2},
        {"agents.available", MA_INT, 1},
        {"agents.not_ready", MA_INT, 1},
        {"agents.not_ready_by_reason.lunch", MA_INT, 1},
        {"today.answered", MA_INT, 1},
        {"today.abandoned", MA_INT, 0},
        {"today.service_level", MA_NUM, 1.0},
        {"today.asa_ms", MA_INT, 12000},
        {"today.aht_ms", MA_INT, 60000},
        {"today.abandon_rate", MA_NUM, 0.0},
        {"today.longest_wait_ms", MA_INT, 12000},
        {"estimated_wait_ms", MA_INT, 60000},
        {"sl_threshold_s", MA_INT, 30},
    };
    MA_EXPECT_FIGS(q1, "the snapshot of sq1", sq1_figs);
    static const struct ma_fig sq2_figs[] = {
        {"waiting", MA_INT, 1},          {"agents.logged_in", MA_INT, 1},
        {"agents.not_ready", MA_INT, 1}, {"agents.available", MA_INT, 0},
        {"today.answered", MA_INT, 0},
    };
    MA_EXPECT_FIGS(q2, "the snapshot of sq2", sq2_figs);
    cr_assert(ma_is_null(q2, "today.service_level") && ma_is_null(q2, "today.aht_ms"),
              "expected null KPIs without answers");
    cr_assert(ma_is_null(q2, "estimated_wait_ms"), "expected no estimate without an AHT");
    cr_assert_eq(ma_int(q2, "sl_threshold_s"), 20);

    itest_metrics_stop(&ma_svc);
    json_decref(schema);
    json_decref(sn.first);
    json_decref(sn.ids);
    json_decref(sn.queues);
}
