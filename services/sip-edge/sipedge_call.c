/* sipedge_call: the B2BUA call object and its state machine (see sipedge_call.h). */
#include "sipedge_call.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag_io.h>

#include "cc_id.h"
#include "cc_log.h"
#include "cc_time.h"

#define CALLS_BUCKETS 8192
#define CALL_ADDR_MAX 128

enum call_state {
    CALL_QUEUED,   /* the caller hears ringing; waiting for (or ringing) an agent */
    CALL_ANSWERED, /* bridged */
    CALL_ENDED,    /* over; waiting for the legs' handles to terminate */
};

struct sipedge_leg {
    struct sipedge_call *call;
    nua_handle_t *nh; /* NULL once destroyed (or never made) */
    bool is_caller;
    bool up;        /* answered (200 sent / received) */
    bool cancelled; /* we stopped it: its failure is not reported again */
    bool failed;    /* got a final error */
    char agent_id[SIPEDGE_BUS_ID_MAX + 1];
    int attempt;             /* offer number within the call */
    int64_t invited_mono_ms; /* when the INVITE left */
    su_timer_t *ring_timer;
    char *sdp; /* the SDP this leg's party sent (malloc'd) */
};

struct sipedge_call {
    struct sipedge_call *next; /* hash chain */
    sipedge_calls *cs;
    char id[CC_UUID_STRLEN + 1];
    char tenant[SIPEDGE_ID_MAX + 1];
    char queue_id[SIPEDGE_ID_MAX + 1];
    char from[CALL_ADDR_MAX], to[SIPEDGE_NUMBER_MAX + 1];
    char host[CALL_ADDR_MAX]; /* our address as the caller dialled it */
    int priority;
    enum call_state state;
    int64_t created_ms, created_mono_ms, answered_mono_ms;
    int attempts;
    struct sipedge_leg caller;
    struct sipedge_leg agents[SIPEDGE_CALL_MAX_LEGS];
    struct cc_log_ctx log;
};

struct sipedge_calls {
    struct sipedge_calls_config c;
    size_t active;
    struct sipedge_call *buckets[CALLS_BUCKETS];
};

/* ---- table ------------------------------------------------------------------------------ */

static size_t calls_bucket(const char *id)
{
    uint64_t h = 1469598103934665603ULL;

    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (size_t)(h % CALLS_BUCKETS);
}

static struct sipedge_call *calls_find(sipedge_calls *cs, const char *id)
{
    for (struct sipedge_call *c = cs->buckets[calls_bucket(id)]; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static void leg_clear(struct sipedge_leg *l)
{
    if (l->ring_timer)
        su_timer_destroy(l->ring_timer);
    l->ring_timer = NULL;
    free(l->sdp);
    l->sdp = NULL;
}

static void call_free(struct sipedge_call *c)
{
    leg_clear(&c->caller);
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        leg_clear(&c->agents[i]);
    free(c);
}

/* Frees c once it is over and none of its handles is alive. */
static void call_maybe_free(struct sipedge_call *c)
{
    struct sipedge_call **pp;

    if (c->state != CALL_ENDED || c->caller.nh)
        return;
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (c->agents[i].nh)
            return;
    for (pp = &c->cs->buckets[calls_bucket(c->id)]; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    call_free(c);
}

sipedge_calls *sipedge_calls_new(const struct sipedge_calls_config *c)
{
    sipedge_calls *cs = calloc(1, sizeof(*cs));

    if (cs)
        cs->c = *c;
    return cs;
}

void sipedge_calls_free(sipedge_calls *cs)
{
    if (!cs)
        return;
    for (size_t b = 0; b < CALLS_BUCKETS; b++) {
        while (cs->buckets[b]) {
            struct sipedge_call *c = cs->buckets[b];
            cs->buckets[b] = c->next;
            call_free(c);
        }
    }
    free(cs);
}

size_t sipedge_calls_active(const sipedge_calls *cs)
{
    return cs->active;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static struct sipedge_ix call_ix(const struct sipedge_call *c)
{
    return (struct sipedge_ix){
        .id = c->id, .tenant = c->tenant, .queue_id = c->queue_id, .created_ms = c->created_ms};
}

static char *sdp_of(const sip_t *sip)
{
    char *s;

    if (!sip || !sip->sip_payload || !sip->sip_payload->pl_data || !sip->sip_payload->pl_len)
        return NULL;
    s = malloc(sip->sip_payload->pl_len + 1);
    if (s) {
        memcpy(s, sip->sip_payload->pl_data, sip->sip_payload->pl_len);
        s[sip->sip_payload->pl_len] = '\0';
    }
    return s;
}

static bool did_valid(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    if (*s == '+')
        s++;
    for (; *s; s++, n++)
        if (!isdigit((unsigned char)*s))
            return false;
    return n >= 2 && n <= 20;
}

/* Caller-visible printable user part ("anonymous" when none). */
static void copy_user(char *out, size_t cap, const sip_from_t *f)
{
    const char *u = f && f->a_url->url_user ? f->a_url->url_user : "anonymous";
    size_t i;

    for (i = 0; u[i] && i + 1 < cap; i++)
        out[i] = isprint((unsigned char)u[i]) && u[i] != '"' ? u[i] : '_';
    out[i] = '\0';
}

static int64_t since(int64_t mono_ms)
{
    int64_t d = cc_time_mono_ms() - mono_ms;
    return d < 0 ? 0 : d;
}

static struct sipedge_leg *leg_ringing(struct sipedge_call *c)
{
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (c->agents[i].nh && !c->agents[i].up && !c->agents[i].cancelled && !c->agents[i].failed)
            return &c->agents[i];
    return NULL;
}

static void leg_cancel(struct sipedge_leg *l)
{
    if (l->ring_timer)
        su_timer_reset(l->ring_timer);
    if (!l->nh || l->cancelled || l->failed)
        return;
    l->cancelled = true;
    if (l->up)
        nua_bye(l->nh, TAG_END());
    else
        nua_cancel(l->nh, TAG_END());
}

/* Moves c to ENDED: releases every leg that is still up or ringing except `except`. */
static void call_finish(struct sipedge_call *c, const struct sipedge_leg *except)
{
    if (c->state == CALL_ENDED)
        return;
    c->state = CALL_ENDED;
    c->cs->active--;
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (&c->agents[i] != except)
            leg_cancel(&c->agents[i]);
}

static const char *call_agent(const struct sipedge_call *c)
{
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (c->agents[i].up)
            return c->agents[i].agent_id;
    return NULL;
}

/* BYE seen from one side of an answered call: BYE the other, ended. */
static void call_hangup(struct sipedge_call *c, struct sipedge_leg *from, const char *ended_by)
{
    struct sipedge_ix ix = call_ix(c);
    int64_t talk = since(c->answered_mono_ms);

    if (c->state != CALL_ANSWERED)
        return;
    CC_INFO_CTX(&c->log, "call ended by the %s after %lld ms of talk", ended_by, (long long)talk);
    sipedge_bus_ended(c->cs->c.pub, &ix, ended_by, talk, 0, since(c->created_mono_ms),
                      call_agent(c), "normal", 0);
    if (!from->is_caller && c->caller.nh && !c->caller.cancelled) {
        c->caller.cancelled = true;
        nua_bye(c->caller.nh, TAG_END());
    }
    call_finish(c, from);
}

/* The caller gave up before an answer (CANCEL, or its transaction died). */
static void call_abandon(struct sipedge_call *c)
{
    struct sipedge_ix ix = call_ix(c);
    struct sipedge_leg *ringing = leg_ringing(c);
    int64_t wait = since(c->created_mono_ms);

    if (c->state != CALL_QUEUED)
        return;
    CC_INFO_CTX(&c->log, "caller abandoned after %lld ms", (long long)wait);
    sipedge_bus_abandoned(c->cs->c.pub, &ix, wait, ringing ? ringing->agent_id : NULL);
    sipedge_bus_ended(c->cs->c.pub, &ix, "customer", 0, 0, wait, ringing ? ringing->agent_id : NULL,
                      "abandoned", 487);
    c->caller.cancelled = true;
    call_finish(c, NULL);
}

/* Final error to a caller still waiting, then ended (reason, status). */
static void call_reject(struct sipedge_call *c, int status, const char *reason,
                        const char *ended_reason)
{
    struct sipedge_ix ix = call_ix(c);
    char hdr[200];

    if (c->state != CALL_QUEUED)
        return;
    CC_INFO_CTX(&c->log, "call rejected with %d: %s", status, reason);
    snprintf(hdr, sizeof(hdr), "SIP;cause=%d;text=\"%s\"", status, reason);
    if (c->caller.nh)
        nua_respond(c->caller.nh, status, sip_status_phrase(status), SIPTAG_REASON_STR(hdr),
                    TAG_END());
    c->caller.cancelled = true;
    sipedge_bus_ended(c->cs->c.pub, &ix, "system", 0, 0, since(c->created_mono_ms), NULL,
                      ended_reason, status);
    call_finish(c, NULL);
}

/* ---- inbound INVITE --------------------------------------------------------------------- */

static void call_host(char *out, size_t cap, const sip_t *sip)
{
    const url_t *u = sip->sip_request ? sip->sip_request->rq_url : NULL;

    if (u && u->url_host && u->url_port)
        snprintf(out, cap, "%s:%s", u->url_host, u->url_port);
    else
        snprintf(out, cap, "%s", u && u->url_host ? u->url_host : "sip-edge.invalid");
}

static int call_start(sipedge_calls *cs, nua_handle_t *nh, const sip_t *sip,
                      const struct sipedge_did *did)
{
    struct sipedge_call *c = calloc(1, sizeof(*c));
    struct sipedge_ix ix;
    size_t b;

    if (!c || cc_uuid_v7(c->id) < 0) {
        free(c);
        return -ENOMEM;
    }
    c->cs = cs;
    c->log.interaction_id = c->id;
    snprintf(c->tenant, sizeof(c->tenant), "%s", did->tenant);
    snprintf(c->queue_id, sizeof(c->queue_id), "%s", did->queue_id);
    snprintf(c->to, sizeof(c->to), "%s", did->number);
    copy_user(c->from, sizeof(c->from), sip->sip_from);
    call_host(c->host, sizeof(c->host), sip);
    c->priority = did->priority;
    c->created_ms = cc_time_now_ms();
    c->created_mono_ms = cc_time_mono_ms();
    c->caller.call = c;
    c->caller.is_caller = true;
    c->caller.nh = nh;
    c->caller.sdp = sdp_of(sip);
    b = calls_bucket(c->id);
    c->next = cs->buckets[b];
    cs->buckets[b] = c;
    cs->active++;
    nua_handle_bind(nh, &c->caller);
    nua_respond(nh, SIP_180_RINGING, TAG_END());
    CC_INFO_CTX(&c->log, "call from '%s' to '%s' queued in '%s' of tenant '%s'", c->from, c->to,
                c->queue_id, c->tenant);
    ix = call_ix(c);
    sipedge_bus_created(cs->c.pub, &ix, c->from, c->to, c->priority);
    sipedge_bus_route(cs->c.pub, &ix, c->priority);
    return 0;
}

void sipedge_calls_on_invite(sipedge_calls *cs, nua_handle_t *nh, const sip_t *sip)
{
    const char *user = sip && sip->sip_request ? sip->sip_request->rq_url->url_user : NULL;
    struct sipedge_did did;
    char retry[24];
    int rc;

    if (cs->active >= (size_t)cs->c.cfg->max_calls) {
        CC_WARN("over capacity: %zu calls up, refusing a call to '%s' with 503", cs->active,
                user ? user : "");
        snprintf(retry, sizeof(retry), "%ld", cs->c.cfg->retry_after_s);
        nua_respond(nh, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_RETRY_AFTER_STR(retry), TAG_END());
        return;
    }
    if (!did_valid(user)) {
        CC_INFO("not a number: '%s', answering 404", user ? user : "");
        nua_respond(nh, SIP_404_NOT_FOUND, TAG_END());
        return;
    }
    rc = sipedge_store_did_get(cs->c.store, user, &did);
    if (rc == -ENOENT) {
        CC_INFO("unknown number '%s', answering 404", user);
        nua_respond(nh, SIP_404_NOT_FOUND, TAG_END());
        return;
    }
    if (rc < 0) {
        CC_ERROR("cannot look number '%s' up: %s; answering 503", user, strerror(-rc));
        nua_respond(nh, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_RETRY_AFTER_STR("5"), TAG_END());
        return;
    }
    if (call_start(cs, nh, sip, &did) < 0)
        nua_respond(nh, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
}

/* ---- agent legs ------------------------------------------------------------------------- */

static void leg_ring_timeout(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    struct sipedge_leg *l = arg;
    struct sipedge_call *c = l->call;
    struct sipedge_ix ix = call_ix(c);

    (void)magic;
    (void)t;
    if (!l->nh || l->up || l->cancelled || l->failed || c->state != CALL_QUEUED)
        return;
    CC_INFO_CTX(&c->log, "agent '%s' did not answer within the ring timeout", l->agent_id);
    sipedge_bus_no_answer(c->cs->c.pub, &ix, l->agent_id, "timeout", since(l->invited_mono_ms), 408,
                          l->attempt);
    leg_cancel(l);
}

/* A new offer of a one-at-a-time strategy while an older one still rings: the router's ring
 * timer ran out first (it starts earlier than ours), so that phone gets a CANCEL and the offer
 * its no_answer (timeout). */
static void call_supersede(struct sipedge_call *c)
{
    struct sipedge_leg *l;

    while ((l = leg_ringing(c)) != NULL) {
        struct sipedge_ix ix = call_ix(c);

        CC_INFO_CTX(&c->log, "agent '%s' did not answer before the router re-offered the call",
                    l->agent_id);
        sipedge_bus_no_answer(c->cs->c.pub, &ix, l->agent_id, "timeout", since(l->invited_mono_ms),
                              408, l->attempt);
        leg_cancel(l);
    }
}

static void call_offer(struct sipedge_call *c, const struct sipedge_decision *d)
{
    sipedge_calls *cs = c->cs;
    struct sipedge_leg *l = NULL;
    char from[2 * CALL_ADDR_MAX + 16], xhdr[96];
    int timeout_s =
        d->ring_timeout_s > 0 ? d->ring_timeout_s : (int)cs->c.cfg->default_ring_timeout_s;

    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++) {
        struct sipedge_leg *a = &c->agents[i];
        if (a->nh && !a->cancelled && !a->failed && strcmp(a->agent_id, d->agent_id) == 0)
            return; /* a redelivered decision: that phone rings already */
        if (!l && !a->nh && !a->ring_timer)
            l = a;
    }
    if (!l) {
        CC_WARN_CTX(&c->log, "too many agent legs: not ringing '%s'", d->agent_id);
        return;
    }
    if (strcmp(d->strategy, "ring_all") != 0 && strcmp(d->strategy, "ring_progressive") != 0)
        call_supersede(c); /* one phone at a time: the router gave up on the previous offer */
    leg_clear(l);
    memset(l, 0, sizeof(*l));
    l->call = c;
    l->attempt = ++c->attempts;
    snprintf(l->agent_id, sizeof(l->agent_id), "%s", d->agent_id);
    snprintf(from, sizeof(from), "<sip:%s@%s>", c->from, c->host);
    snprintf(xhdr, sizeof(xhdr), "X-CC-Interaction-Id: %s", c->id);
    l->nh = nua_handle(cs->c.nua, l, NUTAG_URL(d->contact), SIPTAG_TO_STR(d->contact),
                       SIPTAG_FROM_STR(from), TAG_END());
    if (!l->nh) {
        CC_ERROR_CTX(&c->log, "cannot make a handle for agent '%s' at '%s'", d->agent_id,
                     d->contact);
        return;
    }
    l->invited_mono_ms = cc_time_mono_ms();
    l->ring_timer = su_timer_create(su_root_task(cs->c.root), timeout_s * 1000);
    if (l->ring_timer)
        su_timer_set(l->ring_timer, leg_ring_timeout, l);
    CC_INFO_CTX(&c->log, "ringing agent '%s' at '%s' for %d s (offer %d)", d->agent_id, d->contact,
                timeout_s, l->attempt);
    nua_invite(l->nh, TAG_IF(c->caller.sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
               TAG_IF(c->caller.sdp, SIPTAG_PAYLOAD_STR(c->caller.sdp)), SIPTAG_HEADER_STR(xhdr),
               TAG_END());
}

static void call_answered(struct sipedge_call *c, struct sipedge_leg *l, const sip_t *sip)
{
    struct sipedge_ix ix = call_ix(c);

    if (l->ring_timer)
        su_timer_reset(l->ring_timer);
    l->up = true;
    free(l->sdp);
    l->sdp = sdp_of(sip);
    if (c->state != CALL_QUEUED || l->cancelled || !c->caller.nh) {
        /* answered too late (caller gone, withdrawn, ring timeout): release it */
        l->cancelled = true;
        nua_bye(l->nh, TAG_END());
        return;
    }
    c->state = CALL_ANSWERED;
    c->answered_mono_ms = cc_time_mono_ms();
    c->caller.up = true;
    nua_respond(c->caller.nh, SIP_200_OK,
                TAG_IF(l->sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                TAG_IF(l->sdp, SIPTAG_PAYLOAD_STR(l->sdp)), TAG_END());
    CC_INFO_CTX(&c->log, "agent '%s' answered after %lld ms of ringing", l->agent_id,
                (long long)since(l->invited_mono_ms));
    sipedge_bus_answered(c->cs->c.pub, &ix, l->agent_id, since(c->created_mono_ms),
                         since(l->invited_mono_ms));
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (&c->agents[i] != l)
            leg_cancel(&c->agents[i]);
}

static const char *fail_reason(int status)
{
    switch (status) {
    case 486:
    case 600:
        return "busy";
    case 603:
        return "declined";
    case 404:
    case 408:
    case 410:
    case 503:
        return "unreachable";
    default:
        return "failed";
    }
}

static void leg_failed(struct sipedge_call *c, struct sipedge_leg *l, int status)
{
    struct sipedge_ix ix = call_ix(c);
    bool report = !l->cancelled && !l->failed && c->state == CALL_QUEUED;

    l->failed = true;
    if (l->ring_timer)
        su_timer_reset(l->ring_timer);
    if (!report)
        return;
    CC_INFO_CTX(&c->log, "agent '%s' did not take the call: %d (%s)", l->agent_id, status,
                fail_reason(status));
    sipedge_bus_no_answer(c->cs->c.pub, &ix, l->agent_id, fail_reason(status),
                          since(l->invited_mono_ms), status, l->attempt);
}

/* ---- events ----------------------------------------------------------------------------- */

static void leg_terminated(struct sipedge_call *c, struct sipedge_leg *l)
{
    if (l->is_caller && c->state == CALL_QUEUED)
        call_abandon(c); /* its transaction ended without a CANCEL we saw */
    else if (l->is_caller && c->state == CALL_ANSWERED)
        call_hangup(c, l, "customer");
    else if (!l->is_caller && l->up && c->state == CALL_ANSWERED)
        call_hangup(c, l, "agent");
    else if (!l->is_caller && !l->up && !l->failed)
        leg_failed(c, l, 500);
    if (l->ring_timer) {
        su_timer_destroy(l->ring_timer);
        l->ring_timer = NULL;
    }
    nua_handle_bind(l->nh, NULL);
    nua_handle_destroy(l->nh);
    l->nh = NULL;
    call_maybe_free(c);
}

/* A re-INVITE (hold, resume, session refresh) on one leg: answered with the other side's SDP
 * until the media relay exists (held/resumed events come with it). */
static void leg_reinvite(struct sipedge_call *c, struct sipedge_leg *l, nua_handle_t *nh)
{
    const char *sdp = NULL;

    if (l->is_caller) {
        for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
            if (c->agents[i].up)
                sdp = c->agents[i].sdp;
    } else {
        sdp = c->caller.sdp;
    }
    nua_respond(nh, SIP_200_OK, TAG_IF(sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                TAG_IF(sdp, SIPTAG_PAYLOAD_STR(sdp)), TAG_END());
}

void sipedge_calls_on_event(sipedge_calls *cs, nua_event_t event, int status, const char *phrase,
                            nua_handle_t *nh, void *magic, const sip_t *sip, tagi_t tags[])
{
    struct sipedge_leg *l = magic;
    struct sipedge_call *c = l->call;
    int state = nua_callstate_init;

    (void)cs;
    (void)phrase;
    switch (event) {
    case nua_i_invite: /* re-INVITE within the dialog */
        leg_reinvite(c, l, nh);
        break;
    case nua_i_cancel:
        if (l->is_caller)
            call_abandon(c);
        break;
    case nua_i_bye:
        if (c->state == CALL_ANSWERED) {
            if (!l->is_caller)
                l->cancelled = true; /* no BYE back */
            else
                c->caller.cancelled = true;
            call_hangup(c, l, l->is_caller ? "customer" : "agent");
        }
        break;
    case nua_r_invite:
        if (l->is_caller)
            break;
        if (status >= 200 && status < 300)
            call_answered(c, l, sip);
        else if (status >= 300)
            leg_failed(c, l, status);
        break;
    case nua_i_state:
        tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
        if (state == nua_callstate_terminated)
            leg_terminated(c, l);
        break;
    default:
        break;
    }
}

/* ---- decisions -------------------------------------------------------------------------- */

void sipedge_calls_on_decision(sipedge_calls *cs, const struct sipedge_decision *d)
{
    struct sipedge_call *c = calls_find(cs, d->interaction_id);

    if (!c || strcmp(c->tenant, d->tenant) != 0)
        return; /* another instance's call, or one that is over */
    switch (d->kind) {
    case SIPEDGE_DECISION_ASSIGNED:
        if (c->state == CALL_QUEUED)
            call_offer(c, d);
        else
            CC_INFO_CTX(&c->log, "assigned to agent '%s' after the call was %s: ignored",
                        d->agent_id, c->state == CALL_ANSWERED ? "answered" : "over");
        break;
    case SIPEDGE_DECISION_WITHDRAWN:
        for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++) {
            struct sipedge_leg *l = &c->agents[i];
            if (l->nh && !l->up && strcmp(l->agent_id, d->agent_id) == 0) {
                CC_INFO_CTX(&c->log, "offer to agent '%s' withdrawn (%s)", l->agent_id, d->reason);
                leg_cancel(l);
            }
        }
        break;
    case SIPEDGE_DECISION_REJECTED:
        call_reject(c, d->sip_status, d->reason, "rejected");
        break;
    case SIPEDGE_DECISION_OVERFLOWED:
        if (d->queue_id[0]) {
            CC_INFO_CTX(&c->log, "overflowed from '%s' to '%s'", c->queue_id, d->queue_id);
            snprintf(c->queue_id, sizeof(c->queue_id), "%s", d->queue_id);
        }
        break;
    }
}

void sipedge_calls_end_all(sipedge_calls *cs)
{
    for (size_t b = 0; b < CALLS_BUCKETS; b++) {
        for (struct sipedge_call *c = cs->buckets[b]; c; c = c->next) {
            struct sipedge_ix ix = call_ix(c);

            if (c->state == CALL_QUEUED) {
                call_reject(c, 503, "service shutting down", "failed");
            } else if (c->state == CALL_ANSWERED) {
                sipedge_bus_ended(cs->c.pub, &ix, "system", since(c->answered_mono_ms), 0,
                                  since(c->created_mono_ms), call_agent(c), "failed", 0);
                if (c->caller.nh && !c->caller.cancelled) {
                    c->caller.cancelled = true;
                    nua_bye(c->caller.nh, TAG_END());
                }
                call_finish(c, NULL);
            }
        }
    }
}
