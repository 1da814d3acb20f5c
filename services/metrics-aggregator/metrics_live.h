/*
 * metrics_live: the live view of a tenant -- who waits in which queue and for how long, the
 * agents of each queue by state, today's KPIs per queue and over all queues, the estimated wait
 * -- from the live tables metrics_store keeps (live_waiting, live_agents, queue_settings) and
 * today's rollup rows. GET /v1/metrics/live answers it, the SSE stream pushes it, and each of
 * its queues is one cc.metrics.snapshot. Shape and definitions:
 * proto/openapi/metrics-aggregator.yaml#/components/schemas/Live.
 *
 * Thread-safety: a metrics_live is immutable after _new; any number of threads may use it at
 * once, each with its own cc_pg.
 */
#ifndef METRICS_LIVE_H
#define METRICS_LIVE_H

#include <stdint.h>

#include <jansson.h>

#include "cc_pg.h"

typedef struct metrics_live metrics_live;

struct metrics_live_config {
    const char *schema; /* the tables' schema; NULL = "metrics" (see metrics_sql_schema_valid) */
    int sl_default_s;   /* SL threshold of a queue without queue_settings (>= 0) */
};

/* NULL on a bad config (logged) or ENOMEM. */
metrics_live *metrics_live_new(const struct metrics_live_config *cfg);
/* NULL is a no-op. */
void metrics_live_free(metrics_live *lv);

/* The live view of tenant: {"time","tz","queues":[...],"agents":{...},"today":{...}}, queues
 * ordered by id; "today" is the local day of now_ms in tz, "time" is now in UTC. *out: a new
 * reference. 0, -EINVAL when PostgreSQL does not know tz, -EIO (logged) or -ENOMEM. */
int metrics_live_view(const metrics_live *lv, cc_pg *pg, const char *tenant, const char *tz,
                      int64_t now_ms, json_t **out);

/* The tenants with live data -- a logged-in agent or one seen since since_ms, someone waiting,
 * a queue setting changed since since_ms -- as a new JSON array of strings (the cc.metrics
 * snapshots' tenants). 0, -EIO or -ENOMEM. */
int metrics_live_tenants(const metrics_live *lv, cc_pg *pg, int64_t since_ms, json_t **out);

#endif
