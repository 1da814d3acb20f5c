/* metrics_stream: SSE fan-out of the live view and cc.metrics snapshots (see the header). */
#include "metrics_stream.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc_event.h"
#include "cc_log.h"
#include "cc_time.h"
#include "metrics_kpi.h"

#define MS_BACKLOG_MAX      (1024 * 1024) /* unsent bytes before a slow client's backlog is dropped */
#define MS_SNAPSHOT_TYPE    "cc.metrics.snapshot"
#define MS_TENANTS_SINCE_MS (24LL * 3600 * 1000) /* tenants active within this, for snapshots */

struct ms_hub;

/* One open event stream. Everything but hub is guarded by hub->mu. */
struct ms_sub {
    struct ms_hub *hub;
    char tenant[CC_EVENT_TENANT_MAX + 1];
    char tz[METRICS_QUERY_TZ_MAX + 1];
    cc_http_stream *st; /* NULL until the stream is open */
    char *out;          /* bytes still to write: out[off..len) */
    size_t len, off;
    char *last; /* the last view sent, without its time: what "changed" compares */
    uint64_t seq;
    bool end;
    struct ms_sub *next;
};

/* What the stream callbacks share with the ticker; freed by whoever drops the last reference
 * (the metrics_stream, or the last subscriber, whose stream may end after metrics_stream_free). */
struct ms_hub {
    pthread_mutex_t mu;
    struct ms_sub *subs;
    int refs;
};

struct metrics_stream {
    struct ms_hub *hub;
    const metrics_live *live;
    cc_pg_pool *pool;
    cc_producer *producer;
    long interval_ms, snapshot_s;
    char tz[METRICS_QUERY_TZ_MAX + 1];
    char *source;
    pthread_mutex_t mu; /* guards stop */
    pthread_cond_t cv;
    bool stop, running;
    pthread_t ticker;
};

/* ---- hub and subscribers --------------------------------------------------------------------- */

static void hub_unref(struct ms_hub *h)
{
    int left;

    pthread_mutex_lock(&h->mu);
    left = --h->refs;
    pthread_mutex_unlock(&h->mu);
    if (left > 0)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* ctx_free of a stream: unlinks and frees the subscriber. */
static void sub_free(void *ctx)
{
    struct ms_sub *sub = ctx;
    struct ms_hub *h = sub->hub;

    pthread_mutex_lock(&h->mu);
    for (struct ms_sub **p = &h->subs; *p; p = &(*p)->next) {
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    free(sub->out);
    free(sub->last);
    free(sub);
    hub_unref(h);
}

/* The stream callback: copies pending bytes; waits for more; ends after the hub closed it. */
static long sub_fill(void *ctx, char *buf, size_t cap)
{
    struct ms_sub *sub = ctx;
    long n = CC_HTTP_STREAM_WAIT;

    pthread_mutex_lock(&sub->hub->mu);
    if (sub->off < sub->len) {
        size_t take = sub->len - sub->off < cap ? sub->len - sub->off : cap;
        memcpy(buf, sub->out + sub->off, take);
        sub->off += take;
        n = (long)take;
        if (sub->off == sub->len) {
            free(sub->out);
            sub->out = NULL;
            sub->len = sub->off = 0;
        }
    } else if (sub->end) {
        n = CC_HTTP_STREAM_END;
    }
    pthread_mutex_unlock(&sub->hub->mu);
    return n;
}

/* Queues one snapshot event for sub (hub->mu held) and remembers cmp as the last view sent.
 * A backlog over MS_BACKLOG_MAX is dropped first: a slow reader gets only the newest view. */
static int sub_push(struct ms_sub *sub, const char *full, const char *cmp)
{
    char head[64];
    size_t hn, fn = strlen(full), keep;
    char *grown, *last = strdup(cmp);

    if (!last)
        return -ENOMEM;
    hn = (size_t)snprintf(head, sizeof(head),
                          "id: %" PRIu64 "\nevent: snapshot\ndata: ", sub->seq + 1);
    keep = sub->len - sub->off;
    if (keep > MS_BACKLOG_MAX)
        keep = 0;
    grown = malloc(keep + hn + fn + 3);
    if (!grown) {
        free(last);
        return -ENOMEM;
    }
    if (keep)
        memcpy(grown, sub->out + sub->off, keep);
    memcpy(grown + keep, head, hn);
    memcpy(grown + keep + hn, full, fn);
    memcpy(grown + keep + hn + fn, "\n\n", 3);
    free(sub->out);
    sub->out = grown;
    sub->off = 0;
    sub->len = keep + hn + fn + 2;
    free(sub->last);
    sub->last = last;
    sub->seq++;
    if (sub->st)
        cc_http_stream_wake(sub->st);
    return 0;
}

/* The live view of tenant in tz as (full JSON, JSON without "time"); -EINVAL for a bad zone. */
static int ms_view(const metrics_live *live, cc_pg *pg, const char *tenant, const char *tz,
                   char **full, char **cmp)
{
    json_t *doc = NULL;
    int rc = metrics_live_view(live, pg, tenant, tz, cc_time_now_ms(), &doc);

    *full = *cmp = NULL;
    if (rc < 0)
        return rc;
    *full = metrics_kpi_dump(doc, NULL);
    json_object_del(doc, "time");
    *cmp = metrics_kpi_dump(doc, NULL);
    json_decref(doc);
    if (!*full || !*cmp) {
        free(*full);
        free(*cmp);
        *full = *cmp = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* ---- the ticker ------------------------------------------------------------------------------ */

struct ms_pair {
    char tenant[CC_EVENT_TENANT_MAX + 1];
    char tz[METRICS_QUERY_TZ_MAX + 1];
};

/* The distinct (tenant, tz) of open subscribers into a malloc'd array (*n of them). */
static struct ms_pair *ms_pairs(struct ms_hub *h, size_t *n)
{
    struct ms_pair *v = NULL;
    size_t cap = 0;

    *n = 0;
    pthread_mutex_lock(&h->mu);
    for (struct ms_sub *sub = h->subs; sub; sub = sub->next) {
        bool seen = false;

        for (size_t i = 0; i < *n && !seen; i++)
            seen = strcmp(v[i].tenant, sub->tenant) == 0 && strcmp(v[i].tz, sub->tz) == 0;
        if (seen || sub->end)
            continue;
        if (*n == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            struct ms_pair *grown = realloc(v, ncap * sizeof(*grown));
            if (!grown)
                break;
            v = grown;
            cap = ncap;
        }
        memcpy(v[*n].tenant, sub->tenant, sizeof(sub->tenant));
        memcpy(v[*n].tz, sub->tz, sizeof(sub->tz));
        (*n)++;
    }
    pthread_mutex_unlock(&h->mu);
    return v;
}

/* One round of the live stream: each (tenant, tz) computed once, sent where it changed. */
static void ms_stream_round(metrics_stream *s)
{
    size_t n;
    struct ms_pair *pairs = ms_pairs(s->hub, &n);
    cc_pg *pg;

    if (n == 0) {
        free(pairs);
        return;
    }
    pg = cc_pg_pool_acquire(s->pool);
    for (size_t i = 0; pg && i < n; i++) {
        char *full, *cmp;

        if (ms_view(s->live, pg, pairs[i].tenant, pairs[i].tz, &full, &cmp) < 0)
            continue; /* logged by the query; the next round retries */
        pthread_mutex_lock(&s->hub->mu);
        for (struct ms_sub *sub = s->hub->subs; sub; sub = sub->next)
            if (!sub->end && strcmp(sub->tenant, pairs[i].tenant) == 0 &&
                strcmp(sub->tz, pairs[i].tz) == 0 && (!sub->last || strcmp(sub->last, cmp) != 0))
                sub_push(sub, full, cmp);
        pthread_mutex_unlock(&s->hub->mu);
        free(full);
        free(cmp);
    }
    cc_pg_pool_release(s->pool, pg);
    free(pairs);
}

/* cc.metrics: one snapshot per queue of tenant. Returns how many were queued. */
static int ms_snapshot_tenant(metrics_stream *s, cc_pg *pg, const char *tenant, int64_t now)
{
    json_t *doc = NULL, *queue;
    size_t i;
    int sent = 0;

    if (metrics_live_view(s->live, pg, tenant, s->tz, now, &doc) < 0)
        return 0;
    json_array_foreach(json_object_get(doc, "queues"), i, queue)
    {
        const char *qid = json_string_value(json_object_get(queue, "queue_id"));
        json_t *env;

        json_object_set_new(queue, "tz", json_string(s->tz));
        env = cc_event_build(MS_SNAPSHOT_TYPE, s->source, qid, tenant, json_incref(queue));
        if (env && cc_producer_send_event(s->producer, CC_TOPIC_METRICS, qid, env) == 0)
            sent++;
        else
            CC_WARN("cannot send the cc.metrics snapshot of queue '%s' of tenant '%s'", qid,
                    tenant);
        json_decref(env);
    }
    json_decref(doc);
    return sent;
}

static void ms_snapshot_round(metrics_stream *s)
{
    int64_t now = cc_time_now_ms();
    json_t *tenants = NULL, *t;
    cc_pg *pg = cc_pg_pool_acquire(s->pool);
    size_t i;

    if (!pg)
        return;
    if (metrics_live_tenants(s->live, pg, now - MS_TENANTS_SINCE_MS, &tenants) == 0) {
        json_array_foreach(tenants, i, t)
        {
            ms_snapshot_tenant(s, pg, json_string_value(t), now);
        }
    }
    cc_pg_pool_release(s->pool, pg);
    json_decref(tenants);
    cc_producer_poll(s->producer, 0);
}

static void *ms_ticker(void *arg)
{
    metrics_stream *s = arg;
    int64_t next_snapshot = cc_time_mono_ms() + s->snapshot_s * 1000;

    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += s->interval_ms / 1000;
        until.tv_nsec += (s->interval_ms % 1000) * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->cv, &s->mu, &until);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->mu);
        ms_stream_round(s);
        if (s->producer && s->snapshot_s > 0 && cc_time_mono_ms() >= next_snapshot) {
            next_snapshot = cc_time_mono_ms() + s->snapshot_s * 1000;
            ms_snapshot_round(s);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- public ---------------------------------------------------------------------------------- */

int metrics_stream_subscribe(metrics_stream *s, struct cc_http_resp *resp, const char *tenant,
                             const char *tz)
{
    struct ms_sub *sub;
    cc_http_stream *st = NULL;
    char *full = NULL, *cmp = NULL;
    cc_pg *pg;
    int rc;

    if (strlen(tenant) > CC_EVENT_TENANT_MAX || strlen(tz) > METRICS_QUERY_TZ_MAX)
        return -EINVAL;
    pg = cc_pg_pool_acquire(s->pool);
    if (!pg)
        return -EAGAIN;
    rc = ms_view(s->live, pg, tenant, tz, &full, &cmp);
    cc_pg_pool_release(s->pool, pg);
    if (rc < 0)
        return rc == -EIO ? -EAGAIN : rc;
    sub = calloc(1, sizeof(*sub));
    if (!sub) {
        rc = -ENOMEM;
        goto out_view;
    }
    sub->hub = s->hub;
    snprintf(sub->tenant, sizeof(sub->tenant), "%s", tenant);
    snprintf(sub->tz, sizeof(sub->tz), "%s", tz);
    pthread_mutex_lock(&s->hub->mu);
    s->hub->refs++;
    rc = sub_push(sub, full, cmp); /* the view at connect: event 1 */
    pthread_mutex_unlock(&s->hub->mu);
    if (rc < 0) {
        sub_free(sub);
        goto out_view;
    }
    cc_http_add_header(resp, "Cache-Control", "no-cache");
    cc_http_add_header(resp, "X-Accel-Buffering", "no"); /* no proxy buffering of the stream */
    rc = cc_http_stream_open(resp, 200, "text/event-stream; charset=utf-8", sub_fill, sub, sub_free,
                             &st);
    if (rc < 0)
        goto out_view; /* sub_free ran */
    pthread_mutex_lock(&s->hub->mu);
    sub->st = st;
    sub->next = s->hub->subs;
    s->hub->subs = sub;
    pthread_mutex_unlock(&s->hub->mu);
out_view:
    free(full);
    free(cmp);
    return rc;
}

metrics_stream *metrics_stream_new(const metrics_live *live, cc_pg_pool *pool,
                                   cc_producer *producer, const struct metrics_stream_config *cfg)
{
    metrics_stream *s;
    pthread_condattr_t ca;

    if (!live || !pool || !cfg || cfg->stream_interval_ms < 1 || cfg->snapshot_interval_s < 0 ||
        !cfg->timezone || strlen(cfg->timezone) > METRICS_QUERY_TZ_MAX) {
        CC_ERROR("bad metrics stream config");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->hub = calloc(1, sizeof(*s->hub));
    s->source = strdup(cfg->source ? cfg->source : "/metrics-aggregator");
    if (!s->hub || !s->source) {
        free(s->hub);
        free(s->source);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->hub->mu, NULL);
    s->hub->refs = 1;
    s->live = live;
    s->pool = pool;
    s->producer = producer;
    s->interval_ms = cfg->stream_interval_ms;
    s->snapshot_s = cfg->snapshot_interval_s;
    snprintf(s->tz, sizeof(s->tz), "%s", cfg->timezone);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->ticker, NULL, ms_ticker, s) != 0) {
        CC_ERROR("cannot start the metrics stream ticker thread");
        metrics_stream_free(s);
        return NULL;
    }
    s->running = true;
    return s;
}

void metrics_stream_free(metrics_stream *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->running)
        pthread_join(s->ticker, NULL);
    pthread_mutex_lock(&s->hub->mu);
    for (struct ms_sub *sub = s->hub->subs; sub; sub = sub->next) {
        sub->end = true;
        cc_http_stream_wake(sub->st);
    }
    pthread_mutex_unlock(&s->hub->mu);
    hub_unref(s->hub);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->source);
    free(s);
}
