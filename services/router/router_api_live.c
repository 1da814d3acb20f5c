/* router_api_live: agent state, wrap-up and live views over REST (see the header). */
#include "router_api_live.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cc_log.h"
#include "cc_time.h"
#include "router_live.h"

#define LIVE_PROBLEM "application/problem+json"
#define LIVE_ACT_ROLES                                                                             \
    (CC_HTTP_ROLE(CC_ROLE_ADMIN) | CC_HTTP_ROLE(CC_ROLE_SUPERVISOR) | CC_HTTP_ROLE(CC_ROLE_AGENT))
#define LIVE_ACQUIRE_MS 2000

struct router_api_live {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    router_engine **engines; /* all of them */
    router_engine **idle;    /* stack of free ones */
    unsigned n, nidle;
    router_store *store;
};

/* ---- engine pool ------------------------------------------------------------------------ */

static router_engine *live_acquire(router_api_live *api)
{
    struct timespec until;
    router_engine *e = NULL;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += LIVE_ACQUIRE_MS / 1000;
    pthread_mutex_lock(&api->mu);
    while (api->nidle == 0)
        if (pthread_cond_timedwait(&api->cv, &api->mu, &until) != 0)
            break;
    if (api->nidle > 0)
        e = api->idle[--api->nidle];
    pthread_mutex_unlock(&api->mu);
    return e;
}

/* live_acquire for a request: NULL after answering 503 + Retry-After when none is free. */
static router_engine *live_engine(router_api_live *api, struct cc_http_resp *resp)
{
    router_engine *e = live_acquire(api);

    if (!e) {
        cc_http_add_header(resp, "Retry-After", "1");
        cc_http_problem(resp, 503, NULL, "the router is busy, retry");
    }
    return e;
}

static void live_release(router_api_live *api, router_engine *e)
{
    pthread_mutex_lock(&api->mu);
    api->idle[api->nidle++] = e;
    pthread_cond_signal(&api->cv);
    pthread_mutex_unlock(&api->mu);
}

static uint64_t live_seed(void)
{
    uint64_t s = 0;

    if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
        s = (uint64_t)cc_time_mono_us();
    return s;
}

/* ---- answers ---------------------------------------------------------------------------- */

static int live_state_error(struct cc_http_resp *resp, int rc, const char *what, const char *id)
{
    switch (rc) {
    case -ENOENT:
        return cc_http_problem(resp, 404, NULL, "no %s '%s'", what, id);
    case -EINVAL:
        return cc_http_problem(resp, 422, NULL, "the live state refused the values for %s '%s'",
                               what, id);
    case -EAGAIN:
    case -ESTALE:
    case -EIO:
    default:
        cc_http_add_header(resp, "Retry-After", "1");
        return cc_http_problem(resp, 503, NULL, "the live state is unavailable, retry");
    }
}

/* The path's agent id when the caller may act for it; else answers 404 and returns NULL. An
 * agent token acts for its subject only: any other agent "does not exist" for it. */
static const char *live_agent_param(struct cc_http_req *req, struct cc_http_resp *resp)
{
    const struct cc_principal *p = cc_http_principal(req);
    const char *id = cc_http_param(req, "id");

    if (!id || !router_id_valid(id) ||
        (p->role == CC_ROLE_AGENT && (!p->subject[0] || strcmp(p->subject, id) != 0))) {
        cc_http_problem(resp, 404, NULL, "no agent '%s'", id ? id : "");
        return NULL;
    }
    return id;
}

static const char *live_by(const struct cc_http_req *req)
{
    return cc_http_principal(req)->role == CC_ROLE_AGENT ? "agent" : "supervisor";
}

/* Agent view; syncs the agent from PostgreSQL when Redis does not know it yet. */
static int live_agent_view(router_api_live *api, router_engine *e, const char *tenant,
                           const char *id, json_t **view)
{
    int64_t now = cc_time_now_ms();
    int rc = ROUTER_ENGINE_RETRY_STALE(
        e, router_state_agent_view(router_engine_state(e), tenant, id, now, view));

    if (rc != -ENOENT)
        return rc;
    rc = router_live_sync_agent(router_engine_live(e), router_engine_state(e), api->store, tenant,
                                id, now);
    if (rc < 0)
        return rc;
    return router_state_agent_view(router_engine_state(e), tenant, id, now, view);
}

/* True when body is an object with no member outside allowed (NULL-terminated); else answers
 * 422 (shape: the members, as in "{state, reason}") and returns false. */
static bool live_body_ok(struct cc_http_resp *resp, const json_t *body, const char *const *allowed,
                         const char *shape)
{
    const char *k;
    json_t *v;

    if (!json_is_object(body)) {
        cc_http_problem(resp, 422, NULL, "the body must be an object %s", shape);
        return false;
    }
    json_object_foreach((json_t *)body, k, v)
    {
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok) {
            cc_http_problem(resp, 422, NULL, "unknown field '%s'", k);
            return false;
        }
    }
    return true;
}

/* ---- POST /v1/agents/{id}/state --------------------------------------------------------- */

static int live_check_reason(router_api_live *api, struct cc_http_resp *resp, const char *tenant,
                             const char *reason)
{
    struct router_reason r;
    int rc;

    if (!reason || !router_id_valid(reason))
        return cc_http_problem(resp, 422, NULL,
                               "'reason' is required for not_ready: a configured reason code");
    rc = router_store_reason_get(api->store, tenant, reason, &r);
    if (rc == -ENOENT)
        return cc_http_problem(resp, 422, NULL, "unknown not-ready reason '%s'", reason);
    if (rc < 0) {
        cc_http_add_header(resp, "Retry-After", "1");
        return cc_http_problem(resp, 503, NULL, "the configuration store is unavailable");
    }
    return 1; /* valid */
}

static int live_apply_state(router_engine *e, const char *tenant, const char *id,
                            enum router_agent_state want, const char *reason, const char *by,
                            struct router_state_result *res)
{
    router_state *rs = router_engine_state(e);
    int64_t now = cc_time_now_ms();
    int rc;

    switch (want) {
    case ROUTER_AGENT_AVAILABLE:
        rc = ROUTER_ENGINE_RETRY_STALE(
            e, router_state_agent_available(rs, tenant, id, by, now, live_seed(), res));
        break;
    case ROUTER_AGENT_NOT_READY:
        rc = ROUTER_ENGINE_RETRY_STALE(
            e, router_state_agent_not_ready(rs, tenant, id, reason, by, now, res));
        break;
    default:
        rc = ROUTER_ENGINE_RETRY_STALE(
            e, router_state_agent_logout(rs, tenant, id, by, now, live_seed(), res));
        break;
    }
    if (rc == 0 && res->status == ROUTER_ST_OK)
        rc = router_live_presence(router_engine_live(e), tenant, id, want,
                                  want == ROUTER_AGENT_NOT_READY ? reason : NULL, now);
    return rc;
}

static int h_state(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    static const char *const fields[] = {"state", "reason", NULL};
    router_api_live *api = ctx;
    const char *tenant = cc_http_principal(req)->tenant, *id, *state, *reason;
    json_t *body = cc_http_json_body(req), *view = NULL;
    struct router_state_result res = {0};
    enum router_agent_state want;
    router_engine *e;
    int rc;

    if (!(id = live_agent_param(req, resp)))
        return 0;
    if (!live_body_ok(resp, body, fields, "{state, reason}"))
        return 0;
    state = json_string_value(json_object_get(body, "state"));
    reason = json_string_value(json_object_get(body, "reason"));
    if (json_object_get(body, "reason") && !reason)
        return cc_http_problem(resp, 422, NULL, "'reason' must be a string");
    if (!state || router_agent_state_parse(state, &want) < 0 ||
        (want != ROUTER_AGENT_AVAILABLE && want != ROUTER_AGENT_NOT_READY &&
         want != ROUTER_AGENT_LOGGED_OUT))
        return cc_http_problem(resp, 422, NULL,
                               "'state' must be one of available, not_ready, logged_out");
    if (want == ROUTER_AGENT_NOT_READY && (rc = live_check_reason(api, resp, tenant, reason)) <= 0)
        return rc;
    if (!(e = live_engine(api, resp)))
        return 0;
    rc = live_agent_view(api, e, tenant, id, &view); /* exists? synced? */
    json_decref(view);
    view = NULL;
    if (rc == 0)
        rc = live_apply_state(e, tenant, id, want, reason, live_by(req), &res);
    if (rc == 0)
        rc = router_state_agent_view(router_engine_state(e), tenant, id, cc_time_now_ms(), &view);
    live_release(api, e);
    if (rc < 0)
        return live_state_error(resp, rc, "agent", id);
    CC_INFO_CTX(&(struct cc_log_ctx){.agent_id = id}, "agent state set to '%s' by %s (%s)", state,
                live_by(req), router_state_status_name(res.status));
    return cc_http_json(resp, 200, view);
}

/* ---- POST /v1/agents/{id}/wrapup -------------------------------------------------------- */

static int h_wrapup(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    static const char *const fields[] = {"action", "seconds", NULL};
    router_api_live *api = ctx;
    const char *tenant = cc_http_principal(req)->tenant, *id, *action;
    json_t *body = cc_http_json_body(req), *view = NULL, *secs;
    struct router_state_result res = {0};
    int64_t now = cc_time_now_ms();
    router_engine *e;
    bool extend;
    int rc;

    if (!(id = live_agent_param(req, resp)))
        return 0;
    if (!live_body_ok(resp, body, fields, "{action, seconds}"))
        return 0;
    action = json_string_value(json_object_get(body, "action"));
    secs = json_object_get(body, "seconds");
    if (!action || (strcmp(action, "end") != 0 && strcmp(action, "extend") != 0))
        return cc_http_problem(resp, 422, NULL, "'action' must be end or extend");
    extend = strcmp(action, "extend") == 0;
    if (extend &&
        (!json_is_integer(secs) || json_integer_value(secs) < 1 || json_integer_value(secs) > 3600))
        return cc_http_problem(resp, 422, NULL, "'seconds' must be an integer 1..3600 to extend");
    if (!extend && secs)
        return cc_http_problem(resp, 422, NULL, "'seconds' is only for extend");
    if (!(e = live_engine(api, resp)))
        return 0;
    if (extend)
        rc = ROUTER_ENGINE_RETRY_STALE(
            e, router_state_agent_wrapup_extend(router_engine_state(e), tenant, id,
                                                (int)json_integer_value(secs), live_by(req), now,
                                                &res));
    else
        rc = ROUTER_ENGINE_RETRY_STALE(e, router_state_agent_wrapup_end(router_engine_state(e),
                                                                        tenant, id, live_by(req),
                                                                        now, live_seed(), &res));
    if (rc == 0 && res.status != ROUTER_ST_NOOP)
        rc = router_state_agent_view(router_engine_state(e), tenant, id, now, &view);
    live_release(api, e);
    if (rc < 0)
        return live_state_error(resp, rc, "agent", id);
    if (res.status == ROUTER_ST_NOOP)
        return cc_http_problem(resp, 409, NULL, "agent '%s' is not in wrap-up", id);
    return cc_http_json(resp, 200, view);
}

/* ---- live views ------------------------------------------------------------------------- */

static int h_agent_live(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    router_api_live *api = ctx;
    const char *tenant = cc_http_principal(req)->tenant, *id;
    json_t *view = NULL;
    router_engine *e;
    int rc;

    if (!(id = live_agent_param(req, resp)))
        return 0;
    if (!(e = live_engine(api, resp)))
        return 0;
    rc = live_agent_view(api, e, tenant, id, &view);
    live_release(api, e);
    if (rc < 0)
        return live_state_error(resp, rc, "agent", id);
    return cc_http_json(resp, 200, view);
}

static int h_queue_live(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    router_api_live *api = ctx;
    const char *tenant = cc_http_principal(req)->tenant, *id = cc_http_param(req, "id");
    int64_t now = cc_time_now_ms();
    json_t *view = NULL;
    router_engine *e;
    int rc;

    if (!id || !router_id_valid(id))
        return cc_http_problem(resp, 404, NULL, "no queue '%s'", id ? id : "");
    if (!(e = live_engine(api, resp)))
        return 0;
    rc = ROUTER_ENGINE_RETRY_STALE(
        e, router_state_queue_view(router_engine_state(e), tenant, id, now, &view));
    if (rc == -ENOENT) { /* configured but not synced yet? */
        rc = router_live_sync_queue(router_engine_live(e), router_engine_state(e), api->store,
                                    tenant, id, now);
        if (rc == 0)
            rc = router_state_queue_view(router_engine_state(e), tenant, id, now, &view);
    }
    live_release(api, e);
    if (rc < 0)
        return live_state_error(resp, rc, "queue", id);
    return cc_http_json(resp, 200, view);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

router_api_live *router_api_live_new(cc_http *srv, const struct router_engine_config *cfg,
                                     unsigned nengines)
{
    static const struct {
        const char *method, *pattern;
        cc_http_handler fn;
        unsigned roles;
    } routes[] = {
        {"POST", "/v1/agents/{id}/state", h_state, LIVE_ACT_ROLES},
        {"POST", "/v1/agents/{id}/wrapup", h_wrapup, LIVE_ACT_ROLES},
        {"GET", "/v1/agents/{id}/live", h_agent_live, 0},
        {"GET", "/v1/queues/{id}/live", h_queue_live, 0},
    };
    router_api_live *api;

    if (!srv || !cfg || nengines == 0)
        return NULL;
    api = calloc(1, sizeof(*api));
    if (!api)
        return NULL;
    pthread_mutex_init(&api->mu, NULL);
    pthread_cond_init(&api->cv, NULL);
    api->store = cfg->store;
    api->engines = calloc(nengines, sizeof(*api->engines));
    api->idle = calloc(nengines, sizeof(*api->idle));
    if (!api->engines || !api->idle)
        goto fail;
    for (api->n = 0; api->n < nengines; api->n++) {
        api->engines[api->n] = router_engine_new(cfg);
        if (!api->engines[api->n])
            goto fail;
        api->idle[api->nidle++] = api->engines[api->n];
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (cc_http_route(srv, routes[i].method, routes[i].pattern, routes[i].fn, api,
                          routes[i].roles) < 0) {
            CC_ERROR("cannot add route %s %s", routes[i].method, routes[i].pattern);
            goto fail;
        }
    return api;

fail:
    router_api_live_free(api);
    return NULL;
}

void router_api_live_free(router_api_live *api)
{
    if (!api)
        return;
    for (unsigned i = 0; api->engines && i < api->n; i++)
        router_engine_free(api->engines[i]);
    free(api->engines);
    free(api->idle);
    pthread_cond_destroy(&api->cv);
    pthread_mutex_destroy(&api->mu);
    free(api);
}
