/*
 * metrics_store: the aggregator's PostgreSQL side (schema "metrics", migrations in
 * services/metrics-aggregator/migrations): applies a batch of facts in one transaction, set-based.
 *
 * One batch = COPY of the new facts into a session TEMP staging table, then a fixed handful of
 * statements whatever the batch size: deduplicate by event id (metrics.events_seen, ON CONFLICT
 * DO NOTHING), merge the interactions, park facts whose interaction has no created event yet
 * (metrics.pending) and release those whose created event came, upsert the rollups (one
 * INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE x = x + excluded.x per table), the
 * agent-state time split over 15-minute buckets, the queue SL thresholds, the live tables
 * (guarded by event time). Exactly-once: an event's id and its effects commit together.
 *
 * Every int function returns 0 or a negative errno-style code: -EIO (database failure; the
 * transaction was rolled back, nothing applied: retry the whole batch), -ENOMEM.
 * Thread-safety: a store is one connection; use it from one thread (the consumer's).
 * With cfg->store_timing (CC_METRICS_STORE_TIMING) the time of every statement of every batch
 * is logged at info level, for profiling.
 */
#ifndef METRICS_STORE_H
#define METRICS_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics_config.h"
#include "metrics_ingest.h"

typedef struct metrics_store metrics_store;

/* What one applied batch did. */
struct metrics_store_result {
    size_t applied;    /* new events whose effects were committed (parked ones included) */
    size_t duplicates; /* events already applied (by an earlier batch or earlier in this one) */
};

/* Connects to dsn with the thresholds of cfg (short abandons, default SL; copied). NULL (logged)
 * when the connection fails. */
metrics_store *metrics_store_new(const char *dsn, const struct metrics_config *cfg);

/* Closes the connection; NULL ok. */
void metrics_store_free(metrics_store *st);

/* Applies the migrations of dir to schema "metrics" (cc_pg_migrate). 0 or negative (logged). */
int metrics_store_migrate(metrics_store *st, const char *dir);

/* Applies facts[0..n) (entries of kind METRICS_KIND_IGNORE are skipped) in one transaction;
 * *res (may be NULL) tells what it did. 0 after COMMIT; -EIO / -ENOMEM with nothing applied.
 * The same as batch_begin, stage each, commit. */
int metrics_store_apply(metrics_store *st, const struct metrics_fact *facts, size_t n,
                        struct metrics_store_result *res);

/* The batch in steps, so that each fact is released as soon as it is staged (the ingest parses,
 * stages and frees one message at a time: its JSON allocations are reused by the next one).
 * batch_begin forgets whatever was staged and not committed. */
void metrics_store_batch_begin(metrics_store *st);

/* Stages f (copied: f may be cleared once this returns; kind METRICS_KIND_IGNORE is skipped, an
 * id already staged in this batch counts as a duplicate). 0, or -ENOMEM: the batch can then
 * only be begun again (commit refuses it). */
int metrics_store_stage(metrics_store *st, const struct metrics_fact *f);

/* Applies what was staged since batch_begin in one transaction, as metrics_store_apply. */
int metrics_store_commit(metrics_store *st, struct metrics_store_result *res);

#endif
