/*
 * Integration tests for sip-edge's administration API (services/sip-edge/sipedge_api.c over
 * sipedge_store.c) against the stack's PostgreSQL: the API runs in-process on a free port and
 * is spoken to over TCP (itest_http). Each test has its own two tenants and numbers
 * (itest_unique), so tests and runs never collide in the shared "sipedge" schema.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_auth.h"
#include "cc_http.h"
#include "cc_time.h"
#include "itest.h"
#include "itest_http.h"
#include "sipedge_api.h"
#include "sipedge_store.h"

#define SA_ADMIN   "sa-admin-token"   /* admin of tenant A */
#define SA_AGENT   "sa-agent-token"   /* agent of tenant A: 403 everywhere */
#define SA_ANALYST "sa-analyst-token" /* analyst of tenant A: reads */
#define SA_OTHER   "sa-other-admin"   /* admin of tenant B */
#define SA_JSON    "Content-Type: application/json\r\n"
#define SA_LIMIT   4096 /* body limit of the test server */

static char sa_tenant_a[64], sa_tenant_b[64], sa_num[24];
static cc_auth *sa_auth;
static sipedge_store *sa_store;
static cc_http *sa_srv;
static sipedge_api *sa_api;
static int sa_port;

static char *sa_auth_spec(void)
{
    static char spec[768];
    char a[65], g[65], n[65], b[65];

    cc_auth_hash_token(SA_ADMIN, a);
    cc_auth_hash_token(SA_AGENT, g);
    cc_auth_hash_token(SA_ANALYST, n);
    cc_auth_hash_token(SA_OTHER, b);
    snprintf(spec, sizeof(spec), "%s:%s:admin,%s:%s:agent:a-1,%s:%s:analyst,%s:%s:admin", a,
             sa_tenant_a, g, sa_tenant_a, n, sa_tenant_a, b, sa_tenant_b);
    return spec;
}

static void sa_setup(void)
{
    char err[256] = "", dir[512];
    unsigned long long r = 0;

    itest_unique(sa_tenant_a, sizeof(sa_tenant_a), "sa-a");
    itest_unique(sa_tenant_b, sizeof(sa_tenant_b), "sa-b");
    getrandom(&r, sizeof(r), 0);
    snprintf(sa_num, sizeof(sa_num), "+98%015llu", r % 1000000000000000ULL);
    sa_auth = cc_auth_new(sa_auth_spec(), err, sizeof(err));
    cr_assert_not_null(sa_auth, "expected the token spec to parse: %s", err);
    sa_store = sipedge_store_new(itest_env("CC_PG_DSN"), 4, 5000);
    cr_assert_not_null(sa_store, "expected a store on CC_PG_DSN");
    snprintf(dir, sizeof(dir), "%s/services/sip-edge/migrations", itest_env("CC_TEST_TOP"));
    cr_assert_eq(sipedge_store_migrate(sa_store, dir), 0, "expected the migrations of %s", dir);
    sa_srv = cc_http_new(&(struct cc_http_config){.service = "sip-edge",
                                                  .addr = "127.0.0.1",
                                                  .threads = 4,
                                                  .body_limit = SA_LIMIT,
                                                  .auth = sa_auth});
    cr_assert_not_null(sa_srv);
    sa_api = sipedge_api_new(sa_srv, sa_store);
    cr_assert_not_null(sa_api, "expected every route registered");
    cr_assert_eq(cc_http_start(sa_srv), 0, "expected the server to start");
    sa_port = cc_http_port(sa_srv);
}

static void sa_teardown(void)
{
    cc_http_free(sa_srv);
    sipedge_api_free(sa_api);
    sipedge_store_free(sa_store);
    cc_auth_free(sa_auth);
}

TestSuite(sipedge_api, .init = sa_setup, .fini = sa_teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------------ */

static void sa_call(const char *method, const char *path, const char *token, const char *extra,
                    const char *body, struct itest_http_reply *r)
{
    itest_http_fetch(sa_port, method, path, token, extra, body, r);
}

/* A call that must answer `status` with a JSON body, returned (json_decref it). */
static json_t *sa_json(const char *method, const char *path, const char *token, const char *body,
                       int status)
{
    struct itest_http_reply r;

    sa_call(method, path, token, body ? SA_JSON : NULL, body, &r);
    return itest_http_expect_json(&r, status);
}

/* A call that must answer the problem `status`; its detail (and errors' fields) into out. */
static void sa_problem(const char *method, const char *path, const char *token, const char *extra,
                       const char *body, int status, char *out, size_t cap)
{
    struct itest_http_reply r;
    json_t *doc, *e;
    size_t i, n;

    sa_call(method, path, token, extra ? extra : (body ? SA_JSON : NULL), body, &r);
    doc = itest_http_expect_problem(&r, status);
    if (out) {
        n = (size_t)snprintf(out, cap, "%s", json_string_value(json_object_get(doc, "detail")));
        json_array_foreach(json_object_get(doc, "errors"), i, e)
        {
            if (n < cap)
                n += (size_t)snprintf(out + n, cap - n, " [%s]",
                                      json_string_value(json_object_get(e, "field")));
        }
    }
    json_decref(doc);
}

static void sa_create_credential(const char *token, const char *user, const char *agent,
                                 const char *domain_field)
{
    char body[512];

    snprintf(body, sizeof(body),
             "{\"username\": \"%s\", \"password\": \"pa55word-%s\", \"agent_id\": \"%s\"%s}", user,
             user, agent, domain_field ? domain_field : "");
    json_decref(sa_json("POST", "/v1/sip/credentials", token, body, 201));
}

/* ---- credentials -------------------------------------------------------------------------- */

Test(sipedge_api, creates_a_credential_and_stores_only_its_ha1)
{
    char body[256], ha1[SIPEDGE_DIGEST_HEX_LEN + 1], hdr[128], want[256];
    struct sipedge_credential c;
    struct itest_http_reply r;
    json_t *doc;

    sa_call("POST", "/v1/sip/credentials", SA_ADMIN, SA_JSON,
            "{\"username\": \"1001\", \"password\": \"Circle Of Life\", \"agent_id\": \"a-1001\"}",
            &r);
    doc = itest_http_expect_json(&r, 201);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "domain")), sa_tenant_a,
                     "expected the domain to default to the tenant id");
    cr_assert_eq(json_integer_value(json_object_get(doc, "version")), 1);
    cr_assert_null(json_object_get(doc, "password"), "expected no password returned");
    cr_assert_null(json_object_get(doc, "ha1"), "expected no HA1 returned");
    cr_assert(strstr(r.body, "Circle") == NULL, "expected the password nowhere in %s", r.body);
    cr_assert_str_eq(itest_http_header(&r, "ETag", hdr, sizeof(hdr)), "\"1\"");
    snprintf(want, sizeof(want), "/v1/sip/credentials/%s/1001", sa_tenant_a);
    cr_assert_str_eq(itest_http_header(&r, "Location", hdr, sizeof(hdr)), want);
    json_decref(doc);

    cr_assert_eq(sipedge_store_credential_get(sa_store, sa_tenant_a, "1001", &c), 0);
    cr_assert_eq(sipedge_digest_ha1("1001", sa_tenant_a, "Circle Of Life", ha1), 0);
    cr_assert_str_eq(c.ha1, ha1, "expected HA1 = MD5(user:domain:password) stored");
    cr_assert_str_eq(c.agent_id, "a-1001");
    cr_assert_str_eq(c.tenant, sa_tenant_a);

    /* an explicit domain is stored lowercase, and is the realm of the HA1 */
    snprintf(body, sizeof(body), ",\"domain\": \"PBX.%s.Example\"", sa_tenant_a);
    sa_create_credential(SA_ADMIN, "1002", "a-1002", body);
    snprintf(want, sizeof(want), "pbx.%s.example", sa_tenant_a);
    cr_assert_eq(sipedge_store_credential_get(sa_store, want, "1002", &c), 0);
    sipedge_digest_ha1("1002", want, "pa55word-1002", ha1);
    cr_assert_str_eq(c.ha1, ha1, "expected the lowercase domain as the realm");
}

Test(sipedge_api, updates_and_deletes_a_credential_under_its_version)
{
    char path[256], ha1[SIPEDGE_DIGEST_HEX_LEN + 1], before[SIPEDGE_DIGEST_HEX_LEN + 1];
    struct sipedge_credential c;
    struct itest_http_reply r;
    json_t *doc;

    sa_create_credential(SA_ADMIN, "2001", "a-2001", NULL);
    sipedge_store_credential_get(sa_store, sa_tenant_a, "2001", &c);
    memcpy(before, c.ha1, sizeof(before));
    snprintf(path, sizeof(path), "/v1/sip/credentials/%s/2001", sa_tenant_a);
    doc = sa_json("GET", path, SA_ANALYST, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "agent_id")), "a-2001");
    json_decref(doc);

    sa_call("PUT", path, SA_ADMIN, SA_JSON "If-Match: \"1\"\r\n",
            "{\"password\": \"new-password\", \"agent_id\": \"a-2002\"}", &r);
    doc = itest_http_expect_json(&r, 200);
    cr_assert_eq(json_integer_value(json_object_get(doc, "version")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "agent_id")), "a-2002");
    json_decref(doc);
    sipedge_store_credential_get(sa_store, sa_tenant_a, "2001", &c);
    sipedge_digest_ha1("2001", sa_tenant_a, "new-password", ha1);
    cr_assert_str_eq(c.ha1, ha1, "expected the new password's HA1");
    cr_assert_str_neq(c.ha1, before);

    sa_problem("PUT", path, SA_ADMIN, SA_JSON "If-Match: \"1\"\r\n", "{\"agent_id\": \"a-9\"}", 409,
               NULL, 0);
    sa_problem("PUT", path, SA_ADMIN, NULL, "{\"agent_id\": \"a-9\", \"version\": 1}", 409, NULL,
               0);
    sa_problem("DELETE", path, SA_ADMIN, "If-Match: \"1\"\r\n", NULL, 409, NULL, 0);
    sa_call("DELETE", path, SA_ADMIN, "If-Match: \"2\"\r\n", NULL, &r);
    cr_assert_eq(r.status, 204, "expected 204 for a delete at the right version, got %d", r.status);
    sa_problem("GET", path, SA_ADMIN, NULL, NULL, 404, NULL, 0);
    cr_assert_eq(sipedge_store_credential_get(sa_store, sa_tenant_a, "2001", &c), -ENOENT);
}

Test(sipedge_api, hides_another_tenants_credentials_and_numbers)
{
    char path[256], body[128];
    json_t *doc;

    sa_create_credential(SA_ADMIN, "3001", "a-3001", NULL);
    snprintf(path, sizeof(path), "/v1/sip/credentials/%s/3001", sa_tenant_a);
    sa_problem("GET", path, SA_OTHER, NULL, NULL, 404, NULL, 0);
    sa_problem("PUT", path, SA_OTHER, NULL, "{\"agent_id\": \"x\"}", 404, NULL, 0);
    sa_problem("DELETE", path, SA_OTHER, NULL, NULL, 404, NULL, 0);
    doc = sa_json("GET", "/v1/sip/credentials", SA_OTHER, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "items")), 0,
                 "expected tenant B to list none of A's credentials");
    json_decref(doc);

    snprintf(body, sizeof(body), "{\"number\": \"%s\", \"queue_id\": \"sales\"}", sa_num);
    json_decref(sa_json("POST", "/v1/sip/dids", SA_ADMIN, body, 201));
    snprintf(path, sizeof(path), "/v1/sip/dids/%%2B%s", sa_num + 1);
    sa_problem("GET", path, SA_OTHER, NULL, NULL, 404, NULL, 0);
    sa_problem("DELETE", path, SA_OTHER, NULL, NULL, 404, NULL, 0);
}

Test(sipedge_api, answers_409_for_names_taken_in_any_tenant)
{
    char body[256], detail[512];

    sa_create_credential(SA_ADMIN, "4001", "a-4001", NULL);
    snprintf(body, sizeof(body),
             "{\"username\": \"4001\", \"password\": \"whatever-1\", \"agent_id\": \"a-x\"}");
    sa_problem("POST", "/v1/sip/credentials", SA_ADMIN, NULL, body, 409, detail, sizeof(detail));
    cr_assert(strstr(detail, "4001") != NULL, "expected the AOR named: %s", detail);
    /* tenant B cannot take a user in tenant A's domain */
    snprintf(body, sizeof(body),
             "{\"username\": \"4002\", \"password\": \"whatever-1\", \"agent_id\": \"b-1\", "
             "\"domain\": \"%s\"}",
             sa_tenant_a);
    sa_problem("POST", "/v1/sip/credentials", SA_OTHER, NULL, body, 409, detail, sizeof(detail));
    cr_assert(strstr(detail, "another tenant") != NULL, "expected the domain refused: %s", detail);
    /* a number reaches one tenant */
    snprintf(body, sizeof(body), "{\"number\": \"%s\", \"queue_id\": \"q1\"}", sa_num);
    json_decref(sa_json("POST", "/v1/sip/dids", SA_ADMIN, body, 201));
    sa_problem("POST", "/v1/sip/dids", SA_OTHER, NULL, body, 409, detail, sizeof(detail));
    cr_assert(strstr(detail, sa_num) != NULL, "expected the number named: %s", detail);
}

Test(sipedge_api, lets_admins_manage_analysts_read_and_agents_nothing)
{
    sa_problem("GET", "/v1/sip/credentials", NULL, NULL, NULL, 401, NULL, 0);
    sa_problem("GET", "/v1/sip/credentials", SA_AGENT, NULL, NULL, 403, NULL, 0);
    sa_problem("GET", "/v1/sip/registrations", SA_AGENT, NULL, NULL, 403, NULL, 0);
    sa_problem("POST", "/v1/sip/dids", SA_AGENT, NULL, "{}", 403, NULL, 0);
    json_decref(sa_json("GET", "/v1/sip/dids", SA_ANALYST, NULL, 200));
    json_decref(sa_json("GET", "/v1/sip/registrations", SA_ANALYST, NULL, 200));
    sa_problem("POST", "/v1/sip/credentials", SA_ANALYST, NULL, "{}", 403, NULL, 0);
}

Test(sipedge_api, names_every_invalid_field_with_422)
{
    char detail[1024];

    sa_problem("POST", "/v1/sip/credentials", SA_ADMIN, NULL,
               "{\"username\": \"bad user\", \"password\": \"short\", \"agent_id\": \"-x\", "
               "\"domain\": \"a/b\", \"colour\": 1}",
               422, detail, sizeof(detail));
    cr_assert(strstr(detail, "[/username]") && strstr(detail, "[/password]") &&
                  strstr(detail, "[/agent_id]") && strstr(detail, "[/domain]") &&
                  strstr(detail, "[/colour]"),
              "expected every bad field named: %s", detail);
    sa_problem("POST", "/v1/sip/credentials", SA_ADMIN, NULL, "{}", 422, detail, sizeof(detail));
    cr_assert(strstr(detail, "[/username]") && strstr(detail, "[/password]"),
              "expected the required fields named: %s", detail);
    sa_problem("POST", "/v1/sip/credentials", SA_ADMIN, NULL, "[]", 422, NULL, 0);
    sa_problem("POST", "/v1/sip/dids", SA_ADMIN, NULL,
               "{\"number\": \"12a\", \"queue_id\": \"q\", \"priority\": 2000}", 422, detail,
               sizeof(detail));
    cr_assert(strstr(detail, "[/number]") && strstr(detail, "[/priority]"),
              "expected number and priority named: %s", detail);
    sa_problem("POST", "/v1/sip/dids", SA_ADMIN, NULL, "{\"number\": \"+1\", \"queue_id\": \"q\"}",
               422, NULL, 0);
}

Test(sipedge_api, answers_400_for_broken_requests)
{
    char path[256];

    sa_problem("POST", "/v1/sip/dids", SA_ADMIN, NULL, "{\"number\": ", 400, NULL, 0);
    sa_problem("GET", "/v1/sip/credentials?limit=0", SA_ADMIN, NULL, NULL, 400, NULL, 0);
    sa_problem("GET", "/v1/sip/dids?cursor=zz", SA_ADMIN, NULL, NULL, 400, NULL, 0);
    sa_problem("GET", "/v1/sip/credentials?cursor=6162", SA_ADMIN, NULL, NULL, 400, NULL, 0);
    sa_problem("GET", "/v1/sip/registrations?agent_id=-bad", SA_ADMIN, NULL, NULL, 400, NULL, 0);
    sa_create_credential(SA_ADMIN, "5001", "a-5001", NULL);
    snprintf(path, sizeof(path), "/v1/sip/credentials/%s/5001", sa_tenant_a);
    sa_problem("PUT", path, SA_ADMIN, SA_JSON "If-Match: soon\r\n", "{\"agent_id\": \"a\"}", 400,
               NULL, 0);
    sa_problem("GET", "/v1/sip/dids/not-a-number", SA_ADMIN, NULL, NULL, 404, NULL, 0);
}

Test(sipedge_api, refuses_a_body_over_the_limit_with_413)
{
    size_t n = SA_LIMIT * 2;
    char *body = malloc(n + 64);

    cr_assert_not_null(body);
    snprintf(body, n + 64, "{\"username\": \"u\", \"password\": \"%0*d\"}", (int)n, 0);
    sa_problem("POST", "/v1/sip/credentials", SA_ADMIN, NULL, body, 413, NULL, 0);
    free(body);
}

/* Walks every page of path with limit 2; returns how many items, names joined in out. */
static size_t sa_walk(const char *path, const char *field, char *out, size_t cap)
{
    char url[2048], cursor[1024] = "";
    size_t total = 0, len = 0;
    json_t *doc, *item;
    size_t i;

    out[0] = '\0';
    for (int pages = 0; pages < 20; pages++) {
        snprintf(url, sizeof(url), "%s%slimit=2%s%s", path, strchr(path, '?') ? "&" : "?",
                 cursor[0] ? "&cursor=" : "", cursor);
        doc = sa_json("GET", url, SA_ADMIN, NULL, 200);
        cr_assert_leq(json_array_size(json_object_get(doc, "items")), 2);
        json_array_foreach(json_object_get(doc, "items"), i, item)
        {
            total++;
            if (len < cap)
                len += (size_t)snprintf(out + len, cap - len, "%s,",
                                        json_string_value(json_object_get(item, field)));
        }
        if (!json_object_get(doc, "next_cursor")) {
            json_decref(doc);
            return total;
        }
        snprintf(cursor, sizeof(cursor), "%s",
                 json_string_value(json_object_get(doc, "next_cursor")));
        json_decref(doc);
    }
    cr_assert_fail("expected the pages to end");
    return total;
}

Test(sipedge_api, pages_through_credentials_and_filters_by_agent)
{
    char names[512];

    sa_create_credential(SA_ADMIN, "6001", "a-1", NULL);
    sa_create_credential(SA_ADMIN, "6002", "a-2", NULL);
    sa_create_credential(SA_ADMIN, "6003", "a-1", NULL);
    sa_create_credential(SA_ADMIN, "6004", "a-3", NULL);
    sa_create_credential(SA_ADMIN, "6005", "a-1", NULL);
    cr_assert_eq(sa_walk("/v1/sip/credentials", "username", names, sizeof(names)), 5);
    cr_assert_str_eq(names, "6001,6002,6003,6004,6005,",
                     "expected every credential once, in order");
    cr_assert_eq(sa_walk("/v1/sip/credentials?agent_id=a-1", "username", names, sizeof(names)), 3);
    cr_assert_str_eq(names, "6001,6003,6005,", "expected the desk phone and softphones of a-1");
}

Test(sipedge_api, manages_numbers_with_plus_signs_in_the_path)
{
    char body[256], path[64], hdr[64], names[256];
    struct sipedge_did d;
    struct itest_http_reply r;
    json_t *doc;

    snprintf(body, sizeof(body), "{\"number\": \"%s\", \"queue_id\": \"sales\", \"priority\": 5}",
             sa_num);
    sa_call("POST", "/v1/sip/dids", SA_ADMIN, SA_JSON, body, &r);
    doc = itest_http_expect_json(&r, 201);
    cr_assert_eq(json_integer_value(json_object_get(doc, "priority")), 5);
    json_decref(doc);
    snprintf(path, sizeof(path), "/v1/sip/dids/%%2B%s", sa_num + 1);
    cr_assert_str_eq(itest_http_header(&r, "Location", hdr, sizeof(hdr)), path);
    sa_call("PUT", path, SA_ADMIN, SA_JSON "If-Match: \"1\"\r\n",
            "{\"queue_id\": \"support\", \"priority\": 9}", &r);
    doc = itest_http_expect_json(&r, 200);
    cr_assert_str_eq(itest_http_header(&r, "ETag", hdr, sizeof(hdr)), "\"2\"");
    json_decref(doc);
    cr_assert_eq(sipedge_store_did_get(sa_store, sa_num, &d), 0);
    cr_assert_str_eq(d.queue_id, "support", "expected the call path to see the new queue");
    cr_assert_eq(d.priority, 9);
    cr_assert_str_eq(d.tenant, sa_tenant_a);
    cr_assert_eq(sa_walk("/v1/sip/dids", "number", names, sizeof(names)), 1);
    sa_call("DELETE", path, SA_ADMIN, NULL, NULL, &r);
    cr_assert_eq(r.status, 204, "expected the number deleted, got %d", r.status);
    cr_assert_eq(sipedge_store_did_get(sa_store, sa_num, &d), -ENOENT);
}

static void sa_bind(const char *user, const char *agent, const char *contact, int64_t expires_ms)
{
    struct sipedge_binding b = {.cseq = 1, .expires_at_ms = expires_ms};

    snprintf(b.tenant, sizeof(b.tenant), "%s", sa_tenant_a);
    snprintf(b.agent_id, sizeof(b.agent_id), "%s", agent);
    snprintf(b.domain, sizeof(b.domain), "%s", sa_tenant_a);
    snprintf(b.username, sizeof(b.username), "%s", user);
    snprintf(b.contact, sizeof(b.contact), "%s", contact);
    snprintf(b.call_id, sizeof(b.call_id), "cid-%s", contact);
    b.updated_at_ms = cc_time_now_ms();
    snprintf(b.source, sizeof(b.source), "127.0.0.1:5070");
    snprintf(b.transport, sizeof(b.transport), "udp");
    cr_assert_eq(sipedge_store_binding_put(sa_store, &b), 0, "expected binding '%s'", contact);
}

Test(sipedge_api, lists_the_tenants_live_registrations)
{
    int64_t now = cc_time_now_ms();
    char names[1024];
    json_t *doc, *item;

    sa_create_credential(SA_ADMIN, "7001", "a-7", NULL);
    sa_create_credential(SA_ADMIN, "7002", "a-8", NULL);
    sa_bind("7001", "a-7", "sip:7001@10.1.0.1:5060;transport=udp", now + 60000);
    sa_bind("7001", "a-7", "sip:7001@10.1.0.2:5060", now + 60000);
    sa_bind("7001", "a-7", "sip:7001@10.1.0.3:5060", now - 1000); /* expired */
    sa_bind("7002", "a-8", "sip:7002@10.1.0.4:5060", now + 60000);
    cr_assert_eq(sa_walk("/v1/sip/registrations", "contact", names, sizeof(names)), 3, "%s", names);
    cr_assert(strstr(names, "10.1.0.3") == NULL, "expected the expired binding left out: %s",
              names);
    cr_assert_eq(sa_walk("/v1/sip/registrations?agent_id=a-8", "contact", names, sizeof(names)), 1);
    doc = sa_json("GET", "/v1/sip/registrations?agent_id=a-8", SA_ANALYST, NULL, 200);
    item = json_array_get(json_object_get(doc, "items"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(item, "transport")), "udp");
    cr_assert_gt(json_integer_value(json_object_get(item, "expires_in_s")), 50);
    json_decref(doc);
    doc = sa_json("GET", "/v1/sip/registrations", SA_OTHER, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "items")), 0,
                 "expected tenant B to see none of A's registrations");
    json_decref(doc);
}

Test(sipedge_api, is_ready_when_postgresql_answers)
{
    struct itest_http_reply r;

    sa_call("GET", "/readyz", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "expected /readyz 200, got %d: %s", r.status, r.body);
}
