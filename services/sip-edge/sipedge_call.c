/* sipedge_call: the B2BUA call object and its state machine (see sipedge_call.h): the call
 * table, inbound calls, agent legs, endings and routing decisions. Call control lives in
 * sipedge_call_control.c, outbound calls in sipedge_originate.c, consultations in
 * sipedge_consult.c (the shared call object: sipedge_call_int.h). */
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
#include "sipedge_call_int.h"
#include "sipedge_sdp.h"

/* ---- table ------------------------------------------------------------------------------ */

static size_t calls_bucket(const char *id)
{
    uint64_t h = 1469598103934665603ULL;

    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (size_t)(h % SIPEDGE_CALLS_BUCKETS);
}

struct sipedge_call *sipedge_call_find(sipedge_calls *cs, const char *id)
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
    sipedge_sdp_out_clear(&l->out);
}

static void early_unlink(struct sipedge_call *c)
{
    sipedge_calls *cs = c->cs;

    if (!c->early_prev)
        return;
    *c->early_prev = c->early_next;
    if (c->early_next)
        c->early_next->early_prev = c->early_prev;
    else
        cs->early_tail = c->early_prev;
    c->early_next = NULL;
    c->early_prev = NULL;
}

static void early_append(struct sipedge_call *c, int64_t now_ms)
{
    sipedge_calls *cs = c->cs;

    c->early_due_mono_ms = now_ms + cs->c.cfg->progress_s * 1000;
    c->early_next = NULL;
    c->early_prev = cs->early_tail;
    *cs->early_tail = c;
    cs->early_tail = &c->early_next;
}

static void early_arm(sipedge_calls *cs, int64_t now_ms);

/* The head's 180 is due: every caller still waiting gets it again and goes to the tail; a
 * caller no longer waiting (answered, rejected, gone) leaves the list. */
static void early_fire(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    sipedge_calls *cs = arg;
    int64_t now = cc_time_mono_ms();
    struct sipedge_call *c;

    (void)magic;
    (void)t;
    while ((c = cs->early_head) && c->early_due_mono_ms <= now) {
        early_unlink(c);
        if (c->state != SIPEDGE_CALL_QUEUED || c->caller.up || !c->caller.nh || c->caller.failed ||
            c->caller.cancelled)
            continue;
        nua_respond(c->caller.nh, SIP_180_RINGING, TAG_END());
        early_append(c, now);
    }
    early_arm(cs, now);
}

static void early_arm(sipedge_calls *cs, int64_t now_ms)
{
    int64_t wait;

    if (!cs->early_head || !cs->early_timer)
        return;
    wait = cs->early_head->early_due_mono_ms - now_ms;
    if (su_timer_set_interval(cs->early_timer, early_fire, cs, wait > 0 ? (su_duration_t)wait : 1) <
        0)
        CC_WARN("cannot arm the ringing-refresh timer: callers get no 180 refresh");
}

void sipedge_call_early_start(struct sipedge_call *c)
{
    sipedge_calls *cs = c->cs;
    int64_t now = cc_time_mono_ms();
    bool was_empty = cs->early_head == NULL;

    if (c->early_prev)
        return;
    early_append(c, now);
    if (was_empty)
        early_arm(cs, now);
}

static void call_free(struct sipedge_call *c)
{
    early_unlink(c);
    if (c->wait_timer)
        su_timer_destroy(c->wait_timer);
    leg_clear(&c->caller);
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        leg_clear(&c->agents[i]);
    free(c);
}

/* Frees c once it is over and none of its handles is alive. */
void sipedge_call_maybe_free(struct sipedge_call *c)
{
    struct sipedge_call **pp;

    if (c->state != SIPEDGE_CALL_ENDED || c->caller.nh)
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

struct sipedge_call *sipedge_call_new(sipedge_calls *cs, const char *id, nua_handle_t *nh)
{
    struct sipedge_call *c = calloc(1, sizeof(*c));
    size_t b;

    if (!c)
        return NULL;
    if (id) {
        snprintf(c->id, sizeof(c->id), "%s", id);
    } else if (cc_uuid_v7(c->id) < 0) {
        free(c);
        return NULL;
    }
    c->cs = cs;
    c->log.interaction_id = c->id;
    c->state = SIPEDGE_CALL_QUEUED;
    c->created_ms = cc_time_now_ms();
    c->created_mono_ms = cc_time_mono_ms();
    c->queued_mono_ms = c->created_mono_ms;
    c->caller.call = c;
    c->caller.is_caller = true;
    c->caller.nh = nh;
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        c->agents[i].call = c;
    b = calls_bucket(c->id);
    c->next = cs->buckets[b];
    cs->buckets[b] = c;
    cs->active++;
    if (nh)
        nua_handle_bind(nh, &c->caller);
    return c;
}

sipedge_calls *sipedge_calls_new(const struct sipedge_calls_config *c)
{
    sipedge_calls *cs = calloc(1, sizeof(*cs));

    if (!cs)
        return NULL;
    cs->c = *c;
    cs->early_tail = &cs->early_head;
    if (c->root) {
        cs->early_timer = su_timer_create(su_root_task(c->root), 1000);
        if (!cs->early_timer) {
            free(cs);
            return NULL;
        }
    }
    return cs;
}

void sipedge_calls_free(sipedge_calls *cs)
{
    if (!cs)
        return;
    for (size_t b = 0; b < SIPEDGE_CALLS_BUCKETS; b++) {
        while (cs->buckets[b]) {
            struct sipedge_call *c = cs->buckets[b];
            cs->buckets[b] = c->next;
            call_free(c);
        }
    }
    if (cs->early_timer)
        su_timer_destroy(cs->early_timer);
    free(cs->unheld);
    free(cs);
}

size_t sipedge_calls_active(const sipedge_calls *cs)
{
    return cs->active;
}

/* ---- helpers ---------------------------------------------------------------------------- */

struct sipedge_ix sipedge_call_ix(const struct sipedge_call *c)
{
    return (struct sipedge_ix){
        .id = c->id, .tenant = c->tenant, .queue_id = c->queue_id, .created_ms = c->created_ms};
}

bool sipedge_call_did_valid(const char *s)
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

int64_t sipedge_call_since(int64_t mono_ms)
{
    int64_t d = cc_time_mono_ms() - mono_ms;
    return d < 0 ? 0 : d;
}

struct sipedge_leg *sipedge_call_ringing(struct sipedge_call *c)
{
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (c->agents[i].nh && !c->agents[i].up && !c->agents[i].cancelled &&
            !c->agents[i].failed && !c->agents[i].external)
            return &c->agents[i];
    return NULL;
}

void sipedge_call_leg_cancel(struct sipedge_leg *l)
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

void sipedge_call_journal(struct sipedge_call *c)
{
    struct sipedge_journal_entry e = {.created_ms = c->created_ms};
    const char *agent = sipedge_call_agent(c);

    if (!c->cs->c.journal || c->state == SIPEDGE_CALL_ENDED)
        return;
    snprintf(e.interaction_id, sizeof(e.interaction_id), "%s", c->id);
    snprintf(e.tenant, sizeof(e.tenant), "%s", c->tenant);
    snprintf(e.queue_id, sizeof(e.queue_id), "%s", c->queue_id);
    if (agent && c->answered_mono_ms > 0) {
        snprintf(e.agent_id, sizeof(e.agent_id), "%s", agent);
        e.answered_ms = cc_time_now_ms() - sipedge_call_since(c->answered_mono_ms);
    }
    sipedge_journal_put(c->cs->c.journal, &e);
}

/* Moves c to ENDED: releases every leg that is still up or ringing except `except`. */
void sipedge_call_finish(struct sipedge_call *c, const struct sipedge_leg *except)
{
    if (c->state == SIPEDGE_CALL_ENDED)
        return;
    c->state = SIPEDGE_CALL_ENDED;
    if (!c->uncounted)
        c->cs->active--;
    sipedge_journal_del(c->cs->c.journal, c->id);
    sipedge_call_callback_forget(c);
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (&c->agents[i] != except)
            sipedge_call_leg_cancel(&c->agents[i]);
}

/* The agent leg that is connected to the caller (answered, not released), or NULL. */
struct sipedge_leg *sipedge_call_agent_leg(struct sipedge_call *c)
{
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (c->agents[i].nh && c->agents[i].up && !c->agents[i].cancelled)
            return &c->agents[i];
    return NULL;
}

const char *sipedge_call_agent(const struct sipedge_call *c)
{
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (c->agents[i].up && !c->agents[i].cancelled)
            return c->agents[i].agent_id;
    return NULL;
}

/* Hold time so far: the finished holds plus the current one. */
int64_t sipedge_call_hold_ms(const struct sipedge_call *c)
{
    return c->hold_ms + (c->held ? sipedge_call_since(c->held_mono_ms) : 0);
}

void sipedge_call_set_held(struct sipedge_call *c, const char *agent_id, const char *held_by)
{
    struct sipedge_ix ix = sipedge_call_ix(c);

    if (c->held)
        return;
    c->held = true;
    c->held_mono_ms = cc_time_mono_ms();
    CC_INFO_CTX(&c->log, "call on hold (by the %s)", held_by);
    sipedge_bus_held(c->cs->c.pub, &ix, agent_id ? agent_id : "", held_by, ++c->holds);
}

/* Ends the current hold; publishes resumed unless quietly (a transfer ends it too). */
void sipedge_call_set_resumed(struct sipedge_call *c, const char *agent_id, bool quietly)
{
    struct sipedge_ix ix = sipedge_call_ix(c);
    int64_t took;

    if (!c->held)
        return;
    took = sipedge_call_since(c->held_mono_ms);
    c->held = false;
    c->hold_ms += took;
    CC_INFO_CTX(&c->log, "call off hold after %lld ms", (long long)took);
    if (!quietly)
        sipedge_bus_resumed(c->cs->c.pub, &ix, agent_id ? agent_id : "", took, c->holds);
}

/* One side of an answered call is gone (its BYE, or NUA ended the dialog: reason): BYE the
 * other, ended. */
static void call_hangup(struct sipedge_call *c, struct sipedge_leg *from, const char *ended_by,
                        const char *reason)
{
    struct sipedge_ix ix = sipedge_call_ix(c);
    int64_t talk = sipedge_call_since(c->answered_mono_ms);

    if (c->state != SIPEDGE_CALL_ANSWERED)
        return;
    if (c->external_to[0])
        talk = 0; /* talk with the number transferred to is no agent's (transferred.talk_ms) */
    CC_INFO_CTX(&c->log, "call ended by the %s after %lld ms of talk (%s)", ended_by,
                (long long)talk, reason);
    sipedge_bus_ended(c->cs->c.pub, &ix, ended_by, talk, sipedge_call_hold_ms(c),
                      sipedge_call_since(c->created_mono_ms),
                      from->is_caller ? sipedge_call_agent(c) : from->agent_id, reason, 0);
    if (!from->is_caller && c->caller.nh && !c->caller.cancelled) {
        c->caller.cancelled = true;
        nua_bye(c->caller.nh, TAG_END());
    }
    sipedge_call_finish(c, from);
}

/* The caller gave up before an answer (CANCEL, or its transaction died). */
void sipedge_call_abandon(struct sipedge_call *c, const char *ended_by)
{
    struct sipedge_ix ix = sipedge_call_ix(c);
    struct sipedge_leg *ringing = sipedge_call_ringing(c);
    int64_t wait = sipedge_call_since(c->queued_mono_ms);

    if (c->state != SIPEDGE_CALL_QUEUED)
        return;
    CC_INFO_CTX(&c->log, "caller abandoned after %lld ms", (long long)wait);
    sipedge_bus_abandoned(c->cs->c.pub, &ix, wait, ringing ? ringing->agent_id : NULL);
    sipedge_bus_ended(c->cs->c.pub, &ix, ended_by, 0, sipedge_call_hold_ms(c), wait,
                      ringing ? ringing->agent_id : NULL, "abandoned", c->caller.up ? 0 : 487);
    c->caller.cancelled = true;
    sipedge_call_finish(c, NULL);
}

/* Final error to a caller still waiting, then ended (reason, status). */
void sipedge_call_reject(struct sipedge_call *c, int status, const char *reason,
                         const char *ended_by, const char *ended_reason)
{
    struct sipedge_ix ix = sipedge_call_ix(c);
    char hdr[200];

    if (c->state != SIPEDGE_CALL_QUEUED && c->state != SIPEDGE_CALL_CALLBACK)
        return;
    CC_INFO_CTX(&c->log, "call rejected with %d: %s", status, reason);
    snprintf(hdr, sizeof(hdr), "SIP;cause=%d;text=\"%s\"", status, reason);
    /* a callback's caller was released already */
    if (c->state == SIPEDGE_CALL_QUEUED && c->caller.nh && c->caller.up) /* after a transfer */
        nua_bye(c->caller.nh, SIPTAG_REASON_STR(hdr), TAG_END());
    else if (c->state == SIPEDGE_CALL_QUEUED && c->caller.nh)
        nua_respond(c->caller.nh, status, sip_status_phrase(status), SIPTAG_REASON_STR(hdr),
                    TAG_END());
    c->caller.cancelled = true;
    sipedge_bus_ended(c->cs->c.pub, &ix, ended_by, 0, sipedge_call_hold_ms(c),
                      sipedge_call_since(c->created_mono_ms), NULL, ended_reason, status);
    sipedge_call_finish(c, NULL);
}

/* ---- inbound INVITE --------------------------------------------------------------------- */

void sipedge_call_host(char *out, size_t cap, const sip_t *sip)
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
    struct sipedge_call *c = sipedge_call_new(cs, NULL, nh);
    struct sipedge_ix ix;

    if (!c)
        return -ENOMEM;
    snprintf(c->tenant, sizeof(c->tenant), "%s", did->tenant);
    snprintf(c->queue_id, sizeof(c->queue_id), "%s", did->queue_id);
    snprintf(c->to, sizeof(c->to), "%s", did->number);
    copy_user(c->from, sizeof(c->from), sip->sip_from);
    sipedge_call_host(c->host, sizeof(c->host), sip);
    c->priority = did->priority;
    c->caller.sdp = sipedge_sdp_of(sip);
    nua_respond(nh, SIP_180_RINGING, TAG_END());
    sipedge_call_early_start(c);
    CC_INFO_CTX(&c->log, "call from '%s' to '%s' queued in '%s' of tenant '%s'", c->from, c->to,
                c->queue_id, c->tenant);
    ix = sipedge_call_ix(c);
    sipedge_bus_created(cs->c.pub, &ix, c->from, c->to, c->priority);
    sipedge_call_journal(c);
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
    if (user && *user && !sipedge_call_did_valid(user)) {
        sipedge_call_consult_invite(cs, nh, sip); /* an agent dialling a colleague */
        return;
    }
    if (!sipedge_call_did_valid(user)) {
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
    struct sipedge_ix ix = sipedge_call_ix(c);

    (void)magic;
    (void)t;
    if (!l->nh || l->up || l->cancelled || l->failed ||
        (c->state != SIPEDGE_CALL_QUEUED && c->state != SIPEDGE_CALL_CALLBACK))
        return;
    CC_INFO_CTX(&c->log, "agent '%s' did not answer within the ring timeout (+2 s)", l->agent_id);
    sipedge_bus_no_answer(c->cs->c.pub, &ix, l->agent_id, "timeout",
                          sipedge_call_since(l->invited_mono_ms), 408, l->attempt);
    sipedge_call_leg_cancel(l);
    if (c->consult)
        sipedge_call_reject(c, 480, "consulted agent did not answer", "system", "rejected");
}

/* Every phone still ringing for c gets a CANCEL and its offer a no_answer (reason, status). */
static void call_release_ringing(struct sipedge_call *c, const char *why, const char *reason,
                                 int status)
{
    struct sipedge_leg *l;

    while ((l = sipedge_call_ringing(c)) != NULL) {
        struct sipedge_ix ix = sipedge_call_ix(c);

        CC_INFO_CTX(&c->log, "agent '%s' did not answer %s", l->agent_id, why);
        sipedge_bus_no_answer(c->cs->c.pub, &ix, l->agent_id, reason,
                              sipedge_call_since(l->invited_mono_ms), status, l->attempt);
        sipedge_call_leg_cancel(l);
    }
}

/* A new offer of a one-at-a-time strategy while an older one still rings: the router's ring
 * timer ran out first (it starts earlier than ours), so that phone gets a CANCEL and the offer
 * its no_answer (timeout). */
static void call_supersede(struct sipedge_call *c)
{
    call_release_ringing(c, "before the router re-offered the call", "timeout", 408);
}

void sipedge_call_offer(struct sipedge_call *c, const struct sipedge_decision *d)
{
    sipedge_calls *cs = c->cs;
    struct sipedge_leg *l = NULL;
    char from[2 * SIPEDGE_CALL_ADDR_MAX + 16], xhdr[96], *sdp;
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
    if (c->outbound && strncmp(c->to, "sip", 3) == 0) /* the agent sees whom it talks to */
        snprintf(from, sizeof(from), "<%s>", c->to);
    else
        snprintf(from, sizeof(from), "<sip:%s@%s>",
                 c->outbound   ? c->to
                 : c->callback ? c->callback_to
                               : c->from,
                 c->host);
    snprintf(xhdr, sizeof(xhdr), "X-CC-Interaction-Id: %s", c->id);
    l->nh = nua_handle(cs->c.nua, l, NUTAG_URL(d->contact), SIPTAG_TO_STR(d->contact),
                       SIPTAG_FROM_STR(from), TAG_END());
    if (!l->nh) {
        CC_ERROR_CTX(&c->log, "cannot make a handle for agent '%s' at '%s'", d->agent_id,
                     d->contact);
        return;
    }
    l->invited_mono_ms = cc_time_mono_ms();
    /* a backstop: the router's own ring timer withdraws the offer first */
    l->ring_timer = su_timer_create(su_root_task(cs->c.root), (timeout_s + 2) * 1000);
    if (l->ring_timer)
        su_timer_set(l->ring_timer, leg_ring_timeout, l);
    CC_INFO_CTX(&c->log, "ringing agent '%s' at '%s' for %d s (offer %d)", d->agent_id, d->contact,
                timeout_s, l->attempt);
    sdp = sipedge_sdp_for_leg(&l->out, c->caller.sdp, NULL);
    nua_invite(l->nh, TAG_IF(sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
               TAG_IF(sdp, SIPTAG_PAYLOAD_STR(sdp)), SIPTAG_HEADER_STR(xhdr), TAG_END());
    free(sdp);
}

void sipedge_call_agent_took(struct sipedge_call *c, struct sipedge_leg *l, const char *what)
{
    struct sipedge_ix ix = sipedge_call_ix(c);

    CC_INFO_CTX(&c->log, "agent '%s' answered %s after %lld ms of ringing", l->agent_id, what,
                (long long)sipedge_call_since(l->invited_mono_ms));
    sipedge_bus_answered(c->cs->c.pub, &ix, l->agent_id, sipedge_call_since(c->queued_mono_ms),
                         sipedge_call_since(l->invited_mono_ms), l->attempt);
    sipedge_call_journal(c);
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (&c->agents[i] != l)
            sipedge_call_leg_cancel(&c->agents[i]);
}

static void call_answered(struct sipedge_call *c, struct sipedge_leg *l, const sip_t *sip)
{
    char *sdp;

    if (l->ring_timer)
        su_timer_reset(l->ring_timer);
    l->up = true;
    free(l->sdp);
    l->sdp = sipedge_sdp_of(sip);
    if (c->state == SIPEDGE_CALL_CALLBACK && !l->cancelled) {
        sipedge_call_callback_answered(c, l); /* now the customer is dialled */
        return;
    }
    if (c->state != SIPEDGE_CALL_QUEUED || l->cancelled || !c->caller.nh) {
        /* answered too late (caller gone, withdrawn, ring timeout): release it */
        l->cancelled = true;
        nua_bye(l->nh, TAG_END());
        return;
    }
    c->state = SIPEDGE_CALL_ANSWERED;
    c->answered_mono_ms = cc_time_mono_ms();
    if (c->caller.up) { /* after a transfer: the caller's media moves to this agent */
        sipedge_call_reinvite_caller(c, SIPEDGE_REINV_BRIDGE, l->sdp, NULL);
    } else {
        c->caller.up = true;
        sdp = sipedge_sdp_for_leg(&c->caller.out, l->sdp, NULL);
        nua_respond(c->caller.nh, SIP_200_OK,
                    TAG_IF(sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                    TAG_IF(sdp, SIPTAG_PAYLOAD_STR(sdp)), TAG_END());
        free(sdp);
    }
    sipedge_call_agent_took(c, l, "the call");
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
    struct sipedge_ix ix = sipedge_call_ix(c);
    bool report = !l->cancelled && !l->failed &&
                  (c->state == SIPEDGE_CALL_QUEUED || c->state == SIPEDGE_CALL_CALLBACK);

    l->failed = true;
    if (l->ring_timer)
        su_timer_reset(l->ring_timer);
    if (!report)
        return;
    CC_INFO_CTX(&c->log, "agent '%s' did not take the call: %d (%s)", l->agent_id, status,
                fail_reason(status));
    sipedge_bus_no_answer(c->cs->c.pub, &ix, l->agent_id, fail_reason(status),
                          sipedge_call_since(l->invited_mono_ms), status, l->attempt);
    if (c->consult) /* nobody re-offers a consultation: the consulting agent gets the status */
        sipedge_call_reject(c, status == 487 ? 480 : status, "consulted agent did not answer",
                            "system", "rejected");
}

/* ---- events ----------------------------------------------------------------------------- */

static void leg_terminated(struct sipedge_call *c, struct sipedge_leg *l)
{
    if (l->is_caller && c->state == SIPEDGE_CALL_EXTERNAL)
        sipedge_call_external_abandon(c, "system"); /* its dialog ended without a BYE */
    else if (l->external && c->state == SIPEDGE_CALL_EXTERNAL && !l->failed)
        sipedge_call_on_external_answer(c, l, 500, NULL); /* no final answer seen: failed */
    else if (l->is_caller && c->state == SIPEDGE_CALL_DIALING)
        sipedge_call_on_dial_answer(c, 500, NULL); /* no final answer seen: failed */
    else if (l->is_caller && c->state == SIPEDGE_CALL_QUEUED)
        sipedge_call_abandon(c, "customer"); /* its transaction ended without a CANCEL we saw */
    else if (c->callback && c->state == SIPEDGE_CALL_DIALING && l->up && !l->cancelled)
        sipedge_call_callback_agent_gone(c, l); /* no BYE seen while the customer rang */
    else if (c->state == SIPEDGE_CALL_ANSWERED && (l->is_caller || l->up) && !l->cancelled)
        call_hangup(c, l, "system", "session_timeout"); /* no BYE seen: NUA ended the dialog
                                                           (session timer expired, or no answer
                                                           to a refresh) */
    else if (!l->is_caller && !l->up && !l->failed)
        leg_failed(c, l, 500);
    if (l->ring_timer) {
        su_timer_destroy(l->ring_timer);
        l->ring_timer = NULL;
    }
    nua_handle_bind(l->nh, NULL);
    nua_handle_destroy(l->nh);
    l->nh = NULL;
    sipedge_call_maybe_free(c);
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
        sipedge_call_on_reinvite(c, l, nh, sip);
        break;
    case nua_i_refer:
        sipedge_call_on_refer(c, l, nh, sip, tags);
        break;
    case nua_r_notify:
        if (l->bye_after_notify && status >= 200) {
            l->bye_after_notify = false;
            nua_bye(l->nh, TAG_END());
            sipedge_call_consult_release(c); /* attended: the consultation leg too */
        }
        break;
    case nua_i_cancel:
        if (l->is_caller)
            sipedge_call_abandon(c, "customer");
        break;
    case nua_i_bye:
        l->bye_after_notify = false;
        if (c->state == SIPEDGE_CALL_EXTERNAL && l->is_caller) {
            sipedge_call_external_abandon(c, "customer"); /* hung up while the number rang */
        } else if (c->state == SIPEDGE_CALL_QUEUED && l->is_caller && c->caller.up) {
            sipedge_call_abandon(c, "customer"); /* hung up while waiting after a transfer */
        } else if (c->state == SIPEDGE_CALL_DIALING && c->callback && !l->is_caller) {
            sipedge_call_callback_agent_gone(c, l); /* while the customer rang */
        } else if (c->state == SIPEDGE_CALL_ANSWERED) {
            if (!l->is_caller)
                l->cancelled = true; /* no BYE back */
            else
                c->caller.cancelled = true;
            call_hangup(c, l,
                        l->is_caller  ? "customer"
                        : l->external ? "external"
                                      : "agent",
                        "normal");
        }
        break;
    case nua_r_invite:
        if (l->is_caller && c->state == SIPEDGE_CALL_DIALING) {
            sipedge_call_on_dial_answer(c, status, sip);
            break;
        }
        if (l->external && !l->up) {
            sipedge_call_on_external_answer(c, l, status, sip);
            break;
        }
        if (l->own_reinv) {
            l->own_reinv = false;
            if (status >= 200 && status < 300) {
                free(l->sdp);
                l->sdp = sipedge_sdp_of(sip);
            }
            break;
        }
        if (l->is_caller || l->up) {
            sipedge_call_on_reinvite_done(c, l, status, sip);
            break;
        }
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
    struct sipedge_call *c = sipedge_call_find(cs, d->interaction_id);

    if (!c || strcmp(c->tenant, d->tenant) != 0) {
        sipedge_calls_keep_unheld(cs, d); /* another instance's call, or one that is over */
        return;
    }
    switch (d->kind) {
    case SIPEDGE_DECISION_ASSIGNED:
        if (c->state == SIPEDGE_CALL_QUEUED || c->state == SIPEDGE_CALL_CALLBACK)
            sipedge_call_offer(c, d);
        else
            CC_INFO_CTX(&c->log, "assigned to agent '%s' after the call was %s: ignored",
                        d->agent_id, c->state == SIPEDGE_CALL_ANSWERED ? "answered" : "over");
        break;
    case SIPEDGE_DECISION_WITHDRAWN:
        for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++) {
            struct sipedge_leg *l = &c->agents[i];
            if (l->nh && !l->up && strcmp(l->agent_id, d->agent_id) == 0) {
                CC_INFO_CTX(&c->log, "offer to agent '%s' withdrawn (%s)", l->agent_id, d->reason);
                sipedge_call_leg_cancel(l);
            }
        }
        break;
    case SIPEDGE_DECISION_REJECTED:
        sipedge_call_reject(c, d->sip_status, d->reason, "system", "rejected");
        break;
    case SIPEDGE_DECISION_OVERFLOWED:
        if (d->queue_id[0]) {
            CC_INFO_CTX(&c->log, "overflowed from '%s' to '%s'", c->queue_id, d->queue_id);
            snprintf(c->queue_id, sizeof(c->queue_id), "%s", d->queue_id);
            sipedge_call_callback_moved(c);
            sipedge_call_journal(c);
        }
        break;
    }
}

void sipedge_calls_end_all(sipedge_calls *cs)
{
    for (size_t b = 0; b < SIPEDGE_CALLS_BUCKETS; b++) {
        for (struct sipedge_call *c = cs->buckets[b]; c; c = c->next) {
            struct sipedge_ix ix = sipedge_call_ix(c);

            if (c->state == SIPEDGE_CALL_QUEUED) {
                sipedge_call_reject(c, 503, "service shutting down", "system", "failed");
            } else if (c->state == SIPEDGE_CALL_CALLBACK) {
                /* kept (its row restores it at the next start); the router re-offers it */
                call_release_ringing(c, "before sip-edge stopped", "failed", 503);
            } else if (c->state == SIPEDGE_CALL_DIALING) {
                sipedge_call_leg_cancel(&c->caller);
                sipedge_call_dial_end(c, "system", "failed", 503);
            } else if (c->state == SIPEDGE_CALL_EXTERNAL) {
                if (c->caller.nh && !c->caller.cancelled)
                    nua_bye(c->caller.nh, TAG_END());
                sipedge_call_external_abandon(c, "system");
            } else if (c->state == SIPEDGE_CALL_ANSWERED) {
                sipedge_bus_ended(cs->c.pub, &ix, "system", sipedge_call_since(c->answered_mono_ms),
                                  sipedge_call_hold_ms(c), sipedge_call_since(c->created_mono_ms),
                                  sipedge_call_agent(c), "failed", 0);
                if (c->caller.nh && !c->caller.cancelled) {
                    c->caller.cancelled = true;
                    nua_bye(c->caller.nh, TAG_END());
                }
                sipedge_call_finish(c, NULL);
            }
        }
    }
}
