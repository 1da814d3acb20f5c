/*
 * Integration tests for cc_http's streamed responses (cc_http_stream_open: Server-Sent Events),
 * the access_token query parameter and trailing-slash routes: a real server on a free loopback
 * port and raw TCP clients (every byte of the chunked stream visible).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_http.h"
#include "itest_http.h"

#define HS_TOKEN   "hs-analyst-token"
#define HS_PING_MS 300
#define HS_MAX     8

/* One open test stream: what is still to be written, guarded by hs_mu. */
struct hs_sub {
    char *pending;
    size_t len, off;
    bool end;
    cc_http_stream *st;
};

static pthread_mutex_t hs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hs_sub *hs_subs[HS_MAX];
static atomic_int hs_freed;
static cc_auth *hs_auth;
static cc_http *hs_srv;
static int hs_port;

static long hs_fill(void *ctx, char *buf, size_t cap)
{
    struct hs_sub *s = ctx;
    long n = CC_HTTP_STREAM_WAIT;

    pthread_mutex_lock(&hs_mu);
    if (s->off < s->len) {
        size_t take = s->len - s->off < cap ? s->len - s->off : cap;
        memcpy(buf, s->pending + s->off, take);
        s->off += take;
        n = (long)take;
    } else if (s->end) {
        n = CC_HTTP_STREAM_END;
    }
    pthread_mutex_unlock(&hs_mu);
    return n;
}

static void hs_sub_free(void *ctx)
{
    struct hs_sub *s = ctx;

    pthread_mutex_lock(&hs_mu);
    for (int i = 0; i < HS_MAX; i++)
        if (hs_subs[i] == s)
            hs_subs[i] = NULL;
    pthread_mutex_unlock(&hs_mu);
    free(s->pending);
    free(s);
    atomic_fetch_add(&hs_freed, 1);
}

static int hs_events(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    struct hs_sub *s = calloc(1, sizeof(*s));
    cc_http_stream *st = NULL;
    int rc;

    (void)req;
    (void)ctx;
    if (!s)
        return -ENOMEM;
    s->pending = strdup("event: hello\ndata: {}\n\n");
    s->len = s->pending ? strlen(s->pending) : 0;
    cc_http_add_header(resp, "Cache-Control", "no-cache");
    rc = cc_http_stream_open(resp, 200, "text/event-stream", hs_fill, s, hs_sub_free, &st);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&hs_mu);
    s->st = st;
    for (int i = 0; i < HS_MAX; i++) {
        if (!hs_subs[i]) {
            hs_subs[i] = s;
            break;
        }
    }
    pthread_mutex_unlock(&hs_mu);
    return 0;
}

static int hs_plain(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    (void)ctx;
    return cc_http_json(resp, 200, json_pack("{s:s}", "path", cc_http_path(req)));
}

/* Appends text to every open stream (end: then ends them) and wakes them; returns how many. */
static int hs_publish(const char *text, bool end)
{
    int n = 0;

    pthread_mutex_lock(&hs_mu);
    for (int i = 0; i < HS_MAX; i++) {
        struct hs_sub *s = hs_subs[i];
        char *grown;

        if (!s)
            continue;
        grown = realloc(s->pending, s->len + strlen(text) + 1);
        cr_assert_not_null(grown);
        memcpy(grown + s->len, text, strlen(text) + 1);
        s->pending = grown;
        s->len += strlen(text);
        s->end = end;
        cc_http_stream_wake(s->st);
        n++;
    }
    pthread_mutex_unlock(&hs_mu);
    return n;
}

static int hs_open_count(void)
{
    int n = 0;

    pthread_mutex_lock(&hs_mu);
    for (int i = 0; i < HS_MAX; i++)
        n += hs_subs[i] != NULL;
    pthread_mutex_unlock(&hs_mu);
    return n;
}

static void hs_setup(void)
{
    char spec[256], err[256] = "", h[65];

    cr_assert_eq(cc_auth_hash_token(HS_TOKEN, h), 0);
    snprintf(spec, sizeof(spec), "%s:acme:analyst", h);
    hs_auth = cc_auth_new(spec, err, sizeof(err));
    cr_assert_not_null(hs_auth, "expected the token spec to parse: %s", err);
    hs_srv = cc_http_new(&(struct cc_http_config){
        .addr = "127.0.0.1", .auth = hs_auth, .stream_ping_ms = HS_PING_MS});
    cr_assert_not_null(hs_srv);
    cr_assert_eq(cc_http_route(hs_srv, "GET", "/v1/events", hs_events, NULL, CC_HTTP_QUERY_TOKEN),
                 0);
    cr_assert_eq(cc_http_route(hs_srv, "GET", "/v1/plain", hs_plain, NULL, 0), 0);
    cr_assert_eq(cc_http_route(hs_srv, "GET", "/board", hs_plain, NULL,
                               CC_HTTP_PUBLIC | CC_HTTP_TRAILING_SLASH),
                 0);
    cr_assert_eq(cc_http_start(hs_srv), 0);
    hs_port = cc_http_port(hs_srv);
    atomic_store(&hs_freed, 0);
}

static void hs_teardown(void)
{
    cc_http_free(hs_srv);
    hs_srv = NULL;
    cc_auth_free(hs_auth);
}

TestSuite(http_stream, .init = hs_setup, .fini = hs_teardown, .timeout = 30);

static int64_t hs_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Opens a stream with the token in the header (or the query when in_query) and reads its head
 * and first event. */
static int hs_open(char *buf, size_t cap, size_t *have, bool in_query)
{
    int fd = itest_http_connect(hs_port);

    *have = 0;
    buf[0] = '\0';
    if (in_query)
        itest_http_request(fd, "GET", "/v1/events?access_token=" HS_TOKEN, NULL, NULL, NULL);
    else
        itest_http_request(fd, "GET", "/v1/events", HS_TOKEN, NULL, NULL);
    cr_assert(itest_http_read_until(fd, buf, cap, have, "event: hello", 5000),
              "expected the stream's first event, got '%s'", buf);
    return fd;
}

static void hs_wait_open(int n)
{
    int64_t until = hs_now_ms() + 5000;

    while (hs_open_count() != n && hs_now_ms() < until)
        usleep(10000);
    cr_assert_eq(hs_open_count(), n, "expected %d open streams", n);
}

Test(http_stream, sends_headers_then_events_as_they_are_woken)
{
    char buf[8192];
    size_t have;
    int fd = hs_open(buf, sizeof(buf), &have, false);

    cr_assert(strstr(buf, "HTTP/1.1 200") == buf, "expected 200: %s", buf);
    cr_assert(strstr(buf, "Content-Type: text/event-stream") != NULL, "expected SSE: %s", buf);
    cr_assert(strstr(buf, "Transfer-Encoding: chunked") != NULL, "expected chunked: %s", buf);
    cr_assert(strstr(buf, "Cache-Control: no-cache") != NULL, "expected the handler's header");
    hs_wait_open(1);
    usleep(100000); /* the stream is asleep now */
    cr_assert_eq(hs_publish("event: tick\ndata: 1\n\n", false), 1);
    cr_assert(itest_http_read_until(fd, buf, sizeof(buf), &have, "data: 1", 2000),
              "expected the woken stream to deliver the event, got '%s'", buf);
    cr_assert_eq(hs_publish("event: tick\ndata: 2\n\n", false), 1);
    cr_assert(itest_http_read_until(fd, buf, sizeof(buf), &have, "data: 2", 2000),
              "expected a second event, got '%s'", buf);
    close(fd);
}

Test(http_stream, delivers_an_event_larger_than_one_callback_block)
{
    static char big[20000], buf[65536];
    size_t have;
    int fd = hs_open(buf, sizeof(buf), &have, false);

    hs_wait_open(1);
    memset(big, 'x', sizeof(big) - 32);
    memcpy(big, "data: ", 6);
    strcpy(big + sizeof(big) - 32, "END-OF-BIG\n\n");
    hs_publish(big, false);
    cr_assert(itest_http_read_until(fd, buf, sizeof(buf), &have, "END-OF-BIG", 5000),
              "expected all of a 20 kB event over several chunks");
    close(fd);
}

Test(http_stream, pings_after_silence)
{
    char buf[8192];
    size_t have;
    int64_t t0;
    int fd = hs_open(buf, sizeof(buf), &have, false);

    t0 = hs_now_ms();
    cr_assert(itest_http_read_until(fd, buf, sizeof(buf), &have, ": ping\n\n", 3000),
              "expected a ': ping' comment after %d ms of silence", HS_PING_MS);
    cr_assert(hs_now_ms() - t0 >= HS_PING_MS / 2, "expected no ping before the silence");
    close(fd);
}

Test(http_stream, ends_the_response_when_the_callback_ends)
{
    char buf[8192];
    size_t have;
    int fd = hs_open(buf, sizeof(buf), &have, false);

    hs_wait_open(1);
    hs_publish("data: bye\n\n", true);
    cr_assert(itest_http_read_until(fd, buf, sizeof(buf), &have, "\r\n0\r\n\r\n", 3000),
              "expected the last chunk after the final event, got '%s'", buf);
    cr_assert(strstr(buf, "data: bye") != NULL);
    close(fd);
    for (int i = 0; i < 200 && atomic_load(&hs_freed) < 1; i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&hs_freed), 1, "expected ctx_free once the stream ended");
}

Test(http_stream, a_client_going_away_ends_its_stream)
{
    char buf[8192];
    size_t have;
    int fd = hs_open(buf, sizeof(buf), &have, false);

    hs_wait_open(1);
    close(fd);
    /* A suspended connection notices nothing: the next ping (HS_PING_MS) finds the socket gone. */
    for (int i = 0; i < 300 && atomic_load(&hs_freed) < 1; i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&hs_freed), 1, "expected the stream freed within a ping or two");
    cr_assert_eq(hs_open_count(), 0);
}

Test(http_stream, notices_a_client_that_left_long_before_the_next_ping)
{
    char buf[8192];
    size_t have = 0;
    int64_t t0;
    int fd;
    /* a server of its own whose ping (60 s) cannot be what finds the client gone */
    cc_http *quiet = cc_http_new(
        &(struct cc_http_config){.addr = "127.0.0.1", .auth = hs_auth, .stream_ping_ms = 60000});

    cr_assert_not_null(quiet);
    cr_assert_eq(cc_http_route(quiet, "GET", "/v1/events", hs_events, NULL, 0), 0);
    cr_assert_eq(cc_http_start(quiet), 0);
    fd = itest_http_connect(cc_http_port(quiet));
    buf[0] = '\0';
    itest_http_request(fd, "GET", "/v1/events", HS_TOKEN, NULL, NULL);
    cr_assert(itest_http_read_until(fd, buf, sizeof(buf), &have, "event: hello", 5000),
              "expected the stream's first event, got '%s'", buf);
    hs_wait_open(1);
    usleep(100000); /* asleep */
    t0 = hs_now_ms();
    close(fd);
    while (atomic_load(&hs_freed) < 1 && hs_now_ms() - t0 < 5000)
        usleep(10000);
    cr_assert_eq(atomic_load(&hs_freed), 1, "expected the stream of a departed client freed");
    cr_assert(hs_now_ms() - t0 < 2500,
              "expected the departure noticed within about a second, not at the 60 s ping (%lld "
              "ms)",
              (long long)(hs_now_ms() - t0));
    cr_assert_eq(hs_open_count(), 0);
    cc_http_free(quiet);
}

Test(http_stream, server_shutdown_ends_every_stream_promptly)
{
    char buf[3][8192];
    size_t have[3];
    int fd[3];
    int64_t t0;

    for (int i = 0; i < 3; i++)
        fd[i] = hs_open(buf[i], sizeof(buf[i]), &have[i], i == 1);
    hs_wait_open(3);
    usleep(100000); /* all asleep */
    t0 = hs_now_ms();
    cc_http_free(hs_srv);
    hs_srv = NULL;
    cr_assert(hs_now_ms() - t0 < 2000, "expected shutdown within 2 s with open streams");
    cr_assert_eq(atomic_load(&hs_freed), 3, "expected every stream's ctx freed");
    for (int i = 0; i < 3; i++) {
        cr_assert(
            itest_http_peer_closed(fd[i], 2000) ||
                itest_http_read_until(fd[i], buf[i], sizeof(buf[i]), &have[i], "0\r\n\r\n", 2000),
            "expected stream %d ended by the shutdown", i);
        close(fd[i]);
    }
}

Test(http_stream, accepts_the_token_as_access_token_only_where_flagged)
{
    struct itest_http_reply r;
    char buf[8192];
    size_t have;
    int fd = hs_open(buf, sizeof(buf), &have, true);

    close(fd);
    itest_http_fetch(hs_port, "GET", "/v1/events?access_token=wrong", NULL, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 401));
    itest_http_fetch(hs_port, "GET", "/v1/plain?access_token=" HS_TOKEN, NULL, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 401));
    itest_http_fetch(hs_port, "GET", "/v1/plain", HS_TOKEN, NULL, NULL, &r);
    json_decref(itest_http_expect_json(&r, 200));
}

Test(http_stream, a_trailing_slash_route_matches_both_forms)
{
    struct itest_http_reply r;
    json_t *doc;

    itest_http_fetch(hs_port, "GET", "/board/", NULL, NULL, NULL, &r);
    doc = itest_http_expect_json(&r, 200);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "path")), "/board/");
    json_decref(doc);
    itest_http_fetch(hs_port, "GET", "/board", NULL, NULL, NULL, &r);
    json_decref(itest_http_expect_json(&r, 200));
    itest_http_fetch(hs_port, "GET", "/board//", NULL, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 404));
    itest_http_fetch(hs_port, "GET", "/v1/plain/", HS_TOKEN, NULL, NULL, &r);
    json_decref(itest_http_expect_problem(&r, 404));
}
