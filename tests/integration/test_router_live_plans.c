/*
 * Integration tests of the plans PostgreSQL makes for the statements the router runs for every
 * interaction (router_live_row_statements): each must reach its rows through the primary key of
 * router.interactions alone, whatever the table's statistics. Measured before this held: on a
 * young, never analysed table the route batch hashed every closed row through
 * interactions_closed and the 'assigned' update read every open row of the tenant through
 * interactions_open; once analysed with a day of closed rows, the batch read the whole table
 * sequentially -- per route, so a route cost O(calls of the day).
 *
 * Each case gets a database of its own (the router's migrations applied), so that its
 * statistics are exactly the ones set up here; the plans are generic (force_generic_plan),
 * the kind a prepared statement keeps for the life of the router's connection. The same
 * fixture serves router_live_rows (a poll's row changes in one transaction, below).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "itest.h"
#include "router_live.h"
#include "router_store.h"

static char lp_db[80];
static char lp_dsn[512];

static void lp_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);

    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "expected '%.80s' to run: %s", sql,
              PQerrorMessage(c));
    PQclear(r);
}

static PGconn *lp_connect(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);

    cr_assert(PQstatus(c) == CONNECTION_OK, "expected a connection to '%s': %s", dsn,
              PQerrorMessage(c));
    return c;
}

/* A database of its own with the router's schema in it. */
static void lp_setup(void)
{
    router_store *st;
    PGconn *c;
    char sql[160], dir[512];

    itest_unique(lp_db, sizeof(lp_db), "plans");
    c = lp_connect(itest_env("CC_PG_DSN"));
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0", lp_db);
    lp_exec(c, sql);
    PQfinish(c);
    /* in a conninfo string the last value of a keyword wins */
    snprintf(lp_dsn, sizeof(lp_dsn), "%s dbname=%s", itest_env("CC_PG_DSN"), lp_db);
    st = router_store_new(lp_dsn, 1, 5000);
    cr_assert_not_null(st, "expected a store on %s", lp_dsn);
    snprintf(dir, sizeof(dir), "%s/services/router/migrations", itest_env("CC_TEST_TOP"));
    cr_assert_eq(router_store_migrate(st, dir), 0, "expected the migrations of %s", dir);
    router_store_free(st);
}

static void lp_teardown(void)
{
    PGconn *c = PQconnectdb(itest_env("CC_PG_DSN"));
    char sql[160];

    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", lp_db);
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

TestSuite(router_live_plans, .init = lp_setup, .fini = lp_teardown, .timeout = 60);

/* Prepares every row statement on a new session of the case's database and checks its
 * generic plan: the primary key, and no partial index or sequential scan of the table. */
static void lp_check_plans(const char *when)
{
    const struct router_live_statement *sts;
    PGconn *c = lp_connect(lp_dsn);
    size_t n;

    sts = router_live_row_statements(&n);
    cr_assert_geq(n, 7, "expected the route batch and the six updates, got %zu", n);
    lp_exec(c, "SET plan_cache_mode = force_generic_plan");
    for (size_t i = 0; i < n; i++) {
        char sql[256], plan[8192] = "";
        size_t len = 0;
        PGresult *r = PQprepare(c, sts[i].name, sts[i].sql, sts[i].nparams, NULL);

        cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "expected %s to prepare: %s", sts[i].name,
                     PQerrorMessage(c));
        PQclear(r);
        /* EXPLAIN without ANALYZE runs nothing; '1' reads as text, int and jsonb alike */
        len = (size_t)snprintf(sql, sizeof(sql), "EXPLAIN EXECUTE %s(", sts[i].name);
        for (int p = 0; p < sts[i].nparams; p++)
            len += (size_t)snprintf(sql + len, sizeof(sql) - len, p ? ", '1'" : "'1'");
        snprintf(sql + len, sizeof(sql) - len, ")");
        r = PQexec(c, sql);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "expected a plan of %s: %s", sts[i].name,
                     PQerrorMessage(c));
        len = 0;
        for (int row = 0; row < PQntuples(r) && len < sizeof(plan) - 1; row++)
            len += (size_t)snprintf(plan + len, sizeof(plan) - len, "%s\n", PQgetvalue(r, row, 0));
        PQclear(r);
        cr_expect(strstr(plan, "interactions_pkey") != NULL,
                  "%s: expected %s to reach its row by the primary key, plan:\n%s", when,
                  sts[i].name, plan);
        cr_expect(strstr(plan, "interactions_open") == NULL &&
                      strstr(plan, "interactions_closed") == NULL &&
                      strstr(plan, "Seq Scan on interactions") == NULL,
                  "%s: expected %s to read no other rows than its own, plan:\n%s", when,
                  sts[i].name, plan);
    }
    PQfinish(c);
}

Test(router_live_plans, per_interaction_statements_use_the_primary_key_on_a_young_table)
{
    lp_check_plans("empty, never analysed table");
}

Test(router_live_plans, per_interaction_statements_use_the_primary_key_after_a_day_of_calls)
{
    PGconn *c = lp_connect(lp_dsn);

    /* a day's shape: thousands of closed rows kept as tombstones, a few open ones */
    lp_exec(c, "INSERT INTO router.interactions (tenant, id, queue_id, channel, state, agent_id, "
               "enqueued_ms) SELECT 't1', 'i' || g, 'q1', 'voice', CASE WHEN g <= 5 THEN "
               "'waiting' WHEN g <= 10 THEN 'assigned' ELSE 'ended' END, CASE WHEN g > 5 AND "
               "g <= 10 THEN 'a1' END, g FROM generate_series(1, 5000) g");
    lp_exec(c, "ANALYZE router.interactions");
    PQfinish(c);
    lp_check_plans("5,000 rows, 4,990 closed, analysed");
}

/* The row changes of a poll's facts go as one transaction (router_live_rows); a row that
 * cannot be written (here: assigned without an agent, which the table's CHECK refuses) rolls
 * it back, and then each row is written alone: only that one fails. */
TestSuite(router_live_rows, .init = lp_setup, .fini = lp_teardown, .timeout = 60);

/* The state and agent of interaction id of tenant t1, as "state/agent". */
static void lp_expect_row(PGconn *c, const char *id, const char *want)
{
    char got[64];
    PGresult *r = PQexecParams(c,
                               "SELECT state || '/' || coalesce(agent_id, '-') FROM "
                               "router.interactions WHERE tenant = 't1' AND id = $1",
                               1, NULL, (const char *const[]){id}, NULL, NULL, 0);

    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1,
              "expected the row of %s: %s", id, PQerrorMessage(c));
    snprintf(got, sizeof(got), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    cr_expect_str_eq(got, want, "expected %s to be %s", id, want);
}

Test(router_live_rows, a_batch_writes_every_row_it_can_and_fails_only_the_others)
{
    PGconn *c = lp_connect(lp_dsn);
    router_live *lv = router_live_new(lp_dsn);
    const struct router_live_row ok[] = {
        {.closed = false, .tenant = "t1", .ix = "i3", .agent_id = "a3"},
        {.closed = true, .tenant = "t1", .ix = "i1"},
        {.closed = false, .tenant = "t1", .ix = "i2", .agent_id = "a2"},
    };
    const struct router_live_row bad[] = {
        {.closed = true, .tenant = "t1", .ix = "i5"},
        {.closed = false, .tenant = "t1", .ix = "i4", .agent_id = NULL},
        {.closed = false, .tenant = "t1", .ix = "i6", .agent_id = "a6"},
    };
    int rcs[3] = {1, 1, 1};

    cr_assert_not_null(lv, "expected a connection");
    lp_exec(c, "INSERT INTO router.interactions (tenant, id, queue_id, channel, enqueued_ms) "
               "SELECT 't1', 'i' || g, 'q1', 'chat', g FROM generate_series(1, 6) g");
    cr_assert_eq(router_live_rows(lv, ok, 3, rcs), 0, "expected the three rows written");
    cr_assert(rcs[0] == 0 && rcs[1] == 0 && rcs[2] == 0, "expected every row's result 0");
    lp_expect_row(c, "i1", "ended/-");
    lp_expect_row(c, "i2", "assigned/a2");
    lp_expect_row(c, "i3", "assigned/a3");

    cr_assert_eq(router_live_rows(lv, bad, 3, rcs), -EIO, "expected the batch to report a failure");
    cr_assert(rcs[0] == 0 && rcs[1] == -EIO && rcs[2] == 0,
              "expected only the row without an agent to fail, got %d %d %d", rcs[0], rcs[1],
              rcs[2]);
    lp_expect_row(c, "i4", "waiting/-");
    lp_expect_row(c, "i5", "ended/-");
    lp_expect_row(c, "i6", "assigned/a6");
    router_live_free(lv);
    PQfinish(c);
}
