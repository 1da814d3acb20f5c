/* router_api: REST handlers of the router's configuration (see router_api.h). */
#include "router_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_http_rest.h"
#include "cc_id.h"
#include "cc_log.h"

#define API_WRITE (CC_HTTP_ROLE(CC_ROLE_ADMIN) | CC_HTTP_ROLE(CC_ROLE_SUPERVISOR))
#define API_READ  0u /* every authenticated role */

/* ---- answers -------------------------------------------------------------------------------- */

static const char *tenant_of(const struct cc_http_req *req)
{
    return cc_http_principal(req)->tenant;
}

/* 422 with the field errors, as application/problem+json. */
static int validation_error(struct cc_http_resp *resp, const struct router_errors *errs)
{
    return cc_http_rest_unprocessable(resp, router_errors_json(errs));
}

/* A path id that cannot be valid names nothing: 404 without asking the store. */
static bool path_id_ok(struct cc_http_resp *resp, const char *what, const char *id)
{
    if (router_id_valid(id))
        return true;
    cc_http_problem(resp, 404, NULL, "no %s '%.64s'", what, id);
    return false;
}

/* ---- request arguments ---------------------------------------------------------------------- */

/* limit and cursor (cc_http_rest); a cursor here always names an id. false: answered 400. */
static bool page_args(struct cc_http_req *req, struct cc_http_resp *resp, struct cc_http_page *pa)
{
    if (!cc_http_rest_page_args(req, resp, pa))
        return false;
    if (pa->after && !router_id_valid(pa->after)) {
        cc_http_problem(resp, 400, NULL, "'cursor' is not a cursor of this list");
        return false;
    }
    return true;
}

/* The keyset key of a listed item: its id (agents, queues), agent_id (members) or code. */
static const char *item_key(const json_t *item, char *buf, size_t cap)
{
    const char *id = json_string_value(json_object_get(item, "id"));

    (void)buf;
    (void)cap;
    if (!id)
        id = json_string_value(json_object_get(item, "agent_id"));
    if (!id)
        id = json_string_value(json_object_get(item, "code"));
    return id;
}

static int page_answer(struct cc_http_resp *resp, json_t *items, size_t limit)
{
    return cc_http_rest_page_answer(resp, items, limit, item_key);
}

/* ---- agents and queues: one set of handlers over a small table of operations -------------- */

union resource {
    struct router_agent agent;
    struct router_queue queue;
};

struct kind {
    const char *what;   /* "agent" */
    const char *prefix; /* "/v1/agents/" for Location */
    int (*parse)(router_store *st, const json_t *doc, const char *path_id, union resource *r,
                 struct router_errors *errs);
    json_t *(*to_json)(const union resource *r);
    int (*create)(router_store *st, const char *tenant, union resource *r);
    int (*get)(router_store *st, const char *tenant, const char *id, union resource *r);
    int (*replace)(router_store *st, const char *tenant, union resource *r, long long if_version);
    int (*del)(router_store *st, const char *tenant, const char *id, long long if_version,
               char blocker[ROUTER_ID_MAX + 1]);
    json_t *(*list)(router_store *st, const char *tenant, const struct cc_http_page *pa, int *rc);
    void (*clear)(union resource *r);
    char *(*id)(union resource *r);
    long long (*version)(const union resource *r);
};

struct route_ctx {
    router_store *st;
    const struct kind *kind;
};

static int agent_parse(router_store *st, const json_t *doc, const char *path_id, union resource *r,
                       struct router_errors *errs)
{
    (void)st;
    return router_agent_parse(doc, path_id, &r->agent, errs);
}

static json_t *agent_json(const union resource *r)
{
    return router_agent_to_json(&r->agent);
}

static int agent_create(router_store *st, const char *tenant, union resource *r)
{
    return router_store_agent_create(st, tenant, &r->agent);
}

static int agent_get(router_store *st, const char *tenant, const char *id, union resource *r)
{
    return router_store_agent_get(st, tenant, id, &r->agent);
}

static int agent_replace(router_store *st, const char *tenant, union resource *r, long long v)
{
    return router_store_agent_replace(st, tenant, &r->agent, v);
}

static int agent_delete(router_store *st, const char *tenant, const char *id, long long v,
                        char blocker[ROUTER_ID_MAX + 1])
{
    (void)blocker;
    return router_store_agent_delete(st, tenant, id, v);
}

/* The JSON array of n elements of size bytes at list, each made by to_json; NULL and *rc
 * -ENOMEM when one cannot be made, else *rc 0. */
static json_t *items_json(const void *list, size_t n, size_t size,
                          json_t *(*to_json)(const void *elem), int *rc)
{
    json_t *items = json_array();

    for (size_t i = 0; items && i < n; i++)
        if (json_array_append_new(items, to_json((const char *)list + i * size)) < 0) {
            json_decref(items);
            items = NULL;
        }
    *rc = items ? 0 : -ENOMEM;
    return items;
}

static json_t *agent_elem_json(const void *a)
{
    return router_agent_to_json(a);
}

static json_t *agent_list(router_store *st, const char *tenant, const struct cc_http_page *pa,
                          int *rc)
{
    struct router_agent *list;
    json_t *items;
    size_t n;

    *rc = router_store_agent_list(st, tenant, pa->after, pa->limit + 1, &list, &n);
    if (*rc < 0)
        return NULL;
    items = items_json(list, n, sizeof(*list), agent_elem_json, rc);
    router_store_agents_free(list, n);
    return items;
}

static void agent_clear(union resource *r)
{
    router_agent_clear(&r->agent);
}

static char *agent_id(union resource *r)
{
    return r->agent.id;
}

static long long agent_version(const union resource *r)
{
    return r->agent.version;
}

static int queue_parse(router_store *st, const json_t *doc, const char *path_id, union resource *r,
                       struct router_errors *errs)
{
    return router_queue_parse(doc, path_id, router_store_timezone_known, st, &r->queue, errs);
}

static json_t *queue_json(const union resource *r)
{
    return router_queue_to_json(&r->queue);
}

static int queue_create(router_store *st, const char *tenant, union resource *r)
{
    return router_store_queue_create(st, tenant, &r->queue);
}

static int queue_get(router_store *st, const char *tenant, const char *id, union resource *r)
{
    return router_store_queue_get(st, tenant, id, &r->queue);
}

static int queue_replace(router_store *st, const char *tenant, union resource *r, long long v)
{
    return router_store_queue_replace(st, tenant, &r->queue, v);
}

static int queue_delete(router_store *st, const char *tenant, const char *id, long long v,
                        char blocker[ROUTER_ID_MAX + 1])
{
    return router_store_queue_delete(st, tenant, id, v, blocker);
}

static json_t *queue_elem_json(const void *q)
{
    return router_queue_to_json(q);
}

static json_t *queue_list(router_store *st, const char *tenant, const struct cc_http_page *pa,
                          int *rc)
{
    struct router_queue *list;
    json_t *items;
    size_t n;

    *rc = router_store_queue_list(st, tenant, pa->after, pa->limit + 1, &list, &n);
    if (*rc < 0)
        return NULL;
    items = items_json(list, n, sizeof(*list), queue_elem_json, rc);
    router_store_queues_free(list, n);
    return items;
}

static void queue_clear(union resource *r)
{
    router_queue_clear(&r->queue);
}

static char *queue_id(union resource *r)
{
    return r->queue.id;
}

static long long queue_version(const union resource *r)
{
    return r->queue.version;
}

static const struct kind agent_kind = {"agent",      "/v1/agents/", agent_parse,   agent_json,
                                       agent_create, agent_get,     agent_replace, agent_delete,
                                       agent_list,   agent_clear,   agent_id,      agent_version};
static const struct kind queue_kind = {"queue",      "/v1/queues/", queue_parse,   queue_json,
                                       queue_create, queue_get,     queue_replace, queue_delete,
                                       queue_list,   queue_clear,   queue_id,      queue_version};

/* Answers a resource (status 200/201) with its ETag (and Location on 201). */
static int resource_answer(struct cc_http_resp *resp, const struct kind *k, union resource *r,
                           int status)
{
    char location[128];

    cc_http_rest_etag(resp, k->version(r));
    if (status == 201) {
        snprintf(location, sizeof(location), "%s%s", k->prefix, k->id(r));
        cc_http_add_header(resp, "Location", location);
    }
    return cc_http_json(resp, status, k->to_json(r));
}

/* The fix for a store failure on a write: an unknown overflow target is the body's fault. */
static int write_error(struct cc_http_resp *resp, const struct kind *k, union resource *r, int rc)
{
    struct router_errors errs = {0};

    if (rc == -ENXIO) {
        router_errors_add(&errs, "/overflow_queue_id", "no queue '%s' in this tenant",
                          r->queue.overflow_queue_id);
        return validation_error(resp, &errs);
    }
    return cc_http_rest_store_error(resp, rc, k->what, k->id(r));
}

static int h_list(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    const struct route_ctx *c = arg;
    struct cc_http_page pa;
    json_t *items;
    int rc;

    if (!page_args(req, resp, &pa))
        return 0;
    items = c->kind->list(c->st, tenant_of(req), &pa, &rc);
    if (!items)
        return cc_http_rest_store_error(resp, rc, c->kind->what, "");
    return page_answer(resp, items, pa.limit);
}

static int h_create(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    const struct route_ctx *c = arg;
    struct router_errors errs = {0};
    union resource r;
    int rc = c->kind->parse(c->st, cc_http_json_body(req), NULL, &r, &errs);

    if (rc == -EINVAL) {
        rc = validation_error(resp, &errs);
        goto out_resource;
    }
    if (rc == 0 && !c->kind->id(&r)[0])
        rc = cc_uuid_v7(c->kind->id(&r));
    if (rc == 0)
        rc = c->kind->create(c->st, tenant_of(req), &r);
    if (rc == 0) {
        CC_INFO("%s '%s' created in tenant '%s'", c->kind->what, c->kind->id(&r), tenant_of(req));
        rc = resource_answer(resp, c->kind, &r, 201);
    } else {
        rc = write_error(resp, c->kind, &r, rc);
    }
out_resource:
    c->kind->clear(&r);
    return rc;
}

static int h_get(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    const struct route_ctx *c = arg;
    const char *id = cc_http_param(req, "id");
    union resource r;
    int rc;

    if (!path_id_ok(resp, c->kind->what, id))
        return 0;
    rc = c->kind->get(c->st, tenant_of(req), id, &r);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, c->kind->what, id);
    rc = resource_answer(resp, c->kind, &r, 200);
    c->kind->clear(&r);
    return rc;
}

/* PUT and PATCH share the end: validate doc, write under the precondition, answer. */
static int replace_with(struct cc_http_req *req, struct cc_http_resp *resp,
                        const struct route_ctx *c, const json_t *doc, long long header_version)
{
    const char *id = cc_http_param(req, "id");
    struct router_errors errs = {0};
    union resource r;
    int rc = c->kind->parse(c->st, doc, id, &r, &errs);

    if (rc == -EINVAL) {
        rc = validation_error(resp, &errs);
        goto out_resource;
    }
    if (rc == 0)
        rc = c->kind->replace(c->st, tenant_of(req), &r,
                              header_version ? header_version : c->kind->version(&r));
    if (rc == 0) {
        CC_INFO("%s '%s' updated in tenant '%s' (version %lld)", c->kind->what, id, tenant_of(req),
                c->kind->version(&r));
        rc = resource_answer(resp, c->kind, &r, 200);
    } else {
        rc = write_error(resp, c->kind, &r, rc);
    }
out_resource:
    c->kind->clear(&r);
    return rc;
}

static int h_replace(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    const struct route_ctx *c = arg;
    long long version;

    if (!path_id_ok(resp, c->kind->what, cc_http_param(req, "id")) ||
        !cc_http_rest_if_match(req, resp, &version))
        return 0;
    return replace_with(req, resp, c, cc_http_json_body(req), version);
}

/* RFC 7396 merge patch over the stored resource; the version read is the precondition unless
 * the client gave one, so a concurrent write in between is a 409, never lost. */
static int h_patch(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    const struct route_ctx *c = arg;
    const char *id = cc_http_param(req, "id");
    const json_t *patch = cc_http_json_body(req);
    json_t *current, *merged;
    long long version;
    union resource r;
    int rc;

    if (!path_id_ok(resp, c->kind->what, id) || !cc_http_rest_if_match(req, resp, &version))
        return 0;
    if (!json_is_object(patch)) {
        struct router_errors errs = {0};
        router_errors_add(&errs, "", "a merge patch must be a JSON object");
        return validation_error(resp, &errs);
    }
    rc = c->kind->get(c->st, tenant_of(req), id, &r);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, c->kind->what, id);
    current = c->kind->to_json(&r);
    c->kind->clear(&r);
    merged = current ? router_merge_patch(current, patch) : NULL;
    json_decref(current);
    if (!merged)
        return -ENOMEM;
    rc = replace_with(req, resp, c, merged, version);
    json_decref(merged);
    return rc;
}

static int h_delete(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    const struct route_ctx *c = arg;
    const char *id = cc_http_param(req, "id");
    char blocker[ROUTER_ID_MAX + 1] = "";
    long long version;
    int rc;

    if (!path_id_ok(resp, c->kind->what, id) || !cc_http_rest_if_match(req, resp, &version))
        return 0;
    rc = c->kind->del(c->st, tenant_of(req), id, version, blocker);
    if (rc == -ENOTEMPTY)
        return cc_http_problem(resp, 409, NULL,
                               "queue '%s' is the overflow target of queue '%s': change that "
                               "queue first",
                               id, blocker);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, c->kind->what, id);
    CC_INFO("%s '%s' deleted in tenant '%s'", c->kind->what, id, tenant_of(req));
    return cc_http_rest_no_content(resp);
}

/* ---- memberships ---------------------------------------------------------------------------- */

static json_t *member_elem_json(const void *m)
{
    return router_member_to_json(m);
}

static int h_members_list(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    router_store *st = arg;
    const char *queue = cc_http_param(req, "id");
    struct router_member *list;
    struct cc_http_page pa;
    json_t *items;
    size_t n;
    int rc;

    if (!path_id_ok(resp, "queue", queue) || !page_args(req, resp, &pa))
        return 0;
    rc = router_store_member_list(st, tenant_of(req), queue, pa.after, pa.limit + 1, &list, &n);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "queue", queue);
    items = items_json(list, n, sizeof(*list), member_elem_json, &rc);
    free(list);
    return page_answer(resp, items, pa.limit);
}

static int h_member_put(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    router_store *st = arg;
    const char *queue = cc_http_param(req, "id"), *agent = cc_http_param(req, "agent_id");
    struct router_errors errs = {0};
    struct router_member m;
    bool created = false;
    int rc;

    if (!path_id_ok(resp, "queue", queue) || !path_id_ok(resp, "agent", agent))
        return 0;
    if (router_member_parse(cc_http_json_body(req), queue, agent, &m, &errs) < 0)
        return validation_error(resp, &errs);
    rc = router_store_member_put(st, tenant_of(req), &m, &created);
    if (rc == -ESRCH)
        return cc_http_rest_store_error(resp, -ENOENT, "agent", agent);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "queue", queue);
    CC_INFO_CTX(&(struct cc_log_ctx){.agent_id = agent},
                "membership of agent '%s' in queue '%s' %s (level %d, position %d, penalty %d)",
                agent, queue, created ? "created" : "updated", m.level, m.position, m.penalty);
    return cc_http_json(resp, created ? 201 : 200, router_member_to_json(&m));
}

static int h_member_delete(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    router_store *st = arg;
    const char *queue = cc_http_param(req, "id"), *agent = cc_http_param(req, "agent_id");
    int rc;

    if (!path_id_ok(resp, "queue", queue) || !path_id_ok(resp, "agent", agent))
        return 0;
    rc = router_store_member_delete(st, tenant_of(req), queue, agent);
    if (rc == -ENOENT)
        return cc_http_problem(resp, 404, NULL, "agent '%s' is not a member of queue '%s'", agent,
                               queue);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "queue", queue);
    return cc_http_rest_no_content(resp);
}

/* ---- not-ready reasons ---------------------------------------------------------------------- */

static json_t *reason_elem_json(const void *r)
{
    return router_reason_to_json(r);
}

static int h_reasons_list(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    router_store *st = arg;
    struct router_reason *list;
    struct cc_http_page pa;
    json_t *items;
    size_t n;
    int rc;

    if (!page_args(req, resp, &pa))
        return 0;
    rc = router_store_reason_list(st, tenant_of(req), pa.after, pa.limit + 1, &list, &n);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "reason", "");
    items = items_json(list, n, sizeof(*list), reason_elem_json, &rc);
    free(list);
    return page_answer(resp, items, pa.limit);
}

static int h_reason_get(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    router_store *st = arg;
    const char *code = cc_http_param(req, "code");
    struct router_reason r;
    int rc;

    if (!path_id_ok(resp, "not-ready reason", code))
        return 0;
    rc = router_store_reason_get(st, tenant_of(req), code, &r);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "not-ready reason", code);
    return cc_http_json(resp, 200, router_reason_to_json(&r));
}

static int h_reason_put(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    router_store *st = arg;
    const char *code = cc_http_param(req, "code");
    struct router_errors errs = {0};
    struct router_reason r;
    bool created = false;
    int rc;

    if (!path_id_ok(resp, "not-ready reason", code))
        return 0;
    if (router_reason_parse(cc_http_json_body(req), code, &r, &errs) < 0)
        return validation_error(resp, &errs);
    rc = router_store_reason_put(st, tenant_of(req), &r, &created);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "not-ready reason", code);
    return cc_http_json(resp, created ? 201 : 200, router_reason_to_json(&r));
}

static int h_reason_delete(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    router_store *st = arg;
    const char *code = cc_http_param(req, "code");
    int rc;

    if (!path_id_ok(resp, "not-ready reason", code))
        return 0;
    rc = router_store_reason_delete(st, tenant_of(req), code);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "not-ready reason", code);
    return cc_http_rest_no_content(resp);
}

/* ---- registration --------------------------------------------------------------------------- */

static bool ready(void *arg, char *why, size_t len)
{
    return router_store_ready(arg, why, len);
}

struct router_api {
    struct route_ctx agents, queues;
};

/* The five routes of a versioned resource kind under base ("/v1/agents"). */
static int register_kind(cc_http *srv, const char *base, struct route_ctx *c)
{
    char item[64];
    int rc;

    snprintf(item, sizeof(item), "%s/{id}", base);
    rc = cc_http_route(srv, "GET", base, h_list, c, API_READ);
    if (rc == 0)
        rc = cc_http_route(srv, "POST", base, h_create, c, API_WRITE);
    if (rc == 0)
        rc = cc_http_route(srv, "GET", item, h_get, c, API_READ);
    if (rc == 0)
        rc = cc_http_route(srv, "PUT", item, h_replace, c, API_WRITE);
    if (rc == 0)
        rc = cc_http_route(srv, "PATCH", item, h_patch, c, API_WRITE);
    if (rc == 0)
        rc = cc_http_route(srv, "DELETE", item, h_delete, c, API_WRITE);
    return rc;
}

router_api *router_api_new(cc_http *srv, router_store *store)
{
    static const struct cc_http_rest_route routes[] = {
        {"GET", "/v1/queues/{id}/members", h_members_list, API_READ},
        {"PUT", "/v1/queues/{id}/members/{agent_id}", h_member_put, API_WRITE},
        {"DELETE", "/v1/queues/{id}/members/{agent_id}", h_member_delete, API_WRITE},
        {"GET", "/v1/not-ready-reasons", h_reasons_list, API_READ},
        {"GET", "/v1/not-ready-reasons/{code}", h_reason_get, API_READ},
        {"PUT", "/v1/not-ready-reasons/{code}", h_reason_put, API_WRITE},
        {"DELETE", "/v1/not-ready-reasons/{code}", h_reason_delete, API_WRITE},
    };
    router_api *api = calloc(1, sizeof(*api));
    int rc;

    if (!api)
        return NULL;
    api->agents = (struct route_ctx){store, &agent_kind};
    api->queues = (struct route_ctx){store, &queue_kind};
    rc = register_kind(srv, "/v1/agents", &api->agents);
    if (rc == 0)
        rc = register_kind(srv, "/v1/queues", &api->queues);
    if (rc == 0)
        rc = cc_http_rest_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), store);
    if (rc < 0) {
        CC_ERROR("router api: cannot register routes: %s", strerror(-rc));
        free(api);
        return NULL;
    }
    cc_http_set_ready_check(srv, ready, store);
    return api;
}

void router_api_free(router_api *api)
{
    free(api);
}
