/*
 * metrics_stream: the live snapshot pushed to clients over Server-Sent Events, and the periodic
 * cc.metrics snapshots on Kafka. One ticker thread does both:
 *
 *   - every stream_interval_ms it computes the live view (metrics_live_view) once per
 *     (tenant, time zone) that has subscribers, and sends it to each subscriber whose last event
 *     differs from it (the "time" member aside): `id: <n>\nevent: snapshot\ndata: <json>\n\n`,
 *     n counting 1, 2, ... per connection. A subscriber gets the view at once when it connects.
 *     A client too slow to read keeps only the newest event (older unsent ones are dropped).
 *   - every snapshot_interval_s (0 = never, or no producer) it sends one cc.metrics.snapshot per
 *     queue of every tenant with live data (proto/schemas/cc.metrics.snapshot.schema.json), keyed
 *     and subject-ed by the queue id, with the day of the configured time zone.
 *
 * Thread-safety: subscribe may be called from any HTTP thread at once; _new/_free from one
 * thread. The subscribers' state is shared with the HTTP layer's stream callbacks under one
 * lock, in a hub that outlives _free until the last stream ended.
 */
#ifndef METRICS_STREAM_H
#define METRICS_STREAM_H

#include "cc_bus.h"
#include "cc_http.h"
#include "cc_pg_pool.h"
#include "metrics_live.h"
#include "metrics_query.h"

typedef struct metrics_stream metrics_stream;

struct metrics_stream_config {
    long stream_interval_ms;  /* >= 1 */
    long snapshot_interval_s; /* 0 = no cc.metrics snapshots */
    const char *timezone;     /* the snapshots' day (copied) */
    const char *source; /* CloudEvents source of the snapshots, e.g. "/metrics-aggregator/i1" */
};

/* Starts the ticker. live, pool and producer (may be NULL: no snapshots) are borrowed and must
 * outlive the stream. NULL on failure (logged). */
metrics_stream *metrics_stream_new(const metrics_live *live, cc_pg_pool *pool,
                                   cc_producer *producer, const struct metrics_stream_config *cfg);

/* Stops the ticker and ends every open event stream (each gets its pending bytes, then the end
 * of the response). Call before cc_http_free. NULL is a no-op. */
void metrics_stream_free(metrics_stream *s);

/*
 * Answers resp with an event stream of tenant's live view in tz, starting with the current
 * view. 0 (resp set); -EINVAL when PostgreSQL does not know tz (resp untouched: answer 400);
 * -EAGAIN when no connection is free or the database fails (resp untouched: answer 503);
 * -ENOMEM.
 */
int metrics_stream_subscribe(metrics_stream *s, struct cc_http_resp *resp, const char *tenant,
                             const char *tz);

#endif
