/* sipedge_bus: decisions consumer thread and event builders (see sipedge_bus.h). */
#include "sipedge_bus.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_event.h"
#include "cc_id.h"
#include "cc_log.h"
#include "cc_time.h"

struct sipedge_bus_consumer {
    pthread_t thread;
    bool started;
    volatile sig_atomic_t stop;
    cc_consumer *consumer;
    sipedge_decision_fn deliver;
    sipedge_originate_fn originate;
    void *ctx;
    const char *what; /* "decisions" / "dialer commands" (log lines) */
};

/* ---- decisions -------------------------------------------------------------------------- */

static int bus_fail(char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", what);
    return -EINVAL;
}

/* Copies data.name (a string of 1..cap-1 chars) into out; required or optional. */
static int bus_str(const json_t *d, const char *name, bool required, char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(d, name));

    if (!s || !*s)
        return required ? -EINVAL : 0;
    if (strlen(s) >= cap)
        return -EINVAL;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int bus_int(const json_t *d, const char *name, long lo, long hi, int *out)
{
    const json_t *v = json_object_get(d, name);

    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return -EINVAL;
    *out = (int)json_integer_value(v);
    return 0;
}

static int bus_decision_body(const cc_event *ev, struct sipedge_decision *out, char *err,
                             size_t errlen)
{
    const json_t *d = ev->data;
    const char *t = ev->type;

    if (strcmp(t, "cc.routing.assigned") == 0) {
        out->kind = SIPEDGE_DECISION_ASSIGNED;
        if (bus_str(d, "agent_id", true, out->agent_id, sizeof(out->agent_id)) < 0 ||
            bus_str(d, "agent_contact", true, out->contact, sizeof(out->contact)) < 0)
            return bus_fail(err, errlen, "assigned: data.agent_id and data.agent_contact required");
        bus_str(d, "strategy", false, out->strategy, sizeof(out->strategy));
        if (bus_int(d, "ring_timeout_s", 1, 3600, &out->ring_timeout_s) < 0)
            return bus_fail(err, errlen, "assigned: data.ring_timeout_s must be 1..3600");
        out->callback = json_is_object(json_object_get(d, "callback"));
        return 1;
    }
    if (strcmp(t, "cc.routing.withdrawn") == 0) {
        out->kind = SIPEDGE_DECISION_WITHDRAWN;
        if (bus_str(d, "agent_id", true, out->agent_id, sizeof(out->agent_id)) < 0)
            return bus_fail(err, errlen, "withdrawn: data.agent_id required");
        bus_str(d, "reason", false, out->reason, sizeof(out->reason));
        return 1;
    }
    if (strcmp(t, "cc.routing.rejected") == 0 || strcmp(t, "cc.routing.no_agent_timeout") == 0) {
        const char *action = json_string_value(json_object_get(d, "action"));

        if (t[11] == 'n' && action && strcmp(action, "reject") != 0)
            return 0; /* callback / voicemail: not ours to finish */
        out->kind = SIPEDGE_DECISION_REJECTED;
        out->sip_status = 480;
        if (bus_int(d, "sip_status", 400, 699, &out->sip_status) < 0)
            return bus_fail(err, errlen, "rejected: data.sip_status must be 400..699");
        if (bus_str(d, "reason", false, out->reason, sizeof(out->reason)) < 0 || !out->reason[0])
            snprintf(out->reason, sizeof(out->reason), "%s",
                     t[11] == 'n' ? "no_agent_timeout" : "rejected");
        return 1;
    }
    if (strcmp(t, "cc.routing.overflowed") == 0) {
        out->kind = SIPEDGE_DECISION_OVERFLOWED;
        if (bus_str(d, "to_queue_id", true, out->queue_id, sizeof(out->queue_id)) < 0)
            return bus_fail(err, errlen, "overflowed: data.to_queue_id required");
        return 1;
    }
    return 0;
}

int sipedge_bus_parse_decision(const void *value, size_t len, struct sipedge_decision *out,
                               char *err, size_t errlen)
{
    cc_event ev;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!value || cc_event_parse(value, len, &ev, err, errlen) < 0)
        return -EINVAL;
    rc = 0;
    if (strncmp(ev.type, "cc.routing.", 11) != 0)
        goto out_event;
    if (!ev.subject || strlen(ev.subject) >= sizeof(out->interaction_id) ||
        !json_is_object(ev.data)) {
        rc = bus_fail(err, errlen, "subject (the interaction id) and data required");
        goto out_event;
    }
    snprintf(out->interaction_id, sizeof(out->interaction_id), "%s", ev.subject);
    snprintf(out->tenant, sizeof(out->tenant), "%s", ev.tenant);
    bus_str(ev.data, "queue_id", false, out->queue_id, sizeof(out->queue_id));
    out->time_ms = ev.time_ms;
    rc = bus_decision_body(&ev, out, err, errlen);
out_event:
    cc_event_clear(&ev);
    return rc;
}

static enum cc_bus_verdict bus_handle(void *ctx, const struct cc_bus_msg *m, char *reason,
                                      size_t reasonlen)
{
    struct sipedge_bus_consumer *c = ctx;
    const char *type = cc_bus_msg_header(m, CC_BUS_HEADER_TYPE, NULL);
    struct sipedge_decision d;
    int rc;

    /* cheap skip of the decisions sip-edge never acts on (offer groups, callbacks ...) */
    if (type && strcmp(type, "cc.routing.assigned") != 0 &&
        strcmp(type, "cc.routing.withdrawn") != 0 && strcmp(type, "cc.routing.rejected") != 0 &&
        strcmp(type, "cc.routing.no_agent_timeout") != 0 &&
        strcmp(type, "cc.routing.overflowed") != 0)
        return CC_BUS_OK;
    rc = sipedge_bus_parse_decision(m->value, m->len, &d, reason, reasonlen);
    if (rc < 0)
        return CC_BUS_REJECT;
    if (rc > 0)
        c->deliver(c->ctx, &d);
    return CC_BUS_OK;
}

/* ---- dialer commands -------------------------------------------------------------------- */

/* A destination: an E.164-like number ("+" and 2..20 digits) or a sip:/sips: URI without
 * spaces, quotes or angle brackets. */
static bool bus_destination_valid(const char *s)
{
    size_t n = 0;

    if (strncmp(s, "sip:", 4) == 0 || strncmp(s, "sips:", 5) == 0) {
        for (const char *p = s; *p; p++)
            if ((unsigned char)*p <= ' ' || strchr("\"<>", *p))
                return false;
        return strchr(s, '@') != NULL;
    }
    if (*s == '+')
        s++;
    for (; *s; s++, n++)
        if (*s < '0' || *s > '9')
            return false;
    return n >= 2 && n <= 20;
}

/* A caller id: 1..64 of [A-Za-z0-9+._-] (it becomes the user part of the From). */
static bool bus_caller_id_valid(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              strchr("+._-", *s)))
            return false;
    return true;
}

static int bus_originate_body(const cc_event *ev, struct sipedge_originate *o, char *err,
                              size_t errlen)
{
    const json_t *d = ev->data;
    char key[256];
    int len;

    if (bus_str(d, "attempt_id", true, o->attempt_id, sizeof(o->attempt_id)) < 0 ||
        bus_str(d, "campaign_id", true, o->campaign_id, sizeof(o->campaign_id)) < 0 ||
        bus_str(d, "queue_id", true, o->queue_id, sizeof(o->queue_id)) < 0)
        return bus_fail(err, errlen,
                        "originate: data.attempt_id, campaign_id and queue_id required");
    if (bus_str(d, "to", true, o->to, sizeof(o->to)) < 0 || !bus_destination_valid(o->to))
        return bus_fail(err, errlen, "originate: data.to must be an E.164 number or a sip: URI");
    if (bus_str(d, "caller_id", true, o->caller_id, sizeof(o->caller_id)) < 0 ||
        !bus_caller_id_valid(o->caller_id))
        return bus_fail(err, errlen, "originate: data.caller_id must be 1..64 of [A-Za-z0-9+._-]");
    if (bus_str(d, "customer_id", false, o->customer_id, sizeof(o->customer_id)) < 0 ||
        bus_str(d, "interaction_id", false, o->interaction_id, sizeof(o->interaction_id)) < 0)
        return bus_fail(err, errlen, "originate: data.customer_id / interaction_id too long");
    o->ring_timeout_s = 30;
    if (bus_int(d, "ring_timeout_s", 1, 300, &o->ring_timeout_s) < 0 ||
        bus_int(d, "priority", 0, 1000, &o->priority) < 0 ||
        bus_int(d, "max_wait_s", 0, 3600, &o->max_wait_s) < 0)
        return bus_fail(err, errlen,
                        "originate: ring_timeout_s 1..300, priority 0..1000, max_wait_s 0..3600");
    if (!cc_tenant_valid(ev->tenant))
        return bus_fail(err, errlen, "originate: a valid tenant required");
    snprintf(o->tenant, sizeof(o->tenant), "%s", ev->tenant);
    o->time_ms = ev->time_ms;
    if (o->interaction_id[0])
        return 1;
    /* the same command (redelivered) names the same interaction */
    len = snprintf(key, sizeof(key), "originate|%s|%s", o->tenant, o->attempt_id);
    if (cc_uuid_v7_derived(ev->time_ms, key, (size_t)len, o->interaction_id) < 0)
        return bus_fail(err, errlen, "originate: cannot derive an interaction id");
    return 1;
}

int sipedge_bus_parse_originate(const void *value, size_t len, struct sipedge_originate *out,
                                char *err, size_t errlen)
{
    cc_event ev;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!value || cc_event_parse(value, len, &ev, err, errlen) < 0)
        return -EINVAL;
    if (strcmp(ev.type, "cc.dialer.originate") != 0)
        goto out_event;
    if (!json_is_object(ev.data)) {
        rc = bus_fail(err, errlen, "originate: data required");
        goto out_event;
    }
    rc = bus_originate_body(&ev, out, err, errlen);
out_event:
    cc_event_clear(&ev);
    return rc;
}

static enum cc_bus_verdict bus_handle_originate(void *ctx, const struct cc_bus_msg *m, char *reason,
                                                size_t reasonlen)
{
    struct sipedge_bus_consumer *c = ctx;
    struct sipedge_originate o;
    int rc = sipedge_bus_parse_originate(m->value, m->len, &o, reason, reasonlen);

    if (rc < 0)
        return CC_BUS_REJECT;
    if (rc == 0)
        return CC_BUS_OK;
    return c->originate(c->ctx, &o) < 0 ? CC_BUS_RETRY : CC_BUS_OK;
}

static void *bus_main(void *arg)
{
    struct sipedge_bus_consumer *c = arg;

    if (cc_consumer_run(c->consumer, &c->stop) < 0)
        CC_ERROR("%s consumer stopped on a fatal error", c->what);
    return NULL;
}

/* Runs c's consumer of topic (handle gets each message with c) on a thread of its own; c (its
 * callbacks and what filled in) is freed when that cannot start. */
static sipedge_bus_consumer *bus_consumer_run(struct sipedge_bus_consumer *c,
                                              const struct cc_bus_config *cfg, const char *group,
                                              const char *topic, cc_bus_handler handle,
                                              cc_producer *deadletter)
{
    const char *const topics[] = {topic};

    c->consumer = cc_consumer_new(cfg, group, topics, 1, handle, c, deadletter);
    if (!c->consumer)
        goto out_free;
    if (pthread_create(&c->thread, NULL, bus_main, c) != 0)
        goto out_consumer;
    c->started = true;
    return c;
out_consumer:
    cc_consumer_free(c->consumer);
out_free:
    CC_ERROR("cannot start the %s consumer of group '%s'", c->what, group);
    free(c);
    return NULL;
}

sipedge_bus_consumer *sipedge_bus_consumer_start(const struct cc_bus_config *cfg, const char *group,
                                                 cc_producer *deadletter,
                                                 sipedge_decision_fn deliver, void *ctx)
{
    struct sipedge_bus_consumer *c = calloc(1, sizeof(*c));
    struct cc_bus_config bc = *cfg;

    if (!c)
        return NULL;
    bc.start_at_latest = true;
    c->deliver = deliver;
    c->ctx = ctx;
    c->what = "decisions";
    return bus_consumer_run(c, &bc, group, CC_TOPIC_ROUTING_DECISIONS, bus_handle, deadletter);
}

sipedge_bus_consumer *sipedge_bus_dialer_start(const struct cc_bus_config *cfg, const char *group,
                                               cc_producer *deadletter,
                                               sipedge_originate_fn deliver, void *ctx)
{
    struct sipedge_bus_consumer *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->originate = deliver;
    c->ctx = ctx;
    c->what = "dialer commands";
    return bus_consumer_run(c, cfg, group, CC_TOPIC_DIALER_COMMANDS, bus_handle_originate,
                            deadletter);
}

bool sipedge_bus_consumer_assigned(const sipedge_bus_consumer *c)
{
    return c && cc_consumer_assigned(c->consumer);
}

void sipedge_bus_consumer_stop(sipedge_bus_consumer *c)
{
    if (!c)
        return;
    c->stop = 1;
    if (c->started)
        pthread_join(c->thread, NULL);
    cc_consumer_free(c->consumer);
    free(c);
}

/* ---- events ----------------------------------------------------------------------------- */

/* A UUID (version 7 layout) from created_ms and SHA-256(ix | type | attempt): the same fact
 * published twice gets the same id, which consumers deduplicate on. */
static int bus_event_id(const struct sipedge_ix *ix, const char *type, int attempt, char out[37])
{
    char key[256];
    int len = snprintf(key, sizeof(key), "%s|%s|%d", ix->id, type, attempt);

    if (len < 0 || (size_t)len >= sizeof(key))
        return -EINVAL;
    return cc_uuid_v7_derived(ix->created_ms, key, (size_t)len, out);
}

/* Sends type about subject with data (stolen); id from bus_event_id when ix is given. */
static int bus_publish(const struct sipedge_pub *pub, const char *topic, const char *type,
                       const char *subject, const char *tenant, const struct sipedge_ix *ix,
                       int attempt, json_t *data)
{
    json_t *env;
    char id[37];
    int rc;

    if (!data)
        return -ENOMEM;
    env = cc_event_build(type, pub->source, subject, tenant, data);
    if (!env)
        return -ENOMEM;
    if (ix && bus_event_id(ix, type, attempt, id) == 0)
        json_object_set_new(env, "id", json_string(id));
    rc = cc_producer_send_event(pub->producer, topic, subject, env);
    if (rc < 0)
        CC_ERROR_CTX(&(struct cc_log_ctx){.interaction_id = ix ? ix->id : NULL},
                     "cannot publish '%s': %s", type, strerror(-rc));
    json_decref(env);
    return rc;
}

static int bus_ix_publish(const struct sipedge_pub *pub, const char *topic, const char *type,
                          const struct sipedge_ix *ix, int attempt, json_t *data)
{
    return bus_publish(pub, topic, type, ix->id, ix->tenant, ix, attempt, data);
}

int sipedge_bus_created(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                        const char *from, const char *to, int priority)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "channel", "voice", "direction",
                          "inbound", "queue_id", ix->queue_id, "from",
                          from && *from ? from : "anonymous", "to", to, "priority", priority);

    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.created", ix, 0, d);
}

int sipedge_bus_created_outbound(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                                 const char *from, const char *to, int priority,
                                 const char *campaign_id, const char *attempt_id,
                                 const char *customer_id)
{
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "channel", "voice", "direction", "outbound",
                  "queue_id", ix->queue_id, "from", from, "to", to, "priority", priority);

    if (d && campaign_id && *campaign_id)
        json_object_set_new(d, "campaign_id", json_string(campaign_id));
    if (d && attempt_id && *attempt_id)
        json_object_set_new(d, "attempt_id", json_string(attempt_id));
    if (d && customer_id && *customer_id)
        json_object_set_new(d, "customer_id", json_string(customer_id));
    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.created", ix, 0, d);
}

int sipedge_bus_created_consult(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                                const char *from, const char *to, const char *parent_id,
                                const char *agent_id)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:{s:s, s:s}}", "channel", "voice",
                          "direction", "outbound", "queue_id", ix->queue_id, "from", from, "to", to,
                          "priority", 0, "attributes", "kind", "consult", "agent_id", agent_id);

    if (d && parent_id && *parent_id)
        json_object_set_new(d, "parent_interaction_id", json_string(parent_id));
    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.created", ix, 0, d);
}

int sipedge_bus_route(const struct sipedge_pub *pub, const struct sipedge_ix *ix, int priority)
{
    json_t *d = json_pack("{s:s, s:s, s:i}", "queue_id", ix->queue_id, "channel", "voice",
                          "priority", priority);

    return bus_ix_publish(pub, CC_TOPIC_ROUTING_REQUESTS, "cc.routing.route", ix, 0, d);
}

int sipedge_bus_answered(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                         const char *agent_id, int64_t wait_ms, int64_t ring_ms, int attempt)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:I, s:I}", "answered_by", "agent", "agent_id", agent_id,
                          "queue_id", ix->queue_id, "wait_ms", (json_int_t)wait_ms, "ring_ms",
                          (json_int_t)ring_ms);

    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.answered", ix, attempt, d);
}

int sipedge_bus_answered_customer(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                                  int64_t wait_ms)
{
    json_t *d = json_pack("{s:s, s:s, s:I}", "answered_by", "customer", "queue_id", ix->queue_id,
                          "wait_ms", (json_int_t)wait_ms);

    /* attempt -1: the agents' answers are numbered from 1 */
    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.answered", ix, -1, d);
}

int sipedge_bus_no_answer(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                          const char *agent_id, const char *reason, int64_t ring_ms, int sip_status,
                          int attempt)
{
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:s, s:I}", "party", "agent", "agent_id", agent_id, "queue_id",
                  ix->queue_id, "reason", reason, "ring_ms", (json_int_t)ring_ms);

    if (d && sip_status > 0)
        json_object_set_new(d, "sip_status", json_integer(sip_status));
    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.no_answer", ix, attempt, d);
}

int sipedge_bus_abandoned(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                          int64_t wait_ms, const char *ringing_agent_id)
{
    json_t *d = json_pack("{s:s, s:I}", "queue_id", ix->queue_id, "wait_ms", (json_int_t)wait_ms);

    if (d && ringing_agent_id && *ringing_agent_id)
        json_object_set_new(d, "ringing_agent_id", json_string(ringing_agent_id));
    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.abandoned", ix, 0, d);
}

int sipedge_bus_held(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                     const char *agent_id, const char *held_by, int seq)
{
    json_t *d = json_pack("{s:s, s:s}", "agent_id", agent_id, "held_by", held_by);

    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.held", ix, seq, d);
}

int sipedge_bus_resumed(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                        const char *agent_id, int64_t hold_ms, int seq)
{
    json_t *d = json_pack("{s:s, s:I}", "agent_id", agent_id, "hold_ms", (json_int_t)hold_ms);

    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.resumed", ix, seq, d);
}

int sipedge_bus_transferred(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                            const char *transfer_type, const char *target_type, const char *target,
                            const char *from_agent_id, const char *from_queue_id, int64_t talk_ms,
                            int seq, const char *consult_id)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:I}", "transfer_type", transfer_type, "target_type",
                          target_type, "target", target, "talk_ms", (json_int_t)talk_ms);

    if (d && from_agent_id && *from_agent_id)
        json_object_set_new(d, "from_agent_id", json_string(from_agent_id));
    if (d && from_queue_id && *from_queue_id)
        json_object_set_new(d, "from_queue_id", json_string(from_queue_id));
    if (d && consult_id && *consult_id)
        json_object_set_new(d, "consult_interaction_id", json_string(consult_id));
    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.transferred", ix, seq, d);
}

int sipedge_bus_requeue(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                        const char *reason, const char *queue_id, int seq)
{
    json_t *d = json_pack("{s:s, s:s, s:b}", "reason", reason, "queue_id", queue_id, "at_head", 1);

    return bus_ix_publish(pub, CC_TOPIC_ROUTING_REQUESTS, "cc.routing.requeue", ix, seq, d);
}

int sipedge_bus_cancel(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                       const char *reason, int seq)
{
    json_t *d = json_pack("{s:s, s:s}", "reason", reason, "queue_id", ix->queue_id);

    return bus_ix_publish(pub, CC_TOPIC_ROUTING_REQUESTS, "cc.routing.cancel", ix, seq, d);
}

int sipedge_bus_callback(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                         const char *number, int64_t at_ms)
{
    json_t *d = json_pack("{s:s, s:b, s:s}", "number", number, "keep_place", at_ms <= 0, "queue_id",
                          ix->queue_id);
    char when[32];

    if (d && at_ms > 0 && cc_time_format_iso8601(at_ms, when) == 0)
        json_object_set_new(d, "scheduled_at", json_string(when));

    return bus_ix_publish(pub, CC_TOPIC_ROUTING_REQUESTS, "cc.routing.callback", ix, 0, d);
}

/* The data of cc.interaction.ended; agent_id and detail may be NULL, sip_status 0 = none. */
static json_t *bus_ended_data(const struct sipedge_ix *ix, const char *ended_by, int64_t talk_ms,
                              int64_t hold_ms, int64_t duration_ms, const char *agent_id,
                              const char *reason, int sip_status, const char *detail)
{
    json_t *d = json_pack("{s:s, s:I, s:I, s:I, s:s, s:s}", "ended_by", ended_by, "talk_ms",
                          (json_int_t)talk_ms, "hold_ms", (json_int_t)hold_ms, "duration_ms",
                          (json_int_t)duration_ms, "queue_id", ix->queue_id, "reason", reason);

    if (d && agent_id && *agent_id)
        json_object_set_new(d, "agent_id", json_string(agent_id));
    if (d && sip_status > 0)
        json_object_set_new(d, "sip_status", json_integer(sip_status));
    if (d && detail)
        json_object_set_new(d, "detail", json_string(detail));
    return d;
}

int sipedge_bus_ended(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                      const char *ended_by, int64_t talk_ms, int64_t hold_ms, int64_t duration_ms,
                      const char *agent_id, const char *reason, int sip_status)
{
    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix, 0,
                          bus_ended_data(ix, ended_by, talk_ms, hold_ms, duration_ms, agent_id,
                                         reason, sip_status, NULL));
}

int sipedge_bus_ended_failed(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                             int64_t duration_ms, const char *detail, int sip_status)
{
    return bus_ix_publish(
        pub, CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix, 0,
        bus_ended_data(ix, "system", 0, 0, duration_ms, NULL, "failed", sip_status, detail));
}

int sipedge_bus_ended_lost(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                           const char *agent_id, int64_t talk_ms, int64_t duration_ms)
{
    return bus_ix_publish(pub, CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix, 0,
                          bus_ended_data(ix, "system", talk_ms, 0, duration_ms, agent_id, "failed",
                                         0, "instance_lost"));
}

int sipedge_bus_registered(const struct sipedge_pub *pub, const char *tenant, const char *agent_id,
                           const char *contact, long expires_s, const char *aor,
                           const char *user_agent, const char *transport, const char *source)
{
    json_t *d = json_pack("{s:s, s:i}", "contact", contact, "expires_s", (int)expires_s);

    if (d && aor && *aor)
        json_object_set_new(d, "aor", json_string(aor));
    if (d && user_agent && *user_agent)
        json_object_set_new(d, "user_agent", json_string(user_agent));
    if (d && transport && *transport)
        json_object_set_new(d, "transport", json_string(transport));
    if (d && source && *source)
        json_object_set_new(d, "source", json_string(source));
    return bus_publish(pub, CC_TOPIC_AGENTS, "cc.agent.registered", agent_id, tenant, NULL, 0, d);
}
