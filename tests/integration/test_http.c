/*
 * Integration tests for common/cc_http.c + cc_auth.c: a real server on a free loopback port,
 * a real HTTP/1.1 client over TCP (itest_http: raw sockets, so every byte and every close is
 * visible).
 * Covers the foundation issue's acceptance (e): 401 without or with a bad token, 404 for
 * another tenant's resource, 413 for an oversized body, 400 problem+json for broken JSON,
 * keep-alive; plus 403, 405, 415, 409/422 from handlers, /healthz /readyz /metrics, and
 * concurrent clients.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_http.h"
#include "itest_http.h"

#define BODY_LIMIT 4096
#define TOK_ACME   "acme-supervisor-token"
#define TOK_GLOBEX "globex-agent-token"
#define TOK_ADMIN  "acme-admin-token"

/* ---- a tiny per-tenant resource store: notes, each owned by one tenant ------------------- */

struct note {
    char id[64];
    char tenant[CC_AUTH_TENANT_MAX + 1];
    char text[256];
};

struct note_store {
    pthread_mutex_t lock;
    struct note notes[64];
    size_t count;
};

static struct note_store store = {.lock = PTHREAD_MUTEX_INITIALIZER};
static cc_auth *auth;
static cc_http *srv;
static int port;
static atomic_bool ready = true;

/* Locked lookup by id across all tenants: the handler decides what the caller may see. */
static bool store_get(const char *id, struct note *out)
{
    bool found = false;

    pthread_mutex_lock(&store.lock);
    for (size_t i = 0; i < store.count && !found; i++) {
        if (strcmp(store.notes[i].id, id) == 0) {
            *out = store.notes[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&store.lock);
    return found;
}

/* 0, -EEXIST (id taken, whatever the tenant) or -ENOSPC. */
static int store_put(const struct note *n)
{
    int rc = 0;

    pthread_mutex_lock(&store.lock);
    for (size_t i = 0; i < store.count; i++) {
        if (strcmp(store.notes[i].id, n->id) == 0) {
            rc = -EEXIST;
            goto out_unlock;
        }
    }
    if (store.count == sizeof(store.notes) / sizeof(store.notes[0])) {
        rc = -ENOSPC;
        goto out_unlock;
    }
    store.notes[store.count++] = *n;
out_unlock:
    pthread_mutex_unlock(&store.lock);
    return rc;
}

static json_t *note_json(const struct note *n)
{
    return json_pack("{s:s, s:s, s:s}", "id", n->id, "tenant", n->tenant, "text", n->text);
}

static int get_note(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    const char *id = cc_http_param(req, "id");
    struct note n;

    (void)ctx;
    /* Another tenant's note does not exist for this caller: 404, never 403. */
    if (!store_get(id, &n) || !cc_http_tenant_owns(req, n.tenant))
        return cc_http_problem(resp, 404, NULL, "no note '%s'", id);
    return cc_http_json(resp, 200, note_json(&n));
}

static int post_note(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    json_t *body = cc_http_json_body(req);
    const char *id = json_string_value(json_object_get(body, "id"));
    const char *text = json_string_value(json_object_get(body, "text"));
    struct note n = {0};
    char location[128];
    int rc;

    (void)ctx;
    if (!id || !text || strlen(id) >= sizeof(n.id) || strlen(text) >= sizeof(n.text))
        return cc_http_problem(resp, 422, NULL, "'id' and 'text' must be strings (< 64, < 256)");
    snprintf(n.id, sizeof(n.id), "%s", id);
    snprintf(n.tenant, sizeof(n.tenant), "%s", cc_http_principal(req)->tenant);
    snprintf(n.text, sizeof(n.text), "%s", text);
    rc = store_put(&n);
    if (rc == -EEXIST)
        return cc_http_problem(resp, 409, NULL, "note '%s' already exists", id);
    if (rc < 0)
        return rc;
    snprintf(location, sizeof(location), "/v1/notes/%s", n.id);
    cc_http_add_header(resp, "Location", location);
    return cc_http_json(resp, 201, note_json(&n));
}

static int get_stats(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    (void)req;
    (void)ctx;
    return cc_http_json(resp, 200, json_pack("{s:i}", "notes", (int)store.count));
}

static bool ready_check(void *ctx, char *why, size_t len)
{
    (void)ctx;
    if (atomic_load(&ready))
        return true;
    snprintf(why, len, "redis 'unix:///x/redis.sock' is unreachable");
    return false;
}

static void http_setup(void)
{
    char spec[512], err[256] = "", ha[65], hg[65], hd[65];

    cr_assert_eq(cc_auth_hash_token(TOK_ACME, ha), 0);
    cr_assert_eq(cc_auth_hash_token(TOK_GLOBEX, hg), 0);
    cr_assert_eq(cc_auth_hash_token(TOK_ADMIN, hd), 0);
    snprintf(spec, sizeof(spec), "%s:acme:supervisor,%s:globex:agent:a-1,%s:acme:admin", ha, hg,
             hd);
    auth = cc_auth_new(spec, err, sizeof(err));
    cr_assert_not_null(auth, "expected the token spec to parse: %s", err);

    struct cc_http_config cfg = {.service = "itest",
                                 .addr = "127.0.0.1",
                                 .port = 0,
                                 .threads = 2,
                                 .body_limit = BODY_LIMIT,
                                 .auth = auth};
    srv = cc_http_new(&cfg);
    cr_assert_not_null(srv);
    cr_assert_eq(cc_http_route(srv, "GET", "/v1/notes/{id}", get_note, NULL, 0), 0);
    cr_assert_eq(cc_http_route(srv, "POST", "/v1/notes", post_note, NULL,
                               CC_HTTP_ROLE(CC_ROLE_SUPERVISOR) | CC_HTTP_ROLE(CC_ROLE_AGENT)),
                 0);
    cr_assert_eq(
        cc_http_route(srv, "GET", "/v1/stats", get_stats, NULL, CC_HTTP_ROLE(CC_ROLE_ADMIN)), 0);
    cc_http_set_ready_check(srv, ready_check, NULL);
    cr_assert_eq(cc_http_start(srv), 0, "expected the server to start on a free port");
    port = cc_http_port(srv);
    cr_assert(port > 0, "expected a bound port, got %d", port);
}

static void http_teardown(void)
{
    cc_http_free(srv);
    cc_auth_free(auth);
}

TestSuite(http, .init = http_setup, .fini = http_teardown, .timeout = 30);

static void create_note(const char *token, const char *id, int expect_status)
{
    char body[256];
    struct itest_http_reply r;

    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"text\":\"hello\"}", id);
    itest_http_fetch(port, "POST", "/v1/notes", token, "Content-Type: application/json\r\n", body,
                     &r);
    cr_assert_eq(r.status, expect_status, "expected %d creating '%s', got %d: %s", expect_status,
                 id, r.status, r.body);
}

/* ---- (e) acceptance ------------------------------------------------------------------------ */

Test(http, answers_401_without_a_token)
{
    struct itest_http_reply r;
    char www[128];

    itest_http_fetch(port, "GET", "/v1/notes/n1", NULL, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 401));
    cr_assert_not_null(itest_http_header(&r, "WWW-Authenticate", www, sizeof(www)),
                       "expected a WWW-Authenticate challenge");
    cr_assert_str_eq(www, "Bearer realm=\"itest\"");
}

Test(http, answers_401_for_a_bad_token_or_a_non_bearer_scheme)
{
    struct itest_http_reply r;
    char www[128];

    itest_http_fetch(port, "GET", "/v1/notes/n1", "not-a-token", NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 401));
    cr_assert_not_null(itest_http_header(&r, "WWW-Authenticate", www, sizeof(www)));
    cr_assert(strstr(www, "error=\"invalid_token\"") != NULL, "expected invalid_token: %s", www);

    itest_http_fetch(port, "GET", "/v1/notes/n1", NULL, "Authorization: Basic YWNtZTpwdw==\r\n",
                     NULL, &r);
    json_decref(itest_http_expect_problem(&r, 401));
}

Test(http, answers_404_for_another_tenants_resource)
{
    struct itest_http_reply r;

    create_note(TOK_ACME, "n-acme", 201);
    itest_http_fetch(port, "GET", "/v1/notes/n-acme", TOK_ACME, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "expected the owner to read its note, got %d", r.status);
    cr_assert(strstr(r.body, "\"tenant\":\"acme\"") != NULL, "expected acme's note: %s", r.body);

    itest_http_fetch(port, "GET", "/v1/notes/n-acme", TOK_GLOBEX, NULL, NULL, &r);
    json_t *doc = itest_http_expect_problem(&r, 404);
    cr_assert(strstr(r.body, "hello") == NULL, "expected no trace of the note's content");
    json_decref(doc);
}

Test(http, answers_413_before_reading_an_oversized_body_and_closes)
{
    char *body = malloc(BODY_LIMIT + 2);
    struct itest_http_reply r;
    int fd = itest_http_connect(port);

    memset(body, ' ', BODY_LIMIT + 1);
    body[BODY_LIMIT + 1] = '\0';
    /* Headers only: the refusal must come without the body ever being sent. */
    dprintf(fd,
            "POST /v1/notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
            TOK_ACME, BODY_LIMIT + 1);
    cr_assert(itest_http_read(fd, &r, false), "expected a 413 before the body was sent");
    json_decref(itest_http_expect_problem(&r, 413));
    cr_assert(itest_http_peer_closed(fd, 2000),
              "expected the server to close after refusing the body");
    close(fd);

    /* Also refused when the body does come, in full. */
    itest_http_fetch(port, "POST", "/v1/notes", TOK_ACME, "Content-Type: application/json\r\n",
                     body, &r);
    json_decref(itest_http_expect_problem(&r, 413));
    free(body);
}

Test(http, answers_413_for_a_chunked_body_over_the_limit)
{
    char chunk[1100];
    struct itest_http_reply r;
    int fd = itest_http_connect(port);

    memset(chunk, 'x', 1024);
    dprintf(fd,
            "POST /v1/notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            TOK_ACME);
    for (int i = 0; i < 5; i++) { /* 5 KiB > 4 KiB limit */
        dprintf(fd, "400\r\n");
        itest_http_send(fd, chunk, 1024);
        dprintf(fd, "\r\n");
    }
    dprintf(fd, "0\r\n\r\n");
    cr_assert(itest_http_read(fd, &r, false), "expected a reply to the chunked upload");
    json_decref(itest_http_expect_problem(&r, 413));
    close(fd);
}

Test(http, answers_400_problem_json_for_broken_json_with_its_position)
{
    struct itest_http_reply r;

    itest_http_fetch(port, "POST", "/v1/notes", TOK_ACME, "Content-Type: application/json\r\n",
                     "{\"id\": \"n1\",\n \"text\": }", &r);
    json_t *doc = itest_http_expect_problem(&r, 400);
    const char *detail = json_string_value(json_object_get(doc, "detail"));
    cr_assert(strstr(detail, "line 2") != NULL, "expected the line in '%s'", detail);
    cr_assert(strstr(detail, "column") != NULL, "expected the column in '%s'", detail);
    json_decref(doc);
}

Test(http, keeps_the_connection_alive_across_requests_and_errors)
{
    struct itest_http_reply r;
    char conn[64];
    int fd = itest_http_connect(port);

    create_note(TOK_ACME, "n-ka", 201);
    itest_http_request(fd, "GET", "/v1/notes/n-ka", TOK_ACME, NULL, NULL);
    cr_assert(itest_http_read(fd, &r, false), "expected the first response");
    cr_assert_eq(r.status, 200);
    cr_assert_null(itest_http_header(&r, "Connection", conn, sizeof(conn)),
                   "expected no 'Connection: close' on the first response, got '%s'", conn);
    cr_assert_not(itest_http_peer_closed(fd, 200),
                  "expected the server to keep the connection open");

    itest_http_request(fd, "GET", "/v1/notes/n-ka", TOK_ACME, NULL, NULL);
    cr_assert(itest_http_read(fd, &r, false), "expected a second response on the same socket");
    cr_assert_eq(r.status, 200);

    /* Errors answered after the request is read keep the connection too. */
    itest_http_request(fd, "GET", "/v1/notes/n-ka", "bad", NULL, NULL);
    cr_assert(itest_http_read(fd, &r, false), "expected a third response on the same socket");
    cr_assert_eq(r.status, 401);
    itest_http_request(fd, "POST", "/v1/notes", TOK_ACME, "Content-Type: application/json\r\n",
                       "{");
    cr_assert(itest_http_read(fd, &r, false), "expected a fourth response on the same socket");
    cr_assert_eq(r.status, 400);
    itest_http_request(fd, "GET", "/healthz", NULL, NULL, NULL);
    cr_assert(itest_http_read(fd, &r, false), "expected a fifth response on the same socket");
    cr_assert_eq(r.status, 200);
    cr_assert_not(itest_http_peer_closed(fd, 200),
                  "expected the connection still open after 5 requests");
    close(fd);
}

/* ---- the other layer errors -------------------------------------------------------------- */

Test(http, answers_403_when_the_role_is_not_allowed)
{
    struct itest_http_reply r;

    itest_http_fetch(port, "GET", "/v1/stats", TOK_ACME, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 403));
    itest_http_fetch(port, "GET", "/v1/stats", TOK_ADMIN, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "expected admin to be allowed, got %d", r.status);
}

Test(http, answers_405_with_the_allowed_methods)
{
    struct itest_http_reply r;
    char allow[128];

    itest_http_fetch(port, "DELETE", "/v1/notes/n1", TOK_ACME, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 405));
    cr_assert_not_null(itest_http_header(&r, "Allow", allow, sizeof(allow)), "expected Allow");
    cr_assert_str_eq(allow, "GET, HEAD");
}

Test(http, answers_404_for_an_unknown_path_before_asking_for_a_token)
{
    struct itest_http_reply r;

    itest_http_fetch(port, "GET", "/v1/nothing/here", NULL, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 404));
}

Test(http, answers_415_for_a_body_that_is_not_json)
{
    struct itest_http_reply r;

    itest_http_fetch(port, "POST", "/v1/notes", TOK_ACME, "Content-Type: text/plain\r\n",
                     "{\"id\":\"x\"}", &r);
    json_decref(itest_http_expect_problem(&r, 415));
    itest_http_fetch(port, "POST", "/v1/notes", TOK_ACME, NULL, "{\"id\":\"x\"}", &r);
    json_decref(itest_http_expect_problem(&r, 415));
    create_note(TOK_ACME, "n-charset", 201); /* application/json is fine... */
    itest_http_fetch(port, "POST", "/v1/notes", TOK_ACME,
                     "Content-Type: application/merge-patch+json\r\n",
                     "{\"id\":\"n-suffix\",\"text\":\"t\"}", &r);
    cr_assert_eq(r.status, 201, "expected a +json type accepted, got %d", r.status);
}

Test(http, passes_409_and_422_from_handlers_through)
{
    struct itest_http_reply r;

    create_note(TOK_ACME, "n-dup", 201);
    create_note(TOK_GLOBEX, "n-dup", 409);
    itest_http_fetch(port, "POST", "/v1/notes", TOK_ACME, "Content-Type: application/json\r\n",
                     "{\"id\":1}", &r);
    json_decref(itest_http_expect_problem(&r, 422));
}

/* ---- built-in routes ----------------------------------------------------------------------- */

Test(http, serves_healthz_and_readyz_without_a_token)
{
    struct itest_http_reply r;

    itest_http_fetch(port, "GET", "/healthz", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    itest_http_fetch(port, "GET", "/readyz", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "expected ready, got %d", r.status);

    atomic_store(&ready, false);
    itest_http_fetch(port, "GET", "/readyz", NULL, NULL, NULL, &r);
    json_t *doc = itest_http_expect_problem(&r, 503);
    cr_assert(strstr(json_string_value(json_object_get(doc, "detail")), "redis") != NULL,
              "expected the ready check's reason, got '%s'", r.body);
    json_decref(doc);
    atomic_store(&ready, true);
}

Test(http, serves_prometheus_metrics_with_request_counts_and_latency)
{
    struct itest_http_reply r;
    char ctype[128];

    itest_http_fetch(port, "GET", "/v1/notes/none", TOK_ACME, NULL, NULL, &r);
    itest_http_fetch(port, "GET", "/v1/nothing", TOK_ACME, NULL, NULL, &r);
    itest_http_fetch(port, "GET", "/metrics", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(itest_http_header(&r, "Content-Type", ctype, sizeof(ctype)));
    cr_assert(strncmp(ctype, "text/plain; version=0.0.4", 25) == 0, "got '%s'", ctype);
    cr_assert(strstr(r.body, "cc_http_requests_total{method=\"GET\",route=\"/v1/notes/{id}\","
                             "status=\"404\"} 1") != NULL,
              "expected the 404 counted by route, got:\n%s", r.body);
    cr_assert(strstr(r.body, "route=\"unmatched\",status=\"404\"} 1") != NULL,
              "expected the unmatched 404 counted, got:\n%s", r.body);
    cr_assert(strstr(r.body, "cc_http_request_duration_seconds_count{method=\"GET\","
                             "route=\"/v1/notes/{id}\"} 1") != NULL,
              "expected the latency histogram, got:\n%s", r.body);
}

Test(http, answers_head_like_get_without_a_body)
{
    struct itest_http_reply r;
    char len[32];

    itest_http_fetch(port, "HEAD", "/healthz", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(itest_http_header(&r, "Content-Length", len, sizeof(len)));
    cr_assert_str_eq(len, "15");
    cr_assert_eq(r.body_len, 0, "expected no body after a HEAD response");
}

/* ---- concurrency --------------------------------------------------------------------------- */

#define CLIENTS  6
#define REQUESTS 200

static void *client_loop(void *arg)
{
    int *ok = arg;
    struct itest_http_reply r;
    int fd = itest_http_raw_connect(port);

    if (fd < 0)
        return NULL;
    for (int i = 0; i < REQUESTS; i++) {
        itest_http_request(fd, "GET", "/v1/notes/n-conc", i % 2 ? TOK_ACME : TOK_GLOBEX, NULL,
                           NULL);
        if (!itest_http_read(fd, &r, false))
            break;
        if (r.status == (i % 2 ? 200 : 404))
            (*ok)++;
    }
    close(fd);
    return NULL;
}

Test(http, serves_concurrent_keep_alive_clients_without_mixing_tenants)
{
    pthread_t threads[CLIENTS];
    int ok[CLIENTS] = {0};

    create_note(TOK_ACME, "n-conc", 201);
    for (int i = 0; i < CLIENTS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, client_loop, &ok[i]), 0);
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(ok[i], REQUESTS, "expected client %d to get %d right answers, got %d", i,
                     REQUESTS, ok[i]);
    }
}
