/*
 * metrics_ingest: turns messages of cc.interactions and cc.agents into plain facts, and is the
 * batch handler of the service's consumer (parse every message, apply the batch through
 * metrics_store in one transaction, give one verdict per message).
 *
 * Parsing: the CloudEvents envelope (cc_event), then the data of the types the KPIs use,
 * checked against proto/schemas (required fields, types, ranges, ids). A type this service does
 * not use (offered, held, registered, a type added later) is METRICS_KIND_IGNORE: OK without
 * effect. A malformed message (invalid envelope, a used type with missing or mistyped data, no
 * subject) is rejected (cc.deadletter) with the reason.
 *
 * Verdicts: a batch is one transaction; OK only after COMMIT; a database failure gives every
 * parsed message of the batch CC_BUS_RETRY (nothing was applied); rejects stay rejects.
 *
 * Thread-safety: a metrics_ingest belongs to its consumer's thread. The parse and split
 * functions are pure and thread-safe.
 */
#ifndef METRICS_INGEST_H
#define METRICS_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc_bus.h"
#include "cc_event.h"
#include "cc_metrics.h"

#define METRICS_BUCKET_MS (15 * 60 * 1000) /* rollup interval: 15 minutes, UTC-aligned */
#define METRICS_ABSENT    (-1)             /* an optional integer the event did not carry */

/* What an event is to the aggregator (values are stored in the staging tables: append only). */
enum metrics_kind {
    METRICS_KIND_IGNORE = 0,
    METRICS_KIND_CREATED = 1,
    METRICS_KIND_QUEUED = 2,
    METRICS_KIND_ANSWERED = 3,
    METRICS_KIND_ABANDONED = 4,
    METRICS_KIND_ENDED = 5,
    METRICS_KIND_WRAPUP = 6,
    METRICS_KIND_DISPOSITION = 7,
    METRICS_KIND_MESSAGE = 8, /* outbound messages of an agent only (first response) */
    METRICS_KIND_TRANSFERRED = 9,
    METRICS_KIND_OVERFLOWED = 10,
    METRICS_KIND_SURVEY = 11,
    METRICS_KIND_AGENT_LOGIN = 12,
    METRICS_KIND_AGENT_STATE = 13,
    METRICS_KIND_AGENT_LOGOUT = 14,
};

/* One parsed event. Strings and JSON arrays are borrowed from ev (valid until
 * metrics_fact_clear); NULL / METRICS_ABSENT when the event does not carry the field. */
struct metrics_fact {
    enum metrics_kind kind;
    cc_event ev;           /* owns the JSON; ev.id, ev.tenant, ev.subject (interaction or agent) */
    int64_t t_ms;          /* the event's own time */
    const char *queue_id;  /* created/queued/answered/abandoned/ended; transferred: from queue;
                              overflowed: the target queue */
    const char *agent_id;  /* answered/ended/wrapup/disposition/message/survey; transferred:
                              from agent */
    const char *channel;   /* created; transferred: channel_change */
    const char *direction; /* created */
    const char *customer_id; /* created */
    const char *campaign_id; /* created */
    const char *answered_by; /* answered: "agent" | "customer" */
    const char *disposition; /* disposition_set */
    const char *state;       /* agent: the state entered (logged_in state, to_state, logged_out) */
    const char *span_state;  /* agent: the state left (from_state, last_state) */
    const char *reason_code; /* agent: reason of the state entered */
    const char *span_reason; /* agent: not_ready reason of span_state (from_reason_code,
                                last_reason_code), when the event carries it */
    const json_t *contact_reasons; /* disposition_set: array of ids, or NULL */
    const json_t *queue_ids;       /* logged_in: array of ids */
    int64_t wait_ms, talk_ms, hold_ms, duration_ms, wrapup_ms;
    int64_t span_ms; /* agent: time spent in span_state, ending at t_ms */
    int priority, sl_threshold_s, csat, nps;
    int is_conversion, resolved; /* 0 / 1 / METRICS_ABSENT */
};

typedef struct metrics_ingest metrics_ingest;
struct metrics_store;

/* Parses one message value into *f (zeroed first). Returns 0 (f->kind may be
 * METRICS_KIND_IGNORE; call metrics_fact_clear in every case), or -EINVAL with the reason in err
 * ("cc.interaction.answered: 'wait_ms' must be an integer >= 0") and *f cleared. */
int metrics_fact_parse(const void *bytes, size_t len, struct metrics_fact *f, char *err,
                       size_t errlen);

/* Releases what metrics_fact_parse kept and zeroes *f. Safe on a zeroed fact. */
void metrics_fact_clear(struct metrics_fact *f);

/* Start of the 15-minute UTC bucket holding t_ms (floor, also for times before 1970). */
int64_t metrics_bucket_of(int64_t t_ms);

/* Splits [start_ms, end_ms) over 15-minute buckets: piece i is bucket[i] (its start) and ms[i]
 * (the part of the span inside it, > 0). Writes at most cap pieces and returns how many there
 * are (call with cap 0 to size the arrays); 0 for an empty or reversed span. */
size_t metrics_split_15m(int64_t start_ms, int64_t end_ms, int64_t *bucket, int64_t *ms,
                         size_t cap);

/* A handler context over store (borrowed; outlives it) counting into registry (borrowed; may be
 * NULL): metrics_ingest_events_total{result=applied|duplicate|ignored|rejected|retried} and the
 * metrics_ingest_batch_seconds histogram. NULL on ENOMEM. */
metrics_ingest *metrics_ingest_new(struct metrics_store *store, cc_metrics *registry);

/* Frees it; NULL ok. */
void metrics_ingest_free(metrics_ingest *in);

/* The cc_bus_batch_handler of the consumer (ctx: the metrics_ingest). */
void metrics_ingest_handle_batch(void *ctx, const struct cc_bus_msg *msgs, size_t n,
                                 struct cc_bus_outcome *out);

#endif
