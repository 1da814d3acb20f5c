/* sipedge_api: REST handlers of sip-edge's credentials, DIDs and registrations (see the header). */
#include "sipedge_api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cc_http_rest.h"
#include "cc_log.h"
#include "cc_time.h"

#define API_WRITE (CC_HTTP_ROLE(CC_ROLE_ADMIN) | CC_HTTP_ROLE(CC_ROLE_SUPERVISOR))
#define API_READ  (API_WRITE | CC_HTTP_ROLE(CC_ROLE_ANALYST) | CC_HTTP_ROLE(CC_ROLE_SERVICE))

#define USERNAME_MAX     64
#define PASSWORD_MIN     8
#define PASSWORD_MAX     128
#define NUMBER_DIGITS_LO 2
#define NUMBER_DIGITS_HI 20
#define PRIORITY_MAX     1000
#define AOR_MAX          (2 * SIPEDGE_NAME_MAX + 1)

struct sipedge_api {
    sipedge_store *st;
};

/* ---- validation ----------------------------------------------------------------------------- */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* len in min..max, every char alphanumeric or in extra. */
static bool chars_ok(const char *s, size_t min, size_t max, const char *extra)
{
    size_t len = s ? strlen(s) : 0;

    if (!s || len < min || len > max)
        return false;
    for (const char *p = s; *p; p++)
        if (!is_alnum(*p) && !strchr(extra, *p))
            return false;
    return true;
}

static bool username_valid(const char *s)
{
    return chars_ok(s, 1, USERNAME_MAX, "._-");
}

static bool domain_valid(const char *s)
{
    return chars_ok(s, 1, SIPEDGE_NAME_MAX, "._-");
}

/* agent and queue ids: the router's id rule, an alphanumeric first. */
static bool id_valid(const char *s)
{
    return chars_ok(s, 1, SIPEDGE_ID_MAX, "_-") && is_alnum(s[0]);
}

static bool number_valid(const char *s)
{
    if (!s)
        return false;
    if (*s == '+')
        s++;
    return chars_ok(s, NUMBER_DIGITS_LO, NUMBER_DIGITS_HI, "") &&
           strspn(s, "0123456789") == strlen(s);
}

static bool password_valid(const char *s)
{
    size_t len = strlen(s);

    if (len < PASSWORD_MIN || len > PASSWORD_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static void field_error(json_t *errs, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends {field: "/<field>", message} to errs. */
static void field_error(json_t *errs, const char *field, const char *fmt, ...)
{
    char pointer[128], message[256];
    va_list ap;

    snprintf(pointer, sizeof(pointer), "%s%s", field[0] ? "/" : "", field);
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    json_array_append_new(errs, json_pack("{s:s, s:s}", "field", pointer, "message", message));
}

/* Every member of doc not in allowed (NULL-terminated) is an error. */
static void reject_unknown(const json_t *doc, const char *const *allowed, json_t *errs)
{
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)doc, key, val)
    {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i])
            field_error(errs, key, "unknown field");
    }
}

/* The string member key: NULL when absent (an error if required) or invalid (an error). */
static const char *get_str(const json_t *doc, const char *key, bool required,
                           bool (*valid)(const char *), const char *rule, json_t *errs)
{
    const json_t *v = json_object_get(doc, key);

    if (!v) {
        if (required)
            field_error(errs, key, "is required");
        return NULL;
    }
    if (!json_is_string(v) || !valid(json_string_value(v))) {
        field_error(errs, key, "must be %s", rule);
        return NULL;
    }
    return json_string_value(v);
}

/* The optional integer member key in lo..hi (def when absent). */
static long long get_int(const json_t *doc, const char *key, long long lo, long long hi,
                         long long def, json_t *errs)
{
    const json_t *v = json_object_get(doc, key);

    if (!v)
        return def;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        field_error(errs, key, "must be an integer %lld..%lld", lo, hi);
        return def;
    }
    return json_integer_value(v);
}

/* A body that must be an object: false (answered 422) when it is not. */
static bool body_object(struct cc_http_resp *resp, const json_t *doc)
{
    json_t *errs;

    if (json_is_object(doc))
        return true;
    errs = json_array();
    field_error(errs, "", "the body must be a JSON object");
    cc_http_rest_unprocessable(resp, errs);
    return false;
}

/* Answers 422 when errs holds errors (and steals it); false then. */
static bool no_errors(struct cc_http_resp *resp, json_t *errs)
{
    if (json_array_size(errs) == 0) {
        json_decref(errs);
        return true;
    }
    cc_http_rest_unprocessable(resp, errs);
    return false;
}

/* The start of every write: the body must be an object (else 422), a PUT's precondition
 * (version non-NULL: If-Match, else the body's "version"; 0 = unconditional) well-formed (else
 * 400). Returns the field-error array with the unknown members already in it, or NULL when
 * answered. */
static json_t *body_start(struct cc_http_req *req, struct cc_http_resp *resp, const json_t *doc,
                          const char *const *allowed, long long *version)
{
    json_t *errs;

    if (!body_object(resp, doc))
        return NULL;
    if (version && !cc_http_rest_if_match(req, resp, version))
        return NULL;
    errs = json_array();
    if (!errs)
        return NULL;
    if (version && *version == 0)
        *version = get_int(doc, "version", 1, INT64_MAX, 0, errs);
    reject_unknown(doc, allowed, errs);
    return errs;
}

/* ---- answers -------------------------------------------------------------------------------- */

static const char *tenant_of(const struct cc_http_req *req)
{
    return cc_http_principal(req)->tenant;
}

static json_t *time_json(int64_t ms)
{
    char text[32];

    return cc_time_format_iso8601(ms, text) == 0 ? json_string(text) : json_null();
}

static json_t *credential_json(const struct sipedge_credential_row *r)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:o, s:o}", "domain", r->c.domain, "username",
                     r->c.username, "agent_id", r->c.agent_id, "version", (json_int_t)r->version,
                     "created_at", time_json(r->created_ms), "updated_at",
                     time_json(r->updated_ms));
}

static json_t *did_json(const struct sipedge_did_row *r)
{
    return json_pack("{s:s, s:s, s:i, s:I, s:o, s:o}", "number", r->d.number, "queue_id",
                     r->d.queue_id, "priority", r->d.priority, "version", (json_int_t)r->version,
                     "created_at", time_json(r->created_ms), "updated_at",
                     time_json(r->updated_ms));
}

static json_t *binding_json(const struct sipedge_binding *b, int64_t now_ms)
{
    char aor[AOR_MAX + 8];
    int64_t left = (b->expires_at_ms - now_ms) / 1000;

    snprintf(aor, sizeof(aor), "sip:%s@%s", b->username, b->domain);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:o, s:s, s:s, s:s}", "agent_id",
                     b->agent_id, "domain", b->domain, "username", b->username, "aor", aor,
                     "contact", b->contact, "expires_at", time_json(b->expires_at_ms),
                     "expires_in_s", (json_int_t)(left > 0 ? left : 0), "updated_at",
                     time_json(b->updated_at_ms), "user_agent", b->user_agent, "source", b->source,
                     "transport", b->transport);
}

/* 200/201 with the resource, its ETag, and on 201 its Location. */
static int resource_answer(struct cc_http_resp *resp, int status, json_t *doc, long long version,
                           const char *location)
{
    cc_http_rest_etag(resp, version);
    if (status == 201)
        cc_http_add_header(resp, "Location", location);
    return cc_http_json(resp, status, doc);
}

/* Appends the JSON of n elements of size elem (made by to_json) to a new array and answers
 * the page; frees list. */
static int list_answer(struct cc_http_resp *resp, void *list, size_t n, size_t elem,
                       json_t *(*to_json)(const void *, int64_t), size_t limit,
                       cc_http_rest_key_fn key_of)
{
    int64_t now = cc_time_now_ms();
    json_t *items = json_array();

    for (size_t i = 0; items && i < n; i++) {
        if (json_array_append_new(items, to_json((char *)list + i * elem, now)) < 0) {
            json_decref(items);
            items = NULL;
        }
    }
    free(list);
    return cc_http_rest_page_answer(resp, items, limit, key_of);
}

/* ---- credentials ---------------------------------------------------------------------------- */

static json_t *credential_any_json(const void *r, int64_t now)
{
    (void)now;
    return credential_json(r);
}

/* Keyset key "domain/username" (neither may hold '/'). */
static const char *credential_key(const json_t *item, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", json_string_value(json_object_get(item, "domain")),
             json_string_value(json_object_get(item, "username")));
    return buf;
}

/* Splits a decoded "a/b[/rest]" key in place; false when a part is missing. */
static bool split_key(char *key, char **parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        parts[i] = key;
        if (i + 1 < n) {
            key = strchr(key, '/');
            if (!key)
                return false;
            *key++ = '\0';
        }
    }
    return true;
}

static bool cursor_invalid(struct cc_http_resp *resp)
{
    cc_http_problem(resp, 400, NULL, "'cursor' is not a cursor of this list");
    return false;
}

/* ?agent_id= (NULL when absent); false: invalid, answered 400. */
static bool agent_filter(struct cc_http_req *req, struct cc_http_resp *resp, const char **agent)
{
    *agent = cc_http_query(req, "agent_id");
    if (*agent && !id_valid(*agent)) {
        cc_http_problem(resp, 400, NULL, "'agent_id' is not an agent id");
        return false;
    }
    return true;
}

static int h_credentials_list(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    sipedge_api *api = arg;
    struct sipedge_credential_row *list;
    struct cc_http_page pa;
    char *key[2] = {NULL, NULL};
    const char *agent;
    size_t n;
    int rc;

    if (!cc_http_rest_page_args(req, resp, &pa) || !agent_filter(req, resp, &agent))
        return 0;
    if (pa.after &&
        (!split_key(pa.after_buf, key, 2) || !domain_valid(key[0]) || !username_valid(key[1])))
        return cursor_invalid(resp);
    rc = sipedge_store_credential_list(api->st, tenant_of(req), agent, key[0], key[1], pa.limit + 1,
                                       &list, &n);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "credential", "");
    return list_answer(resp, list, n, sizeof(*list), credential_any_json, pa.limit, credential_key);
}

static int h_credential_create(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    static const char *const allowed[] = {"username", "password", "agent_id", "domain", NULL};
    sipedge_api *api = arg;
    const json_t *doc = cc_http_json_body(req);
    struct sipedge_credential_row row = {0};
    const char *user, *pass, *agent, *domain;
    char location[AOR_MAX + 32];
    json_t *errs;
    int rc;

    errs = body_start(req, resp, doc, allowed, NULL);
    if (!errs)
        return 0;
    user = get_str(doc, "username", true, username_valid, "1..64 of [A-Za-z0-9._-]", errs);
    pass = get_str(doc, "password", true, password_valid,
                   "8..128 characters without control characters", errs);
    agent = get_str(doc, "agent_id", true, id_valid, "an agent id ([A-Za-z0-9][A-Za-z0-9_-]{0,63})",
                    errs);
    domain = get_str(doc, "domain", false, domain_valid, "1..128 of [A-Za-z0-9._-]", errs);
    if (!no_errors(resp, errs))
        return 0;
    snprintf(row.c.tenant, sizeof(row.c.tenant), "%s", tenant_of(req));
    snprintf(row.c.domain, sizeof(row.c.domain), "%s", domain ? domain : tenant_of(req));
    for (char *p = row.c.domain; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    snprintf(row.c.username, sizeof(row.c.username), "%s", user);
    snprintf(row.c.agent_id, sizeof(row.c.agent_id), "%s", agent);
    /* the realm is the stored (lowercase) domain: the registrar challenges with exactly that */
    if (sipedge_digest_ha1(user, row.c.domain, pass, row.c.ha1) < 0)
        return -EIO;
    rc = sipedge_store_credential_create(api->st, &row);
    if (rc == -EPERM)
        return cc_http_problem(resp, 409, NULL, "domain '%s' belongs to another tenant",
                               row.c.domain);
    if (rc < 0) {
        snprintf(location, sizeof(location), "%s/%s", row.c.domain, user);
        return cc_http_rest_store_error(resp, rc, "credential", location);
    }
    CC_INFO_CTX(&(struct cc_log_ctx){.agent_id = row.c.agent_id},
                "sip credential '%s@%s' created in tenant '%s'", row.c.username, row.c.domain,
                row.c.tenant);
    snprintf(location, sizeof(location), "/v1/sip/credentials/%s/%s", row.c.domain, row.c.username);
    return resource_answer(resp, 201, credential_json(&row), row.version, location);
}

/* The {domain}/{username} of the path; false when they cannot name anything (answered 404). */
static bool aor_args(struct cc_http_req *req, struct cc_http_resp *resp, const char **domain,
                     const char **user)
{
    *domain = cc_http_param(req, "domain");
    *user = cc_http_param(req, "username");
    if (domain_valid(*domain) && username_valid(*user))
        return true;
    cc_http_problem(resp, 404, NULL, "no credential '%.128s/%.64s'", *domain, *user);
    return false;
}

static int h_credential_get(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    sipedge_api *api = arg;
    struct sipedge_credential_row row;
    const char *domain, *user;
    char aor[AOR_MAX + 1];
    int rc;

    if (!aor_args(req, resp, &domain, &user))
        return 0;
    rc = sipedge_store_credential_read(api->st, tenant_of(req), domain, user, &row);
    if (rc < 0) {
        snprintf(aor, sizeof(aor), "%s/%s", domain, user);
        return cc_http_rest_store_error(resp, rc, "credential", aor);
    }
    return resource_answer(resp, 200, credential_json(&row), row.version, NULL);
}

/* A path-named member echoed in the body must match the path. */
static void same_as_path(const json_t *doc, const char *key, const char *path_value, json_t *errs)
{
    const json_t *v = json_object_get(doc, key);

    if (v && (!json_is_string(v) || strcasecmp(json_string_value(v), path_value) != 0))
        field_error(errs, key, "differs from the path (it cannot be changed)");
}

static int h_credential_update(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    static const char *const allowed[] = {"password", "agent_id",   "version",    "domain",
                                          "username", "created_at", "updated_at", NULL};
    sipedge_api *api = arg;
    const json_t *doc = cc_http_json_body(req);
    struct sipedge_credential_row row;
    char ha1[SIPEDGE_DIGEST_HEX_LEN + 1], aor[AOR_MAX + 1], lower[SIPEDGE_NAME_MAX + 1];
    const char *domain, *user, *pass, *agent;
    long long version;
    json_t *errs;
    int rc;

    if (!aor_args(req, resp, &domain, &user) ||
        !(errs = body_start(req, resp, doc, allowed, &version)))
        return 0;
    same_as_path(doc, "domain", domain, errs);
    same_as_path(doc, "username", user, errs);
    pass = get_str(doc, "password", false, password_valid,
                   "8..128 characters without control characters", errs);
    agent = get_str(doc, "agent_id", false, id_valid,
                    "an agent id ([A-Za-z0-9][A-Za-z0-9_-]{0,63})", errs);
    if (!json_object_get(doc, "password") && !json_object_get(doc, "agent_id"))
        field_error(errs, "", "give 'password' and/or 'agent_id'");
    if (!no_errors(resp, errs))
        return 0;
    snprintf(lower, sizeof(lower), "%s", domain);
    for (char *p = lower; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    if (pass && sipedge_digest_ha1(user, lower, pass, ha1) < 0)
        return -EIO;
    rc = sipedge_store_credential_update(api->st, tenant_of(req), lower, user, agent,
                                         pass ? ha1 : NULL, version, &row);
    if (rc < 0) {
        snprintf(aor, sizeof(aor), "%s/%s", lower, user);
        return cc_http_rest_store_error(resp, rc, "credential", aor);
    }
    CC_INFO_CTX(&(struct cc_log_ctx){.agent_id = row.c.agent_id},
                "sip credential '%s@%s' updated in tenant '%s' (%s%s, version %lld)", user, lower,
                tenant_of(req), pass ? "password" : "",
                agent ? (pass ? " and agent" : "agent") : "", row.version);
    return resource_answer(resp, 200, credential_json(&row), row.version, NULL);
}

static int h_credential_delete(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    sipedge_api *api = arg;
    const char *domain, *user;
    char aor[AOR_MAX + 1];
    long long version;
    int rc;

    if (!aor_args(req, resp, &domain, &user) || !cc_http_rest_if_match(req, resp, &version))
        return 0;
    rc = sipedge_store_credential_delete(api->st, tenant_of(req), domain, user, version);
    snprintf(aor, sizeof(aor), "%s/%s", domain, user);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "credential", aor);
    CC_INFO("sip credential '%s' deleted in tenant '%s' (with its registrations)", aor,
            tenant_of(req));
    return cc_http_rest_no_content(resp);
}

/* ---- DIDs ----------------------------------------------------------------------------------- */

static json_t *did_any_json(const void *r, int64_t now)
{
    (void)now;
    return did_json(r);
}

static const char *did_key(const json_t *item, char *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return json_string_value(json_object_get(item, "number"));
}

static int h_dids_list(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    sipedge_api *api = arg;
    struct sipedge_did_row *list;
    struct cc_http_page pa;
    size_t n;
    int rc;

    if (!cc_http_rest_page_args(req, resp, &pa))
        return 0;
    if (pa.after && !number_valid(pa.after))
        return cursor_invalid(resp);
    rc = sipedge_store_did_list(api->st, tenant_of(req), pa.after, pa.limit + 1, &list, &n);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "number", "");
    return list_answer(resp, list, n, sizeof(*list), did_any_json, pa.limit, did_key);
}

#define NUMBER_RULE "a number: an optional '+' and 2..20 digits"

static int h_did_create(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    static const char *const allowed[] = {"number", "queue_id", "priority", NULL};
    sipedge_api *api = arg;
    const json_t *doc = cc_http_json_body(req);
    struct sipedge_did_row row = {0};
    const char *number, *queue;
    char location[128];
    json_t *errs;
    int rc;

    errs = body_start(req, resp, doc, allowed, NULL);
    if (!errs)
        return 0;
    number = get_str(doc, "number", true, number_valid, NUMBER_RULE, errs);
    queue = get_str(doc, "queue_id", true, id_valid, "a queue id", errs);
    row.d.priority = (int)get_int(doc, "priority", 0, PRIORITY_MAX, 0, errs);
    if (!no_errors(resp, errs))
        return 0;
    snprintf(row.d.number, sizeof(row.d.number), "%s", number);
    snprintf(row.d.tenant, sizeof(row.d.tenant), "%s", tenant_of(req));
    snprintf(row.d.queue_id, sizeof(row.d.queue_id), "%s", queue);
    rc = sipedge_store_did_create(api->st, &row);
    if (rc == -EEXIST)
        return cc_http_problem(resp, 409, NULL, "number '%s' is already taken", number);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "number", number);
    CC_INFO("number '%s' created in tenant '%s' (queue '%s', priority %d)", row.d.number,
            row.d.tenant, row.d.queue_id, row.d.priority);
    snprintf(location, sizeof(location), "/v1/sip/dids/%s%s", row.d.number[0] == '+' ? "%2B" : "",
             row.d.number + (row.d.number[0] == '+'));
    return resource_answer(resp, 201, did_json(&row), row.version, location);
}

/* The {number} of the path; false when it cannot name one (answered 404). */
static bool number_arg(struct cc_http_req *req, struct cc_http_resp *resp, const char **number)
{
    *number = cc_http_param(req, "number");
    if (number_valid(*number))
        return true;
    cc_http_problem(resp, 404, NULL, "no number '%.32s'", *number);
    return false;
}

static int h_did_get(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    sipedge_api *api = arg;
    struct sipedge_did_row row;
    const char *number;
    int rc;

    if (!number_arg(req, resp, &number))
        return 0;
    rc = sipedge_store_did_read(api->st, tenant_of(req), number, &row);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "number", number);
    return resource_answer(resp, 200, did_json(&row), row.version, NULL);
}

static int h_did_replace(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    static const char *const allowed[] = {"number",     "queue_id",   "priority", "version",
                                          "created_at", "updated_at", NULL};
    sipedge_api *api = arg;
    const json_t *doc = cc_http_json_body(req);
    struct sipedge_did_row row;
    const char *number, *queue;
    long long version;
    json_t *errs;
    int rc, priority;

    if (!number_arg(req, resp, &number) || !(errs = body_start(req, resp, doc, allowed, &version)))
        return 0;
    same_as_path(doc, "number", number, errs);
    queue = get_str(doc, "queue_id", true, id_valid, "a queue id", errs);
    priority = (int)get_int(doc, "priority", 0, PRIORITY_MAX, 0, errs);
    if (!no_errors(resp, errs))
        return 0;
    rc = sipedge_store_did_update(api->st, tenant_of(req), number, queue, priority, version, &row);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "number", number);
    CC_INFO("number '%s' updated in tenant '%s' (queue '%s', priority %d, version %lld)", number,
            tenant_of(req), row.d.queue_id, row.d.priority, row.version);
    return resource_answer(resp, 200, did_json(&row), row.version, NULL);
}

static int h_did_delete(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    sipedge_api *api = arg;
    const char *number;
    long long version;
    int rc;

    if (!number_arg(req, resp, &number) || !cc_http_rest_if_match(req, resp, &version))
        return 0;
    rc = sipedge_store_did_delete(api->st, tenant_of(req), number, version);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "number", number);
    CC_INFO("number '%s' deleted in tenant '%s'", number, tenant_of(req));
    return cc_http_rest_no_content(resp);
}

/* ---- registrations -------------------------------------------------------------------------- */

static json_t *binding_any_json(const void *b, int64_t now)
{
    return binding_json(b, now);
}

/* Keyset key "domain/username/contact" (only the contact may hold '/'). */
static const char *binding_key(const json_t *item, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s/%s", json_string_value(json_object_get(item, "domain")),
             json_string_value(json_object_get(item, "username")),
             json_string_value(json_object_get(item, "contact")));
    return buf;
}

static int h_registrations(struct cc_http_req *req, struct cc_http_resp *resp, void *arg)
{
    sipedge_api *api = arg;
    struct sipedge_binding *list;
    struct cc_http_page pa;
    char *key[3] = {NULL, NULL, NULL};
    const char *agent;
    size_t n;
    int rc;

    if (!cc_http_rest_page_args(req, resp, &pa) || !agent_filter(req, resp, &agent))
        return 0;
    if (pa.after && (!split_key(pa.after_buf, key, 3) || !domain_valid(key[0]) ||
                     !username_valid(key[1]) || !key[2][0]))
        return cursor_invalid(resp);
    rc = sipedge_store_binding_list(api->st, tenant_of(req), agent, cc_time_now_ms(), key[0],
                                    key[1], key[2], pa.limit + 1, &list, &n);
    if (rc < 0)
        return cc_http_rest_store_error(resp, rc, "registration", "");
    return list_answer(resp, list, n, sizeof(*list), binding_any_json, pa.limit, binding_key);
}

/* ---- registration of the routes ------------------------------------------------------------- */

static bool ready(void *arg, char *why, size_t len)
{
    const sipedge_api *api = arg;

    return sipedge_store_ready(api->st, why, len);
}

sipedge_api *sipedge_api_new(cc_http *srv, sipedge_store *st)
{
    static const struct cc_http_rest_route routes[] = {
        {"GET", "/v1/sip/credentials", h_credentials_list, API_READ},
        {"POST", "/v1/sip/credentials", h_credential_create, API_WRITE},
        {"GET", "/v1/sip/credentials/{domain}/{username}", h_credential_get, API_READ},
        {"PUT", "/v1/sip/credentials/{domain}/{username}", h_credential_update, API_WRITE},
        {"DELETE", "/v1/sip/credentials/{domain}/{username}", h_credential_delete, API_WRITE},
        {"GET", "/v1/sip/dids", h_dids_list, API_READ},
        {"POST", "/v1/sip/dids", h_did_create, API_WRITE},
        {"GET", "/v1/sip/dids/{number}", h_did_get, API_READ},
        {"PUT", "/v1/sip/dids/{number}", h_did_replace, API_WRITE},
        {"DELETE", "/v1/sip/dids/{number}", h_did_delete, API_WRITE},
        {"GET", "/v1/sip/registrations", h_registrations, API_READ},
    };
    sipedge_api *api = calloc(1, sizeof(*api));
    int rc;

    if (!api)
        return NULL;
    api->st = st;
    rc = cc_http_rest_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), api);
    if (rc < 0) {
        CC_ERROR("sipedge api: cannot register routes: %s", strerror(-rc));
        free(api);
        return NULL;
    }
    cc_http_set_ready_check(srv, ready, api);
    return api;
}

void sipedge_api_free(sipedge_api *api)
{
    free(api);
}
