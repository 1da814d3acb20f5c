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
    CALL_QUEUED,   /* waiting for (or ringing) an agent: the caller hears ringing, or after a
                      transfer is connected to nobody (caller.up) */
    CALL_ANSWERED, /* bridged */
    CALL_ENDED,    /* over; waiting for the legs' handles to terminate */
};

/* The re-INVITE in progress toward one leg (at most one per call: glare gets 491). */
enum call_reinv {
    REINV_NONE,
    REINV_PASS,   /* a leg's re-INVITE passed to the other one: its answer goes back */
    REINV_HOLD,   /* ours: the caller sendonly */
    REINV_RESUME, /* ours: the caller back to the agent's SDP */
    REINV_BRIDGE, /* ours: the caller to the new agent after a transfer */
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
    char *sdp;             /* the SDP this leg's party sent (malloc'd) */
    char *sent_sdp;        /* the last SDP sent to it (malloc'd) */
    char *o_prefix;        /* "o=<user> <sess-id> " of the first SDP sent to this leg */
    char *o_suffix;        /* " <nettype> <addrtype> <address>" of it */
    long long o_version;   /* the last sess-version sent to this leg */
    bool bye_after_notify; /* transferred by REFER: BYE once the NOTIFY is answered */
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
    int64_t queued_mono_ms; /* created, or the last transfer */
    bool held;
    int holds, transfers;
    int64_t held_mono_ms, hold_ms; /* current hold's start; finished holds' total */
    enum call_reinv reinv;
    struct sipedge_leg *reinv_from; /* REINV_PASS: the leg whose re-INVITE waits */
    nua_handle_t *reinv_nh;
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
    free(l->o_prefix);
    free(l->o_suffix);
    free(l->sent_sdp);
    l->sdp = l->o_prefix = l->o_suffix = l->sent_sdp = NULL;
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

/* ---- SDP (passed through; only the origin version and the direction are rewritten) ------- */

static const char *sdp_next_line(const char *p)
{
    const char *nl = strchr(p, '\n');
    return nl ? nl + 1 : NULL;
}

static bool sdp_line_is(const char *p, const char *prefix)
{
    return strncmp(p, prefix, strlen(prefix)) == 0;
}

static bool sdp_line_is_direction(const char *p)
{
    return sdp_line_is(p, "a=sendrecv") || sdp_line_is(p, "a=sendonly") ||
           sdp_line_is(p, "a=recvonly") || sdp_line_is(p, "a=inactive");
}

/* True when an offer puts its receiver on hold: a=sendonly or a=inactive (session or media
 * level), or a connection address 0.0.0.0 (RFC 2543 style). */
static bool sdp_is_hold(const char *sdp)
{
    for (const char *p = sdp; p && *p; p = sdp_next_line(p))
        if (sdp_line_is(p, "a=sendonly") || sdp_line_is(p, "a=inactive") ||
            sdp_line_is(p, "c=IN IP4 0.0.0.0"))
            return true;
    return false;
}

/* Remembers the origin line of the first SDP sent to l: later ones keep its user, session id
 * and address (RFC 3264 section 8) with an increasing version. */
static void sdp_origin_learn(struct sipedge_leg *l, const char *sdp)
{
    const char *p, *f2, *f3, *end;

    for (p = sdp; p && *p && !sdp_line_is(p, "o="); p = sdp_next_line(p))
        ;
    if (!p || !*p || l->o_prefix)
        return;
    end = p + strcspn(p, "\r\n");
    f2 = memchr(p, ' ', (size_t)(end - p));                       /* before sess-id */
    f2 = f2 ? memchr(f2 + 1, ' ', (size_t)(end - f2 - 1)) : NULL; /* before sess-version */
    f3 = f2 ? memchr(f2 + 1, ' ', (size_t)(end - f2 - 1)) : NULL; /* after it */
    if (!f3)
        return;
    l->o_prefix = strndup(p, (size_t)(f2 + 1 - p));
    l->o_suffix = strndup(f3, (size_t)(end - f3));
    l->o_version = strtoll(f2 + 1, NULL, 10);
}

static char *sdp_rewrite(struct sipedge_leg *l, const char *sdp, const char *dir);

/* The SDP to send to l (malloc'd, and remembered as l->sent_sdp): sdp with the origin line l
 * first saw at a new version and, with dir, every direction attribute replaced by one
 * session-level a=<dir>. The first SDP sent to a leg goes out unchanged. NULL when sdp is NULL
 * or on ENOMEM. */
static char *sdp_for_leg(struct sipedge_leg *l, const char *sdp, const char *dir)
{
    char *out = sdp_rewrite(l, sdp, dir);

    free(l->sent_sdp);
    l->sent_sdp = out ? strdup(out) : NULL;
    return out;
}

static char *sdp_rewrite(struct sipedge_leg *l, const char *sdp, const char *dir)
{
    const char *eol = strstr(sdp ? sdp : "", "\r\n") ? "\r\n" : "\n";
    bool first = !l->o_prefix, dir_done = !dir;
    size_t cap, n = 0;
    char *out;

    if (!sdp)
        return NULL;
    sdp_origin_learn(l, sdp);
    if (first && !dir)
        return strdup(sdp);
    cap = strlen(sdp) + (l->o_prefix ? strlen(l->o_prefix) + strlen(l->o_suffix) : 0) + 64;
    out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = sdp; p && *p; p = sdp_next_line(p)) {
        size_t len = strcspn(p, "\n");
        if (len && p[len - 1] == '\r')
            len--;
        if (!dir_done && sdp_line_is(p, "m=")) {
            n += (size_t)snprintf(out + n, cap - n, "a=%s%s", dir, eol);
            dir_done = true;
        }
        if (dir && sdp_line_is_direction(p))
            continue;
        if (sdp_line_is(p, "o=") && l->o_prefix && !first)
            n += (size_t)snprintf(out + n, cap - n, "%s%lld%s%s", l->o_prefix, ++l->o_version,
                                  l->o_suffix, eol);
        else
            n += (size_t)snprintf(out + n, cap - n, "%.*s%s", (int)len, p, eol);
    }
    if (!dir_done)
        snprintf(out + n, cap - n, "a=%s%s", dir, eol);
    return out;
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

/* The agent leg that is connected to the caller (answered, not released), or NULL. */
static struct sipedge_leg *call_agent_leg(struct sipedge_call *c)
{
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (c->agents[i].nh && c->agents[i].up && !c->agents[i].cancelled)
            return &c->agents[i];
    return NULL;
}

static const char *call_agent(const struct sipedge_call *c)
{
    for (int i = 0; i < SIPEDGE_CALL_MAX_LEGS; i++)
        if (c->agents[i].up && !c->agents[i].cancelled)
            return c->agents[i].agent_id;
    return NULL;
}

/* Hold time so far: the finished holds plus the current one. */
static int64_t call_hold_ms(const struct sipedge_call *c)
{
    return c->hold_ms + (c->held ? since(c->held_mono_ms) : 0);
}

static void call_set_held(struct sipedge_call *c, const char *agent_id, const char *held_by)
{
    struct sipedge_ix ix = call_ix(c);

    if (c->held)
        return;
    c->held = true;
    c->held_mono_ms = cc_time_mono_ms();
    CC_INFO_CTX(&c->log, "call on hold (by the %s)", held_by);
    sipedge_bus_held(c->cs->c.pub, &ix, agent_id ? agent_id : "", held_by, ++c->holds);
}

/* Ends the current hold; publishes resumed unless quietly (a transfer ends it too). */
static void call_set_resumed(struct sipedge_call *c, const char *agent_id, bool quietly)
{
    struct sipedge_ix ix = call_ix(c);
    int64_t took;

    if (!c->held)
        return;
    took = since(c->held_mono_ms);
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
    struct sipedge_ix ix = call_ix(c);
    int64_t talk = since(c->answered_mono_ms);

    if (c->state != CALL_ANSWERED)
        return;
    CC_INFO_CTX(&c->log, "call ended by the %s after %lld ms of talk (%s)", ended_by,
                (long long)talk, reason);
    sipedge_bus_ended(c->cs->c.pub, &ix, ended_by, talk, call_hold_ms(c), since(c->created_mono_ms),
                      from->is_caller ? call_agent(c) : from->agent_id, reason, 0);
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
    int64_t wait = since(c->queued_mono_ms);

    if (c->state != CALL_QUEUED)
        return;
    CC_INFO_CTX(&c->log, "caller abandoned after %lld ms", (long long)wait);
    sipedge_bus_abandoned(c->cs->c.pub, &ix, wait, ringing ? ringing->agent_id : NULL);
    sipedge_bus_ended(c->cs->c.pub, &ix, "customer", 0, call_hold_ms(c), wait,
                      ringing ? ringing->agent_id : NULL, "abandoned", c->caller.up ? 0 : 487);
    c->caller.cancelled = true;
    call_finish(c, NULL);
}

/* Final error to a caller still waiting, then ended (reason, status). */
static void call_reject(struct sipedge_call *c, int status, const char *reason,
                        const char *ended_by, const char *ended_reason)
{
    struct sipedge_ix ix = call_ix(c);
    char hdr[200];

    if (c->state != CALL_QUEUED)
        return;
    CC_INFO_CTX(&c->log, "call rejected with %d: %s", status, reason);
    snprintf(hdr, sizeof(hdr), "SIP;cause=%d;text=\"%s\"", status, reason);
    if (c->caller.nh && c->caller.up) /* transferred: connected to nobody */
        nua_bye(c->caller.nh, SIPTAG_REASON_STR(hdr), TAG_END());
    else if (c->caller.nh)
        nua_respond(c->caller.nh, status, sip_status_phrase(status), SIPTAG_REASON_STR(hdr),
                    TAG_END());
    c->caller.cancelled = true;
    sipedge_bus_ended(c->cs->c.pub, &ix, ended_by, 0, call_hold_ms(c), since(c->created_mono_ms),
                      NULL, ended_reason, status);
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
    c->queued_mono_ms = c->created_mono_ms;
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
    CC_INFO_CTX(&c->log, "agent '%s' did not answer within the ring timeout (+2 s)", l->agent_id);
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
    char from[2 * CALL_ADDR_MAX + 16], xhdr[96], *sdp;
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
    /* a backstop: the router's own ring timer withdraws the offer first */
    l->ring_timer = su_timer_create(su_root_task(cs->c.root), (timeout_s + 2) * 1000);
    if (l->ring_timer)
        su_timer_set(l->ring_timer, leg_ring_timeout, l);
    CC_INFO_CTX(&c->log, "ringing agent '%s' at '%s' for %d s (offer %d)", d->agent_id, d->contact,
                timeout_s, l->attempt);
    sdp = sdp_for_leg(l, c->caller.sdp, NULL);
    nua_invite(l->nh, TAG_IF(sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
               TAG_IF(sdp, SIPTAG_PAYLOAD_STR(sdp)), SIPTAG_HEADER_STR(xhdr), TAG_END());
    free(sdp);
}

/* Sends the caller sdp (for the caller's leg) in a re-INVITE of ours; dir as sdp_for_leg. */
static void call_reinvite_caller(struct sipedge_call *c, enum call_reinv what, const char *sdp,
                                 const char *dir)
{
    char *out = sdp_for_leg(&c->caller, sdp, dir);

    c->reinv = what;
    c->reinv_from = NULL;
    c->reinv_nh = NULL;
    nua_invite(c->caller.nh, TAG_IF(out, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
               TAG_IF(out, SIPTAG_PAYLOAD_STR(out)), TAG_END());
    free(out);
}

static void call_answered(struct sipedge_call *c, struct sipedge_leg *l, const sip_t *sip)
{
    struct sipedge_ix ix = call_ix(c);
    char *sdp;

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
    if (c->caller.up) { /* after a transfer: the caller's media moves to this agent */
        call_reinvite_caller(c, REINV_BRIDGE, l->sdp, NULL);
    } else {
        c->caller.up = true;
        sdp = sdp_for_leg(&c->caller, l->sdp, NULL);
        nua_respond(c->caller.nh, SIP_200_OK,
                    TAG_IF(sdp, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                    TAG_IF(sdp, SIPTAG_PAYLOAD_STR(sdp)), TAG_END());
        free(sdp);
    }
    CC_INFO_CTX(&c->log, "agent '%s' answered after %lld ms of ringing", l->agent_id,
                (long long)since(l->invited_mono_ms));
    sipedge_bus_answered(c->cs->c.pub, &ix, l->agent_id, since(c->queued_mono_ms),
                         since(l->invited_mono_ms), l->attempt);
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
    else if (c->state == CALL_ANSWERED && (l->is_caller || l->up))
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
    call_maybe_free(c);
}

/* The leg on the other side of l in a connected call, or NULL. */
static struct sipedge_leg *leg_peer(struct sipedge_call *c, const struct sipedge_leg *l)
{
    if (!l->is_caller)
        return c->caller.nh && !c->caller.cancelled ? &c->caller : NULL;
    return call_agent_leg(c);
}

/* A re-INVITE (hold, resume, a new codec, a session refresh) on leg l: an offer goes to the
 * other leg and its answer comes back in the 200; an offerless one (or one with nobody on the
 * other side, after a transfer) is answered at once with the SDP l last got. Hold and resume
 * are read from the offer. */
static void leg_reinvite(struct sipedge_call *c, struct sipedge_leg *l, nua_handle_t *nh,
                         const sip_t *sip)
{
    struct sipedge_leg *peer = c->state == CALL_ANSWERED ? leg_peer(c, l) : NULL;
    char *offer = sdp_of(sip), *out;
    const char *agent;

    if (c->reinv != REINV_NONE) {
        free(offer);
        nua_respond(nh, SIP_491_REQUEST_PENDING, TAG_END());
        return;
    }
    if (!offer || !peer) { /* a refresh, or nobody on the other side: what l last got */
        out = l->sent_sdp;
        nua_respond(nh, SIP_200_OK, TAG_IF(out, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                    TAG_IF(out, SIPTAG_PAYLOAD_STR(out)), TAG_END());
        free(offer);
        return;
    }
    free(l->sdp);
    l->sdp = offer;
    agent = l->is_caller ? peer->agent_id : l->agent_id;
    if (sdp_is_hold(offer))
        call_set_held(c, agent, l->is_caller ? "customer" : "agent");
    else
        call_set_resumed(c, agent, false);
    c->reinv = REINV_PASS;
    c->reinv_from = l;
    c->reinv_nh = nh;
    out = sdp_for_leg(peer, offer, NULL);
    nua_invite(peer->nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
               TAG_IF(out, SIPTAG_PAYLOAD_STR(out)), TAG_END());
    free(out);
}

/* The answer to a re-INVITE sip-edge sent on leg l. */
static void leg_reinvite_done(struct sipedge_call *c, struct sipedge_leg *l, int status,
                              const sip_t *sip)
{
    enum call_reinv what = c->reinv;
    struct sipedge_leg *from = c->reinv_from;
    char *answer = status < 300 ? sdp_of(sip) : NULL, *out;

    if (status < 200)
        return;
    c->reinv = REINV_NONE;
    c->reinv_from = NULL;
    if (answer) {
        free(l->sdp);
        l->sdp = answer;
    }
    if (status >= 300)
        CC_WARN_CTX(&c->log, "re-INVITE of the %s refused: %d", l->is_caller ? "caller" : "agent",
                    status);
    switch (what) {
    case REINV_PASS:
        if (!from || !from->nh || !c->reinv_nh)
            break;
        if (status >= 300) {
            nua_respond(c->reinv_nh, status, sip_status_phrase(status), TAG_END());
            break;
        }
        out = sdp_for_leg(from, l->sdp, NULL);
        nua_respond(c->reinv_nh, SIP_200_OK,
                    TAG_IF(out, SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                    TAG_IF(out, SIPTAG_PAYLOAD_STR(out)), TAG_END());
        free(out);
        break;
    case REINV_HOLD:
    case REINV_RESUME:
    case REINV_BRIDGE:
    case REINV_NONE:
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
    struct sipedge_leg *a = call_agent_leg(c);
    struct sipedge_ix ix;
    char from_queue[SIPEDGE_ID_MAX + 1];
    int64_t talk;

    if (c->state != CALL_ANSWERED || !a || c->reinv != REINV_NONE)
        return -EBUSY;
    talk = since(c->answered_mono_ms);
    call_set_resumed(c, a->agent_id, true);
    snprintf(from_queue, sizeof(from_queue), "%s", c->queue_id);
    snprintf(c->queue_id, sizeof(c->queue_id), "%s", queue);
    ix = call_ix(c);
    c->transfers++;
    CC_INFO_CTX(&c->log, "agent '%s' transferred the call from '%s' to queue '%s'", a->agent_id,
                from_queue, queue);
    sipedge_bus_transferred(c->cs->c.pub, &ix, "blind", "queue", queue, a->agent_id, from_queue,
                            talk, c->transfers);
    sipedge_bus_requeue(c->cs->c.pub, &ix, "transfer", queue, c->transfers);
    c->state = CALL_QUEUED;
    c->queued_mono_ms = cc_time_mono_ms();
    a->cancelled = true;
    if (bye_after_notify)
        a->bye_after_notify = true;
    else
        nua_bye(a->nh, TAG_END());
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
    if (u->url_headers && strstr(u->url_headers, "Replaces"))
        return -ENOTSUP; /* attended transfer */
    if (did_valid(u->url_user) && sipedge_store_did_get(c->cs->c.store, u->url_user, &did) == 0 &&
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

/* REFER from the agent's phone (NUA has answered it 202): a blind transfer to a queue; the
 * outcome goes back as a NOTIFY with a sipfrag (RFC 3515), then the agent leg gets its BYE. */
static void leg_refer(struct sipedge_call *c, struct sipedge_leg *l, nua_handle_t *nh,
                      const sip_t *sip, tagi_t tags[])
{
    sip_event_t const *event = NULL;
    char queue[SIPEDGE_ID_MAX + 1];
    const char *frag = "SIP/2.0 200 OK\r\n";
    int rc = l->is_caller ? -EPERM : refer_queue(c, sip, queue, sizeof(queue));

    tl_gets(tags, NUTAG_REFER_EVENT_REF(event), TAG_END());
    if (rc == 0)
        rc = call_transfer_queue(c, queue, true);
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
    if (c->state == CALL_ANSWERED)
        return c->held ? "held" : "connected";
    if (c->state == CALL_QUEUED)
        return leg_ringing(c) ? "ringing" : "queued";
    return "ended";
}

static json_t *call_json(struct sipedge_call *c)
{
    const char *agent = c->state == CALL_ANSWERED ? call_agent(c) : NULL;
    struct sipedge_leg *ringing = leg_ringing(c);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:b}", "interaction_id", c->id,
                  "queue_id", c->queue_id, "state", call_state_name(c), "from", c->from, "to",
                  c->to, "duration_ms", (json_int_t)since(c->created_mono_ms), "hold_ms",
                  (json_int_t)call_hold_ms(c), "transfers", c->transfers, "held", c->held);

    if (j && agent)
        json_object_set_new(j, "agent_id", json_string(agent));
    if (j && c->state == CALL_ANSWERED)
        json_object_set_new(j, "talk_ms", json_integer(since(c->answered_mono_ms)));
    if (j && ringing)
        json_object_set_new(j, "ringing_agent_id", json_string(ringing->agent_id));
    return j;
}

/* Whether the request may see c: its tenant's, and for an agent only a call it is on. */
static bool call_visible(const struct sipedge_call *c, const struct sipedge_ctl *req)
{
    if (c->state == CALL_ENDED || strcmp(c->tenant, req->tenant) != 0)
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
    for (size_t b = 0; b < CALLS_BUCKETS; b++)
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
    struct sipedge_ix ix = call_ix(c);
    const char *ended_by = strcmp(by, "agent") == 0 ? "agent" : by;

    if (c->state == CALL_QUEUED) {
        call_reject(c, 480, "released by request", ended_by, "rejected");
        return;
    }
    CC_INFO_CTX(&c->log, "call released by a %s's request", by);
    sipedge_bus_ended(c->cs->c.pub, &ix, ended_by, since(c->answered_mono_ms), call_hold_ms(c),
                      since(c->created_mono_ms), call_agent(c), "normal", 0);
    if (c->caller.nh && !c->caller.cancelled) {
        c->caller.cancelled = true;
        nua_bye(c->caller.nh, TAG_END());
    }
    call_finish(c, NULL);
}

static int call_control_hold(struct sipedge_call *c, bool hold, const char *by)
{
    struct sipedge_leg *a = call_agent_leg(c);

    if (c->state != CALL_ANSWERED || !a || c->reinv != REINV_NONE || c->held == hold)
        return -EBUSY;
    if (hold) {
        call_set_held(c, a->agent_id, by);
        call_reinvite_caller(c, REINV_HOLD, a->sdp, "sendonly");
    } else {
        call_set_resumed(c, a->agent_id, false);
        call_reinvite_caller(c, REINV_RESUME, a->sdp, NULL);
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
    c = calls_find(cs, req->interaction_id);
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
        if (strcmp(req->target_type, "queue") != 0)
            return -ENOTSUP; /* a number needs the trunk */
        rc = call_transfer_queue(c, req->target, false);
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
        leg_reinvite(c, l, nh, sip);
        break;
    case nua_i_refer:
        leg_refer(c, l, nh, sip, tags);
        break;
    case nua_r_notify:
        if (l->bye_after_notify && status >= 200) {
            l->bye_after_notify = false;
            nua_bye(l->nh, TAG_END());
        }
        break;
    case nua_i_cancel:
        if (l->is_caller)
            call_abandon(c);
        break;
    case nua_i_bye:
        l->bye_after_notify = false;
        if (c->state == CALL_QUEUED && l->is_caller && c->caller.up) {
            call_abandon(c); /* hung up while waiting after a transfer */
        } else if (c->state == CALL_ANSWERED) {
            if (!l->is_caller)
                l->cancelled = true; /* no BYE back */
            else
                c->caller.cancelled = true;
            call_hangup(c, l, l->is_caller ? "customer" : "agent", "normal");
        }
        break;
    case nua_r_invite:
        if (l->is_caller || l->up) {
            leg_reinvite_done(c, l, status, sip);
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
        call_reject(c, d->sip_status, d->reason, "system", "rejected");
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
                call_reject(c, 503, "service shutting down", "system", "failed");
            } else if (c->state == CALL_ANSWERED) {
                sipedge_bus_ended(cs->c.pub, &ix, "system", since(c->answered_mono_ms),
                                  call_hold_ms(c), since(c->created_mono_ms), call_agent(c),
                                  "failed", 0);
                if (c->caller.nh && !c->caller.cancelled) {
                    c->caller.cancelled = true;
                    nua_bye(c->caller.nh, TAG_END());
                }
                call_finish(c, NULL);
            }
        }
    }
}
