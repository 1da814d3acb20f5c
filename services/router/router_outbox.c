/* router_outbox: cc:outbox -> Kafka publisher (see the header). */
#include "router_outbox.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cc_event.h"
#include "cc_id.h"
#include "cc_log.h"
#include "cc_redis.h"
#include "cc_time.h"
#include "router_state.h"

#define OUTBOX_BLOCK_MS     100 /* longest XREADGROUP waits for a new entry */
#define OUTBOX_RETRY_MIN_MS 100
#define OUTBOX_RETRY_MAX_MS 2000
#define OUTBOX_STANDBY_MS   250 /* how often a standby tries the lease */
#define OUTBOX_FIELDS_MAX   (8 + 5 * ROUTER_OUTBOX_EVENTS_MAX) /* name/value pairs per entry */
#define OUTBOX_ACK_MAX      512                                /* ids per XACK + XDEL call */
/* Delivered entries are acknowledged together: once OUTBOX_ACK_BATCH of them are ready or the
 * oldest has waited OUTBOX_ACK_DELAY_MS (and at once when the ring needs room, on a retry and
 * in the drain). One XACK + XDEL per delivery report cost a Redis round trip -- two wakeups --
 * per entry at low rates. What a crash leaves unacknowledged is published again by the next
 * leader with the same event ids, as before (the window grows from ~1 ms to this delay). */
#define OUTBOX_ACK_BATCH    128
#define OUTBOX_ACK_DELAY_MS 20
/* The publisher sleeps in ONE poll(2) on two sources: the reply of a blocking XREADGROUP on its
 * own reader connection (Redis answers it as soon as a script XADDs) and the producer's wake
 * pipe (delivery reports waiting). Nothing spins and nothing waits for a tick: session 3's loop
 * (a 1 ms producer poll, then a non-blocking XREADGROUP, while entries were in flight) took
 * ~1.5 ms from a script's XADD to the read at 500 decisions/s and made a Redis round trip every
 * millisecond. It wakes at least every OUTBOX_WAIT_MAX_MS and when the lease is due for renewal. */
#define OUTBOX_WAIT_MAX_MS 100

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

/* Where an entry of the in-flight ring stands. */
enum outbox_slot_state {
    SLOT_EMPTY = 0, /* free (or dropped: late delivery reports are ignored) */
    SLOT_UNSENT,    /* read but not produced (behind a failure): produced by the next retry */
    SLOT_PENDING,   /* produced, delivery report outstanding */
    SLOT_DELIVERED, /* delivered (or poison): to acknowledge once every older one is */
    SLOT_FAILED,    /* delivery failed: the window from here is produced again, in order */
};

/* One event of an entry, ready to produce: its CloudEvents text and the headers' values. */
struct outbox_event {
    char *text; /* malloc'd */
    size_t len;
    bool has_key;
    char id[37];
    char type[129];
    char topic[64];
    char key[ROUTER_STATE_IX_MAX + 1];
};

/* One entry read from the stream: its id and the events to produce (none: poison, delete). */
struct outbox_item {
    char id[48];
    struct outbox_event *ev; /* nev of them (malloc'd; NULL when none) */
    size_t nev;
    int64_t consumed_us; /* the command's consume time (field ct; 0 = none): see delivered */
    bool produce_timed;  /* consumed -> produced observed (once, not again on a retry) */
};

/* A ring slot: the entry, the sequence number its delivery reports carry, its state. */
struct outbox_slot {
    struct outbox_item it;
    uint64_t seq;
    enum outbox_slot_state state;
    size_t outstanding;   /* PENDING: delivery reports still to come */
    bool bad;             /* PENDING: one of its events failed */
    int64_t delivered_ms; /* DELIVERED: since when (mono ms), for OUTBOX_ACK_DELAY_MS */
};

struct router_outbox {
    pthread_t thread;
    atomic_int stop;     /* 1: drain then stop */
    int64_t drain_until; /* mono ms; set before stop */
    char *instance;
    char *source;
    char *redis_url;
    int batch, lease_ms;
    cc_redis *redis;  /* lease, claims, acknowledgements, the drain */
    cc_redis *reader; /* blocking XREADGROUP only, waited on in outbox_wait */
    size_t reading;   /* a read of up to this many entries is in progress on reader (0: none) */
    cc_producer *producer;
    int wake_fd; /* the producer's wake pipe, -1 without */
    struct cc_redis_script lease, release, done;
    bool leader;
    bool need_claim;       /* lease just taken: claim the group's pending entries first */
    int64_t lease_renewed; /* mono ms of the last successful renewal */
    /* in-flight ring, oldest first: seq head..tail-1 live in slots[seq % cap]. Touched only by
     * the publisher thread (delivery reports run in its cc_producer_poll calls) and, after the
     * join, by cc_producer_free in router_outbox_stop. */
    struct outbox_slot *slots;
    size_t cap;
    uint64_t head, tail;
    size_t pending; /* slots in SLOT_PENDING */
    bool failed;    /* a send or delivery failed: produce nothing new until retried */
    struct cc_backoff backoff;
    struct outbox_item *tmp;           /* batch entries as read, before they enter the ring */
    struct router_outbox_entry *entry; /* scratch of outbox_parse_entries (~10 kB) */
    const char **fields;               /* scratch: OUTBOX_FIELDS_MAX * 2 field pointers */
    struct cc_counter *published, *poison, *failed_batches;
    /* route commands: consumed -> first event handed to the producer / acknowledged by Kafka */
    struct cc_histogram *latency_produced, *latency_delivered;
    struct cc_gauge *leader_gauge;
};

/* ---- pure parts ------------------------------------------------------------------------- */

int router_outbox_event_id(const char *entry_id, size_t index, const char *tenant, const char *type,
                           const char *subject, char out[37])
{
    char buf[512], at[24] = "";
    unsigned long long ms;
    char *end;
    int len;

    if (!entry_id || entry_id[0] < '0' || entry_id[0] > '9')
        return -EINVAL;
    errno = 0;
    ms = strtoull(entry_id, &end, 10);
    if (errno || *end != '-' || end[1] < '0' || end[1] > '9')
        return -EINVAL;
    if (index > 0) /* the first event keeps the id an entry of one event always had */
        snprintf(at, sizeof(at), ".%zu", index);
    len = snprintf(buf, sizeof(buf), "%s%s|%s|%s|%s", entry_id, at, tenant ? tenant : "",
                   type ? type : "", subject ? subject : "");
    if (len < 0 || (size_t)len >= sizeof(buf))
        return -EINVAL;
    return cc_uuid_v7_derived((int64_t)ms, buf, (size_t)len, out);
}

int router_outbox_entry_parse(const char *const *fields, size_t nfields,
                              struct router_outbox_entry *out)
{
    struct router_outbox_event *ev = NULL;
    bool over = false;

    memset(out, 0, offsetof(struct router_outbox_entry, events));
    for (size_t i = 0; i + 1 < nfields; i += 2) {
        const char *k = fields[i], *v = fields[i + 1];

        if (strcmp(k, "topic") == 0) {
            ev = NULL;
            if (out->nevents == ROUTER_OUTBOX_EVENTS_MAX) {
                over = true;
                continue;
            }
            ev = &out->events[out->nevents++];
            *ev = (struct router_outbox_event){.topic = v};
        } else if (strcmp(k, "tenant") == 0) {
            out->tenant = v;
        } else if (strcmp(k, "time_ms") == 0) {
            out->time_ms = v;
        } else if (strcmp(k, "ct") == 0) {
            out->ct = v;
        } else if (strcmp(k, "ck") == 0) {
            out->ck = v;
        } else if (ev && strcmp(k, "key") == 0) {
            ev->key = v;
        } else if (ev && strcmp(k, "type") == 0) {
            ev->type = v;
        } else if (ev && strcmp(k, "subject") == 0) {
            ev->subject = v;
        } else if (ev && strcmp(k, "data") == 0) {
            ev->data = v;
        }
    }
    for (size_t i = 0; i < out->nevents; i++)
        if (!out->events[i].subject)
            out->events[i].subject = out->events[i].key;
    return over ? -E2BIG : (int)out->nevents;
}

json_t *router_outbox_envelope(const char *entry_id, const struct router_outbox_entry *e,
                               size_t index, const char *source, char *err, size_t errlen)
{
    const struct router_outbox_event *ev = index < e->nevents ? &e->events[index] : NULL;
    char id[37], stamp[CC_TIME_ISO8601_LEN];
    json_error_t jerr;
    json_t *env, *d;
    long long t;
    char *end;

    if (!ev || !ev->topic || !*ev->topic || !ev->type || !e->tenant || !ev->data) {
        snprintf(err, errlen, "event %zu lacks topic, type, tenant or data", index);
        return NULL;
    }
    if (router_outbox_event_id(entry_id, index, e->tenant, ev->type, ev->subject, id) < 0) {
        snprintf(err, errlen, "bad entry id '%.40s'", entry_id);
        return NULL;
    }
    t = e->time_ms ? strtoll(e->time_ms, &end, 10) : strtoll(entry_id, &end, 10);
    if (cc_time_format_iso8601(t, stamp) < 0) {
        snprintf(err, errlen, "bad time_ms '%.32s'", e->time_ms ? e->time_ms : entry_id);
        return NULL;
    }
    d = json_loads(ev->data, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(d)) {
        json_decref(d);
        snprintf(err, errlen, "data is not a JSON object: %.80s", jerr.text);
        return NULL;
    }
    env = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "specversion", "1.0", "id", id, "source",
                    source, "type", ev->type, "time", stamp, "datacontenttype", "application/json");
    if (!env) {
        json_decref(d);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (ev->subject && *ev->subject)
        json_object_set_new(env, "subject", json_string(ev->subject));
    json_object_set_new(env, "tenant", json_string(e->tenant));
    json_object_set_new(env, "data", d);
    if (cc_event_validate(env, err, errlen) < 0) {
        json_decref(env);
        return NULL;
    }
    return env;
}

/* A string that goes into the JSON text as it is: no quote, backslash or control character. */
static bool outbox_json_plain(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return false;
    return true;
}

/* An event type as the schemas name them: "cc." then [a-z0-9._]. */
static bool outbox_type_valid(const char *t)
{
    if (strncmp(t, "cc.", 3) != 0 || !t[3] || strlen(t) > 128)
        return false;
    for (t += 3; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '.' || *t == '_'))
            return false;
    return true;
}

char *router_outbox_event_text(const char *entry_id, const struct router_outbox_entry *e,
                               size_t index, const char *source, char id[37], size_t *len,
                               char *err, size_t errlen)
{
    const struct router_outbox_event *ev = index < e->nevents ? &e->events[index] : NULL;
    char stamp[CC_TIME_ISO8601_LEN];
    const char *subject;
    size_t dlen, cap;
    long long t;
    char *end, *text;
    int n;

    if (!ev || !ev->topic || !*ev->topic || !ev->type || !e->tenant || !ev->data) {
        snprintf(err, errlen, "event %zu lacks topic, type, tenant or data", index);
        return NULL;
    }
    subject = ev->subject ? ev->subject : "";
    if (!outbox_type_valid(ev->type) || !cc_tenant_valid(e->tenant) ||
        !outbox_json_plain(subject) || !source || !*source || !outbox_json_plain(source)) {
        snprintf(err, errlen, "bad type, tenant, subject or source in event %zu", index);
        return NULL;
    }
    if (router_outbox_event_id(entry_id, index, e->tenant, ev->type, subject, id) < 0) {
        snprintf(err, errlen, "bad entry id '%.40s'", entry_id);
        return NULL;
    }
    t = e->time_ms ? strtoll(e->time_ms, &end, 10) : strtoll(entry_id, &end, 10);
    if (cc_time_format_iso8601(t, stamp) < 0) {
        snprintf(err, errlen, "bad time_ms '%.32s'", e->time_ms ? e->time_ms : entry_id);
        return NULL;
    }
    dlen = strlen(ev->data);
    if (dlen < 2 || ev->data[0] != '{' || ev->data[dlen - 1] != '}') {
        snprintf(err, errlen, "data is not a JSON object: %.40s", ev->data);
        return NULL;
    }
    cap = dlen + strlen(source) + strlen(ev->type) + strlen(subject) + strlen(e->tenant) + 256;
    text = malloc(cap);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n = snprintf(text, cap,
                 "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"%s\",\"type\":\"%s\","
                 "\"time\":\"%s\",\"datacontenttype\":\"application/json\"%s%s%s,"
                 "\"tenant\":\"%s\",\"data\":%s}",
                 id, source, ev->type, stamp, *subject ? ",\"subject\":\"" : "", subject,
                 *subject ? "\"" : "", e->tenant, ev->data);
    if (n < 0 || (size_t)n >= cap) {
        free(text);
        snprintf(err, errlen, "event %zu does not fit", index);
        return NULL;
    }
    *len = (size_t)n;
    return text;
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

/* Parses an array of [id, [f, v, ...]] entries (XREADGROUP / XAUTOCLAIM) into items. Entries
 * deleted meanwhile (nil) are skipped. */
/* Buckets of router_decision_latency_seconds: sub-millisecond steps up to the 2 ms goal, then
 * fine enough above it that a p99 between 2 and 5 ms is read to half a millisecond. */
static const double outbox_latency_bounds[] = {
    0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.0035, 0.004,
    0.0045,  0.005,  0.0075,  0.01,  0.025,  0.05,  0.1,    0.25,  1,      5};

/* Wall clock in microseconds (the consumer's clock: cc_bus_msg.consumed_us). */
static int64_t outbox_wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void outbox_item_clear(struct outbox_item *it)
{
    for (size_t i = 0; i < it->nev; i++)
        free(it->ev[i].text);
    free(it->ev);
    it->ev = NULL;
    it->nev = 0;
}

/* Turns one parsed entry into its events; an event that cannot become a CloudEvent is logged,
 * counted and left out (it can never become valid). The consume time (fields ct, ck of a
 * batched route command) is timed to the entry's first delivery report. */
static void outbox_item_build(router_outbox *ob, struct outbox_item *it,
                              const struct router_outbox_entry *e)
{
    char err[160];

    it->ev = e->nevents ? calloc(e->nevents, sizeof(*it->ev)) : NULL;
    if (e->nevents && !it->ev) {
        CC_ERROR("dropping outbox entry '%s': out of memory", it->id);
        return;
    }
    for (size_t i = 0; i < e->nevents; i++) {
        const struct router_outbox_event *src = &e->events[i];
        struct outbox_event *ev = &it->ev[it->nev];

        ev->text =
            router_outbox_event_text(it->id, e, i, ob->source, ev->id, &ev->len, err, sizeof(err));
        if (!ev->text) {
            CC_ERROR("dropping event %zu of outbox entry '%s': %s", i, it->id, err);
            if (ob->poison)
                cc_counter_add(ob->poison, 1);
            continue;
        }
        snprintf(ev->type, sizeof(ev->type), "%s", src->type);
        snprintf(ev->topic, sizeof(ev->topic), "%s", src->topic);
        snprintf(ev->key, sizeof(ev->key), "%s", src->key ? src->key : "");
        ev->has_key = src->key != NULL;
        it->nev++;
    }
    it->consumed_us =
        e->ct && e->ck && strcmp(e->ck, "enqueue") == 0 ? strtoll(e->ct, NULL, 10) : 0;
}

static size_t outbox_parse_entries(router_outbox *ob, const redisReply *arr,
                                   struct outbox_item *items, size_t cap)
{
    struct router_outbox_entry *entry = ob->entry;
    const char **fields = ob->fields;
    size_t n = 0;

    for (size_t i = 0; arr && arr->type == REDIS_REPLY_ARRAY && i < arr->elements && n < cap; i++) {
        const redisReply *e = arr->element[i];
        struct outbox_item *it = &items[n];
        size_t nf = 0;

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        memset(it, 0, sizeof(*it));
        snprintf(it->id, sizeof(it->id), "%s", e->element[0]->str);
        if (e->element[1]->type == REDIS_REPLY_ARRAY)
            for (size_t j = 0; j < e->element[1]->elements && nf < OUTBOX_FIELDS_MAX * 2; j++)
                if (e->element[1]->element[j]->type == REDIS_REPLY_STRING)
                    fields[nf++] = e->element[1]->element[j]->str;
        if (router_outbox_entry_parse(fields, nf, entry) < 0)
            CC_ERROR("outbox entry '%s' has more than %d events: the rest are dropped", it->id,
                     ROUTER_OUTBOX_EVENTS_MAX);
        if (entry->nevents == 0) {
            CC_ERROR("dropping outbox entry '%s': no event in it", it->id);
            if (ob->poison)
                cc_counter_add(ob->poison, 1);
        }
        outbox_item_build(ob, it, entry);
        n++;
    }
    return n;
}

/* XACK + XDEL of n ids. */
static int outbox_done(router_outbox *ob, const char *const *ids, size_t n)
{
    const char **argv = calloc(n + 3, sizeof(*argv));
    redisReply *r;
    int rc = 0;

    if (!argv)
        return -ENOMEM;
    argv[0] = ROUTER_STATE_OUTBOX;
    argv[1] = ROUTER_OUTBOX_GROUP;
    memcpy(argv + 2, ids, n * sizeof(*ids));
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

/* ---- the in-flight ring ----------------------------------------------------------------- */

static size_t outbox_ring_len(const router_outbox *ob)
{
    return (size_t)(ob->tail - ob->head);
}

static struct outbox_slot *outbox_slot_at(router_outbox *ob, uint64_t seq)
{
    return &ob->slots[seq % ob->cap];
}

/* Every report of slot s is in: failed or delivered (since now). */
static void outbox_slot_done(struct outbox_slot *s)
{
    s->state = s->bad ? SLOT_FAILED : SLOT_DELIVERED;
    s->delivered_ms = cc_time_mono_ms();
}

/* How long a delivered prefix of n entries may still wait for its acknowledgement (ms; 0: now):
 * not at all once it is OUTBOX_ACK_BATCH long or fills half the ring (room to read into). */
static int64_t outbox_ack_wait_ms(router_outbox *ob, size_t n)
{
    int64_t waited = cc_time_mono_ms() - outbox_slot_at(ob, ob->head)->delivered_ms;

    if (n >= OUTBOX_ACK_BATCH || 2 * n >= ob->cap || waited >= OUTBOX_ACK_DELAY_MS)
        return 0;
    return OUTBOX_ACK_DELAY_MS - waited;
}

/* When the delivered prefix of the ring is due for acknowledgement (ms from now), -1: none. */
static int64_t outbox_ack_due_ms(router_outbox *ob)
{
    size_t n = 0;

    while (n < OUTBOX_ACK_BATCH && ob->head + n < ob->tail &&
           outbox_slot_at(ob, ob->head + n)->state == SLOT_DELIVERED)
        n++;
    return n == 0 ? -1 : outbox_ack_wait_ms(ob, n);
}

/* Delivery report of one produced event (tag = its entry's sequence number). The entry is
 * delivered when all its events are, failed when one failed. Reports of a dropped ring find
 * the slot empty or reused and are ignored (a retry waits for every report first). */
static void outbox_delivered(void *ctx, uint64_t tag, int err)
{
    router_outbox *ob = ctx;
    struct outbox_slot *s = outbox_slot_at(ob, tag);

    if (s->seq != tag || s->state != SLOT_PENDING || s->outstanding == 0)
        return;
    ob->pending--;
    if (err) {
        s->bad = true;
        ob->failed = true;
    } else if (s->it.consumed_us > 0 && ob->latency_delivered) {
        cc_histogram_observe(ob->latency_delivered,
                             (double)(outbox_wall_us() - s->it.consumed_us) / 1e6);
        s->it.consumed_us = 0; /* timed once: its first event delivered */
    }
    if (--s->outstanding == 0)
        outbox_slot_done(s);
}

/* Produces the events of slot s in order (an entry without any is only marked for deletion).
 * A send that fails stops the rest: the slot fails once the reports of those sent are in. Each
 * event is counted before its send: a send that waits for queue space serves delivery reports,
 * and the report of an earlier event must not complete the slot while later ones are unsent. */
static void outbox_send(router_outbox *ob, struct outbox_slot *s)
{
    s->outstanding = 0;
    s->bad = false;
    s->state = SLOT_PENDING;
    for (size_t i = 0; i < s->it.nev; i++) {
        const struct outbox_event *ev = &s->it.ev[i];
        const struct cc_bus_header hdrs[3] = {
            {CC_BUS_HEADER_SOURCE, ob->source, strlen(ob->source)},
            {CC_BUS_HEADER_TYPE, ev->type, strlen(ev->type)},
            {CC_BUS_HEADER_ID, ev->id, strlen(ev->id)},
        };
        int rc;

        s->outstanding++;
        ob->pending++;
        rc = cc_producer_send_ex(ob->producer,
                                 &(struct cc_bus_send){.topic = ev->topic,
                                                       .key = ev->has_key ? ev->key : NULL,
                                                       .keylen = strlen(ev->key),
                                                       .value = ev->text,
                                                       .len = ev->len,
                                                       .headers = hdrs,
                                                       .nheaders = 3,
                                                       .on_delivery = outbox_delivered,
                                                       .ctx = ob,
                                                       .tag = s->seq});
        if (rc < 0) { /* no report will come for it */
            s->outstanding--;
            ob->pending--;
            s->bad = true;
            ob->failed = true;
            break;
        }
    }
    if (!s->bad && s->it.nev > 0 && s->it.consumed_us > 0 && !s->it.produce_timed &&
        ob->latency_produced) {
        cc_histogram_observe(ob->latency_produced,
                             (double)(outbox_wall_us() - s->it.consumed_us) / 1e6);
        s->it.produce_timed = true;
    }
    if (s->outstanding == 0)
        outbox_slot_done(s);
}

/* Appends n parsed entries (ownership moves) to the ring, which has room for them, producing
 * each unless an earlier one failed (then they wait for the retry, keeping the order). */
static void outbox_enqueue(router_outbox *ob, struct outbox_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct outbox_slot *s = outbox_slot_at(ob, ob->tail);

        s->it = items[i];
        s->seq = ob->tail++;
        if (ob->failed)
            s->state = SLOT_UNSENT;
        else
            outbox_send(ob, s);
    }
}

/* Acknowledges (XACK + XDEL) the longest delivered prefix of the ring and frees it: when
 * force, or when it holds OUTBOX_ACK_BATCH entries or its oldest was delivered
 * OUTBOX_ACK_DELAY_MS ago. */
static void outbox_ack_ready(router_outbox *ob, bool force)
{
    const char *ids[OUTBOX_ACK_MAX];
    size_t n;

    do {
        n = 0;
        while (n < OUTBOX_ACK_MAX && ob->head + n < ob->tail &&
               outbox_slot_at(ob, ob->head + n)->state == SLOT_DELIVERED) {
            ids[n] = outbox_slot_at(ob, ob->head + n)->it.id;
            n++;
        }
        if (n == 0 || (!force && outbox_ack_wait_ms(ob, n) > 0))
            return;
        /* a failed acknowledgement leaves the entries pending in the group: the next leader
         * publishes them again, with the same ids */
        outbox_done(ob, ids, n);
        for (size_t i = 0; i < n; i++) {
            struct outbox_slot *s = outbox_slot_at(ob, ob->head++);

            if (ob->published)
                cc_counter_add(ob->published, s->it.nev);
            outbox_item_clear(&s->it);
            s->state = SLOT_EMPTY;
        }
        if (!ob->failed)
            cc_backoff_init(&ob->backoff, OUTBOX_RETRY_MIN_MS, OUTBOX_RETRY_MAX_MS, -1);
    } while (n == OUTBOX_ACK_MAX);
}

/* Forgets every entry of the ring without acknowledging it (lease lost: the entries stay
 * pending in the group and the next leader publishes them, same ids). */
static void outbox_drop(router_outbox *ob)
{
    for (; ob->head < ob->tail; ob->head++) {
        struct outbox_slot *s = outbox_slot_at(ob, ob->head);

        outbox_item_clear(&s->it);
        s->state = SLOT_EMPTY;
    }
    ob->pending = 0;
    ob->failed = false;
}

static bool outbox_drain_over(const router_outbox *ob)
{
    return atomic_load(&ob->stop) && cc_time_mono_ms() > ob->drain_until;
}

/* Renews the lease when due. Returns true while we hold it and the ring is still ours; on a
 * loss, or a take-over (our lease had lapsed), drops the ring (take-over: claim first). */
static bool outbox_keep_lease(router_outbox *ob)
{
    int rc;

    if (ob->leader && cc_time_mono_ms() - ob->lease_renewed <= ob->lease_ms / 3)
        return true;
    rc = outbox_lease(ob);
    if (rc == 1)
        return true;
    outbox_drop(ob);
    if (rc == 2)
        ob->need_claim = true;
    return false;
}

/* After a failure: waits for every outstanding delivery report, acknowledges what is
 * delivered, backs off, then produces the rest of the ring again in order (delivered entries
 * behind the failure too, as a batch retry did: order per key is kept, ids are the same).
 * Gives up when the lease is lost or the drain time is over. */
static void outbox_retry(router_outbox *ob)
{
    size_t n;
    int rc;

    while (ob->pending > 0) {
        cc_producer_poll(ob->producer, 100);
        if (!outbox_keep_lease(ob) || outbox_drain_over(ob))
            return;
    }
    outbox_ack_ready(ob, true);
    n = outbox_ring_len(ob);
    if (n == 0) {
        ob->failed = false;
        return;
    }
    if (ob->failed_batches)
        cc_counter_add(ob->failed_batches, 1);
    CC_WARN("cannot publish %zu outbox entries, retrying in %d ms", n,
            cc_backoff_peek(&ob->backoff));
    cc_producer_flush(ob->producer, 0); /* reset the failure count */
    cc_backoff_wait(&ob->backoff);
    rc = outbox_lease(ob);
    if (rc != 1) { /* lost, or lapsed and taken again: the group's pending entries go first */
        outbox_drop(ob);
        ob->need_claim = rc == 2;
        return;
    }
    if (outbox_drain_over(ob))
        return;
    ob->failed = false;
    for (uint64_t seq = ob->head; seq < ob->tail; seq++) {
        struct outbox_slot *s = outbox_slot_at(ob, seq);

        if (ob->failed)
            s->state = SLOT_UNSENT;
        else
            outbox_send(ob, s);
    }
}

/* Serves delivery reports (waiting up to wait_ms), acknowledges (all that is delivered when
 * force, else see outbox_ack_ready), retries after a failure. */
static void outbox_pump(router_outbox *ob, int wait_ms, bool force)
{
    cc_producer_poll(ob->producer, wait_ms);
    outbox_ack_ready(ob, force);
    if (ob->failed)
        outbox_retry(ob);
}

/* Waits until the ring has room for want entries; false when the lease or the drain ended. */
static bool outbox_wait_room(router_outbox *ob, size_t want)
{
    while (ob->cap - outbox_ring_len(ob) < want) {
        outbox_pump(ob, 10, true);
        if (!outbox_keep_lease(ob) || outbox_drain_over(ob))
            return false;
    }
    return true;
}

/* After taking the lease: publish every entry pending in the group (a dead leader's, or ours
 * from before a restart), oldest first, before anything new. */
static void outbox_claim_all(router_outbox *ob)
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
        redisReply *r;
        size_t n;

        if (!outbox_wait_room(ob, (size_t)ob->batch))
            return;
        r = cc_redis_commandv(ob->redis, 8, argv, NULL);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
            if (outbox_reply_error_has(r, "NOGROUP"))
                outbox_create_group(ob);
            if (r)
                freeReplyObject(r);
            return;
        }
        snprintf(cursor, sizeof(cursor), "%s",
                 r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "0-0");
        n = outbox_parse_entries(ob, r->element[1], ob->tmp, (size_t)ob->batch);
        freeReplyObject(r);
        if (n)
            CC_INFO("outbox publisher took over %zu pending entries", n);
        outbox_enqueue(ob, ob->tmp, n);
        if (strcmp(cursor, "0-0") == 0 || !ob->leader)
            return;
    }
}

/* XREADGROUP of up to want new entries into argv (BLOCK block_ms when > 0); returns argc. */
static int outbox_read_argv(router_outbox *ob, size_t want, int block_ms, const char *argv[11],
                            char count[16], char block[16])
{
    int n = 0;

    snprintf(count, 16, "%zu", want);
    snprintf(block, 16, "%d", block_ms);
    argv[n++] = "XREADGROUP";
    argv[n++] = "GROUP";
    argv[n++] = ROUTER_OUTBOX_GROUP;
    argv[n++] = ob->instance;
    argv[n++] = "COUNT";
    argv[n++] = count;
    if (block_ms > 0) { /* BLOCK goes before STREAMS */
        argv[n++] = "BLOCK";
        argv[n++] = block;
    }
    argv[n++] = "STREAMS";
    argv[n++] = ROUTER_STATE_OUTBOX;
    argv[n++] = ">";
    return n;
}

/* Takes the reply r (freed here) of a read of up to want entries: produces what it holds at
 * once; returns how many, -1 on error. */
static int outbox_read_reply(router_outbox *ob, redisReply *r, size_t want)
{
    size_t n = 0;

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
        n = outbox_parse_entries(ob, r->element[0]->element[1], ob->tmp, want);
    freeReplyObject(r);
    outbox_enqueue(ob, ob->tmp, n);
    return (int)n;
}

/* One XREADGROUP of up to want new entries without blocking, on the main connection (the
 * drain at stop); returns how many, -1 on error. */
static int outbox_read_now(router_outbox *ob, size_t want)
{
    const char *argv[11];
    char count[16], block[16];
    int argc = outbox_read_argv(ob, want, 0, argv, count, block);

    return outbox_read_reply(ob, cc_redis_commandv(ob->redis, argc, argv, NULL), want);
}

/* Sends a blocking XREADGROUP of up to want entries on the reader connection; its reply is
 * taken by outbox_wait when it comes (a script's XADD wakes it at once). */
static void outbox_read_begin(router_outbox *ob, size_t want)
{
    const char *argv[11];
    char count[16], block[16];
    int argc = outbox_read_argv(ob, want, OUTBOX_BLOCK_MS, argv, count, block);

    if (cc_redis_send(ob->reader, argc, argv, NULL) == 0)
        ob->reading = want;
    else
        usleep(OUTBOX_RETRY_MIN_MS * 1000);
}

/* Waits (at most until the lease is due for renewal or delivered entries for their
 * acknowledgement, and 100 ms) for the reply of the read in progress or for delivery reports,
 * and serves what came: entries read are produced at once, reports acknowledged. Returns the
 * entries read, 0 when none, -1 when the read failed. */
static int outbox_wait(router_outbox *ob)
{
    struct pollfd fds[2];
    nfds_t nfds = 0;
    int64_t due = ob->lease_renewed + ob->lease_ms / 3 - cc_time_mono_ms();
    int64_t ack = outbox_ack_due_ms(ob);
    int timeout, n = 0, rc;
    redisReply *r;

    if (ack >= 0 && ack < due)
        due = ack;
    timeout = due < 1 ? 1 : due < OUTBOX_WAIT_MAX_MS ? (int)due : OUTBOX_WAIT_MAX_MS;
    if (ob->wake_fd >= 0)
        fds[nfds++] = (struct pollfd){.fd = ob->wake_fd, .events = POLLIN};
    if (ob->reading && cc_redis_fd(ob->reader) < 0)
        ob->reading = 0; /* the connection dropped: read again */
    if (ob->reading)
        fds[nfds++] = (struct pollfd){.fd = cc_redis_fd(ob->reader), .events = POLLIN};
    if (ob->wake_fd < 0 && ob->pending > 0) /* no pipe: poll the reports every millisecond */
        timeout = 1;
    if (poll(fds, nfds, timeout) < 0 && errno != EINTR)
        CC_WARN("outbox publisher: poll: %s", strerror(errno));
    if (ob->reading && (fds[nfds - 1].revents & (POLLIN | POLLERR | POLLHUP))) {
        size_t want = ob->reading;

        rc = cc_redis_recv(ob->reader, &r);
        if (rc != 0)
            ob->reading = 0;
        if (rc < 0) {
            n = -1;
        } else if (rc > 0 && !ob->leader) {
            /* the lease went while reading: what came stays pending in the group, for the
             * next leader's claim */
            freeReplyObject(r);
        } else if (rc > 0) {
            n = outbox_read_reply(ob, r, want);
        }
    }
    outbox_pump(ob, 0, atomic_load(&ob->stop));
    return n;
}

static void *outbox_main(void *arg)
{
    router_outbox *ob = arg;

    outbox_create_group(ob);
    ob->wake_fd = cc_producer_wake_fd(ob->producer);
    for (;;) {
        bool stopping = atomic_load(&ob->stop);
        size_t room;
        int n;

        if (stopping && (!ob->leader || cc_time_mono_ms() > ob->drain_until) && !ob->reading)
            break;
        outbox_keep_lease(ob);
        if (ob->leader && ob->need_claim && !ob->reading) {
            ob->need_claim = false;
            outbox_claim_all(ob);
            continue;
        }
        if (!ob->leader && !ob->reading) {
            if (stopping)
                break;
            usleep(OUTBOX_STANDBY_MS * 1000);
            continue;
        }
        outbox_pump(ob, 0, stopping);
        room = ob->cap - outbox_ring_len(ob);
        if (stopping && !ob->reading) {
            /* drain: what is left in the stream now, without blocking */
            n = room && ob->leader && !ob->failed
                    ? outbox_read_now(ob, room < (size_t)ob->batch ? room : (size_t)ob->batch)
                    : 0;
            if (n == 0 && outbox_ring_len(ob) == 0)
                break; /* drained */
            if (n <= 0)
                outbox_wait(ob);
            continue;
        }
        if (!ob->reading && ob->leader && !ob->failed && room > 0)
            outbox_read_begin(ob, room < (size_t)ob->batch ? room : (size_t)ob->batch);
        if (outbox_wait(ob) < 0)
            usleep(OUTBOX_RETRY_MIN_MS * 1000);
    }
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
    snprintf(src, sizeof(src), "/router/%s", cfg->instance);
    if (!outbox_json_plain(src)) {
        CC_ERROR("outbox publisher: instance '%s' has a quote, backslash or control character",
                 cfg->instance);
        return NULL;
    }
    ob = calloc(1, sizeof(*ob));
    if (!ob)
        return NULL;
    ob->instance = strdup(cfg->instance);
    ob->source = strdup(src);
    ob->redis_url = strdup(cfg->redis_url);
    ob->batch = cfg->batch > 0 ? cfg->batch : ROUTER_OUTBOX_BATCH;
    ob->lease_ms = cfg->lease_ms >= 300 ? cfg->lease_ms : ROUTER_OUTBOX_LEASE_MS;
    ob->cap = (size_t)(cfg->max_inflight > 0 ? cfg->max_inflight : ROUTER_OUTBOX_INFLIGHT);
    if (ob->cap < (size_t)ob->batch)
        ob->cap = (size_t)ob->batch;
    cc_backoff_init(&ob->backoff, OUTBOX_RETRY_MIN_MS, OUTBOX_RETRY_MAX_MS, -1);
    ob->lease = (struct cc_redis_script){.name = "outbox_lease", .source = outbox_lease_lua};
    ob->release = (struct cc_redis_script){.name = "outbox_release", .source = outbox_release_lua};
    ob->done = (struct cc_redis_script){.name = "outbox_done", .source = outbox_done_lua};
    ob->slots = calloc(ob->cap, sizeof(*ob->slots));
    ob->tmp = calloc((size_t)ob->batch, sizeof(*ob->tmp));
    ob->entry = malloc(sizeof(*ob->entry));
    ob->fields = calloc(OUTBOX_FIELDS_MAX * 2, sizeof(*ob->fields));
    if (!ob->instance || !ob->source || !ob->redis_url || !ob->slots || !ob->tmp || !ob->entry ||
        !ob->fields)
        goto out_free;
    if (cfg->metrics) {
        ob->published = cc_metrics_counter(cfg->metrics, "router_outbox_published_total",
                                           "Outbox events delivered to Kafka", NULL);
        ob->poison = cc_metrics_counter(cfg->metrics, "router_outbox_dropped_total",
                                        "Outbox entries dropped as malformed", NULL);
        ob->failed_batches =
            cc_metrics_counter(cfg->metrics, "router_outbox_failed_batches_total",
                               "Outbox publish retries after a failed delivery", NULL);
        ob->leader_gauge = cc_metrics_gauge(cfg->metrics, "router_outbox_leader",
                                            "1 when this instance publishes the outbox", NULL);
        ob->latency_produced = cc_metrics_histogram(
            cfg->metrics, "router_decision_latency_seconds",
            "Route command consumed (poll) -> its events handed to the Kafka producer "
            "(stage produced) / the first one acknowledged by Kafka (stage delivered)",
            "kind=\"route\",stage=\"produced\"", outbox_latency_bounds,
            sizeof(outbox_latency_bounds) / sizeof(outbox_latency_bounds[0]));
        ob->latency_delivered = cc_metrics_histogram(
            cfg->metrics, "router_decision_latency_seconds",
            "Route command consumed (poll) -> its events handed to the Kafka producer "
            "(stage produced) / the first one acknowledged by Kafka (stage delivered)",
            "kind=\"route\",stage=\"delivered\"", outbox_latency_bounds,
            sizeof(outbox_latency_bounds) / sizeof(outbox_latency_bounds[0]));
    }
    ob->redis = cc_redis_new(ob->redis_url);
    ob->reader = ob->redis ? cc_redis_new(ob->redis_url) : NULL;
    if (!ob->reader)
        goto out_redis;
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
    cc_redis_free(ob->reader);
    cc_redis_free(ob->redis);
out_free:
    free(ob->fields);
    free(ob->entry);
    free(ob->tmp);
    free(ob->slots);
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
    /* late delivery reports (served by the final flush) still land in the ring: free it after;
     * entries not acknowledged stay pending in the group for the next leader */
    cc_producer_free(ob->producer);
    outbox_drop(ob);
    cc_redis_free(ob->reader);
    cc_redis_free(ob->redis);
    free(ob->fields);
    free(ob->entry);
    free(ob->tmp);
    free(ob->slots);
    free(ob->instance);
    free(ob->source);
    free(ob->redis_url);
    free(ob);
}
