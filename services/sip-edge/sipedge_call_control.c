/* sipedge_call_control: call control -- re-INVITEs passed between the legs, hold and resume,
 * blind transfers (REST and REFER), the REST view and actions of calls (see sipedge_call.h;
 * the shared call object: sipedge_call_int.h). */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag_io.h>

#include "cc_log.h"
#include "cc_time.h"
#include "sipedge_call_int.h"
#include "sipedge_sdp.h"

/* Sends the caller sdp (for the caller's leg) in a re-INVITE of ours; dir as sdp_for_leg. */
void sipedge_call_reinvite_caller(struct sipedge_call *c, enum sipedge_call_reinv what,
                                  const char *sdp, const char *dir)
{
    char *out = sipedge_sdp_for_leg(&c->caller.out, sdp, dir);

    c->reinv = what;
    c->reinv_from = NULL;
    c->reinv_nh = NULL;
    nua_invite(c->caller.nh, TAG_IF(out, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
               TAG_IF(out, SIPTAG_PAYLOAD_STR(out)), TAG_END());
    free(out);
}

/* The leg on the other side of l in a connected call, or NULL. */
static struct sipedge_leg *leg_peer(struct sipedge_call *c, const struct sipedge_leg *l)
{
    if (!l->is_caller)
        return c->caller.nh && !c->caller.cancelled ? &c->caller : NULL;
    return sipedge_call_agent_leg(c);
}

/* A re-INVITE (hold, resume, a new codec, a session refresh) on leg l: an offer goes to the
 * other leg and its answer comes back in the 200; an offerless one (or one with nobody on the
 * other side, after a transfer) is answered at once with the SDP l last got. Hold and resume
 * are read from the offer. */
void sipedge_call_on_reinvite(struct sipedge_call *c, struct sipedge_leg *l, nua_handle_t *nh,
                              const sip_t *sip)
{
    struct sipedge_leg *peer = c->state == SIPEDGE_CALL_ANSWERED ? leg_peer(c, l) : NULL;
    char *offer = sipedge_sdp_of(sip), *out;
    const char *agent;

    if (c->reinv != SIPEDGE_REINV_NONE) {
        free(offer);
        nua_respond(nh, SIP_491_REQUEST_PENDING, TAG_END());
        return;
    }
    if (!offer || !peer) { /* a refresh, or nobody on the other side: what l last got */
        out = l->out.sent;
        nua_respond(nh, SIP_200_OK, TAG_IF(out, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                    TAG_IF(out, SIPTAG_PAYLOAD_STR(out)), TAG_END());
        free(offer);
        return;
    }
    free(l->sdp);
    l->sdp = offer;
    agent = l->is_caller ? peer->agent_id : l->agent_id;
    if (l->external || peer->external) /* no agent on the call any more: nothing to report */
        ;
    else if (sipedge_sdp_is_hold(offer))
        sipedge_call_set_held(c, agent, l->is_caller ? "customer" : "agent");
    else
        sipedge_call_set_resumed(c, agent, false);
    c->reinv = SIPEDGE_REINV_PASS;
    c->reinv_from = l;
    c->reinv_nh = nh;
    out = sipedge_sdp_for_leg(&peer->out, offer, NULL);
    nua_invite(peer->nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
               TAG_IF(out, SIPTAG_PAYLOAD_STR(out)), TAG_END());
    free(out);
}

/* The answer to a re-INVITE sip-edge sent on leg l. */
void sipedge_call_on_reinvite_done(struct sipedge_call *c, struct sipedge_leg *l, int status,
                                   const sip_t *sip)
{
    enum sipedge_call_reinv what = c->reinv;
    struct sipedge_leg *from = c->reinv_from;
    char *answer = status < 300 ? sipedge_sdp_of(sip) : NULL, *out;

    if (status < 200)
        return;
    c->reinv = SIPEDGE_REINV_NONE;
    c->reinv_from = NULL;
    if (answer) {
        free(l->sdp);
        l->sdp = answer;
    }
    if (status >= 300)
        CC_WARN_CTX(&c->log, "re-INVITE of the %s refused: %d", l->is_caller ? "caller" : "agent",
                    status);
    switch (what) {
    case SIPEDGE_REINV_PASS:
        if (!from || !from->nh || !c->reinv_nh)
            break;
        if (status >= 300) {
            nua_respond(c->reinv_nh, status, sip_status_phrase(status), TAG_END());
            break;
        }
        out = sipedge_sdp_for_leg(&from->out, l->sdp, NULL);
        nua_respond(c->reinv_nh, SIP_200_OK,
                    TAG_IF(out, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                    TAG_IF(out, SIPTAG_PAYLOAD_STR(out)), TAG_END());
        free(out);
        break;
    case SIPEDGE_REINV_HOLD:
    case SIPEDGE_REINV_RESUME:
    case SIPEDGE_REINV_BRIDGE:
    case SIPEDGE_REINV_NONE:
        break;
    }
    c->reinv_nh = NULL;
}

/* ---- transfers -------------------------------------------------------------------------- */

/* Blind transfer of a connected call to queue: the agent leg is released (BYE now, or once
 * the REFER's NOTIFY is answered), transferred + requeue are published, and the caller stays
 * up, connected to nobody, until the next assigned agent answers. The transferring agent's
 * talk goes into transferred.talk_ms; ended.talk_ms counts the last agent's only. */
static int call_transfer_queue(struct sipedge_call *c, const char *queue, bool bye_after_notify)
{
    struct sipedge_leg *a = sipedge_call_agent_leg(c);
    struct sipedge_ix ix;
    char from_queue[SIPEDGE_ID_MAX + 1];
    int64_t talk;

    if (c->state != SIPEDGE_CALL_ANSWERED || !a || a->external || c->reinv != SIPEDGE_REINV_NONE)
        return -EBUSY;
    talk = sipedge_call_since(c->answered_mono_ms);
    sipedge_call_set_resumed(c, a->agent_id, true);
    snprintf(from_queue, sizeof(from_queue), "%s", c->queue_id);
    snprintf(c->queue_id, sizeof(c->queue_id), "%s", queue);
    ix = sipedge_call_ix(c);
    c->transfers++;
    CC_INFO_CTX(&c->log, "agent '%s' transferred the call from '%s' to queue '%s'", a->agent_id,
                from_queue, queue);
    sipedge_bus_transferred(c->cs->c.pub, &ix, "blind", "queue", queue, a->agent_id, from_queue,
                            talk, c->transfers, NULL);
    sipedge_bus_requeue(c->cs->c.pub, &ix, "transfer", queue, c->transfers);
    c->state = SIPEDGE_CALL_QUEUED;
    c->queued_mono_ms = cc_time_mono_ms();
    a->cancelled = true;
    if (bye_after_notify)
        a->bye_after_notify = true;
    else
        nua_bye(a->nh, TAG_END());
    return 0;
}

/* Blind transfer of a connected call to a number through the trunk: the agent leg is released
 * (BYE now, or once the REFER's NOTIFY is answered), transferred {blind, number} and
 * cc.routing.cancel {transferred} are published (the router releases the agent to wrap-up:
 * the contact center's part of the call is over), and the customer stays up, connected to
 * nobody, while the number rings (SIPEDGE_CALL_EXTERNAL). Its answer bridges the customer to it;
 * its failure ends the call (sipedge_call_on_external_answer). */
static int call_transfer_number(struct sipedge_call *c, const char *number, bool bye_after_notify)
{
    struct sipedge_leg *a = sipedge_call_agent_leg(c);
    struct sipedge_ix ix = sipedge_call_ix(c);
    int64_t talk;
    int rc;

    if (c->state != SIPEDGE_CALL_ANSWERED || !a || a->external || c->reinv != SIPEDGE_REINV_NONE)
        return -EBUSY;
    if (!c->cs->c.cfg->trunk_uri || !*c->cs->c.cfg->trunk_uri)
        return -ENOTSUP;
    talk = sipedge_call_since(c->answered_mono_ms);
    c->state = SIPEDGE_CALL_EXTERNAL;
    rc = sipedge_call_dial_external(c, number);
    if (rc < 0) {
        c->state = SIPEDGE_CALL_ANSWERED;
        c->external_to[0] = '\0';
        return rc;
    }
    sipedge_call_set_resumed(c, a->agent_id, true);
    c->transfers++;
    CC_INFO_CTX(&c->log, "agent '%s' transferred the call to number '%s'", a->agent_id, number);
    sipedge_bus_transferred(c->cs->c.pub, &ix, "blind", "number", number, a->agent_id, c->queue_id,
                            talk, c->transfers, NULL);
    sipedge_bus_cancel(c->cs->c.pub, &ix, "transferred", c->transfers);
    a->cancelled = true;
    if (bye_after_notify)
        a->bye_after_notify = true;
    else
        nua_bye(a->nh, TAG_END());
    return 0;
}

/* Refer-To as a number outside the contact center: a tel: URI, or a sip: URI whose user is a
 * number that is not a DID of the call's tenant (those name its queues). 0 with the number in
 * out, 1 when it is not a number. */
static int refer_number(struct sipedge_call *c, const sip_t *sip, char *out, size_t cap)
{
    const url_t *u = sip && sip->sip_refer_to ? sip->sip_refer_to->r_url : NULL;
    const char *num = NULL;
    struct sipedge_did did;

    if (!u)
        return 1;
    if (u->url_type == url_tel)
        num = u->url_host; /* tel:+4930... keeps the number as the "host" */
    else if (u->url_user && sipedge_call_did_valid(u->url_user))
        num = u->url_user;
    if (!num || !sipedge_call_did_valid(num) || strlen(num) >= cap)
        return 1;
    if (sipedge_store_did_get(c->cs->c.store, num, &did) == 0 && strcmp(did.tenant, c->tenant) == 0)
        return 1; /* one of ours: a queue */
    snprintf(out, cap, "%s", num);
    return 0;
}

/* Refer-To's user part as a queue of the call's tenant: a DID of the tenant names its queue,
 * anything else is taken as a queue id (the router refuses an unknown one). */
static int refer_queue(struct sipedge_call *c, const sip_t *sip, char *out, size_t cap)
{
    const url_t *u = sip && sip->sip_refer_to ? sip->sip_refer_to->r_url : NULL;
    struct sipedge_did did;

    if (!u || !u->url_user || !*u->url_user || strlen(u->url_user) >= cap)
        return -EINVAL;
    if (sipedge_call_did_valid(u->url_user) &&
        sipedge_store_did_get(c->cs->c.store, u->url_user, &did) == 0 &&
        strcmp(did.tenant, c->tenant) == 0) {
        snprintf(out, cap, "%s", did.queue_id);
        return 0;
    }
    for (const char *p = u->url_user; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._:@-", *p))
            return -EINVAL;
    snprintf(out, cap, "%s", u->url_user);
    return 0;
}

/* Percent-decodes src (n bytes) into out (cap); false when it does not fit. */
static bool refer_unescape(const char *src, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char ch = src[i];

        if (ch == '%' && i + 2 < n && isxdigit((unsigned char)src[i + 1]) &&
            isxdigit((unsigned char)src[i + 2])) {
            char hex[3] = {src[i + 1], src[i + 2], '\0'};
            ch = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = ch;
    }
    out[o] = '\0';
    return true;
}

/* The tag parameter name= of a decoded Replaces value ("" when absent). */
static void refer_param(const char *replaces, const char *name, char *out, size_t cap)
{
    const char *p = replaces;
    size_t len = strlen(name);

    out[0] = '\0';
    while ((p = strchr(p, ';')) != NULL) {
        p++;
        while (*p == ' ')
            p++;
        if (strncasecmp(p, name, len) == 0 && p[len] == '=') {
            snprintf(out, cap, "%.*s", (int)strcspn(p + len + 1, ";"), p + len + 1);
            return;
        }
    }
}

/* Attended transfer: Refer-To's ?Replaces=<call-id>;to-tag=..;from-tag=.. (RFC 3891, escaped as
 * a URI header, RFC 5589) names the consultation dialog. 1 when there is no Replaces (a blind
 * transfer), else sipedge_call_attended_transfer's result (-EINVAL when malformed). */
static int refer_replaces(struct sipedge_call *c, struct sipedge_leg *l, const sip_t *sip)
{
    const url_t *u = sip && sip->sip_refer_to ? sip->sip_refer_to->r_url : NULL;
    const char *h = u && u->url_headers ? strcasestr(u->url_headers, "Replaces=") : NULL;
    char rep[SIPEDGE_URI_MAX + 1], call_id[SIPEDGE_URI_MAX + 1], to_tag[SIPEDGE_NAME_MAX + 1],
        from_tag[SIPEDGE_NAME_MAX + 1];

    if (!h)
        return 1;
    h += strlen("Replaces=");
    if (!refer_unescape(h, strcspn(h, "&"), rep, sizeof(rep)))
        return -EINVAL;
    snprintf(call_id, sizeof(call_id), "%.*s", (int)strcspn(rep, ";"), rep);
    refer_param(rep, "to-tag", to_tag, sizeof(to_tag));
    refer_param(rep, "from-tag", from_tag, sizeof(from_tag));
    if (!call_id[0] || (!to_tag[0] && !from_tag[0]))
        return -EINVAL;
    return sipedge_call_attended_transfer(c, l, call_id, to_tag, from_tag);
}

/* REFER from the agent's phone (NUA has answered it 202): with Replaces an attended transfer to
 * the consulted agent, else a blind transfer to a queue; the outcome goes back as a NOTIFY with
 * a sipfrag (RFC 3515), then the agent leg gets its BYE. */
void sipedge_call_on_refer(struct sipedge_call *c, struct sipedge_leg *l, nua_handle_t *nh,
                           const sip_t *sip, tagi_t tags[])
{
    sip_event_t const *event = NULL;
    char queue[SIPEDGE_ID_MAX + 1];
    const char *frag = "SIP/2.0 200 OK\r\n";
    int rc = l->is_caller ? -EPERM : refer_replaces(c, l, sip);

    tl_gets(tags, NUTAG_REFER_EVENT_REF(event), TAG_END());
    if (rc == 1 && refer_number(c, sip, queue, sizeof(queue)) == 0) {
        rc = call_transfer_number(c, queue, true);
    } else if (rc == 1) {
        rc = refer_queue(c, sip, queue, sizeof(queue));
        if (rc == 0)
            rc = call_transfer_queue(c, queue, true);
    }
    if (rc < 0) {
        CC_INFO_CTX(&c->log, "refusing a REFER from the %s: %s", l->is_caller ? "caller" : "agent",
                    strerror(-rc));
        frag = rc == -ENOTSUP ? "SIP/2.0 501 Not Implemented\r\n"
               : rc == -EBUSY ? "SIP/2.0 491 Request Pending\r\n"
                              : "SIP/2.0 603 Declined\r\n";
    }
    nua_notify(nh, NUTAG_SUBSTATE(nua_substate_terminated), TAG_IF(event, SIPTAG_EVENT(event)),
               SIPTAG_CONTENT_TYPE_STR("message/sipfrag;version=2.0"), SIPTAG_PAYLOAD_STR(frag),
               TAG_END());
}

/* ---- control ---------------------------------------------------------------------------- */

static const char *call_state_name(struct sipedge_call *c)
{
    if (c->state == SIPEDGE_CALL_ANSWERED)
        return c->held ? "held" : "connected";
    if (c->state == SIPEDGE_CALL_QUEUED)
        return sipedge_call_ringing(c) ? "ringing" : "queued";
    if (c->state == SIPEDGE_CALL_CALLBACK)
        return "callback";
    if (c->state == SIPEDGE_CALL_DIALING)
        return "dialing";
    if (c->state == SIPEDGE_CALL_EXTERNAL)
        return "transferring";
    return "ended";
}

static json_t *call_json(struct sipedge_call *c)
{
    const char *agent = c->state == SIPEDGE_CALL_ANSWERED ? sipedge_call_agent(c) : NULL;
    struct sipedge_leg *ringing = sipedge_call_ringing(c);
    char when[32];
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:b}", "interaction_id", c->id, "queue_id",
        c->queue_id, "state", call_state_name(c), "from", c->from, "to", c->to, "duration_ms",
        (json_int_t)sipedge_call_since(c->created_mono_ms), "hold_ms",
        (json_int_t)sipedge_call_hold_ms(c), "transfers", c->transfers, "held", c->held);

    if (j && agent && *agent)
        json_object_set_new(j, "agent_id", json_string(agent));
    if (j && c->external_to[0])
        json_object_set_new(j, "transferred_to", json_string(c->external_to));
    if (j && c->state == SIPEDGE_CALL_ANSWERED)
        json_object_set_new(j, "talk_ms", json_integer(sipedge_call_since(c->answered_mono_ms)));
    if (j && ringing)
        json_object_set_new(j, "ringing_agent_id", json_string(ringing->agent_id));
    if (j && c->callback)
        json_object_set_new(j, "callback_number", json_string(c->callback_to));
    if (j && c->callback && c->callback_at_ms > 0 &&
        cc_time_format_iso8601(c->callback_at_ms, when) == 0)
        json_object_set_new(j, "callback_at", json_string(when));
    return j;
}

/* Whether the request may see c: its tenant's, and for an agent only a call it is on. */
static bool call_visible(const struct sipedge_call *c, const struct sipedge_ctl *req)
{
    if (c->state == SIPEDGE_CALL_ENDED || strcmp(c->tenant, req->tenant) != 0)
        return false;
    if (!req->agent_id[0])
        return true;
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (c->agents[i].nh && !c->agents[i].cancelled && !c->agents[i].failed &&
            strcmp(c->agents[i].agent_id, req->agent_id) == 0)
            return true;
    return false;
}

static int calls_list(sipedge_calls *cs, const struct sipedge_ctl *req, json_t **out)
{
    json_t *items = json_array();

    if (!items)
        return -ENOMEM;
    for (size_t b = 0; b < SIPEDGE_CALLS_BUCKETS; b++)
        for (struct sipedge_call *c = cs->buckets[b]; c; c = c->next)
            if (call_visible(c, req) && json_array_append_new(items, call_json(c)) < 0) {
                json_decref(items);
                return -ENOMEM;
            }
    *out = json_pack("{s:o}", "items", items);
    return *out ? 0 : -ENOMEM;
}

/* Releases a call on request: a connected one both ways, a waiting one with 480. */
static void call_control_hangup(struct sipedge_call *c, const char *by)
{
    struct sipedge_ix ix = sipedge_call_ix(c);
    const char *ended_by = strcmp(by, "agent") == 0 ? "agent" : by;

    if (c->state == SIPEDGE_CALL_QUEUED || c->state == SIPEDGE_CALL_CALLBACK) {
        sipedge_call_reject(c, 480, "released by request", ended_by, "rejected");
        return;
    }
    if (c->state == SIPEDGE_CALL_DIALING) { /* a customer being dialled: not reached */
        sipedge_call_leg_cancel(&c->caller);
        sipedge_call_dial_end(c, ended_by, "normal", 0);
        return;
    }
    CC_INFO_CTX(&c->log, "call released by a %s's request", by);
    sipedge_bus_ended(c->cs->c.pub, &ix, ended_by, sipedge_call_since(c->answered_mono_ms),
                      sipedge_call_hold_ms(c), sipedge_call_since(c->created_mono_ms),
                      sipedge_call_agent(c), "normal", 0);
    if (c->caller.nh && !c->caller.cancelled) {
        c->caller.cancelled = true;
        nua_bye(c->caller.nh, TAG_END());
    }
    sipedge_call_finish(c, NULL);
}

static int call_control_hold(struct sipedge_call *c, bool hold, const char *by)
{
    struct sipedge_leg *a = sipedge_call_agent_leg(c);

    if (c->state != SIPEDGE_CALL_ANSWERED || !a || a->external || c->reinv != SIPEDGE_REINV_NONE ||
        c->held == hold)
        return -EBUSY;
    if (hold) {
        sipedge_call_set_held(c, a->agent_id, by);
        sipedge_call_reinvite_caller(c, SIPEDGE_REINV_HOLD, a->sdp, "sendonly");
    } else {
        sipedge_call_set_resumed(c, a->agent_id, false);
        sipedge_call_reinvite_caller(c, SIPEDGE_REINV_RESUME, a->sdp, NULL);
    }
    return 0;
}

int sipedge_calls_control(sipedge_calls *cs, const struct sipedge_ctl *req, json_t **out)
{
    struct sipedge_call *c;
    int rc = 0;

    *out = NULL;
    if (req->op == SIPEDGE_CTL_LIST)
        return calls_list(cs, req, out);
    c = sipedge_call_find(cs, req->interaction_id);
    if (!c || !call_visible(c, req))
        return -ENOENT;
    switch (req->op) {
    case SIPEDGE_CTL_HANGUP:
        call_control_hangup(c, req->by);
        break;
    case SIPEDGE_CTL_HOLD:
    case SIPEDGE_CTL_RESUME:
        rc = call_control_hold(c, req->op == SIPEDGE_CTL_HOLD, req->by);
        break;
    case SIPEDGE_CTL_TRANSFER:
        if (strcmp(req->target_type, "number") == 0)
            rc = sipedge_call_did_valid(req->target) ? call_transfer_number(c, req->target, false)
                                                     : -EINVAL;
        else
            rc = call_transfer_queue(c, req->target, false);
        break;
    case SIPEDGE_CTL_CALLBACK:
        rc = sipedge_call_callback(c, req->target, req->at_ms);
        break;
    case SIPEDGE_CTL_LIST:
    case SIPEDGE_CTL_GET:
        break;
    }
    if (rc < 0)
        return rc;
    *out = call_json(c);
    return *out ? 0 : -ENOMEM;
}
