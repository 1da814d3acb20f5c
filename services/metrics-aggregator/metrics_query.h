/*
 * metrics_query: the reporting queries of the metrics-aggregator -- the interval report (rollup
 * rows by 15m/1h/1d interval and dimension), first contact resolution, and the outbound windows
 * -- over the tables metrics_store writes, with the KPIs of metrics_kpi. It also knows the time
 * zones PostgreSQL knows, so that a bad tz is refused before any query runs.
 *
 * Times in documents are RFC 3339 with the offset of the requested time zone
 * ("2026-11-22T10:00:00+01:00"); numbers as metrics_kpi rounds them.
 *
 * Every query is scoped to one tenant. Functions return 0, -EINVAL when PostgreSQL refused an
 * argument (the caller answers 400), -EIO (logged) or -ENOMEM.
 *
 * Thread-safety: a metrics_query is immutable after _new; any number of threads may use it at
 * once, each with its own cc_pg.
 */
#ifndef METRICS_QUERY_H
#define METRICS_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cc_pg.h"

#define METRICS_QUERY_TZ_MAX      64
#define METRICS_QUERY_MAX_RANGE_D 92 /* days an interval query may span */

typedef struct metrics_query metrics_query;

/* Dimensions of group_by (bits). */
enum metrics_dim {
    METRICS_DIM_QUEUE = 1u << 0,
    METRICS_DIM_AGENT = 1u << 1,
    METRICS_DIM_CHANNEL = 1u << 2,
    METRICS_DIM_CAMPAIGN = 1u << 3,
    METRICS_DIM_CONTACT_REASON = 1u << 4, /* FCR only */
};

struct metrics_query_config {
    const char *schema; /* the tables' schema; NULL = "metrics" (see metrics_sql_schema_valid) */
    int fcr_days;       /* FCR window N (1..365) */
};

/* GET /v1/metrics/intervals, parsed and checked by the caller. Strings are borrowed. */
struct metrics_interval_args {
    int64_t from_ms, to_ms; /* [from, to), whole 15-minute steps */
    int interval_min;       /* 15, 60 or 1440 */
    const char *tz;         /* a time zone metrics_query_tz_known accepts */
    unsigned group_by;      /* METRICS_DIM_QUEUE | AGENT | CHANNEL | CAMPAIGN */
    const char *queue_id, *agent_id, *channel, *campaign_id; /* filters; NULL = any */
    int64_t now_ms;                                          /* FCR: which windows have elapsed */
};

/* Makes the query module and reads PostgreSQL's time-zone names (pg_timezone_names) through pg
 * (borrowed for the call) once. NULL on a bad config, a failed read (both logged) or ENOMEM. */
metrics_query *metrics_query_new(const struct metrics_query_config *cfg, cc_pg *pg);
/* NULL is a no-op. */
void metrics_query_free(metrics_query *q);

/* True when PostgreSQL knows tz as a time-zone name (case-insensitive, as PostgreSQL compares
 * them; at most METRICS_QUERY_TZ_MAX bytes). No I/O: the names were read by _new. */
bool metrics_query_tz_known(const metrics_query *q, const char *tz);

/* The dimension called name ("queue", "agent", "channel", "campaign", "contact_reason"), or 0. */
unsigned metrics_query_dim(const char *name);
/* The member of a row that holds dimension dim ("queue_id", "agent_id", "channel",
 * "campaign_id", "contact_reason"), or NULL when dim is not exactly one dimension. */
const char *metrics_query_dim_column(unsigned dim);

/*
 * The interval report: {"from","to","interval","tz","group_by":[...],"rows":[...],"totals":{...}}
 * (the shape of proto/openapi/metrics-aggregator.yaml#/components/schemas/IntervalReport). Rows
 * only for intervals with data, ordered by start then dimensions. *out: a new reference.
 */
int metrics_query_intervals(const metrics_query *q, cc_pg *pg, const char *tenant,
                            const struct metrics_interval_args *a, json_t **out);

/* First contact resolution over contacts created in [from, to) by one dimension (group: 0 or one
 * of METRICS_DIM_QUEUE, CHANNEL, CONTACT_REASON): {"from","to","tz","days","group_by","rows",
 * "totals"}. *out: a new reference. */
int metrics_query_fcr(const metrics_query *q, cc_pg *pg, const char *tenant, int64_t from_ms,
                      int64_t to_ms, const char *tz, unsigned group, int64_t now_ms, json_t **out);

/* Outbound per campaign (campaign_id NULL = every campaign with outbound activity in 30 days):
 * {"time","campaigns":[{"campaign_id","last_24h":{...},"last_30d":{...}}]}, windows rolling
 * back from now_ms. *out: a new reference. */
int metrics_query_outbound(const metrics_query *q, cc_pg *pg, const char *tenant,
                           const char *campaign_id, int64_t now_ms, json_t **out);

#endif
