/* sipedge_originate: outbound calls through the trunk (see sipedge_call.h,
 * sipedge_calls_originate; the shared call object: sipedge_call_int.h).
 *
 * The customer's leg is the call's caller leg, dialled by sip-edge (UAC). With no media plane,
 * the INVITE carries a placeholder sendrecv offer (sipedge_sdp_placeholder); the customer's
 * answer is what the agent is later INVITEd with, and on the agent's 200 the customer gets a
 * re-INVITE with the agent's SDP ("late bridging", as after a blind transfer). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/hostdomain.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "cc_log.h"
#include "cc_time.h"
#include "sipedge_call_int.h"
#include "sipedge_sdp.h"

/* The parts of a sip:/sips: URI that sip-edge dials with: the user part and ?headers dropped. */
struct orig_uri {
    char host[128];                       /* without an IPv6 reference's brackets */
    char hostport[SIPEDGE_CALL_ADDR_MAX]; /* host (brackets kept) and ":port" when given */
    char params[256];                     /* ";transport=udp..." as given, "" when none */
};

/* Parses uri with Sofia-SIP's url_make into out. 0, or -EINVAL (out all "") when uri is not a
 * sip: or sips: URI with a host. */
static int orig_parse_uri(const char *uri, struct orig_uri *out)
{
    su_home_t home[1] = {SU_HOME_INIT(home)};
    url_t *u = url_make(home, uri);
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    if (u && (u->url_type == url_sip || u->url_type == url_sips) && u->url_host && *u->url_host) {
        snprintf(out->hostport, sizeof(out->hostport), "%s%s%s", u->url_host,
                 u->url_port ? ":" : "", u->url_port ? u->url_port : "");
        if (u->url_host[0] == '[')
            snprintf(out->host, sizeof(out->host), "%.*s", (int)strcspn(u->url_host + 1, "]"),
                     u->url_host + 1);
        else
            snprintf(out->host, sizeof(out->host), "%s", u->url_host);
        if (u->url_params)
            snprintf(out->params, sizeof(out->params), ";%s", u->url_params);
        rc = 0;
    }
    su_home_deinit(home);
    return rc;
}

int sipedge_calls_trunk_check(const char *uri, char *err, size_t cap)
{
    su_home_t home[1] = {SU_HOME_INIT(home)};
    url_t *u;
    int rc = -EINVAL;

    if (!uri || !*uri)
        return 0;
    u = url_make(home, uri);
    if (!u)
        snprintf(err, cap, "not a URI");
    else if (u->url_type != url_sip && u->url_type != url_sips)
        snprintf(err, cap, "expected a sip: or sips: URI");
    else if (!u->url_host || !host_is_valid(u->url_host))
        snprintf(err, cap, "expected a host name or an IP address after the scheme");
    else
        rc = 0;
    su_home_deinit(home);
    return rc;
}

/* Request-URI of the customer: a sip: URI as given, a number at the trunk's host:port with the
 * trunk URI's parameters (transport ...). */
static void orig_request_uri(const struct sipedge_config *cfg, const char *to, char *out,
                             size_t cap)
{
    struct orig_uri trunk;

    if (strncmp(to, "sip:", 4) == 0 || strncmp(to, "sips:", 5) == 0) {
        snprintf(out, cap, "%s", to);
        return;
    }
    orig_parse_uri(cfg->trunk_uri, &trunk);
    snprintf(out, cap, "sip:%s@%s%s", to, trunk.hostport, trunk.params);
}

/* Our address for the agent legs' From and the placeholder SDP. */
static void orig_local_host(const struct sipedge_config *cfg, char *hostport, size_t hcap,
                            char *media, size_t mcap)
{
    struct orig_uri local;

    orig_parse_uri(cfg->sip_url, &local);
    if (cfg->media_addr && *cfg->media_addr)
        snprintf(media, mcap, "%s", cfg->media_addr);
    else if (!*local.host || strcmp(local.host, "*") == 0 || strcmp(local.host, "0.0.0.0") == 0 ||
             strcmp(local.host, "::") == 0)
        snprintf(media, mcap, "127.0.0.1");
    else
        snprintf(media, mcap, "%s", local.host);
    if (strncmp(local.hostport, "*", 1) == 0 || strncmp(local.hostport, "0.0.0.0", 7) == 0)
        snprintf(hostport, hcap, "%s", media);
    else
        snprintf(hostport, hcap, "%s", local.hostport);
}

/* The customer was not reached (an outbound attempt, or a callback's customer): ended {ended_by,
 * reason, sip_status}; a callback's agent is released (BYE) and named. */
void sipedge_call_dial_end(struct sipedge_call *c, const char *ended_by, const char *reason,
                           int status)
{
    struct sipedge_ix ix = sipedge_call_ix(c);

    if (c->state != SIPEDGE_CALL_DIALING)
        return;
    if (c->callback)
        CC_INFO_CTX(&c->log, "callback to '%s' not answered: %s (%d)", c->callback_to, reason,
                    status);
    else
        CC_INFO_CTX(&c->log, "outbound call to '%s' (attempt '%s') not answered: %s (%d)", c->to,
                    c->attempt_id, reason, status);
    sipedge_bus_ended(c->cs->c.pub, &ix, ended_by, 0, 0, sipedge_call_since(c->created_mono_ms),
                      c->callback ? sipedge_call_agent(c) : NULL, reason, status);
    c->caller.failed = true;
    if (c->caller.ring_timer)
        su_timer_reset(c->caller.ring_timer);
    sipedge_call_finish(c, NULL);
}

static void orig_ring_timeout(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    struct sipedge_call *c = arg;

    (void)magic;
    (void)t;
    if (c->state != SIPEDGE_CALL_DIALING || c->caller.cancelled || !c->caller.nh)
        return;
    CC_INFO_CTX(&c->log, "customer '%s' did not answer within %d s: cancelling",
                c->callback ? c->callback_to : c->to, c->ring_timeout_s);
    c->caller.cancelled = true; /* the 487 that follows is reported as no_answer */
    nua_cancel(c->caller.nh, TAG_END());
}

/* The answered customer waited max_wait_s for an agent: released, counted abandoned. */
static void orig_wait_timeout(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    struct sipedge_call *c = arg;

    (void)magic;
    (void)t;
    if (c->state != SIPEDGE_CALL_QUEUED || !c->caller.nh || c->caller.cancelled)
        return;
    CC_INFO_CTX(&c->log, "no agent within %d s of the customer's answer: releasing the customer",
                c->max_wait_s);
    nua_bye(c->caller.nh, SIPTAG_REASON_STR("SIP;cause=480;text=\"no agent available\""),
            TAG_END());
    sipedge_call_abandon(c, "system");
}

/* The trunk's 401/407 on leg l: answered once with CC_SIPEDGE_TRUNK_USER/PASSWORD. True when
 * retried. */
static bool orig_authenticate(struct sipedge_call *c, struct sipedge_leg *l, int status,
                              const sip_t *sip)
{
    const struct sipedge_config *cfg = c->cs->c.cfg;
    const msg_auth_t *au = status == 407 ? sip->sip_proxy_authenticate : sip->sip_www_authenticate;
    const char *realm = au ? msg_params_find(au->au_params, "realm=") : NULL;
    char cred[512];

    if (l->auth_tried || !realm || !cfg->trunk_user || !*cfg->trunk_user)
        return false;
    l->auth_tried = true;
    snprintf(cred, sizeof(cred), "%s:%s:%s:%s", au->au_scheme, realm, cfg->trunk_user,
             cfg->trunk_password ? cfg->trunk_password : "");
    CC_INFO_CTX(&c->log, "trunk challenged the call (%d, realm %s): authenticating as '%s'", status,
                realm, cfg->trunk_user);
    nua_authenticate(l->nh, NUTAG_AUTH(cred), TAG_END());
    return true;
}

/* Busy, no answer, rejected or failed, from the final status of an INVITE through the trunk
 * (cancelled: we gave up at the ring timeout). */
static const char *orig_outcome(int status, bool cancelled)
{
    if (cancelled || status == 408 || status == 480 || status == 487)
        return "no_answer";
    if (status == 486 || status == 600)
        return "busy";
    if ((status >= 500 && status < 600) || status == 401 || status == 407)
        return "failed"; /* the trunk's fault, or it refused our credentials */
    return "rejected";
}

/* Busy, no answer, rejected or failed, from the final status of the customer's INVITE. */
static void orig_failed(struct sipedge_call *c, int status)
{
    const char *reason = orig_outcome(status, c->caller.cancelled);

    sipedge_call_dial_end(c, strcmp(reason, "failed") == 0 ? "system" : "customer", reason, status);
}

void sipedge_call_on_dial_answer(struct sipedge_call *c, int status, const sip_t *sip)
{
    struct sipedge_leg *l = &c->caller;
    struct sipedge_ix ix = sipedge_call_ix(c);
    int64_t waited;

    if (status < 200 || c->state != SIPEDGE_CALL_DIALING)
        return;
    if ((status == 401 || status == 407) && !l->cancelled && orig_authenticate(c, l, status, sip))
        return;
    if (status >= 300) {
        orig_failed(c, status);
        return;
    }
    if (l->ring_timer)
        su_timer_reset(l->ring_timer);
    if (c->callback) {
        sipedge_call_callback_connected(c, sip);
        return;
    }
    waited = sipedge_call_since(c->dial_mono_ms);
    l->up = true;
    free(l->sdp);
    l->sdp = sipedge_sdp_of(sip);
    c->state = SIPEDGE_CALL_QUEUED;
    c->queued_mono_ms = cc_time_mono_ms();
    CC_INFO_CTX(&c->log, "customer '%s' answered after %lld ms: routing to '%s'", c->to,
                (long long)waited, c->queue_id);
    sipedge_bus_answered_customer(c->cs->c.pub, &ix, waited);
    sipedge_bus_route(c->cs->c.pub, &ix, c->priority);
    if (c->max_wait_s > 0) {
        c->wait_timer = su_timer_create(su_root_task(c->cs->c.root), c->max_wait_s * 1000);
        if (c->wait_timer)
            su_timer_set(c->wait_timer, orig_wait_timeout, c);
    }
}

int sipedge_call_dial(struct sipedge_call *c, const char *to, const char *caller_id,
                      const char *sdp)
{
    const struct sipedge_config *cfg = c->cs->c.cfg;
    char ruri[800], from[600], xhdr[96];
    struct orig_uri trunk;
    const char *from_domain;

    if (!cfg->trunk_uri || !*cfg->trunk_uri)
        return -ENOTSUP;
    orig_request_uri(cfg, to, ruri, sizeof(ruri));
    orig_parse_uri(cfg->trunk_uri, &trunk);
    from_domain =
        cfg->trunk_from_domain && *cfg->trunk_from_domain ? cfg->trunk_from_domain : trunk.host;
    snprintf(from, sizeof(from), "<sip:%s@%s>", caller_id, from_domain);
    snprintf(xhdr, sizeof(xhdr), "X-CC-Interaction-Id: %s", c->id);
    c->caller.nh = nua_handle(c->cs->c.nua, &c->caller, NUTAG_URL(ruri), SIPTAG_TO_STR(ruri),
                              SIPTAG_FROM_STR(from), TAG_END());
    if (!c->caller.nh)
        return -ENOMEM;
    c->dial_mono_ms = cc_time_mono_ms();
    c->caller.invited_mono_ms = c->dial_mono_ms;
    c->caller.ring_timer = su_timer_create(su_root_task(c->cs->c.root), c->ring_timeout_s * 1000);
    if (c->caller.ring_timer)
        su_timer_set(c->caller.ring_timer, orig_ring_timeout, c);
    free(sipedge_sdp_for_leg(&c->caller.out, sdp, NULL)); /* the customer's first origin line */
    CC_INFO_CTX(&c->log, "dialling '%s' (ring %d s)", ruri, c->ring_timeout_s);
    nua_invite(c->caller.nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(sdp),
               SIPTAG_HEADER_STR(xhdr), TAG_END());
    return 0;
}

char *sipedge_call_placeholder(const struct sipedge_call *c)
{
    char hostport[SIPEDGE_CALL_ADDR_MAX], media[128];

    orig_local_host(c->cs->c.cfg, hostport, sizeof(hostport), media, sizeof(media));
    return sipedge_sdp_placeholder(media, (unsigned long long)c->created_ms);
}

/* INVITEs an outbound attempt's customer through the trunk with a placeholder offer. 0 or
 * -ENOMEM. */
static int orig_dial(struct sipedge_call *c)
{
    char media[128];
    char *sdp;
    int rc;

    orig_local_host(c->cs->c.cfg, c->host, sizeof(c->host), media, sizeof(media));
    sdp = sipedge_call_placeholder(c);
    if (!sdp)
        return -ENOMEM;
    CC_INFO_CTX(&c->log, "attempt '%s' of campaign '%s'", c->attempt_id, c->campaign_id);
    rc = sipedge_call_dial(c, c->to, c->from, sdp);
    free(sdp);
    return rc;
}

/* The attempt ends before anything rang: ended {system, failed, detail, sip_status}; c freed. */
static void orig_fail_early(struct sipedge_call *c, const char *detail, int status)
{
    struct sipedge_ix ix = sipedge_call_ix(c);

    sipedge_bus_ended_failed(c->cs->c.pub, &ix, sipedge_call_since(c->created_mono_ms), detail,
                             status);
    c->caller.failed = true;
    sipedge_call_finish(c, NULL);
    if (c->caller.nh) {
        nua_handle_bind(c->caller.nh, NULL);
        nua_handle_destroy(c->caller.nh);
        c->caller.nh = NULL;
    }
    sipedge_call_maybe_free(c);
}

/* Takes the recorded attempt for dialling (recorded -> dialled). False when it must not be
 * dialled: a start-up reported it not dialled already (nothing more to say), or the database
 * failed (*detail set: the caller reports the attempt failed; the row stays recorded and a
 * later start-up reports it again under the same event ids). */
static bool orig_take(sipedge_calls *cs, const struct sipedge_originate *o, const char **detail)
{
    struct cc_log_ctx log = {.interaction_id = o->interaction_id};
    int rc = sipedge_store_origination_take(cs->c.store, o->attempt_id);

    *detail = NULL;
    if (rc == -EALREADY) {
        CC_WARN_CTX(&log, "attempt '%s' was reported not dialled meanwhile: not dialling",
                    o->attempt_id);
        return false;
    }
    if (rc < 0) {
        CC_ERROR_CTX(&log, "cannot mark attempt '%s' dialled: %s; not dialling", o->attempt_id,
                     strerror(-rc));
        *detail = "store_unavailable";
        return false;
    }
    return true;
}

void sipedge_calls_originate(sipedge_calls *cs, const struct sipedge_originate *o)
{
    struct cc_log_ctx log = {.interaction_id = o->interaction_id};
    const char *detail = NULL;
    struct sipedge_call *c;
    struct sipedge_ix ix;
    int64_t age_ms = cc_time_now_ms() - o->time_ms;
    bool take;

    if (sipedge_call_find(cs, o->interaction_id)) {
        CC_INFO_CTX(&log, "attempt '%s' is being dialled already: ignored", o->attempt_id);
        return;
    }
    take = orig_take(cs, o, &detail);
    if (!take && !detail)
        return;
    c = sipedge_call_new(cs, o->interaction_id, NULL);
    if (!c) {
        CC_ERROR_CTX(&log, "cannot dial attempt '%s': out of memory", o->attempt_id);
        return;
    }
    c->outbound = true;
    c->state = SIPEDGE_CALL_DIALING;
    c->created_ms = o->recorded_ms > 0 ? o->recorded_ms : c->created_ms; /* ids as a start-up
                                                                            would make them */
    snprintf(c->tenant, sizeof(c->tenant), "%s", o->tenant);
    snprintf(c->queue_id, sizeof(c->queue_id), "%s", o->queue_id);
    snprintf(c->from, sizeof(c->from), "%s", o->caller_id);
    snprintf(c->to, sizeof(c->to), "%s", o->to);
    snprintf(c->campaign_id, sizeof(c->campaign_id), "%s", o->campaign_id);
    snprintf(c->attempt_id, sizeof(c->attempt_id), "%s", o->attempt_id);
    c->priority = o->priority;
    c->ring_timeout_s = o->ring_timeout_s > 0 ? o->ring_timeout_s : 30;
    c->max_wait_s = o->max_wait_s;
    ix = sipedge_call_ix(c);
    sipedge_bus_created_outbound(cs->c.pub, &ix, c->from, c->to, c->priority, c->campaign_id,
                                 c->attempt_id, o->customer_id);
    sipedge_call_journal(c);
    if (!take) {
        orig_fail_early(c, detail, 0);
        return;
    }
    if (o->time_ms > 0 && age_ms > cs->c.cfg->originate_max_age_s * 1000) {
        CC_WARN_CTX(&c->log, "attempt '%s' expired: the command is %lld s old (max %ld s)",
                    o->attempt_id, (long long)(age_ms / 1000), cs->c.cfg->originate_max_age_s);
        orig_fail_early(c, "expired", 0);
        return;
    }
    if (!cs->c.cfg->trunk_uri || !*cs->c.cfg->trunk_uri) {
        CC_ERROR_CTX(&c->log, "cannot dial attempt '%s': no trunk (CC_SIPEDGE_TRUNK_URI unset)",
                     o->attempt_id);
        orig_fail_early(c, "no_trunk", 0);
        return;
    }
    if (cs->active > (size_t)cs->c.cfg->max_calls) {
        CC_WARN_CTX(&c->log, "over capacity: not dialling attempt '%s'", o->attempt_id);
        orig_fail_early(c, "over_capacity", 503);
        return;
    }
    if (orig_dial(c) < 0) {
        CC_ERROR_CTX(&c->log, "cannot dial attempt '%s': out of memory", o->attempt_id);
        orig_fail_early(c, "out_of_memory", 0);
    }
}

int sipedge_calls_recover_originations(sipedge_store *st, const struct sipedge_pub *pub,
                                       const char *instance, long max_age_s)
{
    /* older than any live instance would still dial (it expires them): nobody's any more */
    int64_t horizon = cc_time_now_ms() - (max_age_s + SIPEDGE_ORIGINATE_GRACE_S) * 1000;
    struct sipedge_origination *rows = NULL;
    size_t n = 0;
    int rc, reported = 0;

    rc = sipedge_store_origination_recorded(st, instance, horizon, 1000, &rows, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const struct sipedge_origination *o = &rows[i];
        struct sipedge_ix ix = {.id = o->interaction_id,
                                .tenant = o->tenant,
                                .queue_id = o->queue_id,
                                .created_ms = o->recorded_ms};
        struct cc_log_ctx log = {.interaction_id = o->interaction_id};

        CC_WARN_CTX(&log,
                    "attempt '%s' of campaign '%s' was recorded by '%s' but never dialled: "
                    "reporting it failed (not_dialled)",
                    o->attempt_id, o->campaign_id, o->instance);
        if (sipedge_bus_created_outbound(pub, &ix, o->caller_id, o->destination, o->priority,
                                         o->campaign_id, o->attempt_id, o->customer_id) < 0 ||
            sipedge_bus_ended_failed(pub, &ix, 0, "not_dialled", 0) < 0) {
            rc = -EIO;
            break;
        }
    }
    /* marked only once the events are out: a crash before repeats them (same ids) */
    if (rc == 0 && n > 0 && cc_producer_flush(pub->producer, 10000) < 0)
        rc = -EIO;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (sipedge_store_origination_orphan(st, rows[i].attempt_id) == 0)
            reported++;
    free(rows);
    return rc < 0 ? rc : reported;
}

/* ---- blind transfer to a number --------------------------------------------------------- */

static void ext_ring_timeout(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    struct sipedge_leg *l = arg;
    struct sipedge_call *c = l->call;

    (void)magic;
    (void)t;
    if (c->state != SIPEDGE_CALL_EXTERNAL || !l->nh || l->cancelled || l->failed)
        return;
    CC_INFO_CTX(&c->log, "transfer target '%s' did not answer within %ld s: cancelling",
                c->external_to, c->cs->c.cfg->transfer_ring_timeout_s);
    l->cancelled = true; /* its 487 is reported as no_answer */
    nua_cancel(l->nh, TAG_END());
}

int sipedge_call_dial_external(struct sipedge_call *c, const char *target)
{
    const struct sipedge_config *cfg = c->cs->c.cfg;
    char ruri[800], from[600], xhdr[96];
    struct sipedge_leg *l = NULL;
    struct orig_uri trunk;
    char *sdp;

    if (!cfg->trunk_uri || !*cfg->trunk_uri)
        return -ENOTSUP;
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS && !l; i++)
        if (!c->agents[i].nh && !c->agents[i].ring_timer)
            l = &c->agents[i];
    if (!l)
        return -EBUSY;
    free(l->sdp);
    sipedge_sdp_out_clear(&l->out);
    memset(l, 0, sizeof(*l));
    l->call = c;
    l->external = true;
    l->attempt = ++c->attempts;
    snprintf(c->external_to, sizeof(c->external_to), "%s", target);
    orig_request_uri(cfg, target, ruri, sizeof(ruri));
    orig_parse_uri(cfg->trunk_uri, &trunk);
    /* presented as our own number (the DID dialled, or the campaign's caller id): a trunk
     * accepts those; a customer's number would need P-Asserted-Identity rights */
    snprintf(from, sizeof(from), "<sip:%s@%s>", c->outbound ? c->from : c->to,
             cfg->trunk_from_domain && *cfg->trunk_from_domain ? cfg->trunk_from_domain
                                                               : trunk.host);
    snprintf(xhdr, sizeof(xhdr), "X-CC-Interaction-Id: %s", c->id);
    l->nh = nua_handle(c->cs->c.nua, l, NUTAG_URL(ruri), SIPTAG_TO_STR(ruri), SIPTAG_FROM_STR(from),
                       TAG_END());
    if (!l->nh)
        return -ENOMEM;
    l->invited_mono_ms = cc_time_mono_ms();
    l->ring_timer =
        su_timer_create(su_root_task(c->cs->c.root), cfg->transfer_ring_timeout_s * 1000);
    if (l->ring_timer)
        su_timer_set(l->ring_timer, ext_ring_timeout, l);
    CC_INFO_CTX(&c->log, "dialling transfer target '%s' through the trunk (ring %ld s)", ruri,
                cfg->transfer_ring_timeout_s);
    sdp = sipedge_sdp_for_leg(&l->out, c->caller.sdp, NULL);
    nua_invite(l->nh, TAG_IF(sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
               TAG_IF(sdp, SIPTAG_PAYLOAD_STR(sdp)), SIPTAG_HEADER_STR(xhdr), TAG_END());
    free(sdp);
    return 0;
}

/* The number could not be reached: the customer is released, ended with the outcome. */
static void ext_failed(struct sipedge_call *c, struct sipedge_leg *l, int status)
{
    struct sipedge_ix ix = sipedge_call_ix(c);
    const char *reason = orig_outcome(status, l->cancelled);
    char hdr[200];

    l->failed = true;
    if (l->ring_timer)
        su_timer_reset(l->ring_timer);
    if (c->state != SIPEDGE_CALL_EXTERNAL)
        return;
    CC_INFO_CTX(&c->log, "transfer to '%s' failed: %s (%d); releasing the customer", c->external_to,
                reason, status);
    snprintf(hdr, sizeof(hdr), "SIP;cause=%d;text=\"transfer target %s\"", status, reason);
    if (c->caller.nh && !c->caller.cancelled) {
        c->caller.cancelled = true;
        nua_bye(c->caller.nh, SIPTAG_REASON_STR(hdr), TAG_END());
    }
    sipedge_bus_ended(c->cs->c.pub, &ix, "system", 0, sipedge_call_hold_ms(c),
                      sipedge_call_since(c->created_mono_ms), NULL, reason, status);
    sipedge_call_finish(c, NULL);
}

void sipedge_call_on_external_answer(struct sipedge_call *c, struct sipedge_leg *l, int status,
                                     const sip_t *sip)
{
    if (status < 200)
        return;
    if ((status == 401 || status == 407) && !l->cancelled && orig_authenticate(c, l, status, sip))
        return;
    if (status >= 300) {
        ext_failed(c, l, status);
        return;
    }
    if (l->ring_timer)
        su_timer_reset(l->ring_timer);
    l->up = true;
    free(l->sdp);
    l->sdp = sipedge_sdp_of(sip);
    if (c->state != SIPEDGE_CALL_EXTERNAL || l->cancelled || !c->caller.nh) {
        l->cancelled = true; /* answered too late: the customer is gone */
        nua_bye(l->nh, TAG_END());
        return;
    }
    c->state = SIPEDGE_CALL_ANSWERED;
    c->answered_mono_ms = cc_time_mono_ms();
    CC_INFO_CTX(&c->log, "transfer target '%s' answered after %lld ms: bridging the customer",
                c->external_to, (long long)sipedge_call_since(l->invited_mono_ms));
    sipedge_call_reinvite_caller(c, SIPEDGE_REINV_BRIDGE, l->sdp, NULL);
}

void sipedge_call_external_abandon(struct sipedge_call *c, const char *ended_by)
{
    struct sipedge_ix ix = sipedge_call_ix(c);

    if (c->state != SIPEDGE_CALL_EXTERNAL)
        return;
    CC_INFO_CTX(&c->log, "customer gone while transfer target '%s' rang", c->external_to);
    c->caller.cancelled = true;
    sipedge_bus_ended(c->cs->c.pub, &ix, ended_by, 0, sipedge_call_hold_ms(c),
                      sipedge_call_since(c->created_mono_ms), NULL, "normal", 0);
    sipedge_call_finish(c, NULL);
}
