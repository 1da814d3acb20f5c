/* sipedge_registrar: REGISTER handling and the binding sweep (see sipedge_registrar.h). */
#include "sipedge_registrar.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/auth_digest.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_tagarg.h>

#include "cc_log.h"
#include "cc_time.h"

#define REG_LIMIT_SLOTS  1024 /* sources tracked for the failure limit (lossy hash) */
#define REG_SWEEP_BATCH  100
#define REG_CONTACTS_MAX 16 /* contacts of one AOR listed in the 200 */

struct reg_source {
    char ip[64];
    int64_t window_start_s;
    long failures;
    bool logged;
};

struct sipedge_registrar {
    struct sipedge_registrar_config c;
    unsigned char secret[SIPEDGE_SECRET_MAX];
    struct reg_source sources[REG_LIMIT_SLOTS];
};

/* What one REGISTER is about. */
struct reg_req {
    nua_t *nua;
    nua_handle_t *nh;
    const sip_t *sip;
    char ip[48], source[64], transport[8];
    const char *user, *domain;
    const char *method; /* "REGISTER" (401, Authorization) or "INVITE" (407, Proxy-) */
};

/* Collects the AOR's live bindings, newest first. */
struct reg_list {
    int n;
    int64_t now_ms;
    char contacts[REG_CONTACTS_MAX][SIPEDGE_URI_MAX + 1];
    long expires[REG_CONTACTS_MAX];
};

sipedge_registrar *sipedge_registrar_new(const struct sipedge_registrar_config *c)
{
    sipedge_registrar *r;

    if (!c->secret || c->secret_len == 0 || c->secret_len > SIPEDGE_SECRET_MAX)
        return NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->c = *c;
    memcpy(r->secret, c->secret, c->secret_len);
    r->c.secret = r->secret;
    return r;
}

void sipedge_registrar_free(sipedge_registrar *r)
{
    free(r);
}

/* ---- source rate limit ------------------------------------------------------------------ */

static struct reg_source *reg_slot(sipedge_registrar *r, const char *ip)
{
    uint64_t h = 1469598103934665603ULL;

    for (const char *p = ip; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return &r->sources[h % REG_LIMIT_SLOTS];
}

/* True when ip is over the failure limit in the current window. */
static bool reg_limited(sipedge_registrar *r, const char *ip, int64_t now_s)
{
    struct reg_source *s = reg_slot(r, ip);

    if (strcmp(s->ip, ip) != 0 || now_s - s->window_start_s >= r->c.cfg->auth_fail_window_s)
        return false;
    if (s->failures < r->c.cfg->auth_fail_limit)
        return false;
    if (!s->logged) {
        s->logged = true;
        CC_WARN("too many failed authentications from '%s': refused for the rest of the %ld s "
                "window",
                ip, r->c.cfg->auth_fail_window_s);
    }
    return true;
}

static void reg_failed(sipedge_registrar *r, const char *ip, int64_t now_s)
{
    struct reg_source *s = reg_slot(r, ip);

    if (strcmp(s->ip, ip) != 0 || now_s - s->window_start_s >= r->c.cfg->auth_fail_window_s) {
        snprintf(s->ip, sizeof(s->ip), "%s", ip);
        s->window_start_s = now_s;
        s->failures = 0;
        s->logged = false;
    }
    s->failures++;
}

/* ---- request helpers -------------------------------------------------------------------- */

static void reg_source_of(struct reg_req *q)
{
    msg_t *msg = nua_current_request(q->nua);
    su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : NULL;
    char port[16] = "0";
    const char *proto = q->sip->sip_via ? q->sip->sip_via->v_protocol : NULL;
    const char *slash = proto ? strrchr(proto, '/') : NULL;
    size_t i;

    snprintf(q->ip, sizeof(q->ip), "unknown");
    if (ai && ai->ai_addr &&
        getnameinfo((const struct sockaddr *)ai->ai_addr, (socklen_t)ai->ai_addrlen, q->ip,
                    sizeof(q->ip), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(q->ip, sizeof(q->ip), "unknown");
    snprintf(q->source, sizeof(q->source), "%.47s:%.8s", q->ip, port);
    slash = slash ? slash + 1 : "udp";
    for (i = 0; slash[i] && i + 1 < sizeof(q->transport); i++)
        q->transport[i] = (char)(slash[i] >= 'A' && slash[i] <= 'Z' ? slash[i] + 32 : slash[i]);
    q->transport[i] = '\0';
}

static void reg_respond(struct reg_req *q, int status, const char *phrase, tag_type_t tag,
                        tag_value_t value, ...)
{
    ta_list ta;

    ta_start(ta, tag, value);
    nua_respond(q->nh, status, phrase, NUTAG_WITH_THIS(q->nua), ta_tags(ta));
    ta_end(ta);
}

static void reg_challenge(sipedge_registrar *r, struct reg_req *q, bool stale)
{
    char nonce[SIPEDGE_DIGEST_NONCE_LEN + 1], hdr[400];

    sipedge_digest_nonce(r->c.secret, r->c.secret_len, q->domain, cc_time_now_ms() / 1000, nonce);
    snprintf(hdr, sizeof(hdr), "Digest realm=\"%s\", nonce=\"%s\", qop=\"auth\", algorithm=MD5%s",
             q->domain, nonce, stale ? ", stale=true" : "");
    if (strcmp(q->method, "REGISTER") == 0)
        reg_respond(q, SIP_401_UNAUTHORIZED, SIPTAG_WWW_AUTHENTICATE_STR(hdr), TAG_END());
    else
        reg_respond(q, SIP_407_PROXY_AUTH_REQUIRED, SIPTAG_PROXY_AUTHENTICATE_STR(hdr), TAG_END());
}

/* The Authorization credentials for our realm, or NULL. */
static const msg_auth_t *reg_auth_for(const sip_t *sip, const char *realm, bool proxy)
{
    for (const msg_auth_t *a = proxy ? sip->sip_proxy_authorization : sip->sip_authorization; a;
         a = a->au_next) {
        su_home_t home[1] = {SU_HOME_INIT(home)};
        auth_response_t ar = {.ar_size = sizeof(ar)};
        bool ours;

        if (!a->au_scheme || strcasecmp(a->au_scheme, "Digest") != 0)
            continue;
        auth_digest_response_get(home, &ar, a->au_params);
        ours = ar.ar_realm && strcmp(ar.ar_realm, realm) == 0;
        su_home_deinit(home);
        if (ours)
            return a;
    }
    return NULL;
}

/* Checks the digest; answers (challenge, 400, 403, 503) and returns false unless it passed. */
static bool reg_authenticate(sipedge_registrar *r, struct reg_req *q,
                             struct sipedge_credential *cred)
{
    const msg_auth_t *au = reg_auth_for(q->sip, q->domain, strcmp(q->method, "REGISTER") != 0);
    su_home_t home[1] = {SU_HOME_INIT(home)};
    auth_response_t ar = {.ar_size = sizeof(ar)};
    struct sipedge_digest_creds dc;
    enum sipedge_digest_verdict v = SIPEDGE_DIGEST_BAD_RESPONSE;
    int64_t now_s = cc_time_now_ms() / 1000;
    int rc;

    if (!au) {
        reg_challenge(r, q, false);
        return false;
    }
    auth_digest_response_get(home, &ar, au->au_params);
    dc = (struct sipedge_digest_creds){.username = ar.ar_username,
                                       .realm = ar.ar_realm,
                                       .nonce = ar.ar_nonce,
                                       .uri = ar.ar_uri,
                                       .response = ar.ar_response,
                                       .qop = ar.ar_qop,
                                       .nc = ar.ar_nc,
                                       .cnonce = ar.ar_cnonce,
                                       .algorithm = ar.ar_algorithm};
    if (!dc.username || strcmp(dc.username, q->user) != 0) {
        su_home_deinit(home);
        CC_INFO("%s of '%s@%s' from '%s' with another user's credentials: 403", q->method, q->user,
                q->domain, q->source);
        reg_failed(r, q->ip, now_s);
        reg_respond(q, SIP_403_FORBIDDEN, TAG_END());
        return false;
    }
    rc = sipedge_store_credential_get(r->c.store, q->domain, q->user, cred);
    if (rc == 0)
        v = sipedge_digest_check(&dc, q->method, cred->ha1, r->c.secret, r->c.secret_len, now_s,
                                 (int)r->c.cfg->nonce_max_age_s);
    su_home_deinit(home);
    if (rc < 0 && rc != -ENOENT) {
        CC_ERROR("cannot look credentials of '%s@%s' up: %s", q->user, q->domain, strerror(-rc));
        reg_respond(q, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_RETRY_AFTER_STR("5"), TAG_END());
        return false;
    }
    if (v == SIPEDGE_DIGEST_OK)
        return true;
    if (v == SIPEDGE_DIGEST_MALFORMED) {
        CC_INFO("malformed credentials for '%s@%s' from '%s': 400", q->user, q->domain, q->source);
        reg_respond(q, 400, "Malformed Credentials", TAG_END());
        return false;
    }
    if (v != SIPEDGE_DIGEST_STALE_NONCE) {
        CC_INFO("authentication failed for '%s@%s' from '%s': %s", q->user, q->domain, q->source,
                rc == -ENOENT ? "no such user" : sipedge_digest_verdict_name(v));
        reg_failed(r, q->ip, now_s);
    }
    reg_challenge(r, q, v == SIPEDGE_DIGEST_STALE_NONCE);
    return false;
}

/* ---- bindings --------------------------------------------------------------------------- */

static void reg_collect(void *ctx, const struct sipedge_binding *b)
{
    struct reg_list *l = ctx;

    if (l->n >= REG_CONTACTS_MAX)
        return;
    snprintf(l->contacts[l->n], sizeof(l->contacts[l->n]), "%s", b->contact);
    l->expires[l->n] = (long)((b->expires_at_ms - l->now_ms + 999) / 1000);
    l->n++;
}

/* Publishes the AOR's reachable contact: the newest live one, or `removed` with 0. */
static void reg_publish(sipedge_registrar *r, const char *tenant, const char *agent_id,
                        const char *domain, const char *user, const struct reg_list *l,
                        const char *removed, const char *ua, const char *transport,
                        const char *source)
{
    char aor[2 * SIPEDGE_NAME_MAX + 8];
    int rc;

    snprintf(aor, sizeof(aor), "sip:%s@%s", user, domain);
    if (l->n > 0)
        rc = sipedge_bus_registered(r->c.pub, tenant, agent_id, l->contacts[0], l->expires[0], aor,
                                    ua, transport, source);
    else if (removed)
        rc = sipedge_bus_registered(r->c.pub, tenant, agent_id, removed, 0, aor, ua, transport,
                                    source);
    else
        return;
    if (rc == 0)
        CC_INFO_CTX(&(struct cc_log_ctx){.agent_id = agent_id}, "agent reachable at '%s' (%s)",
                    l->n > 0 ? l->contacts[0] : removed, l->n > 0 ? "registered" : "removed");
}

static int reg_list_of(sipedge_registrar *r, const char *domain, const char *user,
                       struct reg_list *l)
{
    memset(l, 0, sizeof(*l));
    l->now_ms = cc_time_now_ms();
    return sipedge_store_bindings_of(r->c.store, domain, user, l->now_ms, reg_collect, l);
}

/* Expiry of one Contact: its expires parameter, else the Expires header, else the default. */
static long reg_expiry(sipedge_registrar *r, const sip_t *sip, const sip_contact_t *m)
{
    if (m->m_expires)
        return strtol(m->m_expires, NULL, 10);
    if (sip->sip_expires)
        return (long)sip->sip_expires->ex_delta;
    return r->c.cfg->reg_default_expires;
}

/* Applies every Contact; answers 423/500/503 itself and returns < 0 on such a failure. */
static int reg_apply(sipedge_registrar *r, struct reg_req *q, const struct sipedge_credential *cr,
                     char *removed, size_t removed_cap)
{
    const sip_t *sip = q->sip;
    struct sipedge_binding b = {0};
    char min[24];
    int rc;

    for (const sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
        long e = reg_expiry(r, sip, m);
        if (e > 0 && e < r->c.cfg->reg_min_expires && m->m_url->url_type != url_any) {
            snprintf(min, sizeof(min), "%ld", r->c.cfg->reg_min_expires);
            reg_respond(q, SIP_423_INTERVAL_TOO_BRIEF, SIPTAG_MIN_EXPIRES_STR(min), TAG_END());
            return -EINVAL;
        }
    }
    snprintf(b.tenant, sizeof(b.tenant), "%s", cr->tenant);
    snprintf(b.agent_id, sizeof(b.agent_id), "%s", cr->agent_id);
    snprintf(b.domain, sizeof(b.domain), "%s", q->domain);
    snprintf(b.username, sizeof(b.username), "%s", q->user);
    snprintf(b.call_id, sizeof(b.call_id), "%s", sip->sip_call_id ? sip->sip_call_id->i_id : "");
    b.cseq = sip->sip_cseq ? sip->sip_cseq->cs_seq : 0;
    b.updated_at_ms = cc_time_now_ms();
    snprintf(b.user_agent, sizeof(b.user_agent), "%s",
             sip->sip_user_agent && sip->sip_user_agent->g_string ? sip->sip_user_agent->g_string
                                                                  : "");
    snprintf(b.source, sizeof(b.source), "%s", q->source);
    snprintf(b.transport, sizeof(b.transport), "%s", q->transport);
    for (const sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
        long e = reg_expiry(r, sip, m);

        if (m->m_url->url_type == url_any) {
            rc = sipedge_store_binding_remove(r->c.store, q->domain, q->user, NULL);
            snprintf(removed, removed_cap, "sip:%s@%s", q->user, q->domain);
        } else if (url_e(b.contact, sizeof(b.contact), m->m_url) < 0 ||
                   strlen(b.contact) >= sizeof(b.contact) - 1) {
            rc = -EINVAL;
        } else if (e <= 0) {
            rc = sipedge_store_binding_remove(r->c.store, q->domain, q->user, b.contact);
            snprintf(removed, removed_cap, "%s", b.contact);
        } else {
            if (e > r->c.cfg->reg_max_expires)
                e = r->c.cfg->reg_max_expires;
            b.expires_at_ms = b.updated_at_ms + e * 1000;
            rc = sipedge_store_binding_put(r->c.store, &b);
            if (rc == -EALREADY)
                rc = 0; /* an older copy of a REGISTER already applied: nothing to change */
        }
        if (rc < 0) {
            CC_ERROR_CTX(&(struct cc_log_ctx){.agent_id = cr->agent_id},
                         "cannot store the binding of '%s@%s': %s", q->user, q->domain,
                         strerror(-rc));
            if (rc == -EINVAL)
                reg_respond(q, 400, "Bad Contact", TAG_END());
            else
                reg_respond(q, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_RETRY_AFTER_STR("5"), TAG_END());
            return rc;
        }
    }
    return 0;
}

/* 200 with every live contact of the AOR (RFC 3261 10.3 step 8). */
static void reg_ok(struct reg_req *q, const struct reg_list *l)
{
    char list[REG_CONTACTS_MAX * (SIPEDGE_URI_MAX + 24)];
    size_t off = 0;

    list[0] = '\0';
    for (int i = 0; i < l->n && off < sizeof(list); i++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%s<%s>;expires=%ld", i ? ", " : "",
                                l->contacts[i], l->expires[i]);
    reg_respond(q, SIP_200_OK, TAG_IF(l->n > 0, SIPTAG_CONTACT_STR(list)), TAG_END());
}

void sipedge_registrar_on_register(sipedge_registrar *r, nua_t *nua, nua_handle_t *nh,
                                   const sip_t *sip)
{
    struct reg_req q = {.nua = nua, .nh = nh, .sip = sip, .method = "REGISTER"};
    struct sipedge_credential cred;
    struct reg_list l;
    char removed[SIPEDGE_URI_MAX + 1] = "";

    reg_source_of(&q);
    if (!sip || !sip->sip_to || !sip->sip_to->a_url->url_user || !sip->sip_to->a_url->url_host) {
        CC_INFO("register from '%s' without a To user and host: 400", q.source);
        reg_respond(&q, 400, "Missing AOR", TAG_END());
        goto out_handle;
    }
    q.user = sip->sip_to->a_url->url_user;
    q.domain = sip->sip_to->a_url->url_host;
    if (reg_limited(r, q.ip, cc_time_now_ms() / 1000)) {
        reg_respond(&q, 403, "Too Many Failed Attempts", TAG_END());
        goto out_handle;
    }
    if (!reg_authenticate(r, &q, &cred))
        goto out_handle;
    if (sip->sip_contact && reg_apply(r, &q, &cred, removed, sizeof(removed)) < 0)
        goto out_handle;
    if (reg_list_of(r, q.domain, q.user, &l) < 0) {
        reg_respond(&q, SIP_503_SERVICE_UNAVAILABLE, SIPTAG_RETRY_AFTER_STR("5"), TAG_END());
        goto out_handle;
    }
    reg_ok(&q, &l);
    if (sip->sip_contact)
        reg_publish(
            r, cred.tenant, cred.agent_id, q.domain, q.user, &l, removed[0] ? removed : NULL,
            sip->sip_user_agent ? sip->sip_user_agent->g_string : NULL, q.transport, q.source);
out_handle:
    nua_handle_destroy(nh);
}

bool sipedge_registrar_authenticate(sipedge_registrar *r, nua_t *nua, nua_handle_t *nh,
                                    const sip_t *sip, struct sipedge_credential *cred)
{
    struct reg_req q = {.nua = nua, .nh = nh, .sip = sip, .method = "INVITE"};

    reg_source_of(&q);
    if (!sip || !sip->sip_from || !sip->sip_from->a_url->url_user ||
        !sip->sip_from->a_url->url_host) {
        reg_respond(&q, 400, "Missing From User", TAG_END());
        return false;
    }
    q.user = sip->sip_from->a_url->url_user;
    q.domain = sip->sip_from->a_url->url_host;
    if (reg_limited(r, q.ip, cc_time_now_ms() / 1000)) {
        reg_respond(&q, 403, "Too Many Failed Attempts", TAG_END());
        return false;
    }
    return reg_authenticate(r, &q, cred);
}

/* ---- sweep ------------------------------------------------------------------------------ */

struct reg_expired {
    int n;
    struct sipedge_binding b[REG_SWEEP_BATCH];
};

static void reg_expired_one(void *ctx, const struct sipedge_binding *b)
{
    struct reg_expired *e = ctx;

    if (e->n < REG_SWEEP_BATCH)
        e->b[e->n++] = *b;
}

void sipedge_registrar_sweep(sipedge_registrar *r)
{
    struct reg_expired *e = calloc(1, sizeof(*e));
    struct reg_list l;
    int rc;

    if (!e)
        return;
    rc = sipedge_store_bindings_expire(r->c.store, cc_time_now_ms(), REG_SWEEP_BATCH,
                                       reg_expired_one, e);
    if (rc < 0)
        CC_WARN("cannot expire registrations: %s", strerror(-rc));
    for (int i = 0; i < e->n; i++) {
        const struct sipedge_binding *b = &e->b[i];

        CC_INFO_CTX(&(struct cc_log_ctx){.agent_id = b->agent_id},
                    "registration of '%s' at '%s' expired", b->username, b->contact);
        if (reg_list_of(r, b->domain, b->username, &l) >= 0)
            reg_publish(r, b->tenant, b->agent_id, b->domain, b->username, &l, b->contact, NULL,
                        b->transport, b->source);
    }
    free(e);
}
