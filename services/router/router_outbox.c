/* router_outbox: cc:outbox -> Kafka publisher (see the header). */
#include "router_outbox.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc_event.h"
#include "cc_log.h"
#include "cc_redis.h"
#include "cc_time.h"
#include "router_state.h"

#define OUTBOX_BLOCK_MS     100   /* longest XREADGROUP waits for a new entry */
#define OUTBOX_FLUSH_MS     10000 /* longest one batch waits for its delivery reports */
#define OUTBOX_RETRY_MIN_MS 100
#define OUTBOX_RETRY_MAX_MS 2000
#define OUTBOX_STANDBY_MS   250 /* how often a standby tries the lease */
#define OUTBOX_FIELDS_MAX   16  /* name/value pairs read per entry */

/* Renews the lease when we hold it, takes it when free: 1 renewed, 2 taken, 0 held by another. */
static const char outbox_lease_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1\n"
    "end\n"
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 2 end\n"
    "return 0\n";
/* Gives the lease up if we still hold it. */
static const char outbox_release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";
/* XACK + XDEL of a delivered batch in one step. */
static const char outbox_done_lua[] = "redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))\n"
                                      "return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))\n";

struct router_outbox {
    pthread_t thread;
    atomic_int stop;     /* 1: drain then stop */
    int64_t drain_until; /* mono ms; set before stop */
    char *instance;
    char *source;
    char *redis_url;
    int batch, lease_ms;
    cc_redis *redis;
    cc_producer *producer;
    struct cc_redis_script lease, release, done;
    bool leader;
    int64_t lease_renewed; /* mono ms of the last successful renewal */
    struct cc_counter *published, *poison, *failed_batches;
    struct cc_gauge *leader_gauge;
};

/* One entry of a batch: its id and the envelope to produce (NULL: poison, delete it). */
struct outbox_item {
    char id[48];
    json_t *envelope;
    const char *topic, *key; /* borrowed from envelope's strings (copied below) */
    char topic_buf[64];
    char key_buf[ROUTER_STATE_IX_MAX + 1];
};

/* ---- pure parts ------------------------------------------------------------------------- */

int router_outbox_event_id(const char *entry_id, const char *tenant, const char *type,
                           const char *subject, char out[37])
{
    unsigned char h[EVP_MAX_MD_SIZE], b[16];
    char buf[512];
    unsigned int hlen = 0;
    unsigned long long ms;
    char *end;
    int len;

    if (!entry_id || entry_id[0] < '0' || entry_id[0] > '9')
        return -EINVAL;
    errno = 0;
    ms = strtoull(entry_id, &end, 10);
    if (errno || *end != '-' || end[1] < '0' || end[1] > '9')
        return -EINVAL;
    len = snprintf(buf, sizeof(buf), "%s|%s|%s|%s", entry_id, tenant ? tenant : "",
                   type ? type : "", subject ? subject : "");
    if (len < 0 || (size_t)len >= sizeof(buf) ||
        EVP_Digest(buf, (size_t)len, h, &hlen, EVP_sha256(), NULL) != 1 || hlen < 10)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    memcpy(b + 6, h, 10);
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* variant 10 */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

static const char *outbox_field(const char *const *fields, size_t nfields, const char *name)
{
    for (size_t i = 0; i + 1 < nfields; i += 2)
        if (strcmp(fields[i], name) == 0)
            return fields[i + 1];
    return NULL;
}

json_t *router_outbox_envelope(const char *entry_id, const char *const *fields, size_t nfields,
                               const char *source, const char **topic, const char **key, char *err,
                               size_t errlen)
{
    const char *type = outbox_field(fields, nfields, "type");
    const char *tenant = outbox_field(fields, nfields, "tenant");
    const char *subject = outbox_field(fields, nfields, "subject");
    const char *time_ms = outbox_field(fields, nfields, "time_ms");
    const char *data = outbox_field(fields, nfields, "data");
    char id[37], stamp[CC_TIME_ISO8601_LEN];
    json_error_t jerr;
    json_t *env, *d;
    long long t;
    char *end;

    *topic = outbox_field(fields, nfields, "topic");
    *key = outbox_field(fields, nfields, "key");
    if (!*topic || !**topic || !type || !tenant || !data) {
        snprintf(err, errlen, "entry lacks topic, type, tenant or data");
        return NULL;
    }
    if (router_outbox_event_id(entry_id, tenant, type, subject, id) < 0) {
        snprintf(err, errlen, "bad entry id '%.40s'", entry_id);
        return NULL;
    }
    t = time_ms ? strtoll(time_ms, &end, 10) : strtoll(entry_id, &end, 10);
    if (cc_time_format_iso8601(t, stamp) < 0) {
        snprintf(err, errlen, "bad time_ms '%.32s'", time_ms ? time_ms : entry_id);
        return NULL;
    }
    d = json_loads(data, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(d)) {
        json_decref(d);
        snprintf(err, errlen, "data is not a JSON object: %.80s", jerr.text);
        return NULL;
    }
    env = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "specversion", "1.0", "id", id, "source",
                    source, "type", type, "time", stamp, "datacontenttype", "application/json");
    if (!env) {
        json_decref(d);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (subject && *subject)
        json_object_set_new(env, "subject", json_string(subject));
    json_object_set_new(env, "tenant", json_string(tenant));
    json_object_set_new(env, "data", d);
    if (cc_event_validate(env, err, errlen) < 0) {
        json_decref(env);
        return NULL;
    }
    return env;
}

/* ---- Redis plumbing --------------------------------------------------------------------- */

static bool outbox_reply_error_has(const redisReply *r, const char *what)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str && strstr(r->str, what);
}

static void outbox_create_group(router_outbox *ob)
{
    redisReply *r = cc_redis_command(ob->redis, "XGROUP CREATE %s %s 0 MKSTREAM",
                                     ROUTER_STATE_OUTBOX, ROUTER_OUTBOX_GROUP);

    if (r && r->type == REDIS_REPLY_ERROR && !outbox_reply_error_has(r, "BUSYGROUP"))
        CC_WARN("cannot create consumer group '%s' on '%s': %s", ROUTER_OUTBOX_GROUP,
                ROUTER_STATE_OUTBOX, r->str);
    if (r)
        freeReplyObject(r);
}

/* Runs the lease script; updates ob->leader. Returns 2 when just taken. */
static int outbox_lease(router_outbox *ob)
{
    char ttl[16];
    const char *argv[3] = {ROUTER_OUTBOX_LEASE, ob->instance, ttl};
    redisReply *r;
    int rc = -1;

    snprintf(ttl, sizeof(ttl), "%d", ob->lease_ms);
    r = cc_redis_evalsha(ob->redis, &ob->lease, 1, 3, argv, NULL);
    if (r && r->type == REDIS_REPLY_INTEGER)
        rc = (int)r->integer;
    else
        CC_WARN("cannot renew the outbox lease: %s", r && r->str ? r->str : "redis unreachable");
    if (r)
        freeReplyObject(r);
    if (rc > 0)
        ob->lease_renewed = cc_time_mono_ms();
    if (ob->leader != (rc > 0)) {
        CC_INFO("outbox publisher %s on '%s'", rc > 0 ? "is now the leader" : "lost the lease",
                ob->instance);
        if (ob->leader_gauge)
            cc_gauge_set(ob->leader_gauge, rc > 0 ? 1 : 0);
    }
    ob->leader = rc > 0;
    return rc;
}

static void outbox_items_free(struct outbox_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(items[i].envelope);
}

/* Parses an array of [id, [f, v, ...]] entries (XREADGROUP / XAUTOCLAIM) into items. Entries
 * deleted meanwhile (nil) are skipped. */
static size_t outbox_parse_entries(router_outbox *ob, const redisReply *arr,
                                   struct outbox_item *items, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; arr && arr->type == REDIS_REPLY_ARRAY && i < arr->elements && n < cap; i++) {
        const redisReply *e = arr->element[i];
        const char *fields[OUTBOX_FIELDS_MAX * 2];
        const char *topic = NULL, *key = NULL;
        struct outbox_item *it = &items[n];
        size_t nf = 0;
        char err[160];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        memset(it, 0, sizeof(*it));
        snprintf(it->id, sizeof(it->id), "%s", e->element[0]->str);
        if (e->element[1]->type == REDIS_REPLY_ARRAY)
            for (size_t j = 0; j < e->element[1]->elements && nf < OUTBOX_FIELDS_MAX * 2; j++)
                if (e->element[1]->element[j]->type == REDIS_REPLY_STRING)
                    fields[nf++] = e->element[1]->element[j]->str;
        it->envelope =
            router_outbox_envelope(it->id, fields, nf, ob->source, &topic, &key, err, sizeof(err));
        if (!it->envelope) {
            CC_ERROR("dropping outbox entry '%s': %s", it->id, err);
            if (ob->poison)
                cc_counter_add(ob->poison, 1);
        } else {
            snprintf(it->topic_buf, sizeof(it->topic_buf), "%s", topic);
            snprintf(it->key_buf, sizeof(it->key_buf), "%s", key ? key : "");
            it->topic = it->topic_buf;
            it->key = key ? it->key_buf : NULL;
        }
        n++;
    }
    return n;
}

/* XACK + XDEL of the batch's ids. */
static int outbox_done(router_outbox *ob, const struct outbox_item *items, size_t n)
{
    const char **argv = calloc(n + 3, sizeof(*argv));
    redisReply *r;
    int rc = 0;

    if (!argv)
        return -ENOMEM;
    argv[0] = ROUTER_STATE_OUTBOX;
    argv[1] = ROUTER_OUTBOX_GROUP;
    for (size_t i = 0; i < n; i++)
        argv[2 + i] = items[i].id;
    r = cc_redis_evalsha(ob->redis, &ob->done, 1, (int)n + 2, argv, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        CC_WARN("cannot acknowledge %zu outbox entries: %s", n,
                r && r->str ? r->str : "redis unreachable");
        rc = -EIO;
    }
    if (r)
        freeReplyObject(r);
    free(argv);
    return rc;
}

/* Produces a batch and waits for its delivery; retries the same batch in order until it is
 * delivered, the lease is lost, or we stop without drain time left. Then acknowledges it. */
static void outbox_publish(router_outbox *ob, struct outbox_item *items, size_t n)
{
    struct cc_backoff b;

    if (n == 0)
        return;
    cc_backoff_init(&b, OUTBOX_RETRY_MIN_MS, OUTBOX_RETRY_MAX_MS, -1);
    for (;;) {
        int rc = 0;

        for (size_t i = 0; i < n && rc == 0; i++)
            if (items[i].envelope)
                rc = cc_producer_send_event(ob->producer, items[i].topic, items[i].key,
                                            items[i].envelope);
        if (rc == 0)
            rc = cc_producer_flush(ob->producer, OUTBOX_FLUSH_MS);
        if (rc == 0)
            break;
        if (ob->failed_batches)
            cc_counter_add(ob->failed_batches, 1);
        CC_WARN("cannot publish %zu outbox entries (%s), retrying in %d ms", n, strerror(-rc),
                cc_backoff_peek(&b));
        if (rc != -ETIMEDOUT)
            cc_producer_flush(ob->producer, 0); /* reset the failure count */
        cc_backoff_wait(&b);
        if (outbox_lease(ob) <= 0 ||
            (atomic_load(&ob->stop) && cc_time_mono_ms() > ob->drain_until))
            return; /* the next leader (or our restart) publishes it again, same ids */
    }
    for (size_t i = 0; i < n; i++)
        if (items[i].envelope && ob->published)
            cc_counter_add(ob->published, 1);
    outbox_done(ob, items, n);
}

/* After taking the lease: publish every entry pending in the group (a dead leader's, or ours
 * from before a restart), oldest first, before anything new. */
static void outbox_claim_all(router_outbox *ob, struct outbox_item *items)
{
    char cursor[48] = "0-0", count[16];

    snprintf(count, sizeof(count), "%d", ob->batch);
    for (int rounds = 0; rounds < 100000; rounds++) {
        const char *argv[] = {"XAUTOCLAIM",
                              ROUTER_STATE_OUTBOX,
                              ROUTER_OUTBOX_GROUP,
                              ob->instance,
                              "0",
                              cursor,
                              "COUNT",
                              count};
        redisReply *r = cc_redis_commandv(ob->redis, 8, argv, NULL);
        size_t n;

        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
            if (outbox_reply_error_has(r, "NOGROUP"))
                outbox_create_group(ob);
            if (r)
                freeReplyObject(r);
            return;
        }
        snprintf(cursor, sizeof(cursor), "%s",
                 r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "0-0");
        n = outbox_parse_entries(ob, r->element[1], items, (size_t)ob->batch);
        freeReplyObject(r);
        if (n)
            CC_INFO("outbox publisher took over %zu pending entries", n);
        outbox_publish(ob, items, n);
        outbox_items_free(items, n);
        if (strcmp(cursor, "0-0") == 0 || !ob->leader)
            return;
    }
}

/* One XREADGROUP of new entries; returns how many were handled, -1 on error. */
static int outbox_read_new(router_outbox *ob, struct outbox_item *items)
{
    char count[16], block[16];
    const char *argv[] = {
        "XREADGROUP", "GROUP", ROUTER_OUTBOX_GROUP, ob->instance,        "COUNT", count,
        "BLOCK",      block,   "STREAMS",           ROUTER_STATE_OUTBOX, ">"};
    redisReply *r;
    size_t n = 0;

    snprintf(count, sizeof(count), "%d", ob->batch);
    snprintf(block, sizeof(block), "%d", OUTBOX_BLOCK_MS);
    r = cc_redis_commandv(ob->redis, 11, argv, NULL);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ERROR) {
        if (outbox_reply_error_has(r, "NOGROUP"))
            outbox_create_group(ob);
        else
            CC_WARN("cannot read '%s': %s", ROUTER_STATE_OUTBOX, r->str);
        freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
        n = outbox_parse_entries(ob, r->element[0]->element[1], items, (size_t)ob->batch);
    freeReplyObject(r);
    outbox_publish(ob, items, n);
    outbox_items_free(items, n);
    return (int)n;
}

static void *outbox_main(void *arg)
{
    router_outbox *ob = arg;
    struct outbox_item *items = calloc((size_t)ob->batch, sizeof(*items));

    if (!items) {
        CC_ERROR("outbox publisher out of memory");
        return NULL;
    }
    outbox_create_group(ob);
    for (;;) {
        bool stopping = atomic_load(&ob->stop);
        int n;

        if (stopping && (!ob->leader || cc_time_mono_ms() > ob->drain_until))
            break;
        if (!ob->leader || cc_time_mono_ms() - ob->lease_renewed > ob->lease_ms / 3) {
            if (outbox_lease(ob) == 2)
                outbox_claim_all(ob, items);
        }
        if (!ob->leader) {
            if (stopping)
                break;
            usleep(OUTBOX_STANDBY_MS * 1000);
            continue;
        }
        n = outbox_read_new(ob, items);
        if (n < 0)
            usleep(OUTBOX_RETRY_MIN_MS * 1000);
        else if (n == 0 && stopping)
            break; /* drained */
    }
    free(items);
    return NULL;
}

router_outbox *router_outbox_start(const struct router_outbox_config *cfg)
{
    router_outbox *ob;
    char src[160];

    if (!cfg || !cfg->redis_url || !cfg->bus || !cfg->instance || !*cfg->instance) {
        CC_ERROR("outbox publisher: redis url, bus config and instance are required");
        return NULL;
    }
    ob = calloc(1, sizeof(*ob));
    if (!ob)
        return NULL;
    snprintf(src, sizeof(src), "/router/%s", cfg->instance);
    ob->instance = strdup(cfg->instance);
    ob->source = strdup(src);
    ob->redis_url = strdup(cfg->redis_url);
    ob->batch = cfg->batch > 0 ? cfg->batch : ROUTER_OUTBOX_BATCH;
    ob->lease_ms = cfg->lease_ms >= 300 ? cfg->lease_ms : ROUTER_OUTBOX_LEASE_MS;
    ob->lease = (struct cc_redis_script){.name = "outbox_lease", .source = outbox_lease_lua};
    ob->release = (struct cc_redis_script){.name = "outbox_release", .source = outbox_release_lua};
    ob->done = (struct cc_redis_script){.name = "outbox_done", .source = outbox_done_lua};
    if (!ob->instance || !ob->source || !ob->redis_url)
        goto out_free;
    if (cfg->metrics) {
        ob->published = cc_metrics_counter(cfg->metrics, "router_outbox_published_total",
                                           "Outbox events delivered to Kafka", NULL);
        ob->poison = cc_metrics_counter(cfg->metrics, "router_outbox_dropped_total",
                                        "Outbox entries dropped as malformed", NULL);
        ob->failed_batches =
            cc_metrics_counter(cfg->metrics, "router_outbox_failed_batches_total",
                               "Outbox batches whose delivery failed (published again)", NULL);
        ob->leader_gauge = cc_metrics_gauge(cfg->metrics, "router_outbox_leader",
                                            "1 when this instance publishes the outbox", NULL);
    }
    ob->redis = cc_redis_new(ob->redis_url);
    if (!ob->redis)
        goto out_free;
    ob->producer = cc_producer_new(cfg->bus);
    if (!ob->producer)
        goto out_redis;
    if (pthread_create(&ob->thread, NULL, outbox_main, ob) != 0) {
        CC_ERROR("cannot start the outbox publisher thread");
        goto out_producer;
    }
    return ob;

out_producer:
    cc_producer_free(ob->producer);
out_redis:
    cc_redis_free(ob->redis);
out_free:
    free(ob->instance);
    free(ob->source);
    free(ob->redis_url);
    free(ob);
    return NULL;
}

void router_outbox_stop(router_outbox *ob, int drain_ms)
{
    const char *argv[2];
    redisReply *r;

    if (!ob)
        return;
    ob->drain_until = cc_time_mono_ms() + (drain_ms > 0 ? drain_ms : 0);
    atomic_store(&ob->stop, 1);
    pthread_join(ob->thread, NULL);
    if (ob->leader) {
        argv[0] = ROUTER_OUTBOX_LEASE;
        argv[1] = ob->instance;
        r = cc_redis_evalsha(ob->redis, &ob->release, 1, 2, argv, NULL);
        if (r)
            freeReplyObject(r);
    }
    cc_producer_free(ob->producer);
    cc_redis_free(ob->redis);
    free(ob->instance);
    free(ob->source);
    free(ob->redis_url);
    free(ob);
}
