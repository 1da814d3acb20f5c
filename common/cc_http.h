/*
 * cc_http: the REST/ops HTTP server every service embeds (libmicrohttpd underneath).
 *
 * A thread pool with epoll; keep-alive works (responses are queued on the
 * handler's second call, never the first, which would make libmicrohttpd
 * close the connection). Routes are "METHOD + path pattern", where a segment
 * "{name}" captures one path segment:
 *     cc_http_route(srv, "GET", "/v1/queues/{id}/agents/{agent}", get_agent, ctx, 0);
 * The most specific pattern wins (a literal segment beats a parameter, left to right).
 * HEAD is answered by the GET route (no body is sent).
 *
 * Before a handler runs, the layer has answered, as RFC 7807
 * application/problem+json {type, title, status, detail}:
 *   401  no or unknown bearer token (with WWW-Authenticate: Bearer)
 *   403  the token's role is not in the route's role mask
 *   404  no route for the path;  405  path known, method not (with Allow)
 *   413  body over body_limit: a declared Content-Length is refused before
 *        the body is read, and the connection closed; a chunked body is read
 *        and dropped, then refused (past 4 x body_limit + 1 MiB the
 *        connection is cut)
 *   415  a body whose Content-Type is not JSON on a JSON route
 *   400  a body that is not valid JSON (detail gives Jansson's line and column)
 * These errors keep the connection alive (the body, if any, is read and dropped)
 * except the early 413. A handler that returns < 0 without setting a response
 * gives 500 (so does one that returns 0 without setting a response); one that
 * set a response and returns < 0 gets that response sent.
 * Paths are matched percent-decoded, so "%2F" inside a parameter splits it.
 *
 * Built in, no token needed: GET /healthz (200 {"status":"ok"}), GET /readyz
 * (200 {"status":"ready"} or 503 problem with the ready check's reason),
 * GET /metrics (Prometheus text of the metrics registry, which includes the
 * layer's own cc_http_requests_total{method,route,status} counter and
 * cc_http_request_duration_seconds{method,route} histogram).
 *
 * Token in the query: a route flagged CC_HTTP_QUERY_TOKEN also accepts the token as the query
 * parameter access_token (RFC 6750 section 2.3) when no Authorization header came, for clients
 * that cannot set headers (the browser's EventSource, a wallboard URL). Such URLs end up in
 * browser history and proxy logs: use it for read-only tokens (e.g. the analyst role) only.
 *
 * Streams: a handler may answer with cc_http_stream_open() instead of a body: a long response (e.g.
 * Server-Sent Events, text/event-stream) whose bytes a callback produces as they become
 * available. The connection is suspended while the callback has nothing (no thread, no busy
 * wait) and resumed by cc_http_stream_wake(). A sleeping stream whose client hung up is noticed
 * within a second (a ticker polls the sockets of sleeping streams; libmicrohttpd watches no
 * suspended connection) and ended without calling the callback again. On a text/event-stream
 * the layer also writes a comment line ": ping" after stream_ping_ms of silence (15 s by
 * default), which keeps proxies from timing the stream out and finds a peer that vanished
 * without closing (its write fails). cc_http_free() ends every open stream first (the callback
 * is not called again), then stops the server.
 *
 * Tenants: on every route that is not CC_HTTP_PUBLIC the principal (tenant,
 * role) is always set. Tenant isolation is the handler's job: a resource of
 * another tenant is a 404 (it "does not exist" for the caller), never a 403;
 * cc_http_tenant_owns() is the one-line check for it.
 *
 * Thread-safety: register routes and the ready check before cc_http_start().
 * Handlers and the ready check then run concurrently on the pool's threads:
 * anything they share (ctx) needs its own lock. A req/resp pair belongs to
 * one handler call and must not be kept after it returns.
 */
#ifndef CC_HTTP_H
#define CC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cc_auth.h"
#include "cc_config.h"
#include "cc_metrics.h"

typedef struct cc_http cc_http;
struct cc_http_req;  /* one request: valid during the handler call */
struct cc_http_resp; /* what the handler answers: set exactly once */

/* Route flags. With no role bit set, any authenticated role may call the route. */
#define CC_HTTP_ROLE(r)        (1u << (r)) /* r: enum cc_role; OR several to allow each */
#define CC_HTTP_PUBLIC         (1u << 16)  /* no token needed (principal is NULL) */
#define CC_HTTP_RAW_BODY       (1u << 17)  /* any Content-Type; the body is not parsed as JSON */
#define CC_HTTP_QUERY_TOKEN    (1u << 18)  /* the token may also come as ?access_token= */
#define CC_HTTP_TRAILING_SLASH (1u << 19)  /* "/dir" also matches "/dir/" (cc_http_path tells) */

#define CC_HTTP_DEFAULT_THREADS    2
#define CC_HTTP_DEFAULT_BODY_LIMIT (1024 * 1024)
#define CC_HTTP_DEFAULT_IDLE_S     60
#define CC_HTTP_DEFAULT_PING_MS    15000

/* What a stream callback returns besides a byte count (> 0). */
#define CC_HTTP_STREAM_WAIT 0    /* nothing now: sleep until cc_http_stream_wake() */
#define CC_HTTP_STREAM_END  (-1) /* the stream is over: the response ends (chunked end) */

struct cc_http_config {
    const char *service;     /* names the WWW-Authenticate realm; NULL = "cc" */
    const char *addr;        /* numeric IPv4/IPv6 address to bind; NULL = 0.0.0.0 */
    int port;                /* 0 = any free port (see cc_http_port) */
    unsigned threads;        /* pool size; 0 = CC_HTTP_DEFAULT_THREADS */
    size_t body_limit;       /* bytes; 0 = CC_HTTP_DEFAULT_BODY_LIMIT */
    unsigned idle_timeout_s; /* idle keep-alive connections close after this; 0 = default */
    const cc_auth *auth;     /* borrowed, must outlive the server; NULL = every token is bad */
    cc_metrics *metrics;     /* borrowed registry; NULL = the server makes its own */
    unsigned stream_ping_ms; /* silence before a ": ping" on an event stream; 0 = default */
};

/* Handler: fill resp with one of the setters below and return 0, or return < 0. */
typedef int (*cc_http_handler)(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx);
/* An open streamed response (see cc_http_stream_open); the layer owns it. */
typedef struct cc_http_stream cc_http_stream;
/* Stream callback: writes at most cap bytes of the stream into buf and returns how many (> 0),
 * CC_HTTP_STREAM_WAIT when it has nothing right now, or CC_HTTP_STREAM_END. Runs on one of the
 * server's threads, never twice at once for one stream. */
typedef long (*cc_http_stream_fn)(void *ctx, char *buf, size_t cap);
/* Ready check for GET /readyz: true if ready, else false with a reason in why[len]. */
typedef bool (*cc_http_ready_fn)(void *ctx, char *why, size_t len);

/*
 * Makes a server (not yet listening). The config is copied; auth and metrics
 * are borrowed. NULL on a bad config (port out of range, bad address) or no memory,
 * with the reason logged.
 */
cc_http *cc_http_new(const struct cc_http_config *cfg);
/* cc_http_new() with a service's CC_HTTP_* settings (address, port, threads, body limit) from
 * its loaded common config; auth and metrics borrowed as above. NULL as cc_http_new(). */
cc_http *cc_http_new_common(const char *service, const struct cc_common_config *common,
                            const cc_auth *auth, cc_metrics *metrics);
/* Stops the server (waits for in-flight handlers) and frees it; NULL is a no-op. */
void cc_http_free(cc_http *srv);
/*
 * Adds a route. pattern starts with '/'; "{name}" segments capture (at most 8 per
 * route). 0, -EINVAL (bad method/pattern/flags), -EEXIST (same method and pattern
 * twice), -EBUSY (server already started) or -ENOMEM. ctx is passed to handler as is.
 */
int cc_http_route(cc_http *srv, const char *method, const char *pattern, cc_http_handler handler,
                  void *ctx, unsigned flags);
/* Sets the GET /readyz check (default: always ready). Before cc_http_start only. */
void cc_http_set_ready_check(cc_http *srv, cc_http_ready_fn fn, void *ctx);
/* Binds and starts the pool. 0, -EBUSY (already started) or a negative errno (bind failed). */
int cc_http_start(cc_http *srv);
/* The bound TCP port once started (useful with port 0), else -ENOTCONN. */
int cc_http_port(const cc_http *srv);
/* The registry /metrics renders (the configured one or the server's own). */
cc_metrics *cc_http_metrics(cc_http *srv);

/* Request accessors: returned strings are borrowed and live until the handler returns. */
const char *cc_http_method(const struct cc_http_req *req);
const char *cc_http_path(const struct cc_http_req *req);
/* Value of path parameter {name}, or NULL if the route has no such parameter. */
const char *cc_http_param(const struct cc_http_req *req, const char *name);
/* Value of query parameter name (decoded), or NULL if absent. */
const char *cc_http_query(const struct cc_http_req *req, const char *name);
/* Value of a request header (case-insensitive name), or NULL. */
const char *cc_http_header(const struct cc_http_req *req, const char *name);
/* Who called: set on every non-public route; NULL on a public one. */
const struct cc_principal *cc_http_principal(const struct cc_http_req *req);
/* True iff the caller is authenticated and belongs to tenant (else answer 404). */
bool cc_http_tenant_owns(const struct cc_http_req *req, const char *tenant);
/* Parsed JSON body (borrowed; json_incref to keep it), NULL if there was no body. */
json_t *cc_http_json_body(const struct cc_http_req *req);
/* Raw body, NUL-terminated for convenience; *len gets its size. NULL (len 0) if none. */
const char *cc_http_body(const struct cc_http_req *req, size_t *len);

/*
 * Response setters. Each returns 0, -EALREADY if a response was already set
 * (the first one stands), -EINVAL or -ENOMEM. cc_http_json always consumes its
 * reference, whatever it returns.
 */
int cc_http_json(struct cc_http_resp *resp, int status, json_t *steal);
int cc_http_text(struct cc_http_resp *resp, int status, const char *content_type, const char *body);
/* len bytes of data (copied; may hold NULs), e.g. an embedded file. */
int cc_http_bytes(struct cc_http_resp *resp, int status, const char *content_type, const void *data,
                  size_t len);
/* RFC 7807 problem; title NULL = the status's reason phrase; detail is printf-formatted. */
int cc_http_problem(struct cc_http_resp *resp, int status, const char *title,
                    const char *detail_fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * Answers with a stream: status and content_type are sent with the headers set by
 * cc_http_add_header, then the body is whatever fn(ctx, ...) produces, chunked, until fn returns
 * CC_HTTP_STREAM_END, the client goes away or the server stops. ctx_free(ctx) (may be NULL) is
 * called exactly once when the stream is over -- also when it never started, and also when this
 * fails with -EALREADY/-EINVAL/-ENOMEM -- after the last call of fn. *out (may be NULL) gets the
 * handle for cc_http_stream_wake, valid until ctx_free(ctx) begins.
 */
int cc_http_stream_open(struct cc_http_resp *resp, int status, const char *content_type,
                        cc_http_stream_fn fn, void *ctx, void (*ctx_free)(void *),
                        cc_http_stream **out);
/*
 * Tells the stream that fn has something to write: a suspended stream resumes and fn is called
 * again. Any thread, at any time until ctx_free(ctx) of the stream begins -- so whoever calls it
 * must forget the handle in ctx_free under the same lock it holds while calling this -- and
 * never after cc_http_free() began. Cheap; waking a stream that is not asleep is a no-op.
 */
void cc_http_stream_wake(cc_http_stream *st);
/* Adds a response header (copied); may be called before or after a setter. 0, -EINVAL, -ENOMEM. */
int cc_http_add_header(struct cc_http_resp *resp, const char *name, const char *value);

#endif
