/* metrics_query: the interval report, FCR and outbound queries, the known time zones (see the
 * header). */
#include "metrics_query.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cc_log.h"
#include "cc_time.h"
#include "metrics_kpi.h"
#include "metrics_sql.h"

#define MQ_NDIMS 4 /* dimensions of the rollups (contact_reason is FCR's only) */

struct metrics_query {
    char schema[METRICS_SQL_SCHEMA_MAX + 1];
    int fcr_days;
    char **zones; /* PostgreSQL's time-zone names, sorted case-insensitively */
    size_t nzones;
};

static const char *const mq_dim_cols[] = {"queue_id", "agent_id", "channel", "campaign_id",
                                          "contact_reason"};
static const char *const mq_dim_names[] = {"queue", "agent", "channel", "campaign",
                                           "contact_reason"};

/* ---- time ------------------------------------------------------------------------------------ */

/* RFC 3339 of unix_ms at UTC offset off_s: "2026-11-22T10:00:00+01:00" (whole seconds; "Z" for
 * offset 0; milliseconds only when there are any). */
static void mq_format_time(int64_t unix_ms, int off_s, char out[40])
{
    int64_t local = unix_ms + (int64_t)off_s * 1000;
    time_t secs = (time_t)metrics_kpi_floor_div(local, 1000);
    int ms = (int)(local - (int64_t)secs * 1000);
    int a = off_s < 0 ? -off_s : off_s;
    struct tm tm;
    size_t n;

    gmtime_r(&secs, &tm);
    n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ms)
        n += (size_t)snprintf(out + n, 40 - n, ".%03d", ms);
    if (off_s == 0)
        snprintf(out + n, 40 - n, "Z");
    else
        snprintf(out + n, 40 - n, "%c%02d:%02d", off_s < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

static json_t *mq_time_json(int64_t unix_ms, int off_s)
{
    char buf[40];

    mq_format_time(unix_ms, off_s, buf);
    return json_string(buf);
}

/* ---- SQL text ------------------------------------------------------------------------------ */

/* Appends printf output to sql[METRICS_SQL_MAX] at *n. */
__attribute__((format(printf, 3, 4))) static void mq_sql(char *sql, size_t *n, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (*n >= METRICS_SQL_MAX)
        return;
    va_start(ap, fmt);
    w = vsnprintf(sql + *n, METRICS_SQL_MAX - *n, fmt, ap);
    va_end(ap);
    *n += w > 0 ? (size_t)w : 0;
}

static bool mq_sql_ok(size_t n)
{
    if (n < METRICS_SQL_MAX)
        return true;
    CC_ERROR("query text too long: over %d bytes", METRICS_SQL_MAX);
    return false;
}

/* ---- lifecycle and time zones ---------------------------------------------------------------- */

static int mq_zone_cmp(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reads pg_timezone_names into q->zones. A tz the API passes on is then one PostgreSQL accepts,
 * checked without a query: a refused AT TIME ZONE would be logged as a failed statement. */
static int mq_zones_load(metrics_query *q, cc_pg *pg)
{
    PGresult *r;
    int rc = metrics_sql_exec(pg, "SELECT name FROM pg_timezone_names", 0, NULL, &r);

    if (rc < 0)
        return rc;
    q->zones = calloc((size_t)PQntuples(r) + 1, sizeof(*q->zones));
    for (int i = 0; q->zones && i < PQntuples(r); i++) {
        if (strlen(PQgetvalue(r, i, 0)) > METRICS_QUERY_TZ_MAX)
            continue;
        if (!(q->zones[q->nzones] = strdup(PQgetvalue(r, i, 0)))) {
            rc = -ENOMEM;
            break;
        }
        q->nzones++;
    }
    PQclear(r);
    if (!q->zones)
        return -ENOMEM;
    qsort(q->zones, q->nzones, sizeof(*q->zones), mq_zone_cmp);
    return rc;
}

metrics_query *metrics_query_new(const struct metrics_query_config *cfg, cc_pg *pg)
{
    const char *schema = cfg && cfg->schema ? cfg->schema : "metrics";
    metrics_query *q;
    int rc;

    if (!cfg || !pg || !metrics_sql_schema_valid(schema) || cfg->fcr_days < 1 ||
        cfg->fcr_days > 365) {
        CC_ERROR("bad metrics query config: schema '%s', fcr_days %d", schema,
                 cfg ? cfg->fcr_days : 0);
        return NULL;
    }
    q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    snprintf(q->schema, sizeof(q->schema), "%s", schema);
    q->fcr_days = cfg->fcr_days;
    rc = mq_zones_load(q, pg);
    if (rc < 0 || q->nzones == 0) {
        CC_ERROR("cannot read postgresql's time-zone names: %s", rc < 0 ? strerror(-rc) : "none");
        metrics_query_free(q);
        return NULL;
    }
    return q;
}

void metrics_query_free(metrics_query *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nzones; i++)
        free(q->zones[i]);
    free(q->zones);
    free(q);
}

bool metrics_query_tz_known(const metrics_query *q, const char *tz)
{
    if (!tz || !*tz || strlen(tz) > METRICS_QUERY_TZ_MAX)
        return false;
    return bsearch(&tz, q->zones, q->nzones, sizeof(*q->zones), mq_zone_cmp) != NULL;
}

unsigned metrics_query_dim(const char *name)
{
    for (size_t d = 0; name && d < sizeof(mq_dim_names) / sizeof(mq_dim_names[0]); d++)
        if (strcmp(name, mq_dim_names[d]) == 0)
            return 1u << d;
    return 0;
}

const char *metrics_query_dim_column(unsigned dim)
{
    for (size_t d = 0; d < sizeof(mq_dim_cols) / sizeof(mq_dim_cols[0]); d++)
        if (dim == 1u << d)
            return mq_dim_cols[d];
    return NULL;
}

/* ---- interval rows --------------------------------------------------------------------------- */

struct mq_row {
    int64_t start_ms, end_ms;
    int start_off, end_off;
    char *dims[MQ_NDIMS]; /* NULL when not grouped by it */
    int64_t c[METRICS_C_COUNT];
    json_t *codes;  /* {"disposition":{code:n}, "contact_reason":{...}} */
    json_t *states; /* agent_state_ms, or NULL when agent states do not apply */
};

struct mq_rows {
    struct mq_row *v;
    size_t n, cap;
    json_t *index; /* key -> position in v */
    unsigned dims;
    bool states; /* agent_state_ms applies */
};

static void mq_rows_free(struct mq_rows *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        for (int d = 0; d < MQ_NDIMS; d++)
            free(rs->v[i].dims[d]);
        json_decref(rs->v[i].codes);
        json_decref(rs->v[i].states);
    }
    free(rs->v);
    json_decref(rs->index);
}

/* The row for the result line r (columns: start_ms, end_ms, start_off, end_off, then the grouped
 * dimensions, in mq_dim_cols order, as ndims columns; a missing dimension is taken as ""), made
 * on first sight. NULL on ENOMEM. */
static struct mq_row *mq_row_at(struct mq_rows *rs, const PGresult *r, int i, unsigned dims)
{
    char key[1024];
    size_t kn;
    int col = 4;
    const char *vals[MQ_NDIMS] = {0};
    struct mq_row *row;
    json_t *pos;

    kn = (size_t)snprintf(key, sizeof(key), "%s", PQgetvalue(r, i, 0));
    for (int d = 0; d < MQ_NDIMS; d++) {
        if (!(rs->dims & (1u << d)))
            continue;
        vals[d] = (dims & (1u << d)) ? PQgetvalue(r, i, col++) : "";
        kn +=
            (size_t)snprintf(key + kn, kn < sizeof(key) ? sizeof(key) - kn : 0, "\x1f%s", vals[d]);
    }
    if (kn >= sizeof(key))
        return NULL;
    pos = json_object_get(rs->index, key);
    if (pos)
        return &rs->v[json_integer_value(pos)];
    if (rs->n == rs->cap) {
        size_t ncap = rs->cap ? 2 * rs->cap : 64;
        struct mq_row *grown = realloc(rs->v, ncap * sizeof(*grown));
        if (!grown)
            return NULL;
        rs->v = grown;
        rs->cap = ncap;
    }
    row = &rs->v[rs->n];
    memset(row, 0, sizeof(*row));
    row->start_ms = metrics_sql_int(r, i, 0);
    row->end_ms = metrics_sql_int(r, i, 1);
    row->start_off = (int)metrics_sql_int(r, i, 2);
    row->end_off = (int)metrics_sql_int(r, i, 3);
    row->codes = json_pack("{s:{}, s:{}}", "disposition", "contact_reason");
    row->states = rs->states ? metrics_kpi_states_new() : NULL;
    for (int d = 0; d < MQ_NDIMS; d++)
        if (vals[d])
            row->dims[d] = strdup(vals[d]);
    if (json_object_set_new(rs->index, key, json_integer((json_int_t)rs->n)) < 0 || !row->codes)
        return NULL;
    rs->n++;
    return row;
}

/* Builds the common head of an interval query: a CTE b(s, dims..., aggs...) over table, grouped
 * by the interval start s and dims, then the select of start/end/offsets, dims and agg columns.
 * filters: which of $5..$8 (queue, agent, channel, campaign) the table has; the caller appends
 * nothing. */
static size_t mq_interval_sql(const metrics_query *q, char *sql,
                              const struct metrics_interval_args *a, const char *table,
                              unsigned dims, unsigned filters, const char *extra_where,
                              const char *aggs_in, const char *aggs_out, const char *extra_group)
{
    static const char *const param[MQ_NDIMS] = {"$5", "$6", "$7", "$8"};
    const char *start = a->interval_min == 15   ? "bucket"
                        : a->interval_min == 60 ? "date_trunc('hour', bucket, $4)"
                                                : "date_trunc('day', bucket, $4)";
    const char *end = a->interval_min == 15 ? "s + interval '15 minutes'"
                      : a->interval_min == 60
                          ? "s + interval '1 hour'"
                          : "((s AT TIME ZONE $4) + interval '1 day') AT TIME ZONE $4";
    char dimlist[256] = "";
    size_t n = 0, dn = 0;

    for (int d = 0; d < MQ_NDIMS; d++)
        if (dims & (1u << d))
            dn += (size_t)snprintf(dimlist + dn, sizeof(dimlist) - dn, ", %s", mq_dim_cols[d]);
    mq_sql(sql, &n,
           "WITH b AS (SELECT %s AS s%s, %s FROM %s.%s WHERE tenant = $1 AND bucket >= "
           "$2::timestamptz AND bucket < $3::timestamptz",
           start, dimlist, aggs_in, q->schema, table);
    for (int d = 0; d < MQ_NDIMS; d++)
        if (filters & (1u << d))
            mq_sql(sql, &n, " AND (%s::text IS NULL OR %s = %s)", param[d], mq_dim_cols[d],
                   param[d]);
    mq_sql(sql, &n,
           "%s GROUP BY 1%s%s), c AS (SELECT greatest(s, $2::timestamptz) AS cs, least(%s, "
           "$3::timestamptz) AS ce, * FROM b) SELECT (extract(epoch FROM cs) * "
           "1000)::bigint, (extract(epoch FROM ce) * 1000)::bigint, extract(epoch FROM "
           "(cs AT TIME ZONE $4) - (cs AT TIME ZONE 'UTC'))::int, extract(epoch FROM (ce "
           "AT TIME ZONE $4) - (ce AT TIME ZONE 'UTC'))::int%s, %s FROM c",
           extra_where, dimlist, extra_group, end, dimlist, aggs_out);
    return n;
}

/* The parameters $1..$8 of the interval queries. */
struct mq_iparams {
    char from[CC_TIME_ISO8601_LEN], to[CC_TIME_ISO8601_LEN];
    const char *v[8];
};

static void mq_iparams_init(struct mq_iparams *p, const char *tenant,
                            const struct metrics_interval_args *a)
{
    metrics_sql_utc(a->from_ms, p->from);
    metrics_sql_utc(a->to_ms, p->to);
    p->v[0] = tenant;
    p->v[1] = p->from;
    p->v[2] = p->to;
    p->v[3] = a->tz;
    p->v[4] = a->queue_id;
    p->v[5] = a->agent_id;
    p->v[6] = a->channel;
    p->v[7] = a->campaign_id;
}

static int mq_load_counters(const metrics_query *q, cc_pg *pg, const struct mq_iparams *p,
                            const struct metrics_interval_args *a, struct mq_rows *rs)
{
    char sql[METRICS_SQL_MAX], in[2048] = "", out[1024] = "";
    size_t in_n = 0, out_n = 0, n;
    PGresult *r;
    int rc, nd = __builtin_popcount(rs->dims);

    for (size_t i = 0; i < METRICS_C_COUNT; i++) {
        in_n += (size_t)snprintf(in + in_n, sizeof(in) - in_n, "%s%s(%s)::bigint AS %s",
                                 i ? ", " : "", i == METRICS_C_MAX_WAIT ? "max" : "sum",
                                 metrics_kpi_counters[i], metrics_kpi_counters[i]);
        out_n += (size_t)snprintf(out + out_n, sizeof(out) - out_n, "%s%s", i ? ", " : "",
                                  metrics_kpi_counters[i]);
    }
    n = mq_interval_sql(q, sql, a, "rollup", rs->dims, 0xf, "", in, out, "");
    if (!mq_sql_ok(n))
        return -EIO;
    rc = metrics_sql_exec(pg, sql, 8, p->v, &r);
    if (rc < 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        struct mq_row *row = mq_row_at(rs, r, i, rs->dims);
        if (!row) {
            rc = -ENOMEM;
            break;
        }
        for (size_t c = 0; c < METRICS_C_COUNT; c++)
            row->c[c] = metrics_sql_int(r, i, 4 + nd + (int)c);
    }
    PQclear(r);
    return rc;
}

static int mq_load_codes(const metrics_query *q, cc_pg *pg, const struct mq_iparams *p,
                         const struct metrics_interval_args *a, struct mq_rows *rs)
{
    char sql[METRICS_SQL_MAX];
    size_t n =
        mq_interval_sql(q, sql, a, "code_rollup", rs->dims, 0xf, "",
                        "kind, code, sum(\"count\")::bigint AS n", "kind, code, n", ", kind, code");
    int rc, nd = __builtin_popcount(rs->dims);
    PGresult *r;

    if (!mq_sql_ok(n))
        return -EIO;
    rc = metrics_sql_exec(pg, sql, 8, p->v, &r);
    if (rc < 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        struct mq_row *row = mq_row_at(rs, r, i, rs->dims);
        json_t *kind;

        if (!row) {
            rc = -ENOMEM;
            break;
        }
        kind = json_object_get(row->codes, PQgetvalue(r, i, 4 + nd));
        if (!kind) {
            kind = json_object();
            json_object_set_new(row->codes, PQgetvalue(r, i, 4 + nd), kind);
        }
        metrics_kpi_add_int(kind, PQgetvalue(r, i, 5 + nd), metrics_sql_int(r, i, 6 + nd));
    }
    PQclear(r);
    return rc;
}

/* Agent state time: only the agent dimension exists in agent_state_rollup, so it is loaded when
 * the rows are by agent or over all agents, and filtered by agent only ($5 = agent_id here). */
static int mq_load_states(const metrics_query *q, cc_pg *pg, const struct mq_iparams *p,
                          const struct metrics_interval_args *a, struct mq_rows *rs)
{
    char sql[METRICS_SQL_MAX];
    unsigned dims = rs->dims & METRICS_DIM_AGENT;
    size_t n;
    const char *v[5] = {p->v[0], p->v[1], p->v[2], p->v[3], p->v[5]};
    int rc, nd = __builtin_popcount(dims);
    PGresult *r;

    n = mq_interval_sql(q, sql, a, "agent_state_rollup", dims, 0,
                        " AND ($5::text IS NULL OR agent_id = $5)",
                        "state, reason_code, sum(ms)::bigint AS ms", "state, reason_code, ms",
                        ", state, reason_code");
    if (!mq_sql_ok(n))
        return -EIO;
    rc = metrics_sql_exec(pg, sql, 5, v, &r);
    if (rc < 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        struct mq_row *row = mq_row_at(rs, r, i, dims);

        if (!row) {
            rc = -ENOMEM;
            break;
        }
        metrics_kpi_states_add(row->states, PQgetvalue(r, i, 4 + nd), PQgetvalue(r, i, 5 + nd),
                               metrics_sql_int(r, i, 6 + nd));
    }
    PQclear(r);
    return rc;
}

static int mq_row_cmp(const void *pa, const void *pb)
{
    const struct mq_row *a = pa, *b = pb;

    if (a->start_ms != b->start_ms)
        return a->start_ms < b->start_ms ? -1 : 1;
    for (int d = 0; d < MQ_NDIMS; d++) {
        int c = strcmp(a->dims[d] ? a->dims[d] : "", b->dims[d] ? b->dims[d] : "");
        if (c)
            return c;
    }
    return 0;
}

static void mq_codes_merge(json_t *into, const json_t *from)
{
    const char *kind, *code;
    json_t *codes, *n;

    json_object_foreach((json_t *)from, kind, codes)
    {
        json_t *dst = json_object_get(into, kind);
        if (!dst) {
            dst = json_object();
            json_object_set_new(into, kind, dst);
        }
        json_object_foreach(codes, code, n)
        {
            metrics_kpi_add_int(dst, code, json_integer_value(n));
        }
    }
}

static json_t *mq_row_json(const struct mq_row *row)
{
    json_t *o = json_object();

    if (!o)
        return NULL;
    json_object_set_new(o, "start", mq_time_json(row->start_ms, row->start_off));
    json_object_set_new(o, "end", mq_time_json(row->end_ms, row->end_off));
    for (int d = 0; d < MQ_NDIMS; d++)
        if (row->dims[d])
            json_object_set_new(o, mq_dim_cols[d], json_string(row->dims[d]));
    json_object_set_new(o, "counts", metrics_kpi_counts_json(row->c, row->states));
    json_object_set_new(o, "codes", json_incref(row->codes));
    json_object_set_new(o, "kpis", metrics_kpi_json(row->c, row->states));
    return o;
}

/* ---- FCR ------------------------------------------------------------------------------------- */

/* FCR counts of contacts created in [from, to) grouped by group (0 = one line), with the interval
 * filters of a (may be NULL). Fills *res with lines (g, contacts, resolved, unresolved, pending).
 */
static int mq_fcr_exec(const metrics_query *q, cc_pg *pg, const char *tenant, int64_t from_ms,
                       int64_t to_ms, unsigned group, int64_t now_ms,
                       const struct metrics_interval_args *a, PGresult **res)
{
    char sql[METRICS_SQL_MAX], from[CC_TIME_ISO8601_LEN], to[CC_TIME_ISO8601_LEN],
        now[CC_TIME_ISO8601_LEN], days[16];
    const char *g = group == METRICS_DIM_QUEUE            ? "i.queue_id"
                    : group == METRICS_DIM_CHANNEL        ? "i.channel"
                    : group == METRICS_DIM_CONTACT_REASON ? "r.reason"
                                                          : "''::text";
    const char *v[9];
    size_t n = 0;

    metrics_sql_utc(from_ms, from);
    metrics_sql_utc(to_ms, to);
    metrics_sql_utc(now_ms, now);
    snprintf(days, sizeof(days), "%d", q->fcr_days);
    v[0] = tenant;
    v[1] = from;
    v[2] = to;
    v[3] = now;
    v[4] = days;
    v[5] = a ? a->queue_id : NULL;
    v[6] = a ? a->agent_id : NULL;
    v[7] = a ? a->channel : NULL;
    v[8] = a ? a->campaign_id : NULL;
    mq_sql(sql, &n,
           "WITH c AS (SELECT i.interaction_id, i.customer_id, i.created_at, %s AS g FROM "
           "%s.interactions i",
           g, q->schema);
    if (group == METRICS_DIM_CONTACT_REASON)
        mq_sql(sql, &n,
               " CROSS JOIN LATERAL unnest(CASE WHEN cardinality(i.contact_reasons) > 0 "
               "THEN i.contact_reasons ELSE ARRAY['']::text[] END) AS r(reason)");
    mq_sql(sql, &n,
           " WHERE i.tenant = $1 AND i.direction = 'inbound' AND COALESCE(i.customer_id, '') <> "
           "'' AND i.answered_at IS NOT NULL AND COALESCE(i.agent_id, '') <> '' AND i.created_at "
           ">= $2::timestamptz AND i.created_at < $3::timestamptz AND ($6::text IS NULL OR "
           "i.queue_id = $6) AND ($7::text IS NULL OR i.agent_id = $7) AND ($8::text IS NULL OR "
           "i.channel = $8) AND ($9::text IS NULL OR i.campaign_id = $9)), x AS (SELECT c.g, "
           "c.created_at + make_interval(days => $5::int) > $4::timestamptz AS pending, EXISTS "
           "(SELECT 1 FROM %s.interactions j WHERE j.tenant = $1 AND j.customer_id = "
           "c.customer_id AND j.direction = 'inbound' AND j.interaction_id <> c.interaction_id "
           "AND j.created_at > c.created_at AND j.created_at <= c.created_at + "
           "make_interval(days => $5::int)%s) AS again FROM c) SELECT g, count(*)::bigint, "
           "(count(*) FILTER (WHERE NOT pending AND NOT again))::bigint, (count(*) FILTER (WHERE "
           "NOT pending AND again))::bigint, (count(*) FILTER (WHERE pending))::bigint FROM x "
           "GROUP BY g ORDER BY g",
           q->schema,
           group == METRICS_DIM_CONTACT_REASON ? " AND (c.g = '' OR c.g = ANY (j.contact_reasons))"
                                               : "");
    if (!mq_sql_ok(n))
        return -EIO;
    return metrics_sql_exec(pg, sql, 9, v, res);
}

/* {"contacts","resolved","unresolved","pending","rate"} of line i of an mq_fcr_exec result
 * (zeros when i is out of range). */
static json_t *mq_fcr_json(const PGresult *r, int i)
{
    int64_t contacts = 0, resolved = 0, unresolved = 0, pending = 0;

    if (i < PQntuples(r)) {
        contacts = metrics_sql_int(r, i, 1);
        resolved = metrics_sql_int(r, i, 2);
        unresolved = metrics_sql_int(r, i, 3);
        pending = metrics_sql_int(r, i, 4);
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:o}", "contacts", (json_int_t)contacts, "resolved",
                     (json_int_t)resolved, "unresolved", (json_int_t)unresolved, "pending",
                     (json_int_t)pending, "rate",
                     metrics_kpi_ratio(resolved, resolved + unresolved));
}

/* UTC offsets (s) of from and to in tz; -EINVAL for an unknown zone. */
static int mq_offsets(cc_pg *pg, int64_t from_ms, int64_t to_ms, const char *tz, int *from_off,
                      int *to_off)
{
    char from[CC_TIME_ISO8601_LEN], to[CC_TIME_ISO8601_LEN];
    const char *v[3] = {from, to, tz};
    PGresult *r;
    int rc;

    metrics_sql_utc(from_ms, from);
    metrics_sql_utc(to_ms, to);
    rc = metrics_sql_exec(
        pg,
        "SELECT extract(epoch FROM ($1::timestamptz AT TIME ZONE $3) - ($1::timestamptz "
        "AT TIME ZONE 'UTC'))::int, extract(epoch FROM ($2::timestamptz AT TIME ZONE $3) "
        "- ($2::timestamptz AT TIME ZONE 'UTC'))::int",
        3, v, &r);
    if (rc < 0)
        return rc;
    *from_off = (int)metrics_sql_int(r, 0, 0);
    *to_off = (int)metrics_sql_int(r, 0, 1);
    PQclear(r);
    return 0;
}

/* ---- the interval report --------------------------------------------------------------------- */

static json_t *mq_group_by_json(unsigned dims)
{
    json_t *a = json_array();

    for (int d = 0; a && d < MQ_NDIMS; d++)
        if (dims & (1u << d))
            json_array_append_new(a, json_string(mq_dim_names[d]));
    return a;
}

static json_t *mq_interval_name(int minutes)
{
    return json_string(minutes == 15 ? "15m" : minutes == 60 ? "1h" : "1d");
}

/* Assembles the report from loaded rows (rows are sorted here). */
static int mq_report(const struct mq_rows *rs, const struct metrics_interval_args *a, int from_off,
                     int to_off, PGresult *fcr, json_t **out)
{
    int64_t tc[METRICS_C_COUNT] = {0};
    json_t *doc, *rows, *totals, *tcodes, *tstates = rs->states ? metrics_kpi_states_new() : NULL;

    if (rs->n > 1)
        qsort(rs->v, rs->n, sizeof(*rs->v), mq_row_cmp);
    rows = json_array();
    tcodes = json_pack("{s:{}, s:{}}", "disposition", "contact_reason");
    for (size_t i = 0; rows && i < rs->n; i++) {
        metrics_kpi_add(tc, rs->v[i].c);
        mq_codes_merge(tcodes, rs->v[i].codes);
        if (tstates)
            metrics_kpi_states_merge(tstates, rs->v[i].states);
        json_array_append_new(rows, mq_row_json(&rs->v[i]));
    }
    totals = json_object();
    if (totals) {
        json_object_set_new(totals, "start", mq_time_json(a->from_ms, from_off));
        json_object_set_new(totals, "end", mq_time_json(a->to_ms, to_off));
        json_object_set_new(totals, "counts", metrics_kpi_counts_json(tc, tstates));
        json_object_set_new(totals, "codes", json_incref(tcodes));
        json_object_set_new(totals, "kpis", metrics_kpi_json(tc, tstates));
        json_object_set_new(totals, "fcr", mq_fcr_json(fcr, 0));
    }
    json_decref(tcodes);
    json_decref(tstates);
    doc = json_object();
    if (!doc || !rows || !totals) {
        json_decref(doc);
        json_decref(rows);
        json_decref(totals);
        return -ENOMEM;
    }
    json_object_set_new(doc, "from", mq_time_json(a->from_ms, from_off));
    json_object_set_new(doc, "to", mq_time_json(a->to_ms, to_off));
    json_object_set_new(doc, "interval", mq_interval_name(a->interval_min));
    json_object_set_new(doc, "tz", json_string(a->tz));
    json_object_set_new(doc, "group_by", mq_group_by_json(rs->dims));
    json_object_set_new(doc, "rows", rows);
    json_object_set_new(doc, "totals", totals);
    *out = doc;
    return 0;
}

int metrics_query_intervals(const metrics_query *q, cc_pg *pg, const char *tenant,
                            const struct metrics_interval_args *a, json_t **out)
{
    struct mq_rows rs = {.dims = a->group_by & 0xfu};
    struct mq_iparams p;
    PGresult *fcr = NULL;
    int from_off = 0, to_off = 0, rc;

    *out = NULL;
    /* agent states have no queue, channel or campaign: they apply to rows over all agents or by
     * agent, without a filter other than the agent */
    rs.states = (rs.dims & ~(unsigned)METRICS_DIM_AGENT) == 0 && !a->queue_id && !a->channel &&
                !a->campaign_id;
    rs.index = json_object();
    if (!rs.index)
        return -ENOMEM;
    mq_iparams_init(&p, tenant, a);
    rc = mq_offsets(pg, a->from_ms, a->to_ms, a->tz, &from_off, &to_off);
    if (rc == 0)
        rc = mq_load_counters(q, pg, &p, a, &rs);
    if (rc == 0)
        rc = mq_load_codes(q, pg, &p, a, &rs);
    if (rc == 0 && rs.states)
        rc = mq_load_states(q, pg, &p, a, &rs);
    if (rc == 0)
        rc = mq_fcr_exec(q, pg, tenant, a->from_ms, a->to_ms, 0, a->now_ms, a, &fcr);
    if (rc == 0)
        rc = mq_report(&rs, a, from_off, to_off, fcr, out);
    PQclear(fcr);
    mq_rows_free(&rs);
    return rc;
}

int metrics_query_fcr(const metrics_query *q, cc_pg *pg, const char *tenant, int64_t from_ms,
                      int64_t to_ms, const char *tz, unsigned group, int64_t now_ms, json_t **out)
{
    static const struct {
        unsigned dim;
        const char *name, *col;
    } groups[] = {{METRICS_DIM_QUEUE, "queue", "queue_id"},
                  {METRICS_DIM_CHANNEL, "channel", "channel"},
                  {METRICS_DIM_CONTACT_REASON, "contact_reason", "contact_reason"}};
    const char *gname = NULL, *gcol = NULL;
    PGresult *lines = NULL, *total = NULL;
    int from_off = 0, to_off = 0, rc;
    json_t *rows, *doc;

    *out = NULL;
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (groups[i].dim == group) {
            gname = groups[i].name;
            gcol = groups[i].col;
        }
    rc = mq_offsets(pg, from_ms, to_ms, tz, &from_off, &to_off);
    if (rc == 0 && gname)
        rc = mq_fcr_exec(q, pg, tenant, from_ms, to_ms, group, now_ms, NULL, &lines);
    if (rc == 0)
        rc = mq_fcr_exec(q, pg, tenant, from_ms, to_ms, 0, now_ms, NULL, &total);
    if (rc < 0)
        goto out_results;
    rows = json_array();
    for (int i = 0; rows && lines && i < PQntuples(lines); i++) {
        json_t *row = mq_fcr_json(lines, i);
        json_object_set_new(row, gcol, json_string(PQgetvalue(lines, i, 0)));
        json_array_append_new(rows, row);
    }
    doc = json_pack("{s:o, s:o, s:s, s:i, s:o, s:o, s:o}", "from", mq_time_json(from_ms, from_off),
                    "to", mq_time_json(to_ms, to_off), "tz", tz, "days", q->fcr_days, "group_by",
                    gname ? json_string(gname) : json_null(), "rows", rows ? rows : json_array(),
                    "totals", mq_fcr_json(total, 0));
    rc = doc ? 0 : -ENOMEM;
    *out = doc;
out_results:
    PQclear(lines);
    PQclear(total);
    return rc;
}

/* ---- outbound -------------------------------------------------------------------------------- */

static json_t *mq_outbound_window(int64_t attempts, int64_t connects, int64_t abandoned)
{
    return json_pack("{s:I, s:I, s:I, s:o}", "attempts", (json_int_t)attempts, "connects",
                     (json_int_t)connects, "abandoned", (json_int_t)abandoned, "abandon_rate",
                     metrics_kpi_ratio(abandoned, connects));
}

int metrics_query_outbound(const metrics_query *q, cc_pg *pg, const char *tenant,
                           const char *campaign_id, int64_t now_ms, json_t **out)
{
    char sql[METRICS_SQL_MAX], now[CC_TIME_ISO8601_LEN];
    const char *v[3] = {tenant, now, campaign_id};
    json_t *campaigns = json_array();
    PGresult *r;
    size_t n = 0;
    int rc;

    *out = NULL;
    if (!campaigns)
        return -ENOMEM;
    metrics_sql_utc(now_ms, now);
    /* a bucket counts when it overlaps the window: its start is after now - window - 15 min */
    mq_sql(sql, &n,
           "WITH w AS (SELECT campaign_id, bucket > $2::timestamptz - interval '24 hours 15 "
           "minutes' AS d1, outbound_attempts AS a, outbound_connects AS c, outbound_abandoned AS "
           "x FROM %s.rollup WHERE tenant = $1 AND campaign_id <> '' AND ($3::text IS NULL OR "
           "campaign_id = $3) AND bucket > $2::timestamptz - interval '30 days 15 minutes' AND "
           "bucket <= $2::timestamptz) SELECT campaign_id, COALESCE(sum(a) FILTER (WHERE d1), "
           "0)::bigint, COALESCE(sum(c) FILTER (WHERE d1), 0)::bigint, COALESCE(sum(x) FILTER "
           "(WHERE d1), 0)::bigint, sum(a)::bigint, sum(c)::bigint, sum(x)::bigint FROM w GROUP "
           "BY campaign_id HAVING sum(a) + sum(c) + sum(x) > 0 ORDER BY campaign_id",
           q->schema);
    if (!mq_sql_ok(n)) {
        json_decref(campaigns);
        return -EIO;
    }
    rc = metrics_sql_exec(pg, sql, 3, v, &r);
    if (rc < 0) {
        json_decref(campaigns);
        return rc;
    }
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(
            campaigns,
            json_pack("{s:s, s:o, s:o}", "campaign_id", PQgetvalue(r, i, 0), "last_24h",
                      mq_outbound_window(metrics_sql_int(r, i, 1), metrics_sql_int(r, i, 2),
                                         metrics_sql_int(r, i, 3)),
                      "last_30d",
                      mq_outbound_window(metrics_sql_int(r, i, 4), metrics_sql_int(r, i, 5),
                                         metrics_sql_int(r, i, 6))));
    if (campaign_id && PQntuples(r) == 0) /* asked for, no activity: zeros */
        json_array_append_new(campaigns, json_pack("{s:s, s:o, s:o}", "campaign_id", campaign_id,
                                                   "last_24h", mq_outbound_window(0, 0, 0),
                                                   "last_30d", mq_outbound_window(0, 0, 0)));
    PQclear(r);
    *out = json_pack("{s:s, s:o}", "time", now, "campaigns", campaigns);
    return *out ? 0 : -ENOMEM;
}
