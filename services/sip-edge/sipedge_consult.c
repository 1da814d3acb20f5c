/* sipedge_consult: consultation calls between agents and attended transfer (see
 * sipedge_call_int.h; the dialling plan and the flow are in DESIGN.md).
 *
 * A consultation is a call object like any other (consult = true) whose caller leg is the
 * consulting agent's phone (UAS side of sip-edge) and whose agent leg rings the consulted agent's
 * registered contact directly, without the router. REFER with Replaces naming that consultation
 * on the consulting agent's leg of a customer call moves the consulted agent's leg into the
 * customer's call, re-INVITEs both sides with each other's SDP and releases the consulting agent's
 * two legs. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include "cc_log.h"
#include "cc_time.h"
#include "sipedge_call_int.h"
#include "sipedge_registrar.h"
#include "sipedge_sdp.h"

/* The customer call agent_id of tenant is connected to, or NULL. */
static struct sipedge_call *consult_parent(sipedge_calls *cs, const char *tenant,
                                           const char *agent_id)
{
    for (size_t b = 0; b < SIPEDGE_CALLS_BUCKETS; b++)
        for (struct sipedge_call *c = cs->buckets[b]; c; c = c->next) {
            const char *a = c->state == SIPEDGE_CALL_ANSWERED ? sipedge_call_agent(c) : NULL;

            if (!c->consult && a && strcmp(a, agent_id) == 0 && strcmp(c->tenant, tenant) == 0)
                return c;
        }
    return NULL;
}

/* The agent the Request-URI user names: "agent-<id>", else a SIP user of the caller's domain
 * (same tenant). 0, -ENOENT, or another negative code from the store. */
static int consult_target(sipedge_calls *cs, const struct sipedge_credential *me, const char *user,
                          char *agent_id, size_t cap)
{
    struct sipedge_credential other;
    int rc;

    if (strncmp(user, "agent-", 6) == 0 && user[6]) {
        snprintf(agent_id, cap, "%s", user + 6);
        return 0;
    }
    rc = sipedge_store_credential_get(cs->c.store, me->domain, user, &other);
    if (rc < 0)
        return rc;
    if (strcmp(other.tenant, me->tenant) != 0)
        return -ENOENT;
    snprintf(agent_id, cap, "%s", other.agent_id);
    return 0;
}

/* The newest registered contact of agent_id. 0, -ENOENT (not registered) or an error. */
static int consult_contact(sipedge_calls *cs, const char *tenant, const char *agent_id, char *out,
                           size_t cap)
{
    struct sipedge_binding *b = NULL;
    size_t n = 0;
    int rc = sipedge_store_binding_list(cs->c.store, tenant, agent_id, cc_time_now_ms(), NULL, NULL,
                                        NULL, 1, &b, &n);

    if (rc == 0 && n == 0)
        rc = -ENOENT;
    if (rc == 0)
        snprintf(out, cap, "%s", b[0].contact);
    free(b);
    return rc;
}

void sipedge_call_consult_invite(sipedge_calls *cs, nua_handle_t *nh, const sip_t *sip)
{
    const char *user = sip->sip_request->rq_url->url_user;
    struct sipedge_decision d = {.kind = SIPEDGE_DECISION_ASSIGNED};
    struct sipedge_credential me;
    struct sipedge_call *c, *parent;
    struct sipedge_ix ix;
    int rc;

    if (!cs->c.reg || !sipedge_registrar_authenticate(cs->c.reg, cs->c.nua, nh, sip, &me))
        return; /* challenged or refused */
    rc = consult_target(cs, &me, user, d.agent_id, sizeof(d.agent_id));
    if (rc == 0 && strcmp(d.agent_id, me.agent_id) == 0)
        rc = -ENOENT;
    if (rc == 0)
        rc = consult_contact(cs, me.tenant, d.agent_id, d.contact, sizeof(d.contact));
    if (rc < 0) {
        CC_INFO_CTX(&(struct cc_log_ctx){.agent_id = me.agent_id}, "agent cannot consult '%s': %s",
                    user, rc == -ENOENT ? "no such registered agent" : strerror(-rc));
        if (rc == -ENOENT)
            nua_respond(nh, SIP_404_NOT_FOUND, TAG_END());
        else
            nua_respond(nh, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_RETRY_AFTER_STR("5"), TAG_END());
        return;
    }
    c = sipedge_call_new(cs, NULL, nh);
    if (!c) {
        nua_respond(nh, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
        return;
    }
    parent = consult_parent(cs, me.tenant, me.agent_id);
    c->consult = true;
    snprintf(c->tenant, sizeof(c->tenant), "%s", me.tenant);
    snprintf(c->queue_id, sizeof(c->queue_id), "%s", parent ? parent->queue_id : "consult");
    snprintf(c->parent_id, sizeof(c->parent_id), "%s", parent ? parent->id : "");
    snprintf(c->from, sizeof(c->from), "%s", me.username);
    snprintf(c->to, sizeof(c->to), "%s", user);
    snprintf(c->caller_agent_id, sizeof(c->caller_agent_id), "%s", me.agent_id);
    snprintf(c->caller_call_id, sizeof(c->caller_call_id), "%s",
             sip->sip_call_id ? sip->sip_call_id->i_id : "");
    snprintf(c->caller_tag, sizeof(c->caller_tag), "%s",
             sip->sip_from->a_tag ? sip->sip_from->a_tag : "");
    sipedge_call_host(c->host, sizeof(c->host), sip);
    c->caller.sdp = sipedge_sdp_of(sip);
    snprintf(c->caller.agent_id, sizeof(c->caller.agent_id), "%s", me.agent_id);
    nua_respond(nh, SIP_180_RINGING, TAG_END());
    sipedge_call_early_start(c);
    CC_INFO_CTX(&c->log, "agent '%s' consults agent '%s'%s%s", me.agent_id, d.agent_id,
                parent ? " about call " : "", parent ? parent->id : "");
    ix = sipedge_call_ix(c);
    sipedge_bus_created_consult(cs->c.pub, &ix, c->from, c->to, c->parent_id, me.agent_id);
    sipedge_call_journal(c);
    snprintf(d.interaction_id, sizeof(d.interaction_id), "%s", c->id);
    snprintf(d.tenant, sizeof(d.tenant), "%s", c->tenant);
    sipedge_call_offer(c, &d);
}

/* The consultation of agent agent_id (tenant) whose caller dialog is call_id with one of the
 * tags being the agent's own, or NULL. */
static struct sipedge_call *consult_find(sipedge_calls *cs, const char *tenant,
                                         const char *agent_id, const char *call_id,
                                         const char *tag1, const char *tag2)
{
    for (size_t b = 0; b < SIPEDGE_CALLS_BUCKETS; b++)
        for (struct sipedge_call *k = cs->buckets[b]; k; k = k->next)
            if (k->consult && k->state != SIPEDGE_CALL_ENDED &&
                strcmp(k->caller_call_id, call_id) == 0 && strcmp(k->tenant, tenant) == 0 &&
                strcmp(k->caller_agent_id, agent_id) == 0 &&
                (strcmp(k->caller_tag, tag1) == 0 || strcmp(k->caller_tag, tag2) == 0))
                return k;
    return NULL;
}

/* Moves leg b of consultation k into a free agent slot of c (handle, SDP state and all). */
static struct sipedge_leg *consult_move_leg(struct sipedge_call *c, struct sipedge_call *k,
                                            struct sipedge_leg *b)
{
    struct sipedge_leg *slot = NULL;

    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS && !slot; i++)
        if (!c->agents[i].nh && !c->agents[i].ring_timer)
            slot = &c->agents[i];
    if (!slot)
        return NULL;
    if (b->ring_timer) /* its callback argument is the old slot */
        su_timer_destroy(b->ring_timer);
    b->ring_timer = NULL;
    free(slot->sdp);
    sipedge_sdp_out_clear(&slot->out);
    *slot = *b;
    slot->call = c;
    nua_handle_bind(slot->nh, slot);
    memset(b, 0, sizeof(*b));
    b->call = k;
    return slot;
}

int sipedge_call_attended_transfer(struct sipedge_call *c, struct sipedge_leg *a,
                                   const char *call_id, const char *to_tag, const char *from_tag)
{
    struct sipedge_call *k;
    struct sipedge_leg *b, *slot;
    struct sipedge_ix ix = sipedge_call_ix(c), kix;
    int64_t talk;
    char *out;

    if (c->state != SIPEDGE_CALL_ANSWERED || a != sipedge_call_agent_leg(c) ||
        c->reinv != SIPEDGE_REINV_NONE)
        return -EBUSY;
    k = consult_find(c->cs, c->tenant, a->agent_id, call_id, to_tag, from_tag);
    if (!k)
        return -ENOENT;
    b = sipedge_call_agent_leg(k);
    if (k->state != SIPEDGE_CALL_ANSWERED || !b || k->reinv != SIPEDGE_REINV_NONE)
        return -EBUSY;
    slot = consult_move_leg(c, k, b);
    if (!slot)
        return -EBUSY;
    talk = sipedge_call_since(c->answered_mono_ms);
    sipedge_call_set_resumed(c, a->agent_id, true);
    c->transfers++;
    CC_INFO_CTX(&c->log, "agent '%s' transferred the call to agent '%s' after consultation %s",
                a->agent_id, slot->agent_id, k->id);
    sipedge_bus_transferred(c->cs->c.pub, &ix, "attended", "agent", slot->agent_id, a->agent_id,
                            c->queue_id, talk, c->transfers, k->id);
    c->answered_mono_ms = cc_time_mono_ms(); /* the consulted agent's talk starts */
    a->cancelled = true;
    a->bye_after_notify = true; /* after the NOTIFY (sipedge_call_on_refer) */
    sipedge_call_journal(c);
    snprintf(c->done_consult_id, sizeof(c->done_consult_id), "%s", k->id);
    /* bridge: each side gets the other's last SDP */
    sipedge_call_reinvite_caller(c, SIPEDGE_REINV_BRIDGE, slot->sdp, NULL);
    slot->own_reinv = true;
    out = sipedge_sdp_for_leg(&slot->out, c->caller.sdp, NULL);
    nua_invite(slot->nh, TAG_IF(out, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
               TAG_IF(out, SIPTAG_PAYLOAD_STR(out)), TAG_END());
    free(out);
    /* the consultation is over: its agent leg lives on in c */
    kix = sipedge_call_ix(k);
    sipedge_bus_ended(k->cs->c.pub, &kix, "agent", sipedge_call_since(k->answered_mono_ms),
                      sipedge_call_hold_ms(k), sipedge_call_since(k->created_mono_ms),
                      slot->agent_id, "transferred", 0);
    k->caller.cancelled = true; /* BYE'd by sipedge_call_consult_release */
    sipedge_call_finish(k, NULL);
    return 0;
}

void sipedge_call_consult_release(struct sipedge_call *c)
{
    struct sipedge_call *k;

    if (!c->done_consult_id[0])
        return;
    k = sipedge_call_find(c->cs, c->done_consult_id);
    c->done_consult_id[0] = '\0';
    if (k && k->caller.nh)
        nua_bye(k->caller.nh, TAG_END());
}
