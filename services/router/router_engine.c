/* router_engine: bus commands and facts -> router_state + router_live (see the header). */
#include "router_engine.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cc_log.h"
#include "cc_time.h"
#include "router_live.h"
#include "router_schedule.h"

#define ENGINE_QCACHE_MIN  1024  /* initial slots of the queue cache (a power of two) */
#define ENGINE_QCACHE_MAX  65536 /* entries kept at most; beyond, the cache starts over */
#define ENGINE_SOURCE_SELF "/router/"

/* One cached queue configuration (or the fact that the queue does not exist). */
struct engine_qcache {
    uint64_t hash; /* of tenant + id */
    char tenant[ROUTER_TENANT_MAX + 2];
    char id[ROUTER_ID_MAX + 1];
    bool exists;
    int64_t loaded_ms; /* mono; 0 = to be (re)loaded */
    struct router_queue q;
};

/* Open-addressing map tenant + queue id -> configuration (linear probing, at most half full,
 * entries never removed, only marked stale), so no live entry ever evicts another. */
struct engine_qmap {
    struct engine_qcache **slots; /* NULL = empty */
    size_t cap, n;                /* cap: a power of two */
    uint64_t gen;                 /* router_store queue change generation applied */
};

/* Buffers of the batch path, grown to the largest batch seen (one engine per thread). */
struct engine_batch {
    size_t cap;
    struct router_cmd *cmds;
    size_t *seg;                      /* the route commands being gathered (indices in cmds) */
    size_t *fseg;                     /* the facts being gathered (indices in cmds) */
    struct router_fact *facts;        /* per fact gathered */
    struct router_enqueue *reqs;      /* per segment entry */
    const char **skills;              /* per segment entry: the command's skills_json */
    struct router_enqueue *run;       /* the entries whose script ran: they are persisted */
    const char **run_skills;          /* per entry of run */
    size_t *run_at;                   /* per entry of run: its index in the segment */
    bool *run_ended;                  /* per entry of run: persisted as ended before */
    struct router_state_result *res;  /* per segment entry */
    int *rcs;                         /* per segment entry */
    struct router_state_result *res2; /* per segment entry: a run again after a rebuild */
    int *rcs2;
    const char **tenants, **ids;    /* per segment entry: what router_state_ix_states reads */
    struct router_ix_state *states; /* per segment entry: Redis's state once persisted */
    struct router_live_row *rows;   /* the row changes of the facts gathered */
    size_t *row_at;                 /* per entry of rows: its fact's index in fseg */
    int *row_rcs;                   /* per entry of rows: written (0) or not (-EIO) */
};

struct router_engine {
    router_state *rs;
    router_live *lv;
    router_store *store;
    char *instance;
    char *tenants; /* ",t1,t2," or NULL = all */
    uint64_t rng;
    struct engine_qmap qmap;
    struct cc_counter *handled[ROUTER_CMD_TRANSFERRED + 1];
    struct cc_counter *rebuilds;
    struct cc_histogram *duration;
    struct engine_batch batch;
};

static const char *const engine_kind_names[] = {
    "ignore", "route",     "cancel",    "requeue",    "callback",    "answered",
    "ended",  "abandoned", "no_answer", "registered", "transferred",
};

/* ---- validation ------------------------------------------------------------------------- */

static int engine_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int engine_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* common.schema.json#/$defs/id */
static bool engine_id_valid(const char *s)
{
    return cc_event_id_valid(s, CC_EVENT_ID_MAX);
}

/* An optional id field: absent -> NULL, present -> must be an id. */
static int engine_opt_id(const json_t *data, const char *name, const char **out, char *err,
                         size_t errlen)
{
    const json_t *v = json_object_get(data, name);

    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v) || !engine_id_valid(json_string_value(v)))
        return engine_fail(err, errlen, "data.%s: must be an id (1..128 of [A-Za-z0-9._:@-])",
                           name);
    *out = json_string_value(v);
    return 0;
}

static int engine_req_id(const json_t *data, const char *name, const char **out, char *err,
                         size_t errlen)
{
    if (engine_opt_id(data, name, out, err, errlen) < 0)
        return -EINVAL;
    if (!*out)
        return engine_fail(err, errlen, "data.%s: required", name);
    return 0;
}

static int engine_int(const json_t *data, const char *name, bool required, long long min,
                      long long max, long long *out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(data, name);

    if (!v) {
        if (required)
            return engine_fail(err, errlen, "data.%s: required", name);
        return 1;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return engine_fail(err, errlen, "data.%s: must be an integer %lld..%lld", name, min, max);
    *out = json_integer_value(v);
    return 0;
}

static int engine_string(const json_t *data, const char *name, bool required, size_t maxlen,
                         const char **out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(data, name);

    *out = NULL;
    if (!v) {
        if (required)
            return engine_fail(err, errlen, "data.%s: required", name);
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > maxlen)
        return engine_fail(err, errlen, "data.%s: must be a string of 1..%zu characters", name,
                           maxlen);
    *out = json_string_value(v);
    return 0;
}

/* One of names[] (NULL-terminated); returns its index or -EINVAL. */
static int engine_enum(const json_t *data, const char *name, const char *const *names, char *err,
                       size_t errlen)
{
    const char *s = json_string_value(json_object_get(data, name));

    for (int i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return engine_fail(err, errlen, "data.%s: required, one of the schema's values", name);
}

static int engine_skills(const json_t *data, struct router_cmd *c, char *err, size_t errlen)
{
    const json_t *arr = json_object_get(data, "skills"), *v;
    json_t *out;
    size_t i;

    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > ROUTER_ENGINE_ROUTE_SKILLS)
        return engine_fail(err, errlen, "data.skills: must be an array of at most %d",
                           ROUTER_ENGINE_ROUTE_SKILLS);
    out = json_array();
    if (!out)
        return -ENOMEM;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(json_object_get(v, "skill"));
        const json_t *lvl = json_object_get(v, "min_proficiency");

        if (!json_is_object(v) || !s || !engine_id_valid(s) || strlen(s) > ROUTER_ID_MAX) {
            json_decref(out);
            return engine_fail(err, errlen, "data.skills[%zu].skill: must be a skill id", i);
        }
        if (!json_is_integer(lvl) || json_integer_value(lvl) < 1 || json_integer_value(lvl) > 5) {
            json_decref(out);
            return engine_fail(err, errlen,
                               "data.skills[%zu].min_proficiency: must be an integer 1..5", i);
        }
        snprintf(c->skills[i].skill, sizeof(c->skills[i].skill), "%s", s);
        c->skills[i].level = (int)json_integer_value(lvl);
        json_array_append_new(
            out, json_pack("{s:s, s:I}", "skill", s, "min_proficiency", json_integer_value(lvl)));
    }
    c->nskills = json_array_size(arr);
    c->has_skills = true;
    c->skills_json = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return c->skills_json ? 0 : -ENOMEM;
}

static int engine_parse_route(const json_t *d, struct router_cmd *c, char *err, size_t errlen)
{
    static const char *const channels[] = {"voice", "chat", "email", "sms", NULL};
    const json_t *cb = json_object_get(d, "callback");
    long long prio = 0;
    int ch;

    if (engine_req_id(d, "queue_id", &c->queue_id, err, errlen) < 0)
        return -EINVAL;
    ch = engine_enum(d, "channel", channels, err, errlen);
    if (ch < 0)
        return -EINVAL;
    if (router_channel_parse(channels[ch], &c->channel) < 0)
        return engine_fail(err, errlen, "data.channel: unknown");
    if (engine_int(d, "priority", true, 0, ROUTER_PRIORITY_MAX, &prio, err, errlen) < 0)
        return -EINVAL;
    c->priority = (int)prio;
    if (engine_skills(d, c, err, errlen) < 0)
        return -EINVAL;
    if (cb) {
        if (!json_is_object(cb))
            return engine_fail(err, errlen, "data.callback: must be an object {number}");
        if (engine_string(cb, "number", true, ROUTER_ENGINE_ADDRESS_MAX, &c->number, err, errlen) <
            0)
            return engine_fail(err, errlen, "data.callback.number: required, 1..%d characters",
                               ROUTER_ENGINE_ADDRESS_MAX);
    }
    return 0;
}

/* data.exclude_agent_ids of a requeue (optional): at most ROUTER_ENGINE_EXCLUDE_MAX agent ids. */
static int engine_exclude(const json_t *d, struct router_cmd *c, char *err, size_t errlen)
{
    const json_t *v = json_object_get(d, "exclude_agent_ids"), *a;
    size_t i;

    c->nexclude = 0;
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) > ROUTER_ENGINE_EXCLUDE_MAX)
        return engine_fail(err, errlen, "data.exclude_agent_ids: an array of at most %d ids",
                           ROUTER_ENGINE_EXCLUDE_MAX);
    json_array_foreach(v, i, a)
    {
        if (!json_is_string(a) || !engine_id_valid(json_string_value(a)))
            return engine_fail(err, errlen,
                               "data.exclude_agent_ids[%zu]: must be an id (1..128 of "
                               "[A-Za-z0-9._:@-])",
                               i);
        c->exclude[c->nexclude++] = json_string_value(a);
    }
    return 0;
}

/* A callback's time: keep_place true takes none (*at_ms 0); false needs scheduled_at (RFC 3339)
 * no further than ROUTER_ENGINE_CALLBACK_AHEAD_S after the command's own time; a time already
 * past is kept as is (the interaction is ordered from then). */
static int engine_callback_at(const json_t *d, bool keep_place, int64_t sent_ms, int64_t *at_ms,
                              char *err, size_t errlen)
{
    const json_t *v = json_object_get(d, "scheduled_at");

    *at_ms = 0;
    if (keep_place)
        return v ? engine_fail(err, errlen,
                               "data.scheduled_at: not with keep_place true (the caller keeps "
                               "their place)")
                 : 0;
    if (!json_is_string(v) || cc_time_parse_iso8601(json_string_value(v), at_ms) < 0 || *at_ms <= 0)
        return engine_fail(err, errlen,
                           "data.scheduled_at: required with keep_place false, an RFC 3339 time");
    if (sent_ms > 0 && *at_ms > sent_ms + ROUTER_ENGINE_CALLBACK_AHEAD_S * 1000LL)
        return engine_fail(err, errlen, "data.scheduled_at: at most %d days ahead",
                           ROUTER_ENGINE_CALLBACK_AHEAD_S / 86400);
    return 0;
}

static int engine_parse_requests(const cc_event *ev, const json_t *d, struct router_cmd *c,
                                 char *err, size_t errlen)
{
    static const char *const cancel_reasons[] = {"abandoned",   "ended",   "answered_elsewhere",
                                                 "transferred", "expired", NULL};
    static const char *const requeue_reasons[] = {"no_answer", "transfer", "agent_returned",
                                                  "supervisor", NULL};
    const json_t *v;
    long long prio = -1;

    if (strcmp(ev->type, "cc.routing.route") == 0) {
        c->kind = ROUTER_CMD_ROUTE;
        return engine_parse_route(d, c, err, errlen);
    }
    if (strcmp(ev->type, "cc.routing.cancel") == 0) {
        c->kind = ROUTER_CMD_CANCEL;
        if (engine_enum(d, "reason", cancel_reasons, err, errlen) < 0)
            return -EINVAL;
        return engine_opt_id(d, "queue_id", &c->queue_id, err, errlen);
    }
    if (strcmp(ev->type, "cc.routing.requeue") == 0) {
        int why = engine_enum(d, "reason", requeue_reasons, err, errlen);

        c->kind = ROUTER_CMD_REQUEUE;
        if (why < 0 || engine_req_id(d, "queue_id", &c->queue_id, err, errlen) < 0)
            return -EINVAL;
        c->reason = requeue_reasons[why];
        v = json_object_get(d, "at_head");
        if (!json_is_boolean(v))
            return engine_fail(err, errlen, "data.at_head: required, a boolean");
        c->at_head = json_is_true(v);
        if (engine_int(d, "priority", false, 0, ROUTER_PRIORITY_MAX, &prio, err, errlen) < 0)
            return -EINVAL;
        c->priority = (int)prio;
        if (engine_exclude(d, c, err, errlen) < 0)
            return -EINVAL;
        return engine_skills(d, c, err, errlen); /* additive: new skills for the interaction */
    }
    if (strcmp(ev->type, "cc.routing.callback") == 0) {
        c->kind = ROUTER_CMD_CALLBACK;
        if (engine_string(d, "number", true, ROUTER_ENGINE_ADDRESS_MAX, &c->number, err, errlen) <
            0)
            return -EINVAL;
        v = json_object_get(d, "keep_place");
        if (!json_is_boolean(v))
            return engine_fail(err, errlen, "data.keep_place: required, a boolean");
        if (engine_callback_at(d, json_is_true(v), ev->time_ms, &c->at_ms, err, errlen) < 0)
            return -EINVAL;
        return engine_opt_id(d, "queue_id", &c->queue_id, err, errlen);
    }
    return 0; /* another command type: not ours */
}

/* cc.interaction.transferred: only an attended transfer to an agent is the router's (sip-edge
 * hands the call over itself; a blind transfer comes as a requeue, a transfer to a number as a
 * cancel); other kinds, also values added to the schema later, are ignored. */
static int engine_parse_transferred(const json_t *d, struct router_cmd *c, char *err, size_t errlen)
{
    const char *type = json_string_value(json_object_get(d, "transfer_type"));
    const char *target = json_string_value(json_object_get(d, "target_type"));
    long long talk = -1;

    if (!type || !target)
        return engine_fail(err, errlen, "data.transfer_type, data.target_type: required strings");
    if (strcmp(type, "attended") != 0 || strcmp(target, "agent") != 0)
        return 0;
    if (engine_req_id(d, "target", &c->agent_id, err, errlen) < 0 ||
        engine_opt_id(d, "from_agent_id", &c->from_agent_id, err, errlen) < 0 ||
        engine_int(d, "talk_ms", false, 0, INT64_MAX / 2, &talk, err, errlen) < 0)
        return -EINVAL;
    c->talk_ms = talk;
    c->kind = ROUTER_CMD_TRANSFERRED;
    return 0;
}

static int engine_parse_interaction(const cc_event *ev, const json_t *d, struct router_cmd *c,
                                    char *err, size_t errlen)
{
    static const char *const answered_by[] = {"agent", "customer", NULL};
    static const char *const parties[] = {"agent", "customer", NULL};
    long long v = 0;

    if (strcmp(ev->type, "cc.interaction.answered") == 0) {
        int who = engine_enum(d, "answered_by", answered_by, err, errlen);
        if (who < 0 || engine_opt_id(d, "agent_id", &c->agent_id, err, errlen) < 0)
            return -EINVAL;
        if (who == 1)
            return 0; /* a customer picked up an outbound call: routing comes as a route */
        if (!c->agent_id)
            return engine_fail(err, errlen, "data.agent_id: required when answered_by is agent");
        c->kind = ROUTER_CMD_ANSWERED;
        return engine_opt_id(d, "queue_id", &c->queue_id, err, errlen);
    }
    if (strcmp(ev->type, "cc.interaction.ended") == 0) {
        if (engine_int(d, "talk_ms", true, 0, INT64_MAX / 2, &v, err, errlen) < 0 ||
            engine_opt_id(d, "agent_id", &c->agent_id, err, errlen) < 0 ||
            engine_opt_id(d, "queue_id", &c->queue_id, err, errlen) < 0)
            return -EINVAL;
        c->talk_ms = v;
        c->kind = ROUTER_CMD_ENDED;
        return 0;
    }
    if (strcmp(ev->type, "cc.interaction.transferred") == 0)
        return engine_parse_transferred(d, c, err, errlen);
    if (strcmp(ev->type, "cc.interaction.abandoned") == 0) {
        if (engine_req_id(d, "queue_id", &c->queue_id, err, errlen) < 0)
            return -EINVAL;
        c->kind = ROUTER_CMD_ABANDONED;
        return 0;
    }
    if (strcmp(ev->type, "cc.interaction.no_answer") == 0) {
        int party = engine_enum(d, "party", parties, err, errlen);
        if (party < 0 || engine_opt_id(d, "agent_id", &c->agent_id, err, errlen) < 0 ||
            engine_opt_id(d, "queue_id", &c->queue_id, err, errlen) < 0)
            return -EINVAL;
        if (party == 1)
            return 0; /* the customer did not pick up (outbound): the dialer's business */
        if (!c->agent_id)
            return engine_fail(err, errlen, "data.agent_id: required when party is agent");
        c->kind = ROUTER_CMD_NO_ANSWER;
        return 0;
    }
    return 0;
}

static int engine_parse_agent(const cc_event *ev, const json_t *d, struct router_cmd *c, char *err,
                              size_t errlen)
{
    long long exp = 0;

    if (strcmp(ev->type, "cc.agent.registered") != 0)
        return 0;
    if (engine_string(d, "contact", true, 1024, &c->number, err, errlen) < 0 ||
        engine_int(d, "expires_s", true, 0, 86400, &exp, err, errlen) < 0)
        return -EINVAL;
    c->expires_s = (long)exp;
    c->agent_id = c->subject;
    c->kind = ROUTER_CMD_REGISTERED;
    return 0;
}

int router_engine_parse(const char *topic, const void *value, size_t len, struct router_cmd *out,
                        char *err, size_t errlen)
{
    const json_t *d;
    int rc;

    memset(out, 0, sizeof(*out));
    out->priority = -1;
    if (!topic || !value)
        return engine_fail(err, errlen, "empty message");
    if (cc_event_parse(value, len, &out->ev, err, errlen) < 0)
        return -EINVAL;
    out->tenant = out->ev.tenant;
    out->subject = out->ev.subject;
    if (out->ev.source &&
        strncmp(out->ev.source, ENGINE_SOURCE_SELF, strlen(ENGINE_SOURCE_SELF)) == 0)
        return 0; /* our own event (cc.interaction.offered, cc.agent.state_changed ...) */
    d = out->ev.data;
    if (strcmp(topic, CC_TOPIC_ROUTING_REQUESTS) != 0 &&
        strcmp(topic, CC_TOPIC_INTERACTIONS) != 0 && strcmp(topic, CC_TOPIC_AGENTS) != 0)
        return 0;
    if (!out->subject || !engine_id_valid(out->subject)) {
        router_cmd_clear(out);
        return engine_fail(err, errlen, "subject: required, the %s id",
                           strcmp(topic, CC_TOPIC_AGENTS) == 0 ? "agent" : "interaction");
    }
    if (!json_is_object(d)) {
        const char *t = out->ev.type;
        bool ours = strncmp(t, "cc.routing.", 11) == 0 || strcmp(t, "cc.agent.registered") == 0 ||
                    strcmp(t, "cc.interaction.answered") == 0 ||
                    strcmp(t, "cc.interaction.ended") == 0 ||
                    strcmp(t, "cc.interaction.abandoned") == 0 ||
                    strcmp(t, "cc.interaction.no_answer") == 0 ||
                    strcmp(t, "cc.interaction.transferred") == 0;
        if (!ours)
            return 0;
        router_cmd_clear(out);
        return engine_fail(err, errlen, "data: required, an object");
    }
    if (strcmp(topic, CC_TOPIC_ROUTING_REQUESTS) == 0)
        rc = engine_parse_requests(&out->ev, d, out, err, errlen);
    else if (strcmp(topic, CC_TOPIC_INTERACTIONS) == 0)
        rc = engine_parse_interaction(&out->ev, d, out, err, errlen);
    else
        rc = engine_parse_agent(&out->ev, d, out, err, errlen);
    if (rc < 0) {
        router_cmd_clear(out);
        return rc == -ENOMEM ? engine_fail(err, errlen, "out of memory") : -EINVAL;
    }
    return 0;
}

void router_cmd_clear(struct router_cmd *cmd)
{
    if (!cmd)
        return;
    cc_event_clear(&cmd->ev);
    free(cmd->skills_json);
    memset(cmd, 0, sizeof(*cmd));
}

/* ---- queue cache ------------------------------------------------------------------------ */

static uint64_t engine_qmap_hash(const char *tenant, const char *queue_id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (const char *p = tenant; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const char *p = queue_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static int engine_qmap_init(struct engine_qmap *m, size_t cap)
{
    m->slots = calloc(cap, sizeof(*m->slots));
    m->cap = m->slots ? cap : 0;
    m->n = 0;
    return m->slots ? 0 : -ENOMEM;
}

static void engine_qmap_clear(struct engine_qmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i]) {
            router_queue_clear(&m->slots[i]->q);
            free(m->slots[i]);
        }
    }
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

/* The entry of tenant + queue_id, or NULL; *empty (may be NULL) gets the slot where it would
 * go. */
static struct engine_qcache *engine_qmap_find(const struct engine_qmap *m, uint64_t h,
                                              const char *tenant, const char *queue_id,
                                              size_t *empty)
{
    size_t i = h & (m->cap - 1);

    for (; m->slots[i]; i = (i + 1) & (m->cap - 1)) {
        const struct engine_qcache *c = m->slots[i];
        if (c->hash == h && strcmp(c->id, queue_id) == 0 && strcmp(c->tenant, tenant) == 0)
            return m->slots[i];
    }
    if (empty)
        *empty = i;
    return NULL;
}

/* Doubles the table (entries keep their place in memory). 0 or -ENOMEM. */
static int engine_qmap_grow(struct engine_qmap *m)
{
    struct engine_qmap bigger;

    if (engine_qmap_init(&bigger, m->cap * 2) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        size_t j;
        if (!m->slots[i])
            continue;
        j = m->slots[i]->hash & (bigger.cap - 1);
        while (bigger.slots[j])
            j = (j + 1) & (bigger.cap - 1);
        bigger.slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = bigger.slots;
    m->cap = bigger.cap;
    return 0;
}

/* A new, not yet loaded entry for tenant + queue_id (absent; slot from engine_qmap_find).
 * NULL on ENOMEM. */
static struct engine_qcache *engine_qmap_add(struct engine_qmap *m, uint64_t h, const char *tenant,
                                             const char *queue_id, size_t slot)
{
    struct engine_qcache *c;

    if (m->n >= ENGINE_QCACHE_MAX) { /* e.g. requests naming ever new unknown queues */
        uint64_t gen = m->gen;
        engine_qmap_clear(m);
        if (engine_qmap_init(m, ENGINE_QCACHE_MIN) < 0)
            return NULL;
        m->gen = gen;
        engine_qmap_find(m, h, tenant, queue_id, &slot);
    } else if ((m->n + 1) * 2 > m->cap) {
        if (engine_qmap_grow(m) < 0)
            return NULL;
        engine_qmap_find(m, h, tenant, queue_id, &slot);
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->hash = h;
    snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
    snprintf(c->id, sizeof(c->id), "%s", queue_id);
    m->slots[slot] = c;
    m->n++;
    return c;
}

/* ---- engine ----------------------------------------------------------------------------- */

router_engine *router_engine_new(const struct router_engine_config *cfg)
{
    router_engine *e;

    if (!cfg || !cfg->redis_url || !cfg->pg_dsn || !cfg->store || !cfg->instance) {
        CC_ERROR("router engine: redis url, pg dsn, store and instance are required");
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->store = cfg->store;
    e->instance = strdup(cfg->instance);
    e->qmap.gen = router_store_queue_generation(cfg->store);
    if (!e->instance || engine_qmap_init(&e->qmap, ENGINE_QCACHE_MIN) < 0)
        goto out_free;
    if (cfg->tenants && *cfg->tenants) {
        size_t n = strlen(cfg->tenants) + 3;
        e->tenants = malloc(n);
        if (!e->tenants)
            goto out_free;
        snprintf(e->tenants, n, ",%s,", cfg->tenants);
    }
    if (getrandom(&e->rng, sizeof(e->rng), 0) != (ssize_t)sizeof(e->rng) || e->rng == 0)
        e->rng = (uint64_t)cc_time_mono_us() | 1;
    e->rs = router_state_new(cfg->redis_url);
    if (!e->rs)
        goto out_free;
    e->lv = router_live_new(cfg->pg_dsn);
    if (!e->lv)
        goto out_state;
    if (cfg->metrics) {
        static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.002,
                                        0.005,  0.01,    0.025,  0.1,   1};
        for (int k = ROUTER_CMD_ROUTE; k <= ROUTER_CMD_TRANSFERRED; k++) {
            char labels[48];
            snprintf(labels, sizeof(labels), "kind=\"%s\"", engine_kind_names[k]);
            e->handled[k] = cc_metrics_counter(cfg->metrics, "router_commands_total",
                                               "Commands and facts applied, by kind", labels);
        }
        e->rebuilds = cc_metrics_counter(cfg->metrics, "router_rebuilds_total",
                                         "Rebuilds of the Redis state from PostgreSQL", NULL);
        e->duration = cc_metrics_histogram(
            cfg->metrics, "router_command_duration_seconds",
            "Time to apply one command (persist + script), consumed to decision written", NULL,
            bounds, sizeof(bounds) / sizeof(bounds[0]));
    }
    return e;

out_state:
    router_state_free(e->rs);
out_free:
    free(e->tenants);
    engine_qmap_clear(&e->qmap);
    free(e->instance);
    free(e);
    return NULL;
}

static void engine_batch_free(struct engine_batch *b)
{
    free(b->cmds);
    free(b->seg);
    free(b->fseg);
    free(b->facts);
    free(b->reqs);
    free(b->skills);
    free(b->run);
    free(b->run_skills);
    free(b->run_at);
    free(b->run_ended);
    free(b->res);
    free(b->rcs);
    free(b->res2);
    free(b->rcs2);
    free(b->tenants);
    free(b->ids);
    free(b->states);
    free(b->rows);
    free(b->row_at);
    free(b->row_rcs);
    memset(b, 0, sizeof(*b));
}

/* Makes room for a batch of n. 0 or -ENOMEM (the buffers are then freed). */
static int engine_batch_reserve(struct engine_batch *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    engine_batch_free(b);
    b->cmds = calloc(n, sizeof(*b->cmds));
    b->seg = calloc(n, sizeof(*b->seg));
    b->fseg = calloc(n, sizeof(*b->fseg));
    b->facts = calloc(n, sizeof(*b->facts));
    b->reqs = calloc(n, sizeof(*b->reqs));
    b->skills = calloc(n, sizeof(*b->skills));
    b->run = calloc(n, sizeof(*b->run));
    b->run_skills = calloc(n, sizeof(*b->run_skills));
    b->run_at = calloc(n, sizeof(*b->run_at));
    b->run_ended = calloc(n, sizeof(*b->run_ended));
    b->res = calloc(n, sizeof(*b->res));
    b->rcs = calloc(n, sizeof(*b->rcs));
    b->res2 = calloc(n, sizeof(*b->res2));
    b->rcs2 = calloc(n, sizeof(*b->rcs2));
    b->tenants = calloc(n, sizeof(*b->tenants));
    b->ids = calloc(n, sizeof(*b->ids));
    b->states = calloc(n, sizeof(*b->states));
    b->rows = calloc(n, sizeof(*b->rows));
    b->row_at = calloc(n, sizeof(*b->row_at));
    b->row_rcs = calloc(n, sizeof(*b->row_rcs));
    if (!b->cmds || !b->seg || !b->fseg || !b->facts || !b->reqs || !b->skills || !b->run ||
        !b->run_skills || !b->run_at || !b->run_ended || !b->res || !b->rcs || !b->res2 ||
        !b->rcs2 || !b->tenants || !b->ids || !b->states || !b->rows || !b->row_at || !b->row_rcs) {
        engine_batch_free(b);
        return -ENOMEM;
    }
    b->cap = n;
    return 0;
}

void router_engine_free(router_engine *e)
{
    if (!e)
        return;
    engine_batch_free(&e->batch);
    engine_qmap_clear(&e->qmap);
    router_live_free(e->lv);
    router_state_free(e->rs);
    free(e->tenants);
    free(e->instance);
    free(e);
}

/* True when this engine serves tenant (every tenant without a CC_ROUTER_TENANTS list). */
static bool engine_serves(const router_engine *e, const char *tenant)
{
    char probe[ROUTER_TENANT_MAX + 4];

    if (!e->tenants)
        return true;
    if (!tenant || strlen(tenant) > ROUTER_TENANT_MAX + 1)
        return false;
    snprintf(probe, sizeof(probe), ",%s,", tenant);
    return strstr(e->tenants, probe) != NULL;
}

router_state *router_engine_state(router_engine *e)
{
    return e->rs;
}

struct router_live *router_engine_live(router_engine *e)
{
    return e->lv;
}

int router_engine_rebuild(router_engine *e)
{
    int rc = router_live_rebuild(e->lv, e->rs, e->store, e->instance, cc_time_now_ms());

    if (rc == 0 && e->rebuilds)
        cc_counter_add(e->rebuilds, 1);
    return rc;
}

static uint64_t engine_seed(router_engine *e)
{
    uint64_t x = e->rng; /* xorshift64 */

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    e->rng = x;
    return x;
}

/* Marks tenant's queue_id stale (both NULL: every queue). A router_store_change_fn. */
static void engine_qmap_drop(void *arg, const char *tenant, const char *queue_id)
{
    struct engine_qmap *m = arg;
    struct engine_qcache *c;

    if (!tenant || !queue_id) {
        for (size_t i = 0; i < m->cap; i++) {
            if (m->slots[i])
                m->slots[i]->loaded_ms = 0;
        }
        return;
    }
    c = engine_qmap_find(m, engine_qmap_hash(tenant, queue_id), tenant, queue_id, NULL);
    if (c)
        c->loaded_ms = 0;
}

/* The queue's configuration from the cache: (re)loaded from PostgreSQL when it is not there,
 * when the store's change feed names it (configuration NOTIFY), or after the safety-net TTL.
 * NULL when the queue does not exist there (Redis then answers unknown_queue) or cannot be
 * read. */
static const struct router_queue *engine_queue(router_engine *e, const char *tenant,
                                               const char *queue_id)
{
    uint64_t h, gen = router_store_queue_generation(e->store);
    struct engine_qcache *c;
    int64_t now = cc_time_mono_ms();
    size_t slot;
    int rc;

    if (gen != e->qmap.gen)
        e->qmap.gen = router_store_queue_changes(e->store, e->qmap.gen, engine_qmap_drop, &e->qmap);
    if (strlen(tenant) > ROUTER_TENANT_MAX + 1 || strlen(queue_id) > ROUTER_ID_MAX)
        return NULL;
    h = engine_qmap_hash(tenant, queue_id);
    c = engine_qmap_find(&e->qmap, h, tenant, queue_id, &slot);
    if (c && c->loaded_ms && now - c->loaded_ms < ROUTER_ENGINE_QUEUE_TTL_MS)
        return c->exists ? &c->q : NULL;
    if (!c) {
        c = engine_qmap_add(&e->qmap, h, tenant, queue_id, slot);
        if (!c)
            return NULL;
    }
    router_queue_clear(&c->q);
    c->loaded_ms = 0;
    rc = router_store_queue_get(e->store, tenant, queue_id, &c->q);
    if (rc < 0 && rc != -ENOENT)
        return NULL; /* not cached: try again next time */
    c->exists = rc == 0;
    c->loaded_ms = now;
    return c->exists ? &c->q : NULL;
}

static enum cc_bus_verdict engine_verdict(int rc, const char *what, char *reason, size_t len)
{
    if (rc >= 0)
        return CC_BUS_OK;
    if (rc == -EAGAIN)
        snprintf(reason, len, "%s: redis state is being rebuilt", what);
    else
        snprintf(reason, len, "%s: %s", what, strerror(-rc));
    /* -EINVAL here means arguments the parser let through and the state refused: a bug or a
     * command it cannot apply; retrying would loop, so drop it loudly */
    if (rc == -EINVAL || rc == -ENOENT) {
        CC_WARN("ignoring command the live state refused (%s)", reason);
        return CC_BUS_OK;
    }
    return CC_BUS_RETRY;
}

static void engine_log_result(const struct router_cmd *c, const struct router_state_result *r)
{
    const struct cc_log_ctx ctx = {.interaction_id = c->subject,
                                   .agent_id = r->noffers ? r->offers[0].agent_id : c->agent_id};

    CC_DEBUG_CTX(&ctx, "%s in '%s': %s%s%s (%zu offer(s), %zu event(s))",
                 engine_kind_names[c->kind], r->queue_id, router_state_status_name(r->status),
                 r->detail[0] ? " " : "", r->detail, r->noffers, r->nevents);
}

/* Applies the route's outcome to the persisted row. */
static int engine_route_persist_outcome(router_engine *e, const struct router_cmd *c,
                                        const struct router_state_result *r)
{
    switch (r->status) {
    case ROUTER_ST_REJECTED:
    case ROUTER_ST_TIMED_OUT:
        return router_live_closed(e->lv, c->tenant, c->subject);
    case ROUTER_ST_OVERFLOWED:
        return router_live_moved(e->lv, c->tenant, c->subject, r->queue_id);
    default:
        return 0;
    }
}

/* The enqueue request of route command c at now (its queue's schedule from the cache). */
static void engine_route_request(router_engine *e, const struct router_cmd *c, int64_t now,
                                 struct router_enqueue *req)
{
    const struct router_queue *q = engine_queue(e, c->tenant, c->queue_id);

    *req = (struct router_enqueue){
        .tenant = c->tenant,
        .interaction_id = c->subject,
        .queue_id = c->queue_id,
        .channel = c->channel,
        .priority = c->priority,
        .skills = c->skills,
        .nskills = c->nskills,
        .callback_number = c->number,
        .request_id = c->ev.id,
        .now_ms = now,
        .seed = engine_seed(e),
    };
    if (q) {
        int open = router_schedule_is_open(q, now);
        if (open < 0)
            CC_WARN("unknown time zone '%s' of queue '%s': treating it as open", q->timezone,
                    q->id);
        req->closed = open == 0;
    }
}

static void engine_routes_run(router_engine *e, size_t k);

/* A single route command: the batch path with one entry. */
static int engine_route(router_engine *e, const struct router_cmd *c, struct router_state_result *r)
{
    struct engine_batch *b = &e->batch;
    int rc;

    if (engine_batch_reserve(b, 1) < 0)
        return -ENOMEM;
    engine_route_request(e, c, cc_time_now_ms(), &b->reqs[0]);
    b->skills[0] = c->skills_json;
    engine_routes_run(e, 1);
    rc = b->rcs[0];
    if (rc < 0)
        return rc;
    *r = b->res[0];
    return engine_route_persist_outcome(e, c, r);
}

/* After a RONA: persist the agent's presence if the script made it not_ready. */
static void engine_persist_rona(router_engine *e, const char *tenant, const char *agent_id)
{
    json_t *view = NULL;

    if (router_state_agent_view(e->rs, tenant, agent_id, cc_time_now_ms(), &view) < 0)
        return;
    if (strcmp(json_string_value(json_object_get(view, "presence")) ?: "", "not_ready") == 0)
        router_live_presence(e->lv, tenant, agent_id, ROUTER_AGENT_NOT_READY,
                             json_string_value(json_object_get(view, "reason")),
                             json_integer_value(json_object_get(view, "since_ms")));
    json_decref(view);
}

/* The row change fact c makes once its script ran with result r: closed (cancel, abandoned,
 * ended) or assigned (answered, when the answer was taken). False: none. */
static bool engine_fact_row(const struct router_cmd *c, const struct router_state_result *r,
                            struct router_live_row *row)
{
    switch (c->kind) {
    case ROUTER_CMD_CANCEL:
    case ROUTER_CMD_ABANDONED:
    case ROUTER_CMD_ENDED:
        *row = (struct router_live_row){.closed = true, .tenant = c->tenant, .ix = c->subject};
        return true;
    case ROUTER_CMD_ANSWERED:
        *row = (struct router_live_row){
            .closed = false, .tenant = c->tenant, .ix = c->subject, .agent_id = c->agent_id};
        /* a repeat too: when the first write failed, the fact came again (retried or
         * redelivered) and the row must not stay "waiting" (a rebuild would offer the call
         * again while its agent talks); the UPDATE is idempotent */
        return r->status == ROUTER_ST_OK ||
               (r->status == ROUTER_ST_NOOP && strcmp(r->detail, "already_answered") == 0);
    default:
        return false;
    }
}

/* The PostgreSQL side of fact c (cancel, abandoned, answered, no_answer, ended) once its script
 * ran with result r, when it has no row change (engine_fact_row) or applies alone. */
static int engine_fact_persist(router_engine *e, const struct router_cmd *c,
                               const struct router_state_result *r)
{
    struct router_live_row row;

    if (engine_fact_row(c, r, &row))
        return row.closed ? router_live_closed(e->lv, row.tenant, row.ix)
                          : router_live_assigned(e->lv, row.tenant, row.ix, row.agent_id);
    if (c->kind == ROUTER_CMD_NO_ANSWER && r->status == ROUTER_ST_OK)
        engine_persist_rona(e, c->tenant, c->agent_id);
    return 0;
}

/* ids[0..n) as a JSON array text (malloc'd; NULL when out of memory). */
static char *engine_ids_json(const char *const *ids, size_t n)
{
    json_t *a = json_array();
    char *text = NULL;
    size_t i = 0;

    while (a && i < n && json_array_append_new(a, json_string(ids[i])) == 0)
        i++;
    if (a && i == n)
        text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

static int engine_apply(router_engine *e, const struct router_cmd *c, struct router_state_result *r)
{
    int64_t now = cc_time_now_ms();
    int rc;

    switch (c->kind) {
    case ROUTER_CMD_ROUTE:
        return engine_route(e, c, r);
    case ROUTER_CMD_CANCEL:
        rc = ROUTER_ENGINE_RETRY_STALE(
            e, router_state_cancel(e->rs, c->tenant, c->subject, now, engine_seed(e), r));
        return rc < 0 ? rc : engine_fact_persist(e, c, r);
    case ROUTER_CMD_ABANDONED:
        rc = ROUTER_ENGINE_RETRY_STALE(
            e, router_state_abandoned(e->rs, c->tenant, c->subject, now, engine_seed(e), r));
        return rc < 0 ? rc : engine_fact_persist(e, c, r);
    case ROUTER_CMD_REQUEUE: {
        struct router_requeue rq = {.tenant = c->tenant,
                                    .interaction_id = c->subject,
                                    .queue_id = c->queue_id,
                                    .priority = c->priority,
                                    .skills = c->skills,
                                    .nskills = c->nskills,
                                    .set_skills = c->has_skills,
                                    .reason = c->reason,
                                    .anew = !c->at_head,
                                    .exclude = c->exclude,
                                    .nexclude = c->nexclude,
                                    .request_id = c->ev.id,
                                    .now_ms = now,
                                    .seed = engine_seed(e)};
        char *excluded = c->nexclude ? engine_ids_json(c->exclude, c->nexclude) : NULL;

        if (c->nexclude && !excluded)
            return -ENOMEM;
        /* persisted first (a transfer: waiting in the new queue, no agent; its order and
         * exclusions), so a rebuild after the script ran restores the interaction there */
        rc = router_live_requeue(e->lv, c->tenant, c->subject, c->queue_id, c->priority,
                                 c->skills_json, c->at_head ? 0 : now, excluded);
        free(excluded);
        if (rc == 0)
            rc = ROUTER_ENGINE_RETRY_STALE(e, router_state_requeue(e->rs, &rq, r));
        if (rc == 0 && r->status == ROUTER_ST_REJECTED) /* transfer to an unknown queue */
            rc = router_live_closed(e->lv, c->tenant, c->subject);
        return rc;
    }
    case ROUTER_CMD_CALLBACK:
        rc = router_live_callback(e->lv, c->tenant, c->subject, c->number, c->at_ms);
        if (rc == 0)
            rc = ROUTER_ENGINE_RETRY_STALE(e,
                                           router_state_set_callback(e->rs, c->tenant, c->subject,
                                                                     c->number, c->at_ms, now, r));
        if (rc == 0 && r->status == ROUTER_ST_REJECTED) /* the queue takes no callbacks */
            rc = router_live_closed(e->lv, c->tenant, c->subject);
        return rc;
    case ROUTER_CMD_ANSWERED:
        rc = ROUTER_ENGINE_RETRY_STALE(e,
                                       router_state_answered(e->rs, c->tenant, c->subject,
                                                             c->agent_id, now, engine_seed(e), r));
        return rc < 0 ? rc : engine_fact_persist(e, c, r);
    case ROUTER_CMD_NO_ANSWER:
        rc = ROUTER_ENGINE_RETRY_STALE(e,
                                       router_state_no_answer(e->rs, c->tenant, c->subject,
                                                              c->agent_id, now, engine_seed(e), r));
        return rc < 0 ? rc : engine_fact_persist(e, c, r);
    case ROUTER_CMD_ENDED:
        rc = ROUTER_ENGINE_RETRY_STALE(e,
                                       router_state_ended(e->rs, c->tenant, c->subject, c->agent_id,
                                                          c->talk_ms, now, engine_seed(e), r));
        return rc < 0 ? rc : engine_fact_persist(e, c, r);
    case ROUTER_CMD_TRANSFERRED:
        rc = ROUTER_ENGINE_RETRY_STALE(
            e, router_state_transferred(e->rs, c->tenant, c->subject, c->from_agent_id, c->agent_id,
                                        c->talk_ms, now, engine_seed(e), r));
        if (rc < 0 || r->status != ROUTER_ST_OK)
            return rc;
        /* a rebuild restores it held by the target; held outside routing, there is nothing to
         * restore (restored, it would wait in its queue again) */
        if (strcmp(r->detail, "target_outside") == 0)
            return router_live_closed(e->lv, c->tenant, c->subject);
        return router_live_assigned(e->lv, c->tenant, c->subject, c->agent_id);
    case ROUTER_CMD_REGISTERED:
        rc = ROUTER_ENGINE_RETRY_STALE(
            e, router_state_agent_set_contact(e->rs, c->tenant, c->agent_id,
                                              c->expires_s > 0 ? c->number : NULL, now));
        return rc == -ENOENT ? 0 : rc; /* a phone of an agent the router does not know */
    case ROUTER_CMD_IGNORE:
        return 0;
    }
    return 0;
}

int router_engine_timer(router_engine *e, const struct router_timer *t, int64_t now_ms)
{
    struct router_state_result r = {0};
    int rc;

    rc = ROUTER_ENGINE_RETRY_STALE(e,
                                   router_state_handle_timer(e->rs, t, now_ms, engine_seed(e), &r));
    if (rc < 0)
        return rc;
    if (r.status == ROUTER_ST_OVERFLOWED)
        rc = router_live_moved(e->lv, t->tenant, t->id, r.queue_id);
    else if (r.status == ROUTER_ST_TIMED_OUT || r.status == ROUTER_ST_REJECTED)
        rc = router_live_closed(e->lv, t->tenant, t->id); /* rejected: a scheduled callback's
                                                              queue was deleted */
    else if (r.status == ROUTER_ST_OK && strcmp(t->kind, "offer") == 0 && t->id2[0])
        engine_persist_rona(e, t->tenant, t->id2);
    CC_DEBUG_CTX(&(struct cc_log_ctx){.interaction_id = t->id},
                 "timer '%s' of tenant '%s': %s%s%s (%zu offer(s))", t->kind, t->tenant,
                 router_state_status_name(r.status), r.detail[0] ? " " : "", r.detail, r.noffers);
    return rc;
}

enum cc_bus_verdict router_engine_apply(router_engine *e, const struct router_cmd *cmd,
                                        char *reason, size_t reasonlen)
{
    struct router_state_result r = {0};
    int64_t t0 = cc_time_mono_us();
    int rc;

    if (cmd->kind == ROUTER_CMD_IGNORE || !engine_serves(e, cmd->tenant))
        return CC_BUS_OK;
    rc = engine_apply(e, cmd, &r);
    if (rc < 0)
        return engine_verdict(rc, engine_kind_names[cmd->kind], reason, reasonlen);
    if (e->duration)
        cc_histogram_observe(e->duration, (double)(cc_time_mono_us() - t0) / 1e6);
    if (e->handled[cmd->kind])
        cc_counter_add(e->handled[cmd->kind], 1);
    engine_log_result(cmd, &r);
    return CC_BUS_OK;
}

enum cc_bus_verdict router_engine_handle(void *ctx, const struct cc_bus_msg *m, char *reason,
                                         size_t reasonlen)
{
    struct router_cmd cmd;
    enum cc_bus_verdict v;
    const char *src = cc_bus_msg_header(m, CC_BUS_HEADER_SOURCE, NULL);

    /* our own events (offered, queued, state_changed...) come back on the topics we consume:
     * skip them by their ce_source header without parsing; router_engine_parse still ignores
     * them by the envelope's source when a message carries no headers */
    if (src && strncmp(src, ENGINE_SOURCE_SELF, strlen(ENGINE_SOURCE_SELF)) == 0)
        return CC_BUS_OK;
    if (router_engine_parse(m->topic, m->value, m->len, &cmd, reason, reasonlen) < 0)
        return CC_BUS_REJECT;
    v = router_engine_apply(ctx, &cmd, reason, reasonlen);
    router_cmd_clear(&cmd);
    return v;
}

/* ---- batches ---------------------------------------------------------------------------- */

/* Counts, times and logs an applied command. */
static void engine_applied(router_engine *e, const struct router_cmd *c,
                           const struct router_state_result *r, int64_t t0_us)
{
    if (e->duration)
        cc_histogram_observe(e->duration, (double)(cc_time_mono_us() - t0_us) / 1e6);
    if (e->handled[c->kind])
        cc_counter_add(e->handled[c->kind], 1);
    engine_log_result(c, r);
}

/* Runs reqs[0..m) through Redis, rebuilding once when Redis lost its state; *epoch gets the
 * epoch they ran in (-1: not one epoch, 0: none ran). */
static void engine_batch_redis(router_engine *e, const struct router_enqueue *reqs, size_t m,
                               struct router_state_result *res, int *rcs, long long *epoch)
{
    long long again = 0;
    size_t first = m;
    int rc;

    rc = router_state_enqueue_batch(e->rs, reqs, m, res, rcs, epoch);
    for (size_t j = 0; j < m; j++) {
        if (rc < 0)
            rcs[j] = -EIO;
        if (rcs[j] == -ESTALE && first == m)
            first = j; /* from here on nothing ran (a group runs whole or not at all) */
    }
    if (first == m)
        return;
    rc = router_engine_rebuild(e);
    if (rc == 0)
        rc = router_state_enqueue_batch(e->rs, reqs + first, m - first, res + first, rcs + first,
                                        &again);
    for (size_t j = first; j < m; j++) {
        if (rc < 0)
            rcs[j] = rc;
    }
    *epoch = first == 0 ? again : -1; /* a part ran before the rebuild, a part after */
}

/* Reads what Redis holds of the persisted entries b->run[0..m) (into b->states, by entry); when
 * Redis was rebuilt since their scripts ran in epoch ran_in, runs them again first (see
 * engine_routes_run). */
static int engine_routes_recheck(router_engine *e, size_t m, long long ran_in)
{
    struct engine_batch *b = &e->batch;
    long long epoch = 0, again = 0;
    int rc;

    for (size_t i = 0; i < m; i++) {
        b->tenants[i] = b->run[i].tenant;
        b->ids[i] = b->run[i].interaction_id;
    }
    rc = router_state_ix_states(e->rs, m, b->tenants, b->ids, &epoch, b->states);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (rc == 0 && epoch == ran_in)
        return 0;
    CC_WARN("redis was rebuilt while %zu route(s) were persisted: running them again", m);
    engine_batch_redis(e, b->run, m, b->res2, b->rcs2, &again);
    for (size_t i = 0; i < m; i++) {
        size_t j = b->run_at[i];
        if (b->rcs2[i] < 0 || b->res2[i].status != ROUTER_ST_NOOP) {
            b->rcs[j] = b->rcs2[i];
            b->res[j] = b->res2[i];
        }
    }
    rc = router_state_ix_states(e->rs, m, b->tenants, b->ids, &epoch, b->states);
    return rc == -ENOENT ? -EAGAIN : rc; /* flushed again: the commands come again */
}

/* Brings the row of persisted entry i (b->run[i]) in line with what Redis holds of it now
 * (states[i]): a fact applied between its script and its insert found no row to update. */
static int engine_routes_catch_up(router_engine *e, size_t i)
{
    const struct router_enqueue *q = &e->batch.run[i];
    const struct router_ix_state *st = &e->batch.states[i];
    const struct router_state_result *r = &e->batch.res[e->batch.run_at[i]];

    if (strcmp(st->state, "assigned") == 0 && st->agent_id[0])
        return router_live_assigned(e->lv, q->tenant, q->interaction_id, st->agent_id);
    if (router_ix_state_finished(st->state) && r->status != ROUTER_ST_REJECTED &&
        r->status != ROUTER_ST_TIMED_OUT) /* those two: engine_route_persist_outcome */
        return router_live_closed(e->lv, q->tenant, q->interaction_id);
    return 0;
}

/* Routes b->reqs[0..k) (distinct interactions) into b->res / b->rcs. The scripts run first, so
 * a decision leaves through the outbox without waiting for PostgreSQL; then ONE multi-row insert
 * persists them (before the offsets are stored: a crash in between redelivers the commands,
 * which the scripts then answer "duplicate" and the insert completes). Then ONE read of what
 * Redis holds of them closes what that order opens:
 * - a rebuild of Redis that read PostgreSQL before this insert committed could not restore
 *   them: when the epoch changed since the scripts ran, they run again (what is there already
 *   is a duplicate; a result of the second run replaces the first only when it did something);
 * - a fact (answered, ended, ...) applied between a script and the insert found no row: the row
 *   is brought in line with Redis's state (assigned to its agent, or closed);
 * - an interaction PostgreSQL had already closed is known to Redis by its tombstone (a day,
 *   restored by a rebuild), so the script answered "duplicate"; past that day or without it, the
 *   script routed it again: it is cancelled at once (a warning says so). Either way the command
 *   ends as "already ended". */
static void engine_routes_run(router_engine *e, size_t k)
{
    struct engine_batch *b = &e->batch;
    long long ran_in = 0;
    size_t m = 0;
    int rc = 0;

    engine_batch_redis(e, b->reqs, k, b->res, b->rcs, &ran_in);
    for (size_t j = 0; j < k; j++) { /* a command whose script failed is not persisted (yet) */
        if (b->rcs[j] == 0) {
            b->run[m] = b->reqs[j];
            b->run_skills[m] = b->skills[j];
            b->run_at[m++] = j;
        }
    }
    if (m > 0)
        rc = router_live_route_batch(e->lv, b->run, b->run_skills, m, b->run_ended);
    if (rc == 0 && m > 0)
        rc = engine_routes_recheck(e, m, ran_in);
    for (size_t i = 0; i < m; i++) {
        size_t j = b->run_at[i];
        const struct router_enqueue *q = &b->run[i];
        struct router_state_result *r = &b->res[j];

        if (b->rcs[j] < 0) /* its second run failed */
            continue;
        if (rc < 0) { /* comes again: the insert or the check is done again */
            b->rcs[j] = rc;
            continue;
        }
        if (!b->run_ended[i]) {
            b->rcs[j] = engine_routes_catch_up(e, i);
            continue;
        }
        if (r->status != ROUTER_ST_NOOP) {
            CC_WARN_CTX(
                &(struct cc_log_ctx){.interaction_id = q->interaction_id},
                "route of an interaction closed before and unknown to redis: cancelling it");
            b->rcs[j] = ROUTER_ENGINE_RETRY_STALE(
                e, router_state_cancel(e->rs, q->tenant, q->interaction_id, q->now_ms,
                                       engine_seed(e), &b->res2[i]));
        }
        *r = (struct router_state_result){.status = ROUTER_ST_NOOP, .detail = "already ended"};
    }
}

/* Applies the route commands b->seg[0..k) (distinct interactions) and gives each its verdict.
 * Returns true when one of them is retried. */
static bool engine_batch_routes(router_engine *e, const struct cc_bus_msg *msgs, size_t k,
                                struct cc_bus_outcome *out)
{
    struct engine_batch *b = &e->batch;
    int64_t t0 = cc_time_mono_us(), now = cc_time_now_ms();
    bool retry = false;
    int rc;

    for (size_t j = 0; j < k; j++) {
        const struct router_cmd *c = &b->cmds[b->seg[j]];
        engine_route_request(e, c, now, &b->reqs[j]);
        b->reqs[j].consumed_us = msgs[b->seg[j]].consumed_us;
        b->skills[j] = c->skills_json;
    }
    engine_routes_run(e, k);
    for (size_t j = 0; j < k; j++) {
        const struct router_cmd *c = &b->cmds[b->seg[j]];
        struct cc_bus_outcome *o = &out[b->seg[j]];
        const struct router_state_result *r = &b->res[j];

        rc = b->rcs[j];
        if (rc == 0)
            rc = engine_route_persist_outcome(e, c, r);
        if (rc < 0) {
            o->verdict = engine_verdict(rc, "route", o->reason, sizeof(o->reason));
            retry = retry || o->verdict == CC_BUS_RETRY;
            continue;
        }
        engine_applied(e, c, r, t0);
    }
    return retry;
}

/* True when seg[0..k) (indices in b->cmds) holds a command for c's interaction. */
static bool engine_seg_has(const struct engine_batch *b, const size_t *seg, size_t k,
                           const struct router_cmd *c)
{
    for (size_t j = 0; j < k; j++) {
        const struct router_cmd *o = &b->cmds[seg[j]];
        if (strcmp(o->subject, c->subject) == 0 && strcmp(o->tenant, c->tenant) == 0)
            return true;
    }
    return false;
}

/* Is a command of kind k a fact gathered into one script call (*fk: its kind)? Those whose
 * script runs before their PostgreSQL statement; requeue and callback (PostgreSQL first) and
 * transfers apply alone. */
static bool engine_fact_kind(enum router_cmd_kind k, enum router_fact_kind *fk)
{
    switch (k) {
    case ROUTER_CMD_ANSWERED:
        *fk = ROUTER_FACT_ANSWERED;
        return true;
    case ROUTER_CMD_ENDED:
        *fk = ROUTER_FACT_ENDED;
        return true;
    case ROUTER_CMD_ABANDONED:
        *fk = ROUTER_FACT_ABANDONED;
        return true;
    case ROUTER_CMD_CANCEL:
        *fk = ROUTER_FACT_CANCELLED;
        return true;
    case ROUTER_CMD_NO_ANSWER:
        *fk = ROUTER_FACT_NO_ANSWER;
        return true;
    default:
        return false;
    }
}

/* Runs the facts b->facts[0..k) in Redis into b->res / b->rcs; a NOSTATE rebuilds Redis and
 * runs the ones that did not run (a group runs whole or not at all). *epoch: the epoch they
 * ran in (-1: different ones). Returns 0 or negative (then none may have run). */
static int engine_facts_redis(router_engine *e, size_t k, long long *epoch)
{
    struct engine_batch *b = &e->batch;
    long long again = 0;
    size_t from = 0;
    int rc = router_state_facts_batch(e->rs, b->facts, k, b->res, b->rcs, epoch);

    while (rc == 0 && from < k && b->rcs[from] != -ESTALE)
        from++; /* from here on nothing ran */
    if (rc < 0 || from == k)
        return rc;
    rc = router_engine_rebuild(e);
    if (rc == 0)
        rc = router_state_facts_batch(e->rs, b->facts + from, k - from, b->res + from,
                                      b->rcs + from, &again);
    *epoch = from == 0 ? again : -1;
    return rc;
}

/* The PostgreSQL side of the facts b->fseg[0..k) whose scripts ran (rcs 0): their row changes
 * in one transaction and one round trip per ROUTER_LIVE_ROWS_MAX (a row that cannot be written
 * fails its fact: it comes again, and each change is idempotent), anything else (a RONA's
 * presence) alone. */
static void engine_facts_persist(router_engine *e, size_t k)
{
    struct engine_batch *b = &e->batch;
    size_t m = 0;

    for (size_t j = 0; j < k; j++) {
        const struct router_cmd *c = &b->cmds[b->fseg[j]];

        if (b->rcs[j] != 0)
            continue;
        if (engine_fact_row(c, &b->res[j], &b->rows[m]))
            b->row_at[m++] = j;
        else
            b->rcs[j] = engine_fact_persist(e, c, &b->res[j]);
    }
    for (size_t from = 0; from < m; from += ROUTER_LIVE_ROWS_MAX) {
        size_t len = m - from < ROUTER_LIVE_ROWS_MAX ? m - from : ROUTER_LIVE_ROWS_MAX;

        router_live_rows(e->lv, b->rows + from, len, b->row_rcs + from);
        for (size_t i = from; i < from + len; i++) {
            if (b->row_rcs[i] < 0)
                b->rcs[b->row_at[i]] = -EIO;
        }
    }
}

/* Applies the facts b->fseg[0..k) (distinct interactions): ONE script call runs them all in
 * order, then their PostgreSQL statements together (engine_facts_persist). A rebuild of Redis that
 * read PostgreSQL before those statements committed restored the interactions as they were
 * before the facts: when the epoch changed since the scripts ran, they run again (a fact
 * already applied is a no-op). Returns true when one is retried. */
static bool engine_batch_facts(router_engine *e, size_t k, struct cc_bus_outcome *out)
{
    struct engine_batch *b = &e->batch;
    int64_t t0 = cc_time_mono_us(), now = cc_time_now_ms();
    long long ran_in = 0, epoch = 0;
    bool retry = false;
    int rc;

    for (size_t j = 0; j < k; j++) {
        const struct router_cmd *c = &b->cmds[b->fseg[j]];
        struct router_fact *f = &b->facts[j];

        *f = (struct router_fact){.tenant = c->tenant,
                                  .interaction_id = c->subject,
                                  .agent_id = c->agent_id,
                                  .talk_ms = c->talk_ms,
                                  .now_ms = now,
                                  .seed = engine_seed(e)};
        engine_fact_kind(c->kind, &f->kind);
        b->res[j] = (struct router_state_result){0};
    }
    rc = engine_facts_redis(e, k, &ran_in);
    if (rc == 0)
        engine_facts_persist(e, k);
    if (rc == 0 && (router_state_epoch_get(e->rs, &epoch) != 0 || epoch != ran_in)) {
        CC_WARN("redis was rebuilt while %zu fact(s) were persisted: running them again", k);
        rc = router_state_facts_batch(e->rs, b->facts, k, b->res2, b->rcs2, NULL);
        for (size_t j = 0; rc == 0 && j < k; j++) {
            if (b->rcs[j] == 0 && b->rcs2[j] < 0)
                b->rcs[j] = b->rcs2[j] == -ESTALE ? -EAGAIN : b->rcs2[j];
        }
    }
    for (size_t j = 0; j < k; j++) {
        const struct router_cmd *c = &b->cmds[b->fseg[j]];
        struct cc_bus_outcome *o = &out[b->fseg[j]];
        /* a refused batch (-EINVAL, -ENOMEM) may have run in part: it comes again */
        int r = rc == -EINVAL || rc == -ENOENT || rc == -ENOMEM ? -EIO : rc < 0 ? rc : b->rcs[j];

        if (r < 0) {
            o->verdict =
                engine_verdict(r, engine_kind_names[c->kind], o->reason, sizeof(o->reason));
            retry = retry || o->verdict == CC_BUS_RETRY;
            continue;
        }
        engine_applied(e, c, &b->res[j], t0);
    }
    return retry;
}

/* Parses msgs into b->cmds; a message that is not valid gets CC_BUS_REJECT. */
static void engine_batch_parse(router_engine *e, const struct cc_bus_msg *msgs, size_t n,
                               struct cc_bus_outcome *out)
{
    for (size_t i = 0; i < n; i++) {
        struct router_cmd *c = &e->batch.cmds[i];
        const char *src = cc_bus_msg_header(&msgs[i], CC_BUS_HEADER_SOURCE, NULL);

        memset(c, 0, sizeof(*c));
        if (src && strncmp(src, ENGINE_SOURCE_SELF, strlen(ENGINE_SOURCE_SELF)) == 0)
            continue; /* our own event: see router_engine_handle */
        if (router_engine_parse(msgs[i].topic, msgs[i].value, msgs[i].len, c, out[i].reason,
                                sizeof(out[i].reason)) < 0)
            out[i].verdict = CC_BUS_REJECT;
        else if (!engine_serves(e, c->tenant))
            c->kind = ROUTER_CMD_IGNORE;
    }
}

/* Gives the gathered commands seg[0..k), unapplied, RETRY: the batch had a retried message. */
static void engine_batch_behind(const size_t *seg, size_t k, struct cc_bus_outcome *out)
{
    for (size_t j = 0; j < k; j++) {
        out[seg[j]].verdict = CC_BUS_RETRY;
        snprintf(out[seg[j]].reason, sizeof(out[seg[j]].reason), "behind a retried message");
    }
}

void router_engine_handle_batch(void *ctx, const struct cc_bus_msg *msgs, size_t n,
                                struct cc_bus_outcome *out)
{
    router_engine *e = ctx;
    struct engine_batch *b = &e->batch;
    bool retry = false;
    size_t k = 0, kf = 0;

    if (engine_batch_reserve(b, n) < 0) {
        for (size_t i = 0; i < n; i++) {
            out[i].verdict = CC_BUS_RETRY;
            snprintf(out[i].reason, sizeof(out[i].reason), "out of memory");
        }
        return;
    }
    engine_batch_parse(e, msgs, n, out);
    for (size_t i = 0; i < n; i++) {
        struct router_cmd *c = &b->cmds[i];
        enum router_fact_kind fk;
        bool fact = engine_fact_kind(c->kind, &fk);

        if (out[i].verdict != CC_BUS_OK || c->kind == ROUTER_CMD_IGNORE)
            continue;
        /* routes gather into one segment, facts into another, over distinct interactions (one
         * command per interaction in both); anything else, or a second command of an
         * interaction, applies the segments first (routes, then facts), so every interaction's
         * commands keep their order. Commands of different interactions commute. */
        if (!retry && (c->kind == ROUTER_CMD_ROUTE || fact) && !engine_seg_has(b, b->seg, k, c) &&
            !engine_seg_has(b, b->fseg, kf, c)) {
            if (fact)
                b->fseg[kf++] = i;
            else
                b->seg[k++] = i;
            continue;
        }
        if (k && !retry)
            retry = engine_batch_routes(e, msgs, k, out);
        if (kf && !retry)
            retry = engine_batch_facts(e, kf, out);
        else if (kf)
            engine_batch_behind(b->fseg, kf, out);
        k = kf = 0;
        if (retry) { /* nothing after a retried message is applied: it comes again, in order */
            out[i].verdict = CC_BUS_RETRY;
            snprintf(out[i].reason, sizeof(out[i].reason), "behind a retried message");
        } else if (c->kind == ROUTER_CMD_ROUTE) {
            b->seg[k++] = i;
        } else if (fact) {
            b->fseg[kf++] = i;
        } else {
            out[i].verdict = router_engine_apply(e, c, out[i].reason, sizeof(out[i].reason));
            retry = out[i].verdict == CC_BUS_RETRY;
        }
    }
    if (k && !retry)
        retry = engine_batch_routes(e, msgs, k, out);
    if (kf && !retry)
        engine_batch_facts(e, kf, out);
    else if (kf)
        engine_batch_behind(b->fseg, kf, out);
    for (size_t i = 0; i < n; i++)
        router_cmd_clear(&b->cmds[i]);
}
