/* sipedge_callback: queued callbacks (see sipedge_call_int.h; DESIGN.md "Queued callback").
 *
 * A waiting caller asks to be called back (REST): the request is recorded in sipedge.callbacks,
 * cc.routing.callback tells the router to keep the interaction's place, and the caller is
 * released. The call object lives on without legs (CALLBACK). When the router assigns an agent,
 * the agent's phone is rung first (sipedge_call_offer, with a placeholder offer and the
 * customer's number as From); once it answers, the customer is dialled through the trunk with
 * the agent's SDP (DIALING, callback set), and the customer's answer goes back to the agent in a
 * re-INVITE. A restart of the instance restores its recorded callbacks (sipedge_calls_restore_
 * callbacks), so a promised call is not lost with the process.
 *
 * Every instance reads every decision. While a dead instance's callbacks wait to be taken over,
 * an assignment of one reaches no holder; each instance keeps the latest assignment of the
 * callbacks it does not hold (cs->unheld, bounded), and the one that takes a callback over acts
 * on it for the rest of its ring time -- rather than leave the agent reserved, unrung, until the
 * router's ring timeout counts a no-answer against them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/sip_status.h>

#include "cc_log.h"
#include "cc_time.h"
#include "sipedge_call_int.h"
#include "sipedge_sdp.h"

/* Leaves cs->active: a callback without its caller does not hold a call slot. */
static void callback_uncount(struct sipedge_call *c)
{
    if (c->uncounted)
        return;
    c->uncounted = true;
    c->cs->active--;
}

/* c becomes a callback to number (at at_ms, 0 = its turn), with a placeholder as what the agent
 * is offered. */
static int callback_arm(struct sipedge_call *c, const char *number, int64_t at_ms)
{
    char *sdp = sipedge_call_placeholder(c);

    if (!sdp)
        return -ENOMEM;
    free(c->caller.sdp);
    c->caller.sdp = sdp;
    sipedge_sdp_out_clear(&c->caller.out);
    c->callback = true;
    snprintf(c->callback_to, sizeof(c->callback_to), "%s", number);
    c->callback_at_ms = at_ms;
    if (at_ms > 0) /* its wait (answered.wait_ms) counts from the time it asked for */
        c->queued_mono_ms = cc_time_mono_ms() + (at_ms - cc_time_now_ms());
    c->state = SIPEDGE_CALL_CALLBACK;
    callback_uncount(c);
    return 0;
}

int sipedge_call_callback(struct sipedge_call *c, const char *number, int64_t at_ms)
{
    const struct sipedge_calls_config *cc = &c->cs->c;
    struct sipedge_ix ix = sipedge_call_ix(c);
    struct sipedge_callback row = {
        .priority = c->priority, .created_ms = c->created_ms, .at_ms = at_ms};
    const char *reason = "SIP;cause=480;text=\"callback requested\"";
    int rc;

    if (!cc->cfg->trunk_uri || !*cc->cfg->trunk_uri)
        return -ENOTSUP;
    if (c->state != SIPEDGE_CALL_QUEUED || c->consult || c->outbound || c->caller.cancelled ||
        !c->caller.nh || sipedge_call_ringing(c))
        return -EBUSY;
    if (!number || !*number)
        number = c->from; /* the caller's own number */
    if (!sipedge_call_did_valid(number))
        return -EINVAL;
    snprintf(row.interaction_id, sizeof(row.interaction_id), "%s", c->id);
    snprintf(row.tenant, sizeof(row.tenant), "%s", c->tenant);
    snprintf(row.queue_id, sizeof(row.queue_id), "%s", c->queue_id);
    snprintf(row.number, sizeof(row.number), "%.23s", number); /* checked: <= 21 */
    snprintf(row.caller, sizeof(row.caller), "%.256s", c->from);
    snprintf(row.dialled, sizeof(row.dialled), "%.256s", c->to);
    snprintf(row.host, sizeof(row.host), "%.256s", c->host);
    snprintf(row.instance, sizeof(row.instance), "%s", cc->cfg->common.instance_id);
    rc = sipedge_store_callback_put(cc->store, &row);
    if (rc < 0 && rc != -EALREADY) {
        CC_ERROR_CTX(&c->log, "cannot record the callback to '%s': %s", number, strerror(-rc));
        return rc == -EINVAL ? -EINVAL : -EIO;
    }
    if (callback_arm(c, number, at_ms) < 0) {
        sipedge_store_callback_delete(cc->store, c->id);
        return -ENOMEM;
    }
    sipedge_bus_callback(cc->pub, &ix, number, at_ms);
    CC_INFO_CTX(&c->log, "caller '%s' will be called back at '%s' (%s in '%s')", c->from, number,
                at_ms > 0 ? "scheduled" : "place kept", c->queue_id);
    c->caller.cancelled = true;
    if (c->caller.up) /* connected to nobody after a transfer */
        nua_bye(c->caller.nh, SIPTAG_REASON_STR(reason), TAG_END());
    else
        nua_respond(c->caller.nh, SIP_480_TEMPORARILY_UNAVAILABLE, SIPTAG_REASON_STR(reason),
                    TAG_END());
    return 0;
}

void sipedge_call_callback_answered(struct sipedge_call *c, struct sipedge_leg *l)
{
    int rc;

    c->state = SIPEDGE_CALL_DIALING;
    c->answered_mono_ms = cc_time_mono_ms();
    c->ring_timeout_s = (int)c->cs->c.cfg->callback_ring_timeout_s;
    sipedge_call_agent_took(c, l, "the callback");
    /* no longer a waiting callback: a restart (or a takeover) must not ring its agent again
     * (the journal reports it ended instead) */
    sipedge_call_callback_forget(c);
    c->callback_forgotten = true;
    /* the caller leg is the customer from now on: a fresh one, dialled by us */
    if (c->caller.nh) { /* the released caller's handle, not yet terminated */
        nua_handle_bind(c->caller.nh, NULL);
        nua_handle_destroy(c->caller.nh);
        c->caller.nh = NULL;
    }
    c->caller.cancelled = c->caller.failed = c->caller.up = false;
    c->caller.auth_tried = false;
    free(c->caller.sdp);
    c->caller.sdp = NULL;
    sipedge_sdp_out_clear(&c->caller.out);
    rc = l->sdp ? sipedge_call_dial(c, c->callback_to, c->to, l->sdp) : -EPROTO;
    if (rc < 0) {
        CC_ERROR_CTX(&c->log, "cannot dial the callback to '%s': %s", c->callback_to,
                     rc == -EPROTO ? "the agent's answer had no SDP" : strerror(-rc));
        sipedge_call_dial_end(c, "system", "failed", 0);
    }
}

void sipedge_call_callback_connected(struct sipedge_call *c, const sip_t *sip)
{
    struct sipedge_leg *a = sipedge_call_agent_leg(c);
    char *sdp;

    c->caller.up = true;
    free(c->caller.sdp);
    c->caller.sdp = sipedge_sdp_of(sip);
    c->state = SIPEDGE_CALL_ANSWERED;
    c->answered_mono_ms = cc_time_mono_ms(); /* the talk starts with the customer */
    sipedge_call_journal(c);
    CC_INFO_CTX(&c->log, "customer '%s' answered the callback after %lld ms", c->callback_to,
                (long long)sipedge_call_since(c->dial_mono_ms));
    if (!a) { /* no agent leg left to bridge to (it ended without a BYE we acted on) */
        struct sipedge_ix ix = sipedge_call_ix(c);

        CC_WARN_CTX(&c->log, "the callback's agent is gone: releasing the customer");
        sipedge_bus_ended(c->cs->c.pub, &ix, "system", 0, 0, sipedge_call_since(c->created_mono_ms),
                          NULL, "failed", 0);
        sipedge_call_leg_cancel(&c->caller);
        sipedge_call_finish(c, NULL);
        return;
    }
    if (!c->caller.sdp)
        return; /* a 200 without SDP: the agent keeps the placeholder's (no audio back) */
    a->own_reinv = true;
    sdp = sipedge_sdp_for_leg(&a->out, c->caller.sdp, NULL);
    nua_invite(a->nh, TAG_IF(sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
               TAG_IF(sdp, SIPTAG_PAYLOAD_STR(sdp)), TAG_END());
    free(sdp);
}

void sipedge_call_callback_agent_gone(struct sipedge_call *c, struct sipedge_leg *l)
{
    struct sipedge_ix ix = sipedge_call_ix(c);

    if (c->state != SIPEDGE_CALL_DIALING)
        return;
    CC_INFO_CTX(&c->log, "agent '%s' hung up while the callback to '%s' rang", l->agent_id,
                c->callback_to);
    l->cancelled = true;
    sipedge_bus_ended(c->cs->c.pub, &ix, "agent", 0, 0, sipedge_call_since(c->created_mono_ms),
                      l->agent_id, "normal", 0);
    sipedge_call_leg_cancel(&c->caller);
    sipedge_call_finish(c, l);
}

void sipedge_call_callback_moved(struct sipedge_call *c)
{
    int rc;

    if (!c->callback || c->state == SIPEDGE_CALL_ENDED)
        return;
    rc = sipedge_store_callback_moved(c->cs->c.store, c->id, c->queue_id);
    if (rc < 0)
        CC_ERROR_CTX(&c->log,
                     "cannot record the callback's new queue '%s': %s (a restart would report "
                     "its events under the old one)",
                     c->queue_id, strerror(-rc));
}

void sipedge_call_callback_forget(struct sipedge_call *c)
{
    int rc;

    if (!c->callback || c->callback_forgotten)
        return;
    rc = sipedge_store_callback_delete(c->cs->c.store, c->id);
    if (rc < 0)
        CC_ERROR_CTX(&c->log,
                     "cannot delete the callback's row: %s (a restart restores it, and the "
                     "router, which ended the interaction, never assigns it)",
                     strerror(-rc));
}

/* ---- assignments no call here holds -------------------------------------------------------- */

/* Ring time left of a kept assignment at now_ms (<= 0: over). */
static int64_t unheld_left_ms(const struct sipedge_decision *d, int64_t now_ms)
{
    return d->time_ms + (int64_t)d->ring_timeout_s * 1000 - now_ms;
}

static void unheld_clear(sipedge_calls *cs, struct sipedge_decision *d)
{
    if (!d->interaction_id[0])
        return;
    d->interaction_id[0] = '\0';
    cs->unheld_count--;
}

void sipedge_calls_keep_unheld(sipedge_calls *cs, const struct sipedge_decision *d)
{
    bool keep = d->kind == SIPEDGE_DECISION_ASSIGNED && d->callback && d->time_ms > 0 &&
                d->ring_timeout_s > 0;
    int64_t now_ms = cc_time_now_ms();

    if (!keep && cs->unheld_count == 0)
        return; /* the common case: another instance's call, nothing kept */
    if (keep && !cs->unheld) {
        cs->unheld = calloc(SIPEDGE_UNHELD_MAX, sizeof(*cs->unheld));
        if (!cs->unheld)
            return; /* the router's ring timeout redoes it, as without this */
    }
    /* what was kept of this interaction is superseded (or withdrawn); expired ones go too */
    for (size_t i = 0; i < SIPEDGE_UNHELD_MAX && cs->unheld_count > 0; i++) {
        struct sipedge_decision *k = &cs->unheld[i];

        if (!k->interaction_id[0])
            continue;
        if (unheld_left_ms(k, now_ms) <= 0 ||
            (strcmp(k->interaction_id, d->interaction_id) == 0 &&
             strcmp(k->tenant, d->tenant) == 0 &&
             (d->kind != SIPEDGE_DECISION_WITHDRAWN || strcmp(k->agent_id, d->agent_id) == 0)))
            unheld_clear(cs, k);
    }
    if (!keep || unheld_left_ms(d, now_ms) <= 0)
        return;
    unheld_clear(cs, &cs->unheld[cs->unheld_next]); /* the oldest slot, overwritten */
    cs->unheld[cs->unheld_next] = *d;
    cs->unheld_next = (cs->unheld_next + 1) % SIPEDGE_UNHELD_MAX;
    cs->unheld_count++;
}

/* A callback just taken over: the assignment of it that reached no holder meanwhile, if its
 * ring time is not over, rings its agent now for what is left of it. */
static void callback_act_on_unheld(struct sipedge_call *c)
{
    sipedge_calls *cs = c->cs;
    int64_t now_ms = cc_time_now_ms();

    for (size_t i = 0; cs->unheld && cs->unheld_count > 0 && i < SIPEDGE_UNHELD_MAX; i++) {
        struct sipedge_decision d = cs->unheld[i];
        int64_t left = unheld_left_ms(&d, now_ms);

        if (!d.interaction_id[0] || strcmp(d.interaction_id, c->id) != 0 ||
            strcmp(d.tenant, c->tenant) != 0)
            continue;
        unheld_clear(cs, &cs->unheld[i]);
        if (left < 1000)
            return; /* the router's ring timeout is about to redo it */
        d.ring_timeout_s = (int)(left / 1000);
        CC_INFO_CTX(&c->log,
                    "assigned to agent '%s' while no instance held the callback: ringing it for "
                    "the %d s of ring time left",
                    d.agent_id, d.ring_timeout_s);
        sipedge_calls_on_decision(cs, &d);
        return;
    }
}

int sipedge_calls_restore_callbacks(sipedge_calls *cs, const struct sipedge_callback *rows,
                                    size_t n)
{
    int64_t now_ms = cc_time_now_ms(), mono = cc_time_mono_ms();
    int rc = 0, restored = 0;

    for (size_t i = 0; i < n; i++) {
        const struct sipedge_callback *cb = &rows[i];
        struct sipedge_call *c;
        int64_t age = now_ms - cb->created_ms;

        if (sipedge_call_find(cs, cb->interaction_id))
            continue;
        c = sipedge_call_new(cs, cb->interaction_id, NULL);
        if (!c) {
            rc = -ENOMEM;
            break;
        }
        snprintf(c->tenant, sizeof(c->tenant), "%s", cb->tenant);
        snprintf(c->queue_id, sizeof(c->queue_id), "%s", cb->queue_id);
        snprintf(c->from, sizeof(c->from), "%s", cb->caller);
        snprintf(c->to, sizeof(c->to), "%s", cb->dialled);
        snprintf(c->host, sizeof(c->host), "%s", cb->host);
        c->priority = cb->priority;
        c->created_ms = cb->created_ms;
        /* durations (wait, duration_ms) still count from the caller's call */
        c->created_mono_ms = c->queued_mono_ms = mono - (age > 0 ? age : 0);
        c->caller.cancelled = true;
        callback_uncount(c);
        if (callback_arm(c, cb->number, cb->at_ms) < 0) {
            c->state = SIPEDGE_CALL_ENDED;
            sipedge_call_maybe_free(c);
            rc = -ENOMEM;
            break;
        }
        sipedge_call_journal(c);
        CC_INFO_CTX(&c->log, "callback to '%s' restored (waiting in '%s')", cb->number,
                    cb->queue_id);
        restored++;
        callback_act_on_unheld(c);
    }
    return rc < 0 ? rc : restored;
}
