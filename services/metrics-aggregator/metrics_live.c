/* metrics_live: the live view from the live tables and today's rollups (see the header). */
#include "metrics_live.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_log.h"
#include "metrics_kpi.h"
#include "metrics_sql.h"

struct metrics_live {
    char schema[METRICS_SQL_SCHEMA_MAX + 1];
    int sl_default_s;
};

/* One queue of the view while it is assembled. */
struct ml_queue {
    char *id;
    int64_t waiting, oldest_since_ms; /* oldest_since_ms 0: nobody waits */
    int64_t c[METRICS_C_COUNT];       /* today's counters */
    json_t *agents;
    int64_t sl_s;
};

struct ml_queues {
    struct ml_queue *v;
    size_t n, cap;
};

/* ---- lifecycle ------------------------------------------------------------------------------ */

metrics_live *metrics_live_new(const struct metrics_live_config *cfg)
{
    const char *schema = cfg && cfg->schema ? cfg->schema : "metrics";
    metrics_live *lv;

    if (!cfg || !metrics_sql_schema_valid(schema) || cfg->sl_default_s < 0) {
        CC_ERROR("bad metrics live config: schema '%s', sl_default_s %d", schema,
                 cfg ? cfg->sl_default_s : 0);
        return NULL;
    }
    lv = calloc(1, sizeof(*lv));
    if (!lv)
        return NULL;
    snprintf(lv->schema, sizeof(lv->schema), "%s", schema);
    lv->sl_default_s = cfg->sl_default_s;
    return lv;
}

void metrics_live_free(metrics_live *lv)
{
    free(lv);
}

/* ---- assembling ----------------------------------------------------------------------------- */

static json_t *ml_agents_new(void)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:{}}", "logged_in", 0, "available", 0,
                     "reserved", 0, "busy", 0, "wrap_up", 0, "not_ready", 0, "not_ready_by_reason");
}

static void ml_agents_add(json_t *ag, const char *state, const char *reason, int64_t n)
{
    metrics_kpi_add_int(ag, "logged_in", n);
    if (strcmp(state, "not_ready") == 0)
        metrics_kpi_add_int(json_object_get(ag, "not_ready_by_reason"), reason, n);
    metrics_kpi_add_int(ag, state, n); /* an unknown state gets its own key */
}

/* The queue id of qs, made on first sight. NULL on ENOMEM. */
static struct ml_queue *ml_queue(struct ml_queues *qs, const char *id, int sl_default)
{
    struct ml_queue *qq;

    for (size_t i = 0; i < qs->n; i++)
        if (strcmp(qs->v[i].id, id) == 0)
            return &qs->v[i];
    if (qs->n == qs->cap) {
        size_t ncap = qs->cap ? 2 * qs->cap : 16;
        struct ml_queue *grown = realloc(qs->v, ncap * sizeof(*grown));
        if (!grown)
            return NULL;
        qs->v = grown;
        qs->cap = ncap;
    }
    qq = &qs->v[qs->n];
    memset(qq, 0, sizeof(*qq));
    qq->id = strdup(id);
    qq->agents = ml_agents_new();
    qq->sl_s = sl_default;
    if (!qq->id || !qq->agents) {
        free(qq->id);
        json_decref(qq->agents);
        return NULL;
    }
    qs->n++;
    return qq;
}

static void ml_queues_free(struct ml_queues *qs)
{
    for (size_t i = 0; i < qs->n; i++) {
        free(qs->v[i].id);
        json_decref(qs->v[i].agents);
    }
    free(qs->v);
}

static int ml_queue_cmp(const void *pa, const void *pb)
{
    return strcmp(((const struct ml_queue *)pa)->id, ((const struct ml_queue *)pb)->id);
}

/* Staffed agents of a queue: available, reserved, busy or wrap_up. */
static int64_t ml_staffed(const json_t *ag)
{
    int64_t n = 0;

    for (size_t i = 0; i < METRICS_KPI_NSTAFFED; i++)
        n += json_integer_value(json_object_get(ag, metrics_kpi_staffed[i]));
    return n;
}

static json_t *ml_queue_json(const struct ml_queue *qq, int64_t now_ms)
{
    json_t *today = metrics_kpi_today(qq->c, false);
    json_t *aht = json_object_get(today, "aht_ms");
    int64_t staffed = ml_staffed(qq->agents);
    json_t *est = json_is_integer(aht) ? metrics_kpi_ms(qq->waiting * json_integer_value(aht),
                                                        staffed > 1 ? staffed : 1)
                                       : json_null();

    return json_pack(
        "{s:s, s:I, s:o, s:o, s:O, s:o, s:I}", "queue_id", qq->id, "waiting",
        (json_int_t)qq->waiting, "oldest_wait_ms",
        qq->waiting > 0
            ? json_integer(now_ms - qq->oldest_since_ms > 0 ? now_ms - qq->oldest_since_ms : 0)
            : json_null(),
        "estimated_wait_ms", est, "agents", qq->agents, "today", today ? today : json_object(),
        "sl_threshold_s", (json_int_t)qq->sl_s);
}

/* ---- loading -------------------------------------------------------------------------------- */

/* [day start, next day start) of now in tz, as ISO UTC strings; -EINVAL for an unknown zone. */
static int ml_day(cc_pg *pg, int64_t now_ms, const char *tz, char *day_from, char *day_to)
{
    char now[CC_TIME_ISO8601_LEN];
    const char *v[2] = {now, tz};
    PGresult *r;
    int rc;

    metrics_sql_utc(now_ms, now);
    rc = metrics_sql_exec(pg,
                          "SELECT (extract(epoch FROM d) * 1000)::bigint, (extract(epoch FROM ((d "
                          "AT TIME ZONE $2) + interval '1 day') AT TIME ZONE $2) * 1000)::bigint "
                          "FROM (SELECT date_trunc('day', $1::timestamptz, $2) AS d) x",
                          2, v, &r);
    if (rc < 0)
        return rc;
    metrics_sql_utc(metrics_sql_int(r, 0, 0), day_from);
    metrics_sql_utc(metrics_sql_int(r, 0, 1), day_to);
    PQclear(r);
    return 0;
}

/* Today's counters by queue into qs, and over all queues into all. */
static int ml_load_today(const metrics_live *lv, cc_pg *pg, const char *const *v,
                         struct ml_queues *qs, int64_t *all)
{
    char sql[METRICS_SQL_MAX], sums[2048] = "";
    size_t sn = 0;
    PGresult *r;
    int rc;

    for (size_t i = 0; i < METRICS_C_COUNT; i++)
        sn += (size_t)snprintf(sums + sn, sizeof(sums) - sn, ", %s(%s)::bigint",
                               i == METRICS_C_MAX_WAIT ? "max" : "sum", metrics_kpi_counters[i]);
    snprintf(sql, sizeof(sql),
             "SELECT queue_id%s FROM %s.rollup WHERE tenant = $1 AND bucket >= $2::timestamptz "
             "AND bucket < $3::timestamptz GROUP BY queue_id",
             sums, lv->schema);
    if ((rc = metrics_sql_exec(pg, sql, 3, v, &r)) < 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t c[METRICS_C_COUNT];
        struct ml_queue *qq = NULL;

        for (size_t k = 0; k < METRICS_C_COUNT; k++)
            c[k] = metrics_sql_int(r, i, 1 + (int)k);
        metrics_kpi_add(all, c);
        if (PQgetvalue(r, i, 0)[0] && !(qq = ml_queue(qs, PQgetvalue(r, i, 0), lv->sl_default_s)))
            rc = -ENOMEM;
        if (qq)
            memcpy(qq->c, c, sizeof(c));
    }
    PQclear(r);
    return rc;
}

/* Runs sql ($1 tenant) and hands each row to apply with the queue its first column names
 * (made when new). 0, -ENOMEM, or the query's failure. */
static int ml_per_queue(const metrics_live *lv, cc_pg *pg, const char *sql, const char *const *v,
                        struct ml_queues *qs,
                        void (*apply)(struct ml_queue *, const PGresult *, int))
{
    PGresult *r;
    int rc;

    if ((rc = metrics_sql_exec(pg, sql, 1, v, &r)) < 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        struct ml_queue *qq = ml_queue(qs, PQgetvalue(r, i, 0), lv->sl_default_s);

        if (!qq) {
            rc = -ENOMEM;
            break;
        }
        apply(qq, r, i);
    }
    PQclear(r);
    return rc;
}

/* queue_id, waiting, oldest since (ms) */
static void ml_apply_waiting(struct ml_queue *qq, const PGresult *r, int i)
{
    qq->waiting = metrics_sql_int(r, i, 1);
    qq->oldest_since_ms = metrics_sql_int(r, i, 2);
}

/* queue, state, reason, agents */
static void ml_apply_agents(struct ml_queue *qq, const PGresult *r, int i)
{
    ml_agents_add(qq->agents, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), metrics_sql_int(r, i, 3));
}

/* queue_id, sl_threshold_s (NULL: the default stays) */
static void ml_apply_threshold(struct ml_queue *qq, const PGresult *r, int i)
{
    if (!PQgetisnull(r, i, 1))
        qq->sl_s = metrics_sql_int(r, i, 1);
}

/* Who waits in which queue, and since when. */
static int ml_load_waiting(const metrics_live *lv, cc_pg *pg, const char *const *v,
                           struct ml_queues *qs)
{
    char sql[METRICS_SQL_MAX];

    snprintf(sql, sizeof(sql),
             "SELECT queue_id, count(*)::bigint, (extract(epoch FROM min(since)) * 1000)::bigint "
             "FROM %s.live_waiting WHERE tenant = $1 GROUP BY queue_id",
             lv->schema);
    return ml_per_queue(lv, pg, sql, v, qs, ml_apply_waiting);
}

/* Logged-in agents by queue and state into qs, and over all queues into agents. */
static int ml_load_agents(const metrics_live *lv, cc_pg *pg, const char *const *v,
                          struct ml_queues *qs, json_t *agents)
{
    char sql[METRICS_SQL_MAX];
    PGresult *r;
    int rc;

    snprintf(sql, sizeof(sql),
             "SELECT q, state, COALESCE(reason_code, ''), count(*)::bigint FROM %s.live_agents "
             "CROSS JOIN LATERAL unnest(queue_ids) AS u(q) WHERE tenant = $1 AND state <> "
             "'logged_out' GROUP BY 1, 2, 3",
             lv->schema);
    if ((rc = ml_per_queue(lv, pg, sql, v, qs, ml_apply_agents)) < 0)
        return rc;
    snprintf(sql, sizeof(sql),
             "SELECT state, COALESCE(reason_code, ''), count(*)::bigint FROM %s.live_agents "
             "WHERE tenant = $1 AND state <> 'logged_out' GROUP BY 1, 2",
             lv->schema);
    if ((rc = metrics_sql_exec(pg, sql, 1, v, &r)) < 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++)
        ml_agents_add(agents, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), metrics_sql_int(r, i, 2));
    PQclear(r);
    return 0;
}

/* The service-level thresholds of the queues that have one. */
static int ml_load_thresholds(const metrics_live *lv, cc_pg *pg, const char *const *v,
                              struct ml_queues *qs)
{
    char sql[METRICS_SQL_MAX];

    snprintf(sql, sizeof(sql),
             "SELECT queue_id, sl_threshold_s FROM %s.queue_settings WHERE tenant = $1",
             lv->schema);
    return ml_per_queue(lv, pg, sql, v, qs, ml_apply_threshold);
}

/* ---- public --------------------------------------------------------------------------------- */

int metrics_live_view(const metrics_live *lv, cc_pg *pg, const char *tenant, const char *tz,
                      int64_t now_ms, json_t **out)
{
    char df[CC_TIME_ISO8601_LEN], dt[CC_TIME_ISO8601_LEN], now[CC_TIME_ISO8601_LEN];
    const char *v[3] = {tenant, df, dt};
    struct ml_queues qs = {0};
    int64_t all[METRICS_C_COUNT] = {0};
    json_t *agents = ml_agents_new(), *queues = json_array(), *doc = NULL;
    int rc;

    *out = NULL;
    rc = agents && queues ? ml_day(pg, now_ms, tz, df, dt) : -ENOMEM;
    if (rc == 0)
        rc = ml_load_today(lv, pg, v, &qs, all);
    if (rc == 0)
        rc = ml_load_waiting(lv, pg, v, &qs);
    if (rc == 0)
        rc = ml_load_agents(lv, pg, v, &qs, agents);
    if (rc == 0)
        rc = ml_load_thresholds(lv, pg, v, &qs);
    if (rc < 0)
        goto out_live;
    if (qs.n > 1)
        qsort(qs.v, qs.n, sizeof(*qs.v), ml_queue_cmp);
    for (size_t i = 0; i < qs.n; i++)
        json_array_append_new(queues, ml_queue_json(&qs.v[i], now_ms));
    metrics_sql_utc(now_ms, now);
    doc = json_pack("{s:s, s:s, s:O, s:O, s:o}", "time", now, "tz", tz, "queues", queues, "agents",
                    agents, "today", metrics_kpi_today(all, true));
    rc = doc ? 0 : -ENOMEM;
    *out = doc;
out_live:
    ml_queues_free(&qs);
    json_decref(agents);
    json_decref(queues);
    return rc;
}

int metrics_live_tenants(const metrics_live *lv, cc_pg *pg, int64_t since_ms, json_t **out)
{
    char sql[1024], since[CC_TIME_ISO8601_LEN];
    const char *v[1] = {since};
    json_t *a = json_array();
    PGresult *r;
    int rc;

    *out = NULL;
    if (!a)
        return -ENOMEM;
    metrics_sql_utc(since_ms, since);
    snprintf(sql, sizeof(sql),
             "SELECT tenant FROM %s.live_agents WHERE updated_at >= $1::timestamptz OR state <> "
             "'logged_out' UNION SELECT tenant FROM %s.live_waiting UNION SELECT tenant FROM "
             "%s.queue_settings WHERE updated_at >= $1::timestamptz ORDER BY 1",
             lv->schema, lv->schema, lv->schema);
    rc = metrics_sql_exec(pg, sql, 1, v, &r);
    if (rc < 0) {
        json_decref(a);
        return rc;
    }
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(a, json_string(PQgetvalue(r, i, 0)));
    PQclear(r);
    *out = a;
    return 0;
}
