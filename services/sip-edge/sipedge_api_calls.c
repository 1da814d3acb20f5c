/* sipedge_api_calls: REST call control (see sipedge_api_calls.h). */
#include "sipedge_api_calls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_auth.h"
#include "cc_event.h"
#include "cc_http_rest.h"
#include "cc_log.h"
#include "cc_time.h"

#define CALLS_WAIT_MS 5000
#define CALLS_ROLES                                                                                \
    (CC_HTTP_ROLE(CC_ROLE_ADMIN) | CC_HTTP_ROLE(CC_ROLE_SUPERVISOR) |                              \
     CC_HTTP_ROLE(CC_ROLE_SERVICE) | CC_HTTP_ROLE(CC_ROLE_AGENT))

/* who may ask for a callback: not an agent (a waiting caller is on no agent's call) */
#define CALLBACK_ROLES                                                                             \
    (CC_HTTP_ROLE(CC_ROLE_ADMIN) | CC_HTTP_ROLE(CC_ROLE_SUPERVISOR) | CC_HTTP_ROLE(CC_ROLE_SERVICE))

struct sipedge_api_calls {
    sipedge_sip *sip;
};

/* Fills who asks: the tenant, and for an agent token the agent it may act for. false (answered
 * 403) for an agent token that names no agent. */
static bool calls_principal(struct cc_http_req *req, struct cc_http_resp *resp,
                            struct sipedge_ctl *ctl)
{
    const struct cc_principal *p = cc_http_principal(req);

    snprintf(ctl->tenant, sizeof(ctl->tenant), "%s", p->tenant);
    switch (p->role) {
    case CC_ROLE_AGENT:
        if (!cc_event_id_valid(p->subject, SIPEDGE_BUS_ID_MAX)) {
            cc_http_problem(resp, 403, NULL, "an agent token must name its agent (subject)");
            return false;
        }
        snprintf(ctl->agent_id, sizeof(ctl->agent_id), "%s", p->subject);
        snprintf(ctl->by, sizeof(ctl->by), "agent");
        break;
    case CC_ROLE_SERVICE:
        snprintf(ctl->by, sizeof(ctl->by), "system");
        break;
    default:
        snprintf(ctl->by, sizeof(ctl->by), "supervisor");
        break;
    }
    return true;
}

/* Runs ctl on the SIP thread and answers: status with the result, or the failure's problem. */
static int calls_run(const sipedge_api_calls *api, struct cc_http_resp *resp,
                     const struct sipedge_ctl *ctl, int status)
{
    json_t *out = NULL;
    int rc = sipedge_sip_control(api->sip, ctl, CALLS_WAIT_MS, &out);

    switch (rc) {
    case 0:
        return out ? cc_http_json(resp, status, out) : cc_http_rest_no_content(resp);
    case -ENOENT:
        return cc_http_problem(resp, 404, NULL, "no active call '%s'", ctl->interaction_id);
    case -EBUSY:
        return cc_http_problem(resp, 409, NULL,
                               "call '%s' is not in a state for this (not connected, already "
                               "in that hold state, or a re-INVITE is under way)",
                               ctl->interaction_id);
    case -ENOTSUP:
        return cc_http_problem(
            resp, 501, NULL, "%s need a trunk (CC_SIPEDGE_TRUNK_URI is not set on this sip-edge)",
            ctl->op == SIPEDGE_CTL_CALLBACK ? "callbacks" : "transfers to a number");
    case -EINVAL:
        return cc_http_problem(resp, 422, NULL,
                               "call '%s' has no number to call back: the caller's is not a "
                               "dialable number; give one in \"number\"",
                               ctl->interaction_id);
    case -EIO:
    case -EAGAIN:
        cc_http_add_header(resp, "Retry-After", "1");
        return cc_http_problem(resp, 503, NULL, "the callback could not be recorded (database)");
    case -ETIMEDOUT:
    case -ESHUTDOWN:
        cc_http_add_header(resp, "Retry-After", "1");
        return cc_http_problem(resp, 503, NULL, "the sip thread did not answer in time");
    default:
        return rc < 0 ? rc : -EIO;
    }
}

/* The {interaction_id} of the path into ctl; false (answered 404) when it cannot be one. */
static bool calls_target(struct cc_http_req *req, struct cc_http_resp *resp,
                         struct sipedge_ctl *ctl)
{
    const char *id = cc_http_param(req, "interaction_id");

    if (!cc_event_id_valid(id, SIPEDGE_BUS_ID_MAX)) {
        cc_http_problem(resp, 404, NULL, "no active call '%s'", id ? id : "");
        return false;
    }
    snprintf(ctl->interaction_id, sizeof(ctl->interaction_id), "%s", id);
    return true;
}

static int h_calls_list(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    struct sipedge_ctl ctl = {.op = SIPEDGE_CTL_LIST};

    if (!calls_principal(req, resp, &ctl))
        return 0;
    return calls_run(arg, resp, &ctl, 200);
}

/* GET one call, hangup, hold, resume: the same shape, op from the route. */
static int calls_one(struct cc_http_req *req, struct cc_http_resp *resp, void *arg,
                     enum sipedge_ctl_op op, int status)
{
    struct sipedge_ctl ctl = {.op = op};

    if (!calls_principal(req, resp, &ctl) || !calls_target(req, resp, &ctl))
        return 0;
    return calls_run(arg, resp, &ctl, status);
}

static int h_call_get(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    return calls_one(req, resp, arg, SIPEDGE_CTL_GET, 200);
}

static int h_call_hangup(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    return calls_one(req, resp, arg, SIPEDGE_CTL_HANGUP, 202);
}

static int h_call_hold(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    return calls_one(req, resp, arg, SIPEDGE_CTL_HOLD, 202);
}

static int h_call_resume(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    return calls_one(req, resp, arg, SIPEDGE_CTL_RESUME, 202);
}

static void calls_error(json_t *errs, const char *field, const char *message)
{
    json_array_append_new(errs, json_pack("{s:s, s:s}", "field", field, "message", message));
}

/* A number as a transfer target: digits with an optional leading '+', 2..20 of them. */
static bool calls_number_valid(const char *s)
{
    size_t n = s ? strspn(s + (*s == '+'), "0123456789") : 0;

    return s && n >= 2 && n <= 20 && s[(*s == '+') + n] == '\0';
}

/* Validates a transfer body into ctl; the field errors go to errs. */
static void calls_transfer_body(const json_t *doc, struct sipedge_ctl *ctl, json_t *errs)
{
    const char *type = json_string_value(json_object_get(doc, "type"));
    const char *tt = json_string_value(json_object_get(doc, "target_type"));
    const char *target = json_string_value(json_object_get(doc, "target"));
    const char *key;
    json_t *v;

    if (!json_is_object(doc)) {
        calls_error(errs, "", "must be an object");
        return;
    }
    json_object_foreach((json_t *)doc, key, v)
    {
        char field[80];

        if (strcmp(key, "type") == 0 || strcmp(key, "target_type") == 0 ||
            strcmp(key, "target") == 0)
            continue;
        snprintf(field, sizeof(field), "/%.64s", key);
        calls_error(errs, field, "unknown field");
    }
    if (!type || strcmp(type, "blind") != 0)
        calls_error(errs, "/type", "must be \"blind\" (attended transfers use SIP REFER)");
    if (!tt || (strcmp(tt, "queue") != 0 && strcmp(tt, "number") != 0))
        calls_error(errs, "/target_type", "must be \"queue\" or \"number\"");
    else
        snprintf(ctl->target_type, sizeof(ctl->target_type), "%s", tt);
    if (tt && strcmp(tt, "number") == 0 ? !calls_number_valid(target)
                                        : !cc_event_id_valid(target, SIPEDGE_BUS_ID_MAX))
        calls_error(errs, "/target",
                    "must be a queue id (1..64 characters), or for target_type number digits "
                    "with an optional leading + (2..20)");
    else
        snprintf(ctl->target, sizeof(ctl->target), "%s", target);
}

static int h_call_transfer(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    struct sipedge_ctl ctl = {.op = SIPEDGE_CTL_TRANSFER};
    json_t *errs;

    if (!calls_principal(req, resp, &ctl) || !calls_target(req, resp, &ctl))
        return 0;
    errs = json_array();
    if (!errs)
        return -ENOMEM;
    calls_transfer_body(cc_http_json_body(req), &ctl, errs);
    if (json_array_size(errs) > 0)
        return cc_http_rest_unprocessable(resp, errs);
    json_decref(errs);
    return calls_run(arg, resp, &ctl, 202);
}

/* The farthest ahead a callback may be scheduled (the router's limit too). */
#define CALLBACK_AHEAD_MS (30LL * 86400 * 1000)

/* "at" of a callback body into ctl->at_ms: an RFC 3339 time in the future, at most
 * CALLBACK_AHEAD_MS ahead; absent = at its turn in the queue. */
static void calls_callback_at(const json_t *v, struct sipedge_ctl *ctl, json_t *errs)
{
    int64_t now = cc_time_now_ms(), at;

    if (!v)
        return;
    if (!json_is_string(v) || cc_time_parse_iso8601(json_string_value(v), &at) < 0)
        calls_error(errs, "/at", "must be an RFC 3339 time, e.g. 2026-11-25T15:00:00Z");
    else if (at <= now || at > now + CALLBACK_AHEAD_MS)
        calls_error(errs, "/at", "must be in the future, at most 30 days ahead");
    else
        ctl->at_ms = at;
}

/* POST /v1/calls/{id}/callback {"number": optional, "at": optional}: the waiting caller is
 * released and called back (agent first, then the customer through the trunk) when the call
 * reaches an agent: at its turn, or from "at" on. */
static int h_call_callback(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    struct sipedge_ctl ctl = {.op = SIPEDGE_CTL_CALLBACK};
    const json_t *doc = cc_http_json_body(req);
    const char *key, *number;
    json_t *errs, *v;

    if (!calls_principal(req, resp, &ctl) || !calls_target(req, resp, &ctl))
        return 0;
    errs = json_array();
    if (!errs)
        return -ENOMEM;
    if (doc && !json_is_object(doc))
        calls_error(errs, "", "must be an object");
    json_object_foreach((json_t *)doc, key, v)
    {
        char field[80];

        if (strcmp(key, "number") == 0 || strcmp(key, "at") == 0)
            continue;
        snprintf(field, sizeof(field), "/%.64s", key);
        calls_error(errs, field, "unknown field");
    }
    v = json_object_get(doc, "number");
    number = json_string_value(v);
    if (v && !calls_number_valid(number))
        calls_error(errs, "/number", "must be digits with an optional leading + (2..20)");
    else if (number)
        snprintf(ctl.target, sizeof(ctl.target), "%s", number);
    calls_callback_at(json_object_get(doc, "at"), &ctl, errs);
    if (json_array_size(errs) > 0)
        return cc_http_rest_unprocessable(resp, errs);
    json_decref(errs);
    return calls_run(arg, resp, &ctl, 202);
}

sipedge_api_calls *sipedge_api_calls_new(cc_http *srv, sipedge_sip *sip)
{
    static const struct cc_http_rest_route routes[] = {
        {"GET", "/v1/calls", h_calls_list, CALLS_ROLES},
        {"GET", "/v1/calls/{interaction_id}", h_call_get, CALLS_ROLES},
        {"POST", "/v1/calls/{interaction_id}/hangup", h_call_hangup, CALLS_ROLES},
        {"POST", "/v1/calls/{interaction_id}/hold", h_call_hold, CALLS_ROLES},
        {"POST", "/v1/calls/{interaction_id}/resume", h_call_resume, CALLS_ROLES},
        {"POST", "/v1/calls/{interaction_id}/transfer", h_call_transfer, CALLS_ROLES},
        {"POST", "/v1/calls/{interaction_id}/callback", h_call_callback, CALLBACK_ROLES},
    };
    sipedge_api_calls *api = calloc(1, sizeof(*api));
    int rc;

    if (!api)
        return NULL;
    api->sip = sip;
    rc = cc_http_rest_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), api);
    if (rc < 0) {
        CC_ERROR("cannot register the call routes: %s", strerror(-rc));
        free(api);
        return NULL;
    }
    return api;
}

void sipedge_api_calls_free(sipedge_api_calls *api)
{
    free(api);
}
