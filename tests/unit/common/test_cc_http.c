/*
 * Unit tests for common/cc_http.c: route registration and matching, the handler contract
 * (setters, 500 on a handler error), body routes, lifecycle. A server on a loopback port in
 * the test process and a minimal raw client; no external servers.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_heap.h"
#include "cc_http.h"
#include "cc_metrics.h"

#define TOKEN "unit-token"

static cc_auth *uauth;
static cc_http *usrv;

static void uhttp_setup(void)
{
    char spec[128], hash[65], err[128];

    cr_assert_eq(cc_auth_hash_token(TOKEN, hash), 0);
    snprintf(spec, sizeof(spec), "%s:t1:agent:a-1", hash);
    uauth = cc_auth_new(spec, err, sizeof(err));
    cr_assert_not_null(uauth, "%s", err);
    usrv = cc_http_new(&(struct cc_http_config){.addr = "127.0.0.1", .auth = uauth});
    cr_assert_not_null(usrv);
}

static void uhttp_teardown(void)
{
    cc_http_free(usrv);
    cc_auth_free(uauth);
}

TestSuite(cc_http, .init = uhttp_setup, .fini = uhttp_teardown, .timeout = 20);

/* ---- a minimal client: one request per connection, "Connection: close" --------------------- */

/* Sends raw (a whole request) to the server and returns the whole response (malloc'd). */
static char *uhttp_exchange(const char *raw)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)cc_http_port(usrv))};
    struct timeval tv = {.tv_sec = 5};
    size_t cap = 65536, have = 0;
    char *buf = malloc(cap);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t n;

    cr_assert(fd >= 0 && buf);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "expected to connect");
    cr_assert_eq(send(fd, raw, strlen(raw), MSG_NOSIGNAL), (ssize_t)strlen(raw));
    while ((n = recv(fd, buf + have, cap - 1 - have, 0)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
    close(fd);
    return buf;
}

/* GET path (with a token unless token is NULL); returns the status, body copied into out. */
static int uhttp_get(const char *method, const char *path, const char *token, char *out, size_t cap)
{
    char raw[1024];
    int status = 0;

    snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\nHost: u\r\nConnection: close\r\n%s%s%s\r\n",
             method, path, token ? "Authorization: Bearer " : "", token ? token : "",
             token ? "\r\n" : "");
    char *resp = uhttp_exchange(raw);
    sscanf(resp, "HTTP/1.1 %d", &status);
    const char *body = strstr(resp, "\r\n\r\n");
    snprintf(out, cap, "%s", body ? body + 4 : "");
    if (strstr(resp, "\r\nX-Unit: yes\r\n"))
        strncat(out, " [x-unit]", cap - strlen(out) - 1);
    free(resp);
    return status;
}

static void uhttp_start(void)
{
    cr_assert_eq(cc_http_start(usrv), 0, "expected the server to start");
}

/* ---- handlers -------------------------------------------------------------------------- */

/* Echoes the route's name (ctx), its path parameters, a query parameter and the tenant. */
static int echo(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    const struct cc_principal *p = cc_http_principal(req);
    json_t *doc = json_pack("{s:s, s:s*, s:s*, s:s*, s:s*}", "route", (const char *)ctx, "id",
                            cc_http_param(req, "id"), "agent", cc_http_param(req, "agent"), "limit",
                            cc_http_query(req, "limit"), "tenant", p ? p->tenant : NULL);

    return cc_http_json(resp, 200, doc);
}

static int fails_silently(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    (void)req;
    (void)resp;
    (void)ctx;
    return -EIO;
}

static int forgets_to_answer(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    (void)req;
    (void)resp;
    (void)ctx;
    return 0;
}

static int conflicts_then_fails(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    (void)req;
    (void)ctx;
    cc_http_problem(resp, 409, "Conflict", "agent '%s' is busy", "a-1");
    return -EBUSY;
}

/* Exercises the setters' own contract; answers 200 "checked" if every expectation held. */
static int setter_contract(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    int ok = 1;

    (void)req;
    (void)ctx;
    ok &= cc_http_add_header(resp, "X-Unit", "yes") == 0;
    ok &= cc_http_add_header(resp, "Bad Name", "v") == -EINVAL;
    ok &= cc_http_add_header(resp, "X-Split", "a\r\nInjected: 1") == -EINVAL;
    ok &= cc_http_json(resp, 99, json_object()) == -EINVAL;
    ok &= cc_http_json(resp, 200, NULL) == -EINVAL;
    ok &= cc_http_text(resp, 200, "text/plain", ok ? "checked" : "broken") == 0;
    ok &= cc_http_json(resp, 201, json_object()) == -EALREADY; /* consumed, no leak */
    ok &= cc_http_problem(resp, 500, NULL, "late") == -EALREADY;
    return ok ? 0 : -EINVAL;
}

static int raw_echo(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    size_t len = 0;
    const char *body = cc_http_body(req, &len);

    (void)ctx;
    if (cc_http_json_body(req) != NULL)
        return cc_http_problem(resp, 500, NULL, "a raw route must not parse JSON");
    return cc_http_text(resp, 200, "text/plain", body ? body : "(none)");
}

/* ---- registration ------------------------------------------------------------------------ */

struct bad_route {
    char method[16];
    char pattern[320];
};

ParameterizedTestParameters(cc_http, refuses_a_bad_method_or_pattern)
{
    static struct bad_route cases[] = {
        {"get", "/v1/x"},
        {"", "/v1/x"},
        {"GET", ""},
        {"GET", "v1/x"},
        {"GET", "/v1//x"},
        {"GET", "/v1/x/"},
        {"GET", "/v1/{}"},
        {"GET", "/v1/{a-b}"},
        {"GET", "/v1/{id}/x/{id}"},
        {"GET", "/v1/a b"},
        {"GET", "/v1/\"q\""},
        {"GET", "/v1/x?y=1"},
        {"GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"},
    };
    return cr_make_param_array(struct bad_route, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_route *c, cc_http, refuses_a_bad_method_or_pattern)
{
    cr_assert_eq(cc_http_route(usrv, c->method, c->pattern, echo, "x", 0), -EINVAL,
                 "expected '%s %s' refused", c->method, c->pattern);
}

Test(cc_http, refuses_a_missing_handler_or_unknown_flags)
{
    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/x", NULL, NULL, 0), -EINVAL);
    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/x", echo, "x", 1u << 20), -EINVAL);
    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/x", echo, "x", CC_HTTP_ROLE(CC_ROLE_ADMIN)), 0);
}

Test(cc_http, refuses_the_same_route_twice_whatever_the_parameter_names)
{
    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/q/{id}", echo, "a", 0), 0);
    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/q/{name}", echo, "b", 0), -EEXIST);
    cr_assert_eq(cc_http_route(usrv, "PUT", "/v1/q/{name}", echo, "c", 0), 0,
                 "expected another method on the same path to be fine");
    cr_assert_eq(cc_http_route(usrv, "GET", "/healthz", echo, "d", 0), -EEXIST,
                 "expected the built-in /healthz to be taken");
}

Test(cc_http, refuses_routes_and_a_second_start_once_started)
{
    cr_assert_eq(cc_http_port(usrv), -ENOTCONN);
    uhttp_start();
    cr_assert_gt(cc_http_port(usrv), 0);
    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/late", echo, "late", 0), -EBUSY);
    cr_assert_eq(cc_http_start(usrv), -EBUSY);
}

Test(cc_http, refuses_a_bad_port_or_address)
{
    cr_assert_null(cc_http_new(&(struct cc_http_config){.port = 70000}));
    cr_assert_null(cc_http_new(&(struct cc_http_config){.port = -1}));
    cc_http *s = cc_http_new(&(struct cc_http_config){.addr = "localhost"});
    cr_assert_not_null(s);
    cr_assert_eq(cc_http_start(s), -EINVAL, "expected a host name refused (numeric only)");
    cc_http_free(s);
    cc_http_free(NULL);
}

Test(cc_http, reports_a_port_already_in_use)
{
    uhttp_start();
    cc_http *s =
        cc_http_new(&(struct cc_http_config){.addr = "127.0.0.1", .port = cc_http_port(usrv)});
    cr_assert_not_null(s);
    cr_assert_eq(cc_http_start(s), -EADDRINUSE, "expected EADDRINUSE for a taken port");
    cc_http_free(s);
}

Test(cc_http, listens_on_ipv6_loopback)
{
    cc_http *s = cc_http_new(&(struct cc_http_config){.addr = "::1"});

    cr_assert_not_null(s);
    cr_assert_eq(cc_http_start(s), 0, "expected to bind [::1]");
    cr_assert_gt(cc_http_port(s), 0);
    cc_http_free(s);
}

/* ---- matching ------------------------------------------------------------------------------ */

Test(cc_http, prefers_the_most_specific_route_and_captures_parameters)
{
    char body[512];

    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/queues/{id}", echo, "by-id", 0), 0);
    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/queues/stats", echo, "stats", 0), 0);
    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/queues/{id}/agents/{agent}", echo, "agent", 0), 0);
    uhttp_start();

    cr_assert_eq(uhttp_get("GET", "/v1/queues/stats", TOKEN, body, sizeof(body)), 200);
    cr_assert(strstr(body, "\"route\":\"stats\"") != NULL, "expected the literal route: %s", body);
    cr_assert_eq(uhttp_get("GET", "/v1/queues/q7?limit=5", TOKEN, body, sizeof(body)), 200);
    cr_assert(strstr(body, "\"route\":\"by-id\"") && strstr(body, "\"id\":\"q7\"") &&
                  strstr(body, "\"limit\":\"5\"") && strstr(body, "\"tenant\":\"t1\""),
              "expected id, limit and tenant: %s", body);
    cr_assert_eq(uhttp_get("GET", "/v1/queues/q7/agents/a%2D9", TOKEN, body, sizeof(body)), 200);
    cr_assert(strstr(body, "\"id\":\"q7\"") && strstr(body, "\"agent\":\"a-9\""),
              "expected both parameters, percent-decoded: %s", body);
    cr_assert_eq(uhttp_get("GET", "/v1/queues/", TOKEN, body, sizeof(body)), 404,
                 "expected an empty parameter not to match");
    cr_assert_eq(uhttp_get("GET", "/v1/queues/q7/agents", TOKEN, body, sizeof(body)), 404);
}

Test(cc_http, public_routes_need_no_token_and_have_no_principal)
{
    char body[512];

    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/public", echo, "pub", CC_HTTP_PUBLIC), 0);
    uhttp_start();
    cr_assert_eq(uhttp_get("GET", "/v1/public", NULL, body, sizeof(body)), 200);
    cr_assert(strstr(body, "tenant") == NULL, "expected no principal: %s", body);
}

Test(cc_http, a_server_without_auth_refuses_every_protected_route)
{
    char body[512];
    cc_http_free(usrv);

    usrv = cc_http_new(&(struct cc_http_config){.addr = "127.0.0.1"});
    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/x", echo, "x", 0), 0);
    uhttp_start();
    cr_assert_eq(uhttp_get("GET", "/v1/x", TOKEN, body, sizeof(body)), 401);
    cr_assert_eq(uhttp_get("GET", "/healthz", NULL, body, sizeof(body)), 200);
}

/* ---- the handler contract ----------------------------------------------------------------- */

Test(cc_http, answers_500_problem_when_a_handler_fails_without_a_response)
{
    char body[512];

    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/fail", fails_silently, NULL, 0), 0);
    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/forget", forgets_to_answer, NULL, 0), 0);
    uhttp_start();
    cr_assert_eq(uhttp_get("GET", "/v1/fail", TOKEN, body, sizeof(body)), 500);
    cr_assert(strstr(body, "\"status\":500") != NULL, "expected a problem body: %s", body);
    cr_assert(strstr(body, "Input/output") == NULL, "expected no internals leaked: %s", body);
    cr_assert_eq(uhttp_get("GET", "/v1/forget", TOKEN, body, sizeof(body)), 500);
}

Test(cc_http, keeps_the_response_a_failing_handler_set)
{
    char body[512];

    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/busy", conflicts_then_fails, NULL, 0), 0);
    uhttp_start();
    cr_assert_eq(uhttp_get("GET", "/v1/busy", TOKEN, body, sizeof(body)), 409);
    cr_assert(strstr(body, "agent 'a-1' is busy") != NULL, "expected the detail: %s", body);
    cr_assert(strstr(body, "\"title\":\"Conflict\"") != NULL, "expected the title: %s", body);
}

Test(cc_http, setters_validate_and_the_first_response_stands)
{
    char body[512];

    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/setters", setter_contract, NULL, 0), 0);
    uhttp_start();
    cr_assert_eq(uhttp_get("GET", "/v1/setters", TOKEN, body, sizeof(body)), 200);
    cr_assert_str_eq(body, "checked [x-unit]");
}

Test(cc_http, head_uses_the_get_route_and_405_lists_head)
{
    char raw[256];

    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/h", echo, "h", 0), 0);
    cr_assert_eq(cc_http_route(usrv, "PUT", "/v1/h", echo, "h", 0), 0);
    uhttp_start();
    snprintf(raw, sizeof(raw),
             "HEAD /v1/h HTTP/1.1\r\nHost: u\r\nConnection: close\r\n"
             "Authorization: Bearer " TOKEN "\r\n\r\n");
    char *resp = uhttp_exchange(raw);
    cr_assert(strncmp(resp, "HTTP/1.1 200", 12) == 0, "expected 200 to HEAD: %s", resp);
    cr_assert(strstr(resp, "\r\n\r\n")[4] == '\0', "expected no body: %s", resp);
    free(resp);
    resp = uhttp_exchange("DELETE /v1/h HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n");
    cr_assert(strstr(resp, "\r\nAllow: GET, HEAD, PUT\r\n") != NULL, "expected Allow: %s", resp);
    free(resp);
}

/* ---- bodies ----------------------------------------------------------------------------- */

Test(cc_http, raw_body_routes_take_any_content_type_unparsed)
{
    cr_assert_eq(
        cc_http_route(usrv, "POST", "/v1/hook", raw_echo, NULL, CC_HTTP_PUBLIC | CC_HTTP_RAW_BODY),
        0);
    uhttp_start();
    char *resp = uhttp_exchange("POST /v1/hook HTTP/1.1\r\nHost: u\r\nConnection: close\r\n"
                                "Content-Type: application/x-www-form-urlencoded\r\n"
                                "Content-Length: 9\r\n\r\nFrom=+1{2");
    cr_assert(strncmp(resp, "HTTP/1.1 200", 12) == 0, "expected 200: %s", resp);
    cr_assert_str_eq(strstr(resp, "\r\n\r\n") + 4, "From=+1{2");
    free(resp);
}

Test(cc_http, a_request_without_a_body_has_no_json_and_no_raw_body)
{
    char body[256];

    cr_assert_eq(cc_http_route(usrv, "GET", "/v1/raw", raw_echo, NULL, CC_HTTP_PUBLIC), 0);
    uhttp_start();
    cr_assert_eq(uhttp_get("GET", "/v1/raw", NULL, body, sizeof(body)), 200);
    cr_assert_str_eq(body, "(none)");
}

Test(cc_http, renders_a_shared_registry_with_the_services_own_metrics)
{
    char body[8192];
    cc_metrics *m = cc_metrics_new();
    cc_http_free(usrv);

    cc_counter_add(cc_metrics_counter(m, "cc_unit_things_total", "Things.", NULL), 3);
    usrv = cc_http_new(&(struct cc_http_config){.addr = "127.0.0.1", .metrics = m});
    cr_assert_eq(cc_http_metrics(usrv), m);
    uhttp_start();
    cr_assert_eq(uhttp_get("GET", "/metrics", NULL, body, sizeof(body)), 200);
    cr_assert(strstr(body, "cc_unit_things_total 3") != NULL, "expected the service's metric");
    cr_assert(strstr(body, "# TYPE cc_http_request_duration_seconds histogram") != NULL,
              "expected the layer's histogram: %s", body);
    {
        /* the allocator's figure, read at the scrape; none in a sanitizer build (cc_heap.h) */
        const char *heap = strstr(body, "\nprocess_heap_allocated_bytes{allocator=\"");

        if (cc_heap_allocated_bytes(NULL) < 0) {
            cr_assert_null(heap, "a heap gauge without a figure: %s", body);
        } else {
            cr_assert_not_null(heap, "expected the heap gauge: %s", body);
            cr_assert_gt(strtod(strchr(heap, ' ') + 1, NULL), 0.0, "%.80s", heap);
        }
    }
    cc_http_free(usrv);
    usrv = NULL;
    cc_metrics_free(m);
}
