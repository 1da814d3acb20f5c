/* metrics_ingest: events into facts, and the consumer's batch handler (see metrics_ingest.h). */
#include "metrics_ingest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_log.h"
#include "cc_time.h"
#include "metrics_store.h"

#define INGEST_DURATION_MAX 1000000000000LL /* 1e12 ms (31 years): larger is not a duration */
#define INGEST_TEXT_MAX     256             /* enumerations and free codes kept as text */
#define INGEST_REASONS_MAX  32

struct metrics_ingest {
    metrics_store *store;
    struct cc_counter *applied, *duplicate, *ignored, *rejected, *retried;
    struct cc_histogram *batch_seconds;
};

/* ---- parsing ------------------------------------------------------------------------------ */

typedef int (*fact_parser)(const json_t *data, struct metrics_fact *f, char *err, size_t errlen);

__attribute__((format(printf, 4, 5))) static int bad(const struct metrics_fact *f, char *err,
                                                     size_t errlen, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", f->ev.type, msg);
    return -EINVAL;
}

enum str_rule { STR_ANY, STR_ID };

/* data.key as a string into *out (NULL when absent and optional). */
static int get_str(const struct metrics_fact *f, const json_t *data, const char *key, bool required,
                   enum str_rule rule, const char **out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(data, key);
    const char *s;

    *out = NULL;
    if (!v)
        return required ? bad(f, err, errlen, "missing required field '%s'", key) : 0;
    s = json_string_value(v);
    if (!s)
        return bad(f, err, errlen, "'%s' must be a string", key);
    if (rule == STR_ID && !cc_event_id_valid(s, CC_EVENT_ID_MAX))
        return bad(f, err, errlen, "'%s' is not a valid id", key);
    if (rule == STR_ANY && (!*s || strlen(s) > INGEST_TEXT_MAX))
        return bad(f, err, errlen, "'%s' must be 1..%d characters", key, INGEST_TEXT_MAX);
    *out = s;
    return 0;
}

/* data.key as an integer in [min, max] into *out (METRICS_ABSENT when absent and optional). */
static int get_int(const struct metrics_fact *f, const json_t *data, const char *key, bool required,
                   long long min, long long max, int64_t *out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(data, key);
    long long x;

    *out = METRICS_ABSENT;
    if (!v)
        return required ? bad(f, err, errlen, "missing required field '%s'", key) : 0;
    if (!json_is_integer(v))
        return bad(f, err, errlen, "'%s' must be an integer", key);
    x = json_integer_value(v);
    if (x < min || x > max)
        return bad(f, err, errlen, "'%s' must be in %lld..%lld", key, min, max);
    *out = x;
    return 0;
}

static int get_small(const struct metrics_fact *f, const json_t *data, const char *key,
                     bool required, int min, int max, int *out, char *err, size_t errlen)
{
    int64_t v;
    int rc = get_int(f, data, key, required, min, max, &v, err, errlen);

    *out = (int)v;
    return rc;
}

static int get_duration(const struct metrics_fact *f, const json_t *data, const char *key,
                        bool required, int64_t *out, char *err, size_t errlen)
{
    return get_int(f, data, key, required, 0, INGEST_DURATION_MAX, out, err, errlen);
}

/* data.key as a boolean into *out: 0 / 1, METRICS_ABSENT when absent. */
static int get_bool(const struct metrics_fact *f, const json_t *data, const char *key, int *out,
                    char *err, size_t errlen)
{
    const json_t *v = json_object_get(data, key);

    *out = METRICS_ABSENT;
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return bad(f, err, errlen, "'%s' must be a boolean", key);
    *out = json_is_true(v) ? 1 : 0;
    return 0;
}

/* data.key as an array of at most max ids (required or not). */
static int get_ids(const struct metrics_fact *f, const json_t *data, const char *key, bool required,
                   size_t max, const json_t **out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(data, key), *item;
    size_t i;

    *out = NULL;
    if (!v)
        return required ? bad(f, err, errlen, "missing required field '%s'", key) : 0;
    if (!json_is_array(v) || json_array_size(v) > max)
        return bad(f, err, errlen, "'%s' must be an array of at most %zu ids", key, max);
    json_array_foreach(v, i, item)
    {
        if (!cc_event_id_valid(json_string_value(item), CC_EVENT_ID_MAX))
            return bad(f, err, errlen, "'%s'[%zu] is not a valid id", key, i);
    }
    *out = v;
    return 0;
}

static int parse_created(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    const char *from, *to;

    if (get_str(f, d, "channel", true, STR_ANY, &f->channel, err, n) < 0 ||
        get_str(f, d, "direction", true, STR_ANY, &f->direction, err, n) < 0 ||
        get_str(f, d, "queue_id", true, STR_ID, &f->queue_id, err, n) < 0 ||
        get_str(f, d, "from", true, STR_ANY, &from, err, n) < 0 ||
        get_str(f, d, "to", true, STR_ANY, &to, err, n) < 0 ||
        get_small(f, d, "priority", true, 0, 1000, &f->priority, err, n) < 0 ||
        get_str(f, d, "customer_id", false, STR_ID, &f->customer_id, err, n) < 0 ||
        get_str(f, d, "campaign_id", false, STR_ID, &f->campaign_id, err, n) < 0)
        return -EINVAL;
    return 0;
}

static int parse_queued(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    if (get_str(f, d, "queue_id", true, STR_ID, &f->queue_id, err, n) < 0 ||
        get_small(f, d, "priority", true, 0, 1000, &f->priority, err, n) < 0 ||
        get_small(f, d, "sl_threshold_s", false, 1, 86400, &f->sl_threshold_s, err, n) < 0)
        return -EINVAL;
    return 0;
}

static int parse_answered(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    if (get_str(f, d, "answered_by", true, STR_ANY, &f->answered_by, err, n) < 0 ||
        get_str(f, d, "agent_id", strcmp(f->answered_by, "agent") == 0, STR_ID, &f->agent_id, err,
                n) < 0 ||
        get_str(f, d, "queue_id", false, STR_ID, &f->queue_id, err, n) < 0 ||
        get_duration(f, d, "wait_ms", true, &f->wait_ms, err, n) < 0)
        return -EINVAL;
    return 0;
}

static int parse_abandoned(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    if (get_str(f, d, "queue_id", true, STR_ID, &f->queue_id, err, n) < 0 ||
        get_duration(f, d, "wait_ms", true, &f->wait_ms, err, n) < 0)
        return -EINVAL;
    return 0;
}

static int parse_ended(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    const char *ended_by, *reason;

    if (get_str(f, d, "ended_by", true, STR_ANY, &ended_by, err, n) < 0 ||
        get_duration(f, d, "talk_ms", true, &f->talk_ms, err, n) < 0 ||
        get_duration(f, d, "hold_ms", true, &f->hold_ms, err, n) < 0 ||
        get_duration(f, d, "duration_ms", false, &f->duration_ms, err, n) < 0 ||
        get_str(f, d, "agent_id", false, STR_ID, &f->agent_id, err, n) < 0 ||
        get_str(f, d, "queue_id", false, STR_ID, &f->queue_id, err, n) < 0 ||
        get_str(f, d, "reason", false, STR_ANY, &reason, err, n) < 0)
        return -EINVAL;
    return 0;
}

static int parse_wrapup(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    if (get_str(f, d, "agent_id", true, STR_ID, &f->agent_id, err, n) < 0 ||
        get_duration(f, d, "wrapup_ms", true, &f->wrapup_ms, err, n) < 0)
        return -EINVAL;
    return 0;
}

static int parse_disposition(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    if (get_str(f, d, "agent_id", true, STR_ID, &f->agent_id, err, n) < 0 ||
        get_str(f, d, "disposition", true, STR_ID, &f->disposition, err, n) < 0 ||
        get_bool(f, d, "is_conversion", &f->is_conversion, err, n) < 0 ||
        get_bool(f, d, "resolved", &f->resolved, err, n) < 0 ||
        get_ids(f, d, "contact_reasons", false, INGEST_REASONS_MAX, &f->contact_reasons, err, n) <
            0)
        return -EINVAL;
    return 0;
}

static int parse_message(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    const char *message_id, *direction, *sender, *content_type;

    if (get_str(f, d, "message_id", true, STR_ID, &message_id, err, n) < 0 ||
        get_str(f, d, "direction", true, STR_ANY, &direction, err, n) < 0 ||
        get_str(f, d, "sender", true, STR_ANY, &sender, err, n) < 0 ||
        get_str(f, d, "content_type", true, STR_ANY, &content_type, err, n) < 0 ||
        get_str(f, d, "agent_id", false, STR_ID, &f->agent_id, err, n) < 0)
        return -EINVAL;
    /* only an agent's outbound message can be a first response */
    if (strcmp(direction, "outbound") != 0 || strcmp(sender, "agent") != 0)
        f->kind = METRICS_KIND_IGNORE;
    return 0;
}

static int parse_transferred(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    const char *transfer_type, *target_type, *target;

    if (get_str(f, d, "transfer_type", true, STR_ANY, &transfer_type, err, n) < 0 ||
        get_str(f, d, "target_type", true, STR_ANY, &target_type, err, n) < 0 ||
        get_str(f, d, "target", true, STR_ANY, &target, err, n) < 0 ||
        get_str(f, d, "from_agent_id", false, STR_ID, &f->agent_id, err, n) < 0 ||
        get_str(f, d, "from_queue_id", false, STR_ID, &f->queue_id, err, n) < 0 ||
        get_str(f, d, "channel_change", false, STR_ANY, &f->channel, err, n) < 0)
        return -EINVAL;
    return 0;
}

static int parse_overflowed(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    const char *from, *reason;

    if (get_str(f, d, "from_queue_id", true, STR_ID, &from, err, n) < 0 ||
        get_str(f, d, "to_queue_id", true, STR_ID, &f->queue_id, err, n) < 0 ||
        get_str(f, d, "reason", true, STR_ANY, &reason, err, n) < 0 ||
        get_duration(f, d, "wait_ms", true, &f->wait_ms, err, n) < 0)
        return -EINVAL;
    return 0;
}

static int parse_survey(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    if (get_small(f, d, "csat", false, 1, 5, &f->csat, err, n) < 0 ||
        get_small(f, d, "nps", false, 0, 10, &f->nps, err, n) < 0 ||
        get_str(f, d, "agent_id", false, STR_ID, &f->agent_id, err, n) < 0)
        return -EINVAL;
    if (f->csat == METRICS_ABSENT && f->nps == METRICS_ABSENT)
        return bad(f, err, n, "needs 'csat' or 'nps'");
    return 0;
}

static int parse_logged_in(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    if (!json_is_object(json_object_get(d, "capacity")))
        return bad(f, err, n, "'capacity' must be an object");
    if (get_ids(f, d, "queue_ids", true, 4096, &f->queue_ids, err, n) < 0 ||
        get_str(f, d, "state", true, STR_ANY, &f->state, err, n) < 0 ||
        get_str(f, d, "reason_code", false, STR_ID, &f->reason_code, err, n) < 0)
        return -EINVAL;
    return 0;
}

static int parse_state_changed(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    const char *changed_by;

    if (get_str(f, d, "from_state", true, STR_ANY, &f->span_state, err, n) < 0 ||
        get_str(f, d, "to_state", true, STR_ANY, &f->state, err, n) < 0 ||
        get_duration(f, d, "duration_ms", true, &f->span_ms, err, n) < 0 ||
        get_str(f, d, "changed_by", true, STR_ANY, &changed_by, err, n) < 0 ||
        get_str(f, d, "reason_code", strcmp(f->state, "not_ready") == 0, STR_ID, &f->reason_code,
                err, n) < 0 ||
        get_str(f, d, "from_reason_code", false, STR_ID, &f->span_reason, err, n) < 0)
        return -EINVAL;
    return 0;
}

static int parse_logged_out(const json_t *d, struct metrics_fact *f, char *err, size_t n)
{
    const char *by;
    int64_t session_ms;

    if (get_str(f, d, "logged_out_by", true, STR_ANY, &by, err, n) < 0 ||
        get_duration(f, d, "session_ms", true, &session_ms, err, n) < 0 ||
        get_str(f, d, "last_state", false, STR_ANY, &f->span_state, err, n) < 0 ||
        get_duration(f, d, "last_state_ms", false, &f->span_ms, err, n) < 0 ||
        get_str(f, d, "last_reason_code", false, STR_ID, &f->span_reason, err, n) < 0)
        return -EINVAL;
    f->state = "logged_out";
    if (!f->span_state || f->span_ms == METRICS_ABSENT) { /* no closed state to account */
        f->span_state = NULL;
        f->span_ms = METRICS_ABSENT;
    }
    return 0;
}

static const struct {
    const char *type;
    enum metrics_kind kind;
    fact_parser parse;
} fact_types[] = {
    {"cc.interaction.created", METRICS_KIND_CREATED, parse_created},
    {"cc.interaction.queued", METRICS_KIND_QUEUED, parse_queued},
    {"cc.interaction.answered", METRICS_KIND_ANSWERED, parse_answered},
    {"cc.interaction.abandoned", METRICS_KIND_ABANDONED, parse_abandoned},
    {"cc.interaction.ended", METRICS_KIND_ENDED, parse_ended},
    {"cc.interaction.wrapup_completed", METRICS_KIND_WRAPUP, parse_wrapup},
    {"cc.interaction.disposition_set", METRICS_KIND_DISPOSITION, parse_disposition},
    {"cc.interaction.message", METRICS_KIND_MESSAGE, parse_message},
    {"cc.interaction.transferred", METRICS_KIND_TRANSFERRED, parse_transferred},
    {"cc.interaction.overflowed", METRICS_KIND_OVERFLOWED, parse_overflowed},
    {"cc.interaction.survey_completed", METRICS_KIND_SURVEY, parse_survey},
    {"cc.agent.logged_in", METRICS_KIND_AGENT_LOGIN, parse_logged_in},
    {"cc.agent.state_changed", METRICS_KIND_AGENT_STATE, parse_state_changed},
    {"cc.agent.logged_out", METRICS_KIND_AGENT_LOGOUT, parse_logged_out},
};

int metrics_fact_parse(const void *bytes, size_t len, struct metrics_fact *f, char *err,
                       size_t errlen)
{
    const json_t *data;
    size_t i;

    memset(f, 0, sizeof(*f));
    if (!bytes || len == 0) {
        snprintf(err, errlen, "empty message");
        return -EINVAL;
    }
    if (cc_event_parse(bytes, len, &f->ev, err, errlen) < 0)
        return -EINVAL;
    for (i = 0; i < sizeof(fact_types) / sizeof(fact_types[0]); i++)
        if (strcmp(f->ev.type, fact_types[i].type) == 0)
            break;
    if (i == sizeof(fact_types) / sizeof(fact_types[0]))
        return 0; /* a type the KPIs do not use: METRICS_KIND_IGNORE */
    f->kind = fact_types[i].kind;
    f->t_ms = f->ev.time_ms;
    f->wait_ms = f->talk_ms = f->hold_ms = f->duration_ms = f->wrapup_ms = METRICS_ABSENT;
    f->span_ms = METRICS_ABSENT;
    f->priority = f->sl_threshold_s = f->csat = f->nps = METRICS_ABSENT;
    f->is_conversion = f->resolved = METRICS_ABSENT;
    if (!cc_event_id_valid(f->ev.subject, CC_EVENT_ID_MAX)) {
        bad(f, err, errlen, "missing or invalid subject (the %s id)",
            f->kind >= METRICS_KIND_AGENT_LOGIN ? "agent" : "interaction");
        goto fail;
    }
    data = f->ev.data;
    if (!json_is_object(data)) {
        bad(f, err, errlen, "missing data object");
        goto fail;
    }
    if (fact_types[i].parse(data, f, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    metrics_fact_clear(f);
    return -EINVAL;
}

void metrics_fact_clear(struct metrics_fact *f)
{
    cc_event_clear(&f->ev);
    memset(f, 0, sizeof(*f));
}

/* ---- buckets ------------------------------------------------------------------------------ */

int64_t metrics_bucket_of(int64_t t_ms)
{
    int64_t r = t_ms % METRICS_BUCKET_MS;

    return r < 0 ? t_ms - r - METRICS_BUCKET_MS : t_ms - r;
}

size_t metrics_split_15m(int64_t start_ms, int64_t end_ms, int64_t *bucket, int64_t *ms, size_t cap)
{
    size_t n = 0;

    if (end_ms <= start_ms)
        return 0;
    for (int64_t b = metrics_bucket_of(start_ms); b < end_ms; b += METRICS_BUCKET_MS, n++) {
        int64_t lo = b > start_ms ? b : start_ms;
        int64_t hi = b + METRICS_BUCKET_MS < end_ms ? b + METRICS_BUCKET_MS : end_ms;

        if (n < cap) {
            bucket[n] = b;
            ms[n] = hi - lo;
        }
    }
    return n;
}

/* ---- the batch handler -------------------------------------------------------------------- */

metrics_ingest *metrics_ingest_new(struct metrics_store *store, cc_metrics *registry)
{
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,   0.25,   0.5,   1,    2.5,   5};
    metrics_ingest *in = calloc(1, sizeof(*in));
    const char *help = "events consumed by the ingest, by result";

    if (!in)
        return NULL;
    in->store = store;
    if (registry) {
        in->applied =
            cc_metrics_counter(registry, "metrics_ingest_events_total", help, "result=\"applied\"");
        in->duplicate = cc_metrics_counter(registry, "metrics_ingest_events_total", help,
                                           "result=\"duplicate\"");
        in->ignored =
            cc_metrics_counter(registry, "metrics_ingest_events_total", help, "result=\"ignored\"");
        in->rejected = cc_metrics_counter(registry, "metrics_ingest_events_total", help,
                                          "result=\"rejected\"");
        in->retried =
            cc_metrics_counter(registry, "metrics_ingest_events_total", help, "result=\"retried\"");
        in->batch_seconds = cc_metrics_histogram(
            registry, "metrics_ingest_batch_seconds",
            "time to apply one consumed batch in PostgreSQL (parse, stage, commit)", NULL, bounds,
            sizeof(bounds) / sizeof(bounds[0]));
    }
    return in;
}

void metrics_ingest_free(metrics_ingest *in)
{
    if (!in)
        return;
    free(in);
}

static void count(struct cc_counter *c, size_t n)
{
    if (c && n)
        cc_counter_add(c, n);
}

/* Gives every message that is not a reject CC_BUS_RETRY ("database: <why>" or "out of memory"). */
static void retry_all(struct cc_bus_outcome *out, size_t n, int rc)
{
    for (size_t i = 0; i < n; i++) {
        if (out[i].verdict == CC_BUS_REJECT)
            continue;
        out[i].verdict = CC_BUS_RETRY;
        if (rc == -ENOMEM)
            snprintf(out[i].reason, sizeof(out[i].reason), "out of memory");
        else
            snprintf(out[i].reason, sizeof(out[i].reason), "database: %s", strerror(-rc));
    }
}

/* Parses each message and stages it at once, then frees its JSON: one message's allocations are
 * reused by the next (a batch of parsed trees kept alive until the commit cost a quarter of the
 * service's CPU in malloc). Then one transaction for the batch. */
void metrics_ingest_handle_batch(void *ctx, const struct cc_bus_msg *msgs, size_t n,
                                 struct cc_bus_outcome *out)
{
    metrics_ingest *in = ctx;
    struct metrics_store_result res = {0};
    struct metrics_fact f;
    size_t rejected = 0, ignored = 0;
    int64_t t0 = cc_time_mono_us();
    int rc = 0;

    metrics_store_batch_begin(in->store);
    for (size_t i = 0; i < n; i++) {
        if (metrics_fact_parse(msgs[i].value, msgs[i].len, &f, out[i].reason,
                               sizeof(out[i].reason)) < 0) {
            out[i].verdict = CC_BUS_REJECT;
            rejected++;
            continue;
        }
        if (f.kind == METRICS_KIND_IGNORE)
            ignored++;
        else if (rc == 0)
            rc = metrics_store_stage(in->store, &f);
        metrics_fact_clear(&f);
    }
    if (rc == 0 && rejected + ignored < n)
        rc = metrics_store_commit(in->store, &res);
    if (rc < 0) {
        retry_all(out, n, rc);
        count(in->retried, n - rejected);
    } else {
        count(in->applied, res.applied);
        count(in->duplicate, res.duplicates);
        count(in->ignored, ignored);
        if (in->batch_seconds)
            cc_histogram_observe(in->batch_seconds, (double)(cc_time_mono_us() - t0) / 1e6);
    }
    count(in->rejected, rejected);
}
