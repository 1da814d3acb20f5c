/*
 * Integration tests for the router's configuration API (services/router/router_api.c, store,
 * model) against the real PostgreSQL of the stack: the API runs in-process on a free port and
 * is spoken to over TCP (itest_http). Every test has its own two tenants (itest_unique), so
 * tests and runs never collide in the shared "router" schema. The last test runs the real
 * cc-router binary.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_http.h"
#include "itest.h"
#include "itest_http.h"
#include "router_api.h"
#include "router_store.h"

#define RT_ADMIN "rt-admin-token"       /* admin of tenant A */
#define RT_AGENT "rt-agent-token"       /* agent of tenant A: reads only */
#define RT_OTHER "rt-other-admin-token" /* admin of tenant B */
#define RT_JSON  "Content-Type: application/json\r\n"
#define RT_MERGE "Content-Type: application/merge-patch+json\r\n"

static char rt_tenant_a[64], rt_tenant_b[64];
static cc_auth *rt_auth;
static router_store *rt_store;
static cc_http *rt_srv;
static router_api *rt_api;
static int rt_port;

static char *rt_auth_spec(void)
{
    static char spec[512];
    char a[65], g[65], b[65];

    cc_auth_hash_token(RT_ADMIN, a);
    cc_auth_hash_token(RT_AGENT, g);
    cc_auth_hash_token(RT_OTHER, b);
    snprintf(spec, sizeof(spec), "%s:%s:admin,%s:%s:agent:a-1,%s:%s:admin", a, rt_tenant_a, g,
             rt_tenant_a, b, rt_tenant_b);
    return spec;
}

static void rt_migrations_dir(char *buf, size_t len)
{
    snprintf(buf, len, "%s/services/router/migrations", itest_env("CC_TEST_TOP"));
}

static void rt_setup(void)
{
    char err[256] = "", dir[512];

    itest_unique(rt_tenant_a, sizeof(rt_tenant_a), "rt-a");
    itest_unique(rt_tenant_b, sizeof(rt_tenant_b), "rt-b");
    rt_auth = cc_auth_new(rt_auth_spec(), err, sizeof(err));
    cr_assert_not_null(rt_auth, "expected the token spec to parse: %s", err);
    rt_store = router_store_new(itest_env("CC_PG_DSN"), 4, 5000);
    cr_assert_not_null(rt_store, "expected a store on CC_PG_DSN");
    rt_migrations_dir(dir, sizeof(dir));
    cr_assert_eq(router_store_migrate(rt_store, dir), 0, "expected the migrations of %s", dir);
    rt_srv = cc_http_new(&(struct cc_http_config){
        .service = "router", .addr = "127.0.0.1", .threads = 4, .auth = rt_auth});
    cr_assert_not_null(rt_srv);
    rt_api = router_api_new(rt_srv, rt_store);
    cr_assert_not_null(rt_api, "expected every route registered");
    cr_assert_eq(cc_http_start(rt_srv), 0, "expected the server to start");
    rt_port = cc_http_port(rt_srv);
}

static void rt_teardown(void)
{
    cc_http_free(rt_srv);
    router_api_free(rt_api);
    router_store_free(rt_store);
    cc_auth_free(rt_auth);
}

TestSuite(router_api, .init = rt_setup, .fini = rt_teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------------ */

static void rt_call(const char *method, const char *path, const char *token, const char *extra,
                    const char *body, struct itest_http_reply *r)
{
    itest_http_fetch(rt_port, method, path, token, extra, body, r);
}

/* A call that must answer `status` with a JSON body, returned (json_decref it). */
static json_t *rt_json(const char *method, const char *path, const char *token, const char *body,
                       int status)
{
    struct itest_http_reply r;

    rt_call(method, path, token, body ? RT_JSON : NULL, body, &r);
    return itest_http_expect_json(&r, status);
}

/* A call that must answer the problem `status`; returns its detail's copy in out. */
static void rt_problem(const char *method, const char *path, const char *token, const char *extra,
                       const char *body, int status, char *detail, size_t cap)
{
    struct itest_http_reply r;
    json_t *doc;

    rt_call(method, path, token, extra, body, &r);
    doc = itest_http_expect_problem(&r, status);
    if (detail)
        snprintf(detail, cap, "%s", json_string_value(json_object_get(doc, "detail")));
    json_decref(doc);
}

static void rt_create_agent(const char *id)
{
    char body[256];

    snprintf(body, sizeof(body), "{\"id\": \"%s\", \"name\": \"Agent %s\"}", id, id);
    json_decref(rt_json("POST", "/v1/agents", RT_ADMIN, body, 201));
}

static void rt_create_queue(const char *id, const char *extra_fields)
{
    char body[1024];

    snprintf(body, sizeof(body),
             "{\"id\": \"%s\", \"name\": \"Queue %s\", \"channels\": [\"voice\"], \"strategy\": "
             "\"longest_idle\"%s}",
             id, id, extra_fields ? extra_fields : "");
    json_decref(rt_json("POST", "/v1/queues", RT_ADMIN, body, 201));
}

static long long rt_version(const json_t *doc)
{
    return json_integer_value(json_object_get(doc, "version"));
}

/* ---- CRUD --------------------------------------------------------------------------------- */

Test(router_api, creates_reads_replaces_and_deletes_an_agent)
{
    struct itest_http_reply r;
    char hdr[128];
    json_t *doc;

    rt_call("POST", "/v1/agents", RT_ADMIN, RT_JSON,
            "{\"id\": \"alice\", \"name\": \"Alice\", \"capacity\": {\"chat\": 4}, \"skills\": "
            "[{\"skill\": \"lang_de\", \"proficiency\": 4}]}",
            &r);
    doc = itest_http_expect_json(&r, 201);
    cr_assert_str_eq(itest_http_header(&r, "Location", hdr, sizeof(hdr)), "/v1/agents/alice");
    cr_assert_str_eq(itest_http_header(&r, "ETag", hdr, sizeof(hdr)), "\"1\"");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "capacity"), "chat")), 4);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "capacity"), "email")), 5,
                 "expected the default email capacity 5");
    json_decref(doc);

    doc = rt_json("GET", "/v1/agents/alice", RT_AGENT, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "name")), "Alice");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(doc, "skills"), 0), "proficiency")),
                 4, "expected the skill stored");
    json_decref(doc);

    doc =
        rt_json("PUT", "/v1/agents/alice", RT_ADMIN,
                "{\"name\": \"Alice B.\", \"enabled\": false, \"skills\": [{\"skill\": "
                "\"billing\", \"proficiency\": 2}, {\"skill\": \"lang_en\", \"proficiency\": 5}]}",
                200);
    cr_assert_eq(rt_version(doc), 2, "expected version 2 after a replace");
    json_decref(doc);
    doc = rt_json("GET", "/v1/agents/alice", RT_ADMIN, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "skills")), 2, "expected skills replaced");
    cr_assert(json_is_false(json_object_get(doc, "enabled")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "capacity"), "chat")), 3,
                 "expected a full replace to reset the omitted capacity to its default");
    json_decref(doc);

    rt_call("DELETE", "/v1/agents/alice", RT_ADMIN, NULL, NULL, &r);
    cr_assert_eq(r.status, 204, "expected 204, got %d: %s", r.status, r.body);
    rt_problem("GET", "/v1/agents/alice", RT_ADMIN, NULL, NULL, 404, NULL, 0);
    rt_problem("DELETE", "/v1/agents/alice", RT_ADMIN, NULL, NULL, 404, NULL, 0);
    rt_problem("PUT", "/v1/agents/alice", RT_ADMIN, RT_JSON, "{\"name\": \"x\"}", 404, NULL, 0);
}

Test(router_api, makes_a_uuid_v7_id_when_the_body_has_none)
{
    json_t *doc = rt_json("POST", "/v1/agents", RT_ADMIN, "{\"name\": \"Nameless\"}", 201);
    const char *id = json_string_value(json_object_get(doc, "id"));

    cr_assert(id && strlen(id) == 36 && id[14] == '7', "expected a UUIDv7 id, got '%s'", id);
    json_decref(doc);
}

Test(router_api, refuses_a_duplicate_id_with_409)
{
    char detail[256];

    rt_create_agent("dup");
    rt_problem("POST", "/v1/agents", RT_ADMIN, RT_JSON, "{\"id\": \"dup\", \"name\": \"x\"}", 409,
               detail, sizeof(detail));
    cr_assert(strstr(detail, "'dup'") != NULL, "expected the id named in '%s'", detail);
}

Test(router_api, creates_a_queue_with_schedule_tiers_and_skills)
{
    json_t *doc;

    rt_create_queue("spill", NULL);
    doc =
        rt_json("POST", "/v1/queues", RT_ADMIN,
                "{\"id\": \"sales\", \"name\": \"Sales\", \"channels\": [\"chat\", \"voice\"], "
                "\"strategy\": \"ring_progressive\", \"priority\": 10, \"wrapup_s\": 15, "
                "\"max_wait_s\": 120, \"overflow_queue_id\": \"spill\", \"no_agent_action\": "
                "\"overflow\", \"timezone\": \"America/New_York\", \"opening_hours\": [{\"day\": "
                "1, \"open\": \"09:00\", \"close\": \"17:30\"}, {\"day\": 6, \"open\": \"22:00\", "
                "\"close\": \"24:00\"}], \"holidays\": [{\"date\": \"2026-07-04\", \"name\": "
                "\"Independence Day\"}], \"closed_action\": \"overflow\", \"tier_rules\": "
                "[{\"level\": 2, \"after_s\": 30}, {\"level\": 3, \"after_s\": 90}], \"skills\": "
                "[{\"skill\": \"lang_en\", \"min_proficiency\": 3}]}",
                201);
    json_decref(doc);
    doc = rt_json("GET", "/v1/queues/sales", RT_AGENT, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "timezone")), "America/New_York");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "overflow_queue_id")), "spill");
    cr_assert_eq(json_array_size(json_object_get(doc, "opening_hours")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(doc, "opening_hours"), 1), "close")),
                     "24:00");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(doc, "holidays"), 0), "date")),
                     "2026-07-04");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(doc, "tier_rules"), 1), "after_s")),
                 90);
    cr_assert_eq(json_array_size(json_object_get(doc, "channels")), 2);
    json_decref(doc);
}

/* ---- validation ---------------------------------------------------------------------------- */

Test(router_api, refuses_invalid_fields_with_422_naming_each_field)
{
    struct itest_http_reply r;
    json_t *doc, *errors;
    char fields[512] = "";

    rt_call("POST", "/v1/queues", RT_ADMIN, RT_JSON,
            "{\"id\": \"q 1\", \"name\": \"Q\", \"channels\": [\"voice\"], \"strategy\": "
            "\"fifo\", \"timezone\": \"Europe/Atlantis\", \"colour\": \"red\"}",
            &r);
    doc = itest_http_expect_problem(&r, 422);
    errors = json_object_get(doc, "errors");
    for (size_t i = 0; i < json_array_size(errors); i++) {
        strcat(fields, json_string_value(json_object_get(json_array_get(errors, i), "field")));
        strcat(fields, " ");
    }
    cr_assert(strstr(fields, "/id ") && strstr(fields, "/strategy ") &&
                  strstr(fields, "/timezone ") && strstr(fields, "/colour "),
              "expected /id, /strategy, /timezone (unknown to PostgreSQL) and /colour, got: %s",
              fields);
    json_decref(doc);

    rt_problem("POST", "/v1/agents", RT_ADMIN, RT_JSON, "[1, 2]", 422, NULL, 0);
    rt_problem("POST", "/v1/agents", RT_ADMIN, RT_JSON, "{\"name\": ", 400, NULL, 0);
    rt_problem("POST", "/v1/agents", RT_ADMIN, NULL, "{\"name\": \"x\"}", 415, NULL, 0);
}

Test(router_api, refuses_an_overflow_queue_that_does_not_exist_in_the_tenant)
{
    struct itest_http_reply r;
    char body[512];
    json_t *doc;

    snprintf(body, sizeof(body), "%s",
             "{\"id\": \"b-only\", \"name\": \"B\", \"channels\": "
             "[\"sms\"], \"strategy\": \"random\"}");
    json_decref(rt_json("POST", "/v1/queues", RT_OTHER, body, 201));
    rt_call("POST", "/v1/queues", RT_ADMIN, RT_JSON,
            "{\"id\": \"main\", \"name\": \"M\", \"channels\": [\"voice\"], \"strategy\": "
            "\"linear\", \"overflow_queue_id\": \"b-only\"}",
            &r);
    doc = itest_http_expect_problem(&r, 422);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(doc, "errors"), 0), "field")),
                     "/overflow_queue_id",
                     "expected another tenant's queue refused as overflow target");
    json_decref(doc);
}

Test(router_api, refuses_to_delete_a_queue_that_another_overflows_to)
{
    struct itest_http_reply r;
    char detail[256];

    rt_create_queue("target", NULL);
    rt_create_queue("source", ", \"overflow_queue_id\": \"target\"");
    rt_problem("DELETE", "/v1/queues/target", RT_ADMIN, NULL, NULL, 409, detail, sizeof(detail));
    cr_assert(strstr(detail, "'source'") != NULL, "expected the referring queue named: %s", detail);
    rt_call("DELETE", "/v1/queues/source", RT_ADMIN, NULL, NULL, &r);
    cr_assert_eq(r.status, 204);
    rt_call("DELETE", "/v1/queues/target", RT_ADMIN, NULL, NULL, &r);
    cr_assert_eq(r.status, 204, "expected the target deletable once nothing refers to it");
}

/* ---- tenants and roles --------------------------------------------------------------------- */

Test(router_api, hides_another_tenants_resources_with_404)
{
    char path[128];
    json_t *doc;

    rt_create_agent("secret-agent");
    rt_create_queue("secret-queue", NULL);
    rt_problem("GET", "/v1/agents/secret-agent", RT_OTHER, NULL, NULL, 404, NULL, 0);
    rt_problem("PUT", "/v1/agents/secret-agent", RT_OTHER, RT_JSON, "{\"name\": \"x\"}", 404, NULL,
               0);
    rt_problem("PATCH", "/v1/agents/secret-agent", RT_OTHER, RT_MERGE, "{\"name\": \"x\"}", 404,
               NULL, 0);
    rt_problem("DELETE", "/v1/agents/secret-agent", RT_OTHER, NULL, NULL, 404, NULL, 0);
    rt_problem("GET", "/v1/queues/secret-queue", RT_OTHER, NULL, NULL, 404, NULL, 0);
    rt_problem("GET", "/v1/queues/secret-queue/members", RT_OTHER, NULL, NULL, 404, NULL, 0);
    snprintf(path, sizeof(path), "/v1/queues/secret-queue/members/secret-agent");
    rt_problem("PUT", path, RT_OTHER, RT_JSON, "{}", 404, NULL, 0);
    doc = rt_json("GET", "/v1/agents", RT_OTHER, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "items")), 0,
                 "expected tenant B to list none of tenant A's agents");
    json_decref(doc);
    /* B may use the same ids for its own resources. */
    json_decref(rt_json("POST", "/v1/agents", RT_OTHER,
                        "{\"id\": \"secret-agent\", \"name\": \"B\"}", 201));
    doc = rt_json("GET", "/v1/agents/secret-agent", RT_ADMIN, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "name")), "Agent secret-agent",
                     "expected A's agent untouched by B's");
    json_decref(doc);
}

Test(router_api, lets_the_agent_role_read_but_not_write)
{
    rt_create_agent("reader");
    json_decref(rt_json("GET", "/v1/agents/reader", RT_AGENT, NULL, 200));
    rt_problem("POST", "/v1/agents", RT_AGENT, RT_JSON, "{\"name\": \"x\"}", 403, NULL, 0);
    rt_problem("PUT", "/v1/agents/reader", RT_AGENT, RT_JSON, "{\"name\": \"x\"}", 403, NULL, 0);
    rt_problem("DELETE", "/v1/agents/reader", RT_AGENT, NULL, NULL, 403, NULL, 0);
    rt_problem("PUT", "/v1/not-ready-reasons/lunch", RT_AGENT, RT_JSON, "{\"label\": \"L\"}", 403,
               NULL, 0);
    rt_problem("GET", "/v1/agents", NULL, NULL, NULL, 401, NULL, 0);
}

/* ---- concurrency ---------------------------------------------------------------------------- */

Test(router_api, answers_409_for_a_stale_version_on_put_patch_and_delete)
{
    struct itest_http_reply r;
    char hdr[64];
    json_t *doc;

    rt_create_queue("versioned", NULL);
    rt_call("PUT", "/v1/queues/versioned", RT_ADMIN, RT_JSON "If-Match: \"1\"\r\n",
            "{\"name\": \"v2\", \"channels\": [\"voice\"], \"strategy\": \"random\"}", &r);
    doc = itest_http_expect_json(&r, 200);
    cr_assert_str_eq(itest_http_header(&r, "ETag", hdr, sizeof(hdr)), "\"2\"");
    json_decref(doc);
    rt_problem("PUT", "/v1/queues/versioned", RT_ADMIN, RT_JSON "If-Match: \"1\"\r\n",
               "{\"name\": \"v3\", \"channels\": [\"voice\"], \"strategy\": \"random\"}", 409, NULL,
               0);
    rt_problem("PUT", "/v1/queues/versioned", RT_ADMIN, RT_JSON,
               "{\"version\": 1, \"name\": \"v3\", \"channels\": [\"voice\"], \"strategy\": "
               "\"random\"}",
               409, NULL, 0);
    rt_problem("PATCH", "/v1/queues/versioned", RT_ADMIN, RT_MERGE "If-Match: \"1\"\r\n",
               "{\"priority\": 3}", 409, NULL, 0);
    rt_problem("DELETE", "/v1/queues/versioned", RT_ADMIN, "If-Match: \"1\"\r\n", NULL, 409, NULL,
               0);
    rt_problem("DELETE", "/v1/queues/versioned", RT_ADMIN, "If-Match: one\r\n", NULL, 400, NULL, 0);
    doc = rt_json("GET", "/v1/queues/versioned", RT_ADMIN, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "name")), "v2",
                     "expected no stale write to have landed");
    json_decref(doc);
    rt_call("DELETE", "/v1/queues/versioned", RT_ADMIN, "If-Match: \"2\"\r\n", NULL, &r);
    cr_assert_eq(r.status, 204, "expected the current version to delete, got %d", r.status);
}

#define RT_WRITERS 8

struct rt_writer {
    int status;
    pthread_barrier_t *start;
};

static void *rt_writer_run(void *arg)
{
    struct rt_writer *w = arg;
    struct itest_http_reply *r = malloc(sizeof(*r));
    int fd = itest_http_raw_connect(rt_port);

    pthread_barrier_wait(w->start);
    if (fd >= 0 && r) {
        itest_http_request(fd, "PUT", "/v1/agents/contended", RT_ADMIN,
                           RT_JSON "If-Match: \"1\"\r\n", "{\"name\": \"winner\"}");
        if (itest_http_read(fd, r, false))
            w->status = r->status;
    }
    if (fd >= 0)
        close(fd);
    free(r);
    return NULL;
}

Test(router_api, lets_exactly_one_of_concurrent_writers_of_one_version_win)
{
    pthread_t threads[RT_WRITERS];
    struct rt_writer w[RT_WRITERS];
    pthread_barrier_t start;
    int ok = 0, conflict = 0;
    json_t *doc;

    rt_create_agent("contended");
    pthread_barrier_init(&start, NULL, RT_WRITERS);
    for (int i = 0; i < RT_WRITERS; i++) {
        w[i] = (struct rt_writer){.status = 0, .start = &start};
        cr_assert_eq(pthread_create(&threads[i], NULL, rt_writer_run, &w[i]), 0);
    }
    for (int i = 0; i < RT_WRITERS; i++) {
        pthread_join(threads[i], NULL);
        ok += w[i].status == 200;
        conflict += w[i].status == 409;
    }
    pthread_barrier_destroy(&start);
    cr_assert_eq(ok, 1, "expected exactly one writer of version 1 to win, got %d", ok);
    cr_assert_eq(conflict, RT_WRITERS - 1, "expected the others to get 409, got %d", conflict);
    doc = rt_json("GET", "/v1/agents/contended", RT_ADMIN, NULL, 200);
    cr_assert_eq(rt_version(doc), 2, "expected exactly one increment of the version");
    json_decref(doc);
}

/* ---- merge patch, pagination ------------------------------------------------------------- */

Test(router_api, applies_a_merge_patch_and_keeps_what_it_does_not_name)
{
    json_t *doc;
    struct itest_http_reply r;

    rt_create_queue("fallback", NULL);
    rt_create_queue("patched", ", \"priority\": 5, \"overflow_queue_id\": \"fallback\", "
                               "\"skills\": [{\"skill\": \"vip\", \"min_proficiency\": 2}]");
    rt_call("PATCH", "/v1/queues/patched", RT_ADMIN, RT_MERGE,
            "{\"priority\": 9, \"overflow_queue_id\": null, \"wrapup_s\": 45}", &r);
    doc = itest_http_expect_json(&r, 200);
    cr_assert_eq(json_integer_value(json_object_get(doc, "priority")), 9);
    cr_assert_eq(json_integer_value(json_object_get(doc, "wrapup_s")), 45);
    cr_assert(json_is_null(json_object_get(doc, "overflow_queue_id")),
              "expected null to remove the overflow queue");
    cr_assert_eq(json_array_size(json_object_get(doc, "skills")), 1, "expected skills kept");
    cr_assert_eq(rt_version(doc), 2);
    json_decref(doc);
    rt_problem("PATCH", "/v1/queues/patched", RT_ADMIN, RT_MERGE, "{\"strategy\": \"fifo\"}", 422,
               NULL, 0);
}

Test(router_api, pages_through_a_list_with_limit_and_cursor)
{
    char path[256], seen[8][64];
    const char *cursor = NULL;
    int pages = 0, count = 0;
    json_t *doc = NULL;

    for (int i = 0; i < 7; i++) {
        char id[16];
        snprintf(id, sizeof(id), "p%02d", 6 - i); /* created out of order */
        rt_create_agent(id);
    }
    do {
        if (cursor)
            snprintf(path, sizeof(path), "/v1/agents?limit=3&cursor=%s", cursor);
        else
            snprintf(path, sizeof(path), "/v1/agents?limit=3");
        json_t *page = rt_json("GET", path, RT_AGENT, NULL, 200);
        json_t *items = json_object_get(page, "items");
        cr_assert_leq(json_array_size(items), 3, "expected at most 'limit' items");
        for (size_t i = 0; i < json_array_size(items); i++)
            snprintf(seen[count++], sizeof(seen[0]), "%s",
                     json_string_value(json_object_get(json_array_get(items, i), "id")));
        json_decref(doc);
        doc = page;
        cursor = json_string_value(json_object_get(page, "next_cursor"));
        pages++;
    } while (cursor && pages < 10);
    json_decref(doc);
    cr_assert_eq(pages, 3, "expected 3 pages of 3, 3 and 1, got %d", pages);
    cr_assert_eq(count, 7, "expected every agent once, got %d", count);
    for (int i = 0; i < 7; i++) {
        char want[16];
        snprintf(want, sizeof(want), "p%02d", i);
        cr_assert_str_eq(seen[i], want, "expected the agents in id order");
    }
    rt_problem("GET", "/v1/agents?limit=0", RT_ADMIN, NULL, NULL, 400, NULL, 0);
    rt_problem("GET", "/v1/agents?limit=501", RT_ADMIN, NULL, NULL, 400, NULL, 0);
    rt_problem("GET", "/v1/agents?cursor=zz", RT_ADMIN, NULL, NULL, 400, NULL, 0);
}

/* ---- memberships and reasons ------------------------------------------------------------ */

Test(router_api, manages_memberships_and_cascades_deleted_agents)
{
    struct itest_http_reply r;
    char detail[256];
    json_t *doc;

    rt_create_queue("support", NULL);
    rt_create_agent("m1");
    rt_create_agent("m2");
    doc = rt_json("PUT", "/v1/queues/support/members/m1", RT_ADMIN,
                  "{\"level\": 2, \"position\": 3, \"penalty\": 10}", 201);
    cr_assert_eq(json_integer_value(json_object_get(doc, "level")), 2);
    json_decref(doc);
    json_decref(rt_json("PUT", "/v1/queues/support/members/m1", RT_ADMIN, "{\"level\": 1}", 200));
    json_decref(rt_json("PUT", "/v1/queues/support/members/m2", RT_ADMIN, "{}", 201));
    rt_problem("PUT", "/v1/queues/support/members/ghost", RT_ADMIN, RT_JSON, "{}", 404, detail,
               sizeof(detail));
    cr_assert(strstr(detail, "agent 'ghost'") != NULL, "expected the agent named: %s", detail);
    rt_problem("PUT", "/v1/queues/nowhere/members/m1", RT_ADMIN, RT_JSON, "{}", 404, detail,
               sizeof(detail));
    cr_assert(strstr(detail, "queue 'nowhere'") != NULL, "expected the queue named: %s", detail);
    rt_problem("PUT", "/v1/queues/support/members/m1", RT_ADMIN, RT_JSON, "{\"penalty\": -1}", 422,
               NULL, 0);

    doc = rt_json("GET", "/v1/queues/support/members", RT_AGENT, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "items")), 2);
    cr_assert_eq(json_integer_value(
                     json_object_get(json_array_get(json_object_get(doc, "items"), 0), "position")),
                 1, "expected m1 updated to the defaults it was PUT with");
    json_decref(doc);

    rt_call("DELETE", "/v1/agents/m2", RT_ADMIN, NULL, NULL, &r);
    cr_assert_eq(r.status, 204);
    doc = rt_json("GET", "/v1/queues/support/members", RT_ADMIN, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "items")), 1,
                 "expected the deleted agent's membership gone with it");
    json_decref(doc);
    rt_call("DELETE", "/v1/queues/support/members/m1", RT_ADMIN, NULL, NULL, &r);
    cr_assert_eq(r.status, 204);
    rt_problem("DELETE", "/v1/queues/support/members/m1", RT_ADMIN, NULL, NULL, 404, NULL, 0);
    doc = rt_json("GET", "/v1/queues/support/members", RT_ADMIN, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(doc, "items")), 0,
                 "expected an existing queue without members to list none (not 404)");
    json_decref(doc);
}

Test(router_api, manages_not_ready_reason_codes)
{
    struct itest_http_reply r;
    json_t *doc;

    json_decref(rt_json("PUT", "/v1/not-ready-reasons/lunch", RT_ADMIN,
                        "{\"label\": \"Lunch\", \"counts_as_break\": true}", 201));
    json_decref(rt_json("PUT", "/v1/not-ready-reasons/training", RT_ADMIN,
                        "{\"label\": \"Training\"}", 201));
    doc = rt_json("PUT", "/v1/not-ready-reasons/lunch", RT_ADMIN, "{\"label\": \"Lunch break\"}",
                  200);
    cr_assert(json_is_false(json_object_get(doc, "counts_as_break")),
              "expected a PUT to replace every field");
    json_decref(doc);
    doc = rt_json("GET", "/v1/not-ready-reasons?limit=1", RT_AGENT, NULL, 200);
    cr_assert_str_eq(json_string_value(
                         json_object_get(json_array_get(json_object_get(doc, "items"), 0), "code")),
                     "lunch");
    cr_assert(json_is_string(json_object_get(doc, "next_cursor")), "expected a second page");
    json_decref(doc);
    rt_problem("PUT", "/v1/not-ready-reasons/bad%20code", RT_ADMIN, RT_JSON, "{\"label\": \"x\"}",
               404, NULL, 0);
    rt_call("DELETE", "/v1/not-ready-reasons/lunch", RT_ADMIN, NULL, NULL, &r);
    cr_assert_eq(r.status, 204);
    rt_problem("GET", "/v1/not-ready-reasons/lunch", RT_ADMIN, NULL, NULL, 404, NULL, 0);
    rt_problem("GET", "/v1/not-ready-reasons/training", RT_OTHER, NULL, NULL, 404, NULL, 0);
}

/* ---- the real binary ------------------------------------------------------------------------ */

/* A TCP port free right now on loopback. */
static int rt_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

Test(router_api, runs_the_real_binary_until_sigterm, .timeout = 60)
{
    char bin[512], dir[512], portbuf[16];
    struct itest_http_reply r;
    int port = rt_free_port(), status = -1, fd = -1;
    pid_t pid;

    snprintf(bin, sizeof(bin), "%s/bin/cc-router", itest_env("CC_TEST_BIN_DIR"));
    rt_migrations_dir(dir, sizeof(dir));
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    pid = fork();
    cr_assert(pid >= 0, "expected fork to work");
    if (pid == 0) {
        setenv("CC_HTTP_PORT", portbuf, 1);
        setenv("CC_HTTP_ADDR", "127.0.0.1", 1);
        setenv("CC_AUTH_TOKENS", rt_auth_spec(), 1);
        setenv("CC_ROUTER_MIGRATIONS_DIR", dir, 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && fd < 0; i++) { /* up to 10 s */
        fd = itest_http_raw_connect(port);
        if (fd < 0)
            usleep(50 * 1000);
    }
    cr_assert(fd >= 0, "expected %s to listen on port %d", bin, port);
    close(fd);
    itest_http_fetch(port, "GET", "/readyz", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "expected ready (PostgreSQL reachable), got %d: %s", r.status,
                 r.body);
    itest_http_fetch(port, "GET", "/v1/queues", RT_ADMIN, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "expected the queue list, got %d: %s", r.status, r.body);
    cr_assert(strstr(r.body, "\"items\"") != NULL, "expected a page: %s", r.body);
    kill(pid, SIGTERM);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "expected a clean exit 0 on SIGTERM (no sanitizer report), got status %d", status);
}
