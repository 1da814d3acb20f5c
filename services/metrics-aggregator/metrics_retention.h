/*
 * metrics_retention: the periodic purge of what the ingest keeps only for a while -- applied
 * event ids (metrics.events_seen) applied more than CC_METRICS_DEDUPE_DAYS ago, and facts that
 * have waited more than CC_METRICS_PENDING_DAYS for their interaction's created event
 * (metrics.pending; each drop is logged) -- in small batches, each DELETE its own short
 * transaction, so that the ingest is never held up by it.
 *
 * Why the windows are what they are, and what a redelivery older than the dedupe window does:
 * DESIGN.md, "Retention".
 *
 * Thread-safety: metrics_retention_start runs the purge on a thread with a PostgreSQL
 * connection of its own; _stop joins it. metrics_retention_purge uses only its caller's cc_pg.
 */
#ifndef METRICS_RETENTION_H
#define METRICS_RETENTION_H

#include "cc_pg.h"

#define METRICS_RETENTION_INTERVAL_MS 60000 /* between two passes */
#define METRICS_RETENTION_BATCH       5000  /* rows per DELETE */

typedef struct metrics_retention metrics_retention;

struct metrics_retention_config {
    const char *dsn;    /* the PostgreSQL of the ingest (copied) */
    const char *schema; /* NULL = "metrics" (see metrics_sql_schema_valid) */
    long dedupe_days;   /* CC_METRICS_DEDUPE_DAYS, >= 1 */
    long pending_days;  /* CC_METRICS_PENDING_DAYS, >= 1 */
    long interval_ms;   /* 0 = METRICS_RETENTION_INTERVAL_MS */
    long batch;         /* 0 = METRICS_RETENTION_BATCH */
};

/* What one pass removed. */
struct metrics_retention_result {
    long events_seen; /* applied event ids forgotten */
    long pending;     /* waiting facts dropped */
};

/* One whole pass through pg: DELETEs of at most cfg->batch rows until nothing is older than the
 * windows. *out (may be NULL) gets the counts. 0, -EINVAL (a bad config) or -EIO (logged; what
 * the batches before the failure deleted stays deleted). Not thread-safe with other users of pg.
 */
int metrics_retention_purge(cc_pg *pg, const struct metrics_retention_config *cfg,
                            struct metrics_retention_result *out);

/* Starts the purge thread: a first pass at once, then one every interval. It connects to
 * cfg->dsn itself, and when PostgreSQL is away it logs and tries again at the next pass. NULL on
 * a bad config or when the thread cannot start (logged). */
metrics_retention *metrics_retention_start(const struct metrics_retention_config *cfg);

/* Stops the thread (the pass under way ends after its current batch) and frees r. NULL ok. */
void metrics_retention_stop(metrics_retention *r);

#endif
