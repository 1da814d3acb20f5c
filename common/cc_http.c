/* cc_http: routing, auth, JSON bodies and problem+json errors over libmicrohttpd; see cc_http.h. */
#include "cc_http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "cc_heap.h"
#include "cc_log.h"

#define MAX_PARAMS      8
#define MAX_SEGMENTS    32
#define MAX_STATUSES    16 /* distinct statuses cached per route for the request counter */
#define CTYPE_MAX       128
#define DRAIN_SLACK     (1024 * 1024)
#define PROBLEM_CTYPE   "application/problem+json"
#define JSON_CTYPE      "application/json"
#define METRICS_CTYPE   "text/plain; version=0.0.4; charset=utf-8"
#define REQUESTS_METRIC "cc_http_requests_total"
#define LATENCY_METRIC  "cc_http_request_duration_seconds"
#define SSE_CTYPE       "text/event-stream"
#define SSE_PING        ": ping\n\n"
#define STREAM_BLOCK    4096 /* bytes libmicrohttpd asks a stream callback for at most */

static const double latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

struct segment {
    char *text; /* literal text, or the parameter's name */
    bool param;
};

struct status_counter {
    int status;
    struct cc_counter *counter;
};

struct route {
    char *method;
    char *pattern;
    struct segment segs[MAX_SEGMENTS];
    size_t nsegs;
    cc_http_handler handler;
    void *ctx;
    unsigned flags;
    struct cc_histogram *latency;
    pthread_mutex_t lock; /* guards counters */
    struct status_counter counters[MAX_STATUSES];
    size_t ncounters;
};

struct cc_http {
    struct cc_http_config cfg;
    char *service;
    char *addr;
    cc_metrics *metrics;
    bool owns_metrics;
    struct route **routes;
    size_t nroutes;
    struct route *unmatched; /* metrics bucket for 404/405 */
    struct cc_gauge *heap;   /* process_heap_allocated_bytes, read at each scrape */
    cc_http_ready_fn ready_fn;
    void *ready_ctx;
    struct MHD_Daemon *daemon;
    /* streams: the open ones (linked once their response exists), their flags, the ping ticker */
    pthread_mutex_t streams_mu;
    pthread_cond_t streams_cv; /* wakes the ticker (to stop) */
    struct cc_http_stream *streams;
    bool stopping;
    bool ticker_running;
    pthread_t ticker;
};

/* A streamed response. Flags are guarded by srv->streams_mu. */
struct cc_http_stream {
    cc_http *srv;
    struct MHD_Connection *conn;
    cc_http_stream_fn fn;
    void *ctx;
    void (*ctx_free)(void *);
    bool sse;       /* text/event-stream: pings after silence */
    bool linked;    /* in srv->streams */
    bool suspended; /* the connection is suspended by the reader */
    bool woken;     /* a wake came since the reader last asked fn */
    bool ping_due;
    bool closing; /* end at the next read (server stopping) */
    bool gone;    /* the client hung up while the stream slept: abort at the next read */
    int64_t last_write_ms;
    struct cc_http_stream *prev, *next;
};

struct header {
    char *name;
    char *value;
};

struct cc_http_resp {
    int status; /* 0 until a setter succeeded */
    char *body;
    size_t len;
    char ctype[CTYPE_MAX];
    struct header *headers;
    size_t nheaders;
    struct cc_http_stream *stream; /* set by cc_http_stream_open until the response takes it */
};

struct cc_http_req {
    cc_http *srv;
    struct MHD_Connection *conn;
    const char *method; /* owned by libmicrohttpd for the request's lifetime */
    const char *path;
    struct route *route; /* NULL when no route matched */
    char *pathbuf;       /* split copy of path; param values point into it */
    const char *pnames[MAX_PARAMS];
    const char *pvalues[MAX_PARAMS];
    size_t nparams;
    struct cc_principal principal;
    bool authenticated;
    bool rejected;     /* resp already holds an error decided before the handler */
    bool overflow;     /* body went over the limit (chunked upload) */
    uint64_t declared; /* Content-Length, or UINT64_MAX when unknown */
    char *body;
    size_t body_len;
    size_t body_cap;
    uint64_t received;
    json_t *json;
    struct timespec start;
    struct cc_http_resp resp;
};

/* ---- response setters ------------------------------------------------------------------- */

static bool valid_status(int status)
{
    return status >= 100 && status <= 599;
}

/* Takes ownership of body (malloc'd, may be NULL when len is 0). */
static int resp_set(struct cc_http_resp *resp, int status, const char *ctype, char *body,
                    size_t len)
{
    if (resp->status != 0) {
        free(body);
        return -EALREADY;
    }
    if (!valid_status(status) || !ctype || strlen(ctype) >= CTYPE_MAX) {
        free(body);
        return -EINVAL;
    }
    resp->status = status;
    resp->body = body;
    resp->len = len;
    memcpy(resp->ctype, ctype, strlen(ctype) + 1);
    return 0;
}

int cc_http_json(struct cc_http_resp *resp, int status, json_t *steal)
{
    char *body;

    if (!steal)
        return -EINVAL;
    body = json_dumps(steal, JSON_COMPACT);
    json_decref(steal);
    if (!body)
        return -ENOMEM;
    return resp_set(resp, status, JSON_CTYPE, body, strlen(body));
}

int cc_http_text(struct cc_http_resp *resp, int status, const char *content_type, const char *body)
{
    char *copy;

    if (!content_type || !body)
        return -EINVAL;
    copy = strdup(body);
    if (!copy)
        return -ENOMEM;
    return resp_set(resp, status, content_type, copy, strlen(copy));
}

int cc_http_bytes(struct cc_http_resp *resp, int status, const char *content_type, const void *data,
                  size_t len)
{
    char *copy;

    if (!content_type || (!data && len > 0))
        return -EINVAL;
    copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    if (len > 0)
        memcpy(copy, data, len);
    copy[len] = '\0';
    return resp_set(resp, status, content_type, copy, len);
}

static const char *reason_phrase(int status)
{
    const char *phrase = MHD_get_reason_phrase_for((unsigned int)status);

    return phrase && *phrase ? phrase : "Unknown";
}

static int problem_v(struct cc_http_resp *resp, int status, const char *title, const char *fmt,
                     va_list ap)
{
    char detail[1024];
    json_t *doc;

    if (resp->status != 0)
        return -EALREADY;
    if (!valid_status(status))
        return -EINVAL;
    vsnprintf(detail, sizeof(detail), fmt ? fmt : "", ap);
    doc = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title",
                    title ? title : reason_phrase(status), "status", status, "detail", detail);
    if (!doc)
        return -ENOMEM;
    if (cc_http_json(resp, status, doc) < 0)
        return -ENOMEM;
    memcpy(resp->ctype, PROBLEM_CTYPE, sizeof(PROBLEM_CTYPE));
    return 0;
}

int cc_http_problem(struct cc_http_resp *resp, int status, const char *title,
                    const char *detail_fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, detail_fmt);
    rc = problem_v(resp, status, title, detail_fmt, ap);
    va_end(ap);
    return rc;
}

/* A problem from the layer itself (title = reason phrase). */
static void layer_problem(struct cc_http_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void layer_problem(struct cc_http_req *req, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    problem_v(&req->resp, status, NULL, fmt, ap);
    va_end(ap);
    req->rejected = true;
}

static bool valid_header_text(const char *s, bool name)
{
    if (!s || (name && *s == '\0'))
        return false;
    for (; *s; s++) {
        if (*s == '\r' || *s == '\n' || (name && (*s == ':' || isspace((unsigned char)*s))))
            return false;
    }
    return true;
}

int cc_http_add_header(struct cc_http_resp *resp, const char *name, const char *value)
{
    struct header *grown, *h;

    if (!valid_header_text(name, true) || !valid_header_text(value, false))
        return -EINVAL;
    grown = realloc(resp->headers, (resp->nheaders + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    resp->headers = grown;
    h = &resp->headers[resp->nheaders];
    h->name = strdup(name);
    h->value = strdup(value);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return -ENOMEM;
    }
    resp->nheaders++;
    return 0;
}

static void stream_destroy(struct cc_http_stream *st);

static void resp_release(struct cc_http_resp *resp)
{
    stream_destroy(resp->stream); /* a stream that never started */
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->headers);
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

/* ---- streams ---------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ends a stream: unlinks it, calls ctx_free, frees it. NULL is a no-op. */
static void stream_destroy(struct cc_http_stream *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->srv->streams_mu);
    if (st->linked) {
        if (st->prev)
            st->prev->next = st->next;
        else
            st->srv->streams = st->next;
        if (st->next)
            st->next->prev = st->prev;
        st->linked = false;
    }
    pthread_mutex_unlock(&st->srv->streams_mu);
    if (st->ctx_free)
        st->ctx_free(st->ctx);
    free(st);
}

int cc_http_stream_open(struct cc_http_resp *resp, int status, const char *content_type,
                        cc_http_stream_fn fn, void *ctx, void (*ctx_free)(void *),
                        cc_http_stream **out)
{
    struct cc_http_req *req =
        (struct cc_http_req *)((char *)resp - offsetof(struct cc_http_req, resp));
    struct cc_http_stream *st;
    int rc;

    if (out)
        *out = NULL;
    if (!fn) {
        rc = -EINVAL;
        goto fail_ctx;
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        rc = -ENOMEM;
        goto fail_ctx;
    }
    rc = resp_set(resp, status, content_type ? content_type : "", NULL, 0);
    if (rc < 0) {
        free(st);
        goto fail_ctx;
    }
    st->srv = req->srv;
    st->fn = fn;
    st->ctx = ctx;
    st->ctx_free = ctx_free;
    st->sse = strncasecmp(content_type, SSE_CTYPE, strlen(SSE_CTYPE)) == 0;
    resp->stream = st;
    if (out)
        *out = st;
    return 0;

fail_ctx:
    if (ctx_free)
        ctx_free(ctx);
    return rc;
}

/* Resumes conn (outside streams_mu: a suspended connection cannot be freed meanwhile). */
static void stream_resume(struct MHD_Connection *conn)
{
    if (conn)
        MHD_resume_connection(conn);
}

void cc_http_stream_wake(cc_http_stream *st)
{
    struct MHD_Connection *resume = NULL;

    if (!st)
        return;
    pthread_mutex_lock(&st->srv->streams_mu);
    st->woken = true;
    if (st->suspended && !st->srv->stopping) {
        st->suspended = false;
        resume = st->conn;
    }
    pthread_mutex_unlock(&st->srv->streams_mu);
    stream_resume(resume);
}

/*
 * libmicrohttpd's content reader. Asks fn until it writes something, ends, or has nothing and
 * no wake or ping is pending; then suspends the connection (returning 0 without suspending
 * would spin, or stall under epoll).
 */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct cc_http_stream *st = cls;
    cc_http *srv = st->srv;
    bool ping;
    long n;

    (void)pos;
    for (;;) {
        pthread_mutex_lock(&srv->streams_mu);
        if (st->gone) {
            pthread_mutex_unlock(&srv->streams_mu);
            return MHD_CONTENT_READER_END_WITH_ERROR; /* nobody to send the last chunk to */
        }
        if (st->closing) {
            pthread_mutex_unlock(&srv->streams_mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        st->woken = false;
        ping = st->ping_due;
        pthread_mutex_unlock(&srv->streams_mu);

        n = st->fn(st->ctx, buf, max);
        if (n < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n == 0 && ping && max >= sizeof(SSE_PING) - 1) {
            memcpy(buf, SSE_PING, sizeof(SSE_PING) - 1);
            n = (long)(sizeof(SSE_PING) - 1);
        }
        pthread_mutex_lock(&srv->streams_mu);
        if (n > 0) {
            st->last_write_ms = mono_ms();
            st->ping_due = false;
            pthread_mutex_unlock(&srv->streams_mu);
            return (ssize_t)(n > (long)max ? (long)max : n);
        }
        if (!st->woken && !st->closing && !st->ping_due) {
            st->suspended = true;
            MHD_suspend_connection(st->conn);
            pthread_mutex_unlock(&srv->streams_mu);
            return 0;
        }
        pthread_mutex_unlock(&srv->streams_mu);
    }
}

/* libmicrohttpd's free callback of a stream response: the stream is over. */
static void stream_free_cb(void *cls)
{
    stream_destroy(cls);
}

/*
 * True when the client of a suspended stream hung up (or its socket failed). libmicrohttpd does
 * not watch a suspended connection, so otherwise only the next ping's write would notice. The
 * connection cannot be freed while suspended (the caller holds streams_mu and sees suspended).
 * POLLRDHUP is the peer's FIN: a client that half-closes its sending side counts as gone, which
 * EventSource and curl never do.
 */
static bool stream_peer_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct pollfd p = {.events = POLLRDHUP};

    if (!ci)
        return false;
    p.fd = ci->connect_fd;
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* The ping ticker: every step, resumes the sleeping streams whose client hung up (they end) and
 * marks silent event streams ping-due and resumes them. Stops on stopping. */
static void *stream_ticker(void *arg)
{
    cc_http *srv = arg;
    unsigned ping_ms = srv->cfg.stream_ping_ms;
    long step_ms = ping_ms / 4 > 0 ? ping_ms / 4 : 1;
    struct MHD_Connection **resume = NULL;
    size_t cap = 0;

    if (step_ms > 1000)
        step_ms = 1000;
    pthread_mutex_lock(&srv->streams_mu);
    while (!srv->stopping) {
        struct timespec until;
        size_t n = 0;
        int64_t now;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += step_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&srv->streams_cv, &srv->streams_mu, &until);
        if (srv->stopping)
            break;
        now = mono_ms();
        for (struct cc_http_stream *st = srv->streams; st; st = st->next) {
            if (st->suspended && stream_peer_gone(st->conn))
                st->gone = true;
            else if (!st->sse || st->ping_due || now - st->last_write_ms < (int64_t)ping_ms)
                continue;
            else
                st->ping_due = true;
            if (!st->suspended)
                continue;
            if (n == cap) {
                size_t ncap = cap ? 2 * cap : 16;
                struct MHD_Connection **grown = realloc(resume, ncap * sizeof(*grown));
                if (!grown) {
                    st->ping_due = false; /* next round */
                    break;
                }
                resume = grown;
                cap = ncap;
            }
            st->suspended = false;
            resume[n++] = st->conn;
        }
        pthread_mutex_unlock(&srv->streams_mu);
        for (size_t i = 0; i < n; i++)
            stream_resume(resume[i]);
        pthread_mutex_lock(&srv->streams_mu);
    }
    pthread_mutex_unlock(&srv->streams_mu);
    free(resume);
    return NULL;
}

/* Links st (its response exists now) and starts the ticker with the first stream. */
static void stream_link(struct cc_http_req *req, struct cc_http_stream *st)
{
    cc_http *srv = req->srv;

    pthread_mutex_lock(&srv->streams_mu);
    st->conn = req->conn;
    st->last_write_ms = mono_ms();
    st->closing = srv->stopping;
    st->next = srv->streams;
    if (st->next)
        st->next->prev = st;
    srv->streams = st;
    st->linked = true;
    if (!srv->ticker_running && !srv->stopping) {
        if (pthread_create(&srv->ticker, NULL, stream_ticker, srv) == 0)
            srv->ticker_running = true;
        else
            CC_WARN("cannot start the http stream ticker: event streams get no pings");
    }
    pthread_mutex_unlock(&srv->streams_mu);
}

static void streams_init(cc_http *srv)
{
    pthread_condattr_t ca;

    pthread_mutex_init(&srv->streams_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->streams_cv, &ca);
    pthread_condattr_destroy(&ca);
}

/* Ends every stream (the next read ends it) and stops the ticker; before MHD_stop_daemon, which
 * must not find a suspended connection. */
static void streams_stop(cc_http *srv)
{
    struct MHD_Connection **resume = NULL;
    size_t n = 0, count = 0;
    bool join;

    pthread_mutex_lock(&srv->streams_mu);
    srv->stopping = true;
    for (struct cc_http_stream *st = srv->streams; st; st = st->next)
        count++;
    if (count)
        resume = calloc(count, sizeof(*resume));
    for (struct cc_http_stream *st = srv->streams; st; st = st->next) {
        st->closing = true;
        if (st->suspended && resume) {
            st->suspended = false;
            resume[n++] = st->conn;
        }
    }
    join = srv->ticker_running;
    srv->ticker_running = false;
    pthread_cond_broadcast(&srv->streams_cv);
    pthread_mutex_unlock(&srv->streams_mu);
    for (size_t i = 0; i < n; i++)
        stream_resume(resume[i]);
    free(resume);
    if (join)
        pthread_join(srv->ticker, NULL);
}

/* ---- request accessors ------------------------------------------------------------------ */

const char *cc_http_method(const struct cc_http_req *req)
{
    return req->method;
}

const char *cc_http_path(const struct cc_http_req *req)
{
    return req->path;
}

const char *cc_http_param(const struct cc_http_req *req, const char *name)
{
    for (size_t i = 0; name && i < req->nparams; i++) {
        if (strcmp(req->pnames[i], name) == 0)
            return req->pvalues[i];
    }
    return NULL;
}

const char *cc_http_query(const struct cc_http_req *req, const char *name)
{
    const char *value = NULL;

    if (!name || MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name),
                                               &value, NULL) != MHD_YES)
        return NULL;
    return value ? value : ""; /* "?flag" without '=' is present, with an empty value */
}

const char *cc_http_header(const struct cc_http_req *req, const char *name)
{
    return name ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}

const struct cc_principal *cc_http_principal(const struct cc_http_req *req)
{
    return req->authenticated ? &req->principal : NULL;
}

bool cc_http_tenant_owns(const struct cc_http_req *req, const char *tenant)
{
    return req->authenticated && tenant && strcmp(req->principal.tenant, tenant) == 0;
}

json_t *cc_http_json_body(const struct cc_http_req *req)
{
    return req->json;
}

const char *cc_http_body(const struct cc_http_req *req, size_t *len)
{
    if (len)
        *len = req->body ? req->body_len : 0;
    return req->body;
}

/* ---- routes ----------------------------------------------------------------------------- */

static void route_free(struct route *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nsegs; i++)
        free(r->segs[i].text);
    pthread_mutex_destroy(&r->lock);
    free(r->method);
    free(r->pattern);
    free(r);
}

static bool valid_method(const char *m)
{
    size_t len = m ? strlen(m) : 0;

    if (len == 0 || len > 15)
        return false;
    for (; *m; m++) {
        if (*m < 'A' || *m > 'Z')
            return false;
    }
    return true;
}

/* Literal segment characters: RFC 3986 pchar without '%', so labels never need escaping. */
static bool valid_literal(const char *s)
{
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && !strchr("-._~!$&'()*+,;=:@", *s))
            return false;
    }
    return true;
}

static bool valid_param_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    }
    return true;
}

/* Splits pattern into r->segs; -EINVAL for an unusable pattern. */
static int route_parse_pattern(struct route *r, const char *pattern)
{
    char *copy, *cursor, *seg;
    size_t nparams = 0;
    int rc = -EINVAL;

    if (!pattern || pattern[0] != '/')
        return -EINVAL;
    copy = strdup(pattern + 1);
    if (!copy)
        return -ENOMEM;
    cursor = copy;
    while ((seg = strsep(&cursor, "/")) != NULL) {
        size_t len = strlen(seg);
        bool param = len >= 2 && seg[0] == '{' && seg[len - 1] == '}';

        if (r->nsegs == MAX_SEGMENTS || (len == 0 && (cursor || r->nsegs > 0)))
            goto out_copy; /* too deep, or an empty segment ("//", trailing '/') */
        if (param) {
            seg[len - 1] = '\0';
            seg++;
            if (!valid_param_name(seg) || ++nparams > MAX_PARAMS)
                goto out_copy;
            for (size_t i = 0; i < r->nsegs; i++) {
                if (r->segs[i].param && strcmp(r->segs[i].text, seg) == 0)
                    goto out_copy;
            }
        } else if (!valid_literal(seg)) {
            goto out_copy;
        }
        r->segs[r->nsegs].text = strdup(seg);
        if (!r->segs[r->nsegs].text) {
            rc = -ENOMEM;
            goto out_copy;
        }
        r->segs[r->nsegs++].param = param;
    }
    rc = 0;
out_copy:
    free(copy);
    return rc;
}

/* Same method and the same shape (parameter names aside). */
static bool route_same(const struct route *a, const struct route *b)
{
    if (strcmp(a->method, b->method) != 0 || a->nsegs != b->nsegs)
        return false;
    for (size_t i = 0; i < a->nsegs; i++) {
        if (a->segs[i].param != b->segs[i].param)
            return false;
        if (!a->segs[i].param && strcmp(a->segs[i].text, b->segs[i].text) != 0)
            return false;
    }
    return true;
}

/* A route with its pattern parsed; NULL with *rc = -EINVAL (bad pattern) or -ENOMEM. */
static struct route *route_make(const char *method, const char *pattern, int *rc)
{
    struct route *r = calloc(1, sizeof(*r));

    *rc = -ENOMEM;
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->method = strdup(method);
    r->pattern = strdup(pattern);
    if (!r->method || !r->pattern)
        goto fail_route;
    *rc = route_parse_pattern(r, pattern);
    if (*rc < 0)
        goto fail_route;
    return r;

fail_route:
    route_free(r);
    return NULL;
}

/* Registers the route's latency histogram (its request counters come per status, lazily). */
static int route_add_metrics(cc_http *srv, struct route *r)
{
    char labels[512];

    snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\"", r->method, r->pattern);
    r->latency = cc_metrics_histogram(
        srv->metrics, LATENCY_METRIC, "Time from request headers to response queued.", labels,
        latency_bounds, sizeof(latency_bounds) / sizeof(latency_bounds[0]));
    return r->latency ? 0 : -ENOMEM;
}

int cc_http_route(cc_http *srv, const char *method, const char *pattern, cc_http_handler handler,
                  void *ctx, unsigned flags)
{
    unsigned known = CC_HTTP_PUBLIC | CC_HTTP_RAW_BODY | CC_HTTP_QUERY_TOKEN |
                     CC_HTTP_TRAILING_SLASH | ((1u << CC_ROLE_COUNT) - 1);
    struct route **grown;
    struct route *r;
    int rc;

    if (srv->daemon)
        return -EBUSY;
    if (!valid_method(method) || !handler || (flags & ~known) || !pattern || strlen(pattern) > 256)
        return -EINVAL;
    r = route_make(method, pattern, &rc);
    if (!r)
        return rc;
    for (size_t i = 0; i < srv->nroutes; i++) {
        if (route_same(srv->routes[i], r)) {
            rc = -EEXIST;
            goto fail_route;
        }
    }
    rc = route_add_metrics(srv, r);
    if (rc < 0)
        goto fail_route;
    grown = realloc(srv->routes, (srv->nroutes + 1) * sizeof(*grown));
    if (!grown) {
        rc = -ENOMEM;
        goto fail_route;
    }
    srv->routes = grown;
    r->handler = handler;
    r->ctx = ctx;
    r->flags = flags;
    srv->routes[srv->nroutes++] = r;
    return 0;

fail_route:
    route_free(r);
    return rc;
}

/*
 * Scores how well r's pattern fits the split path: -1 if it does not, else a number where
 * a literal segment further left weighs more, so "/q/stats" beats "/q/{id}".
 */
static long route_score(const struct route *r, char *const *segs, size_t nsegs)
{
    long score = 0;

    if ((r->flags & CC_HTTP_TRAILING_SLASH) && nsegs == r->nsegs + 1 && segs[nsegs - 1][0] == '\0')
        nsegs--; /* "/dir/" on a "/dir" route */
    if (r->nsegs != nsegs)
        return -1;
    for (size_t i = 0; i < nsegs; i++) {
        if (r->segs[i].param) {
            if (segs[i][0] == '\0')
                return -1; /* a parameter is never empty */
            continue;
        }
        if (strcmp(r->segs[i].text, segs[i]) != 0)
            return -1;
        score |= 1L << (MAX_SEGMENTS - 1 - i);
    }
    return score;
}

static bool method_fits(const struct route *r, const char *method)
{
    return strcmp(r->method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
}

/* Appends m to the comma-separated list in buf unless it is already there. */
static void allow_add(char *buf, size_t cap, const char *m)
{
    size_t mlen = strlen(m);

    for (const char *p = buf; (p = strstr(p, m)) != NULL; p += mlen) {
        if ((p == buf || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
            return;
    }
    if (*buf)
        strncat(buf, ", ", cap - strlen(buf) - 1);
    strncat(buf, m, cap - strlen(buf) - 1);
}

/* Finds the route for req (sets req->route and the path parameters) or rejects with 404/405. */
static void req_route(struct cc_http_req *req)
{
    cc_http *srv = req->srv;
    char *segs[MAX_SEGMENTS];
    char allow[256] = "";
    size_t nsegs = 0;
    long best = -1;
    char *cursor, *seg;

    req->pathbuf = strdup(req->path[0] == '/' ? req->path + 1 : req->path);
    if (!req->pathbuf) {
        layer_problem(req, 503, "out of memory");
        return;
    }
    cursor = req->pathbuf;
    while ((seg = strsep(&cursor, "/")) != NULL) {
        if (nsegs == MAX_SEGMENTS)
            goto not_found;
        segs[nsegs++] = seg;
    }
    for (size_t i = 0; i < srv->nroutes; i++) {
        struct route *r = srv->routes[i];
        long score = route_score(r, segs, nsegs);

        if (score < 0)
            continue;
        if (!method_fits(r, req->method)) {
            allow_add(allow, sizeof(allow), r->method);
            if (strcmp(r->method, "GET") == 0)
                allow_add(allow, sizeof(allow), "HEAD");
            continue;
        }
        if (score > best) {
            best = score;
            req->route = r;
        }
    }
    if (req->route) {
        for (size_t i = 0; i < req->route->nsegs; i++) {
            if (req->route->segs[i].param) {
                req->pnames[req->nparams] = req->route->segs[i].text;
                req->pvalues[req->nparams++] = segs[i];
            }
        }
        return;
    }
    if (*allow) {
        layer_problem(req, 405, "method %s is not allowed on '%s'", req->method, req->path);
        cc_http_add_header(&req->resp, "Allow", allow);
        return;
    }
not_found:
    layer_problem(req, 404, "no resource at '%s'", req->path);
}

/* ---- admission: auth, body size, content type ------------------------------------------- */

/* Returns the token of an "Authorization: Bearer <token>" header, trimmed into buf, or NULL. */
static const char *bearer_token(const char *header, char *buf, size_t cap)
{
    size_t len;

    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    header += 7;
    while (*header == ' ')
        header++;
    len = strlen(header);
    while (len > 0 && header[len - 1] == ' ')
        len--;
    if (len == 0 || len >= cap)
        return NULL;
    memcpy(buf, header, len);
    buf[len] = '\0';
    return strchr(buf, ' ') ? NULL : buf;
}

static void req_authenticate(struct cc_http_req *req)
{
    const char *header = cc_http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    unsigned roles = req->route->flags & ((1u << CC_ROLE_COUNT) - 1);
    char challenge[160];
    char buf[1024];
    const char *token = bearer_token(header, buf, sizeof(buf));

    if (!header && (req->route->flags & CC_HTTP_QUERY_TOKEN))
        token = cc_http_query(req, "access_token");

    if (cc_auth_check(req->srv->cfg.auth, token, &req->principal) == 0) {
        req->authenticated = true;
        if (roles && !(roles & CC_HTTP_ROLE(req->principal.role)))
            layer_problem(req, 403, "role '%s' may not call %s '%s'",
                          cc_role_name(req->principal.role), req->route->method,
                          req->route->pattern);
        return;
    }
    if (header)
        snprintf(challenge, sizeof(challenge), "Bearer realm=\"%s\", error=\"invalid_token\"",
                 req->srv->service);
    else
        snprintf(challenge, sizeof(challenge), "Bearer realm=\"%s\"", req->srv->service);
    if (!header && token)
        layer_problem(req, 401, "invalid access_token");
    else
        layer_problem(req, 401, header ? "invalid bearer token" : "missing bearer token");
    cc_http_add_header(&req->resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
}

/* application/json or application/<anything>+json, parameters (charset) ignored. */
static bool is_json_type(const char *ctype)
{
    size_t len;

    if (!ctype)
        return false;
    while (*ctype == ' ')
        ctype++;
    len = strcspn(ctype, "; ");
    if (len == 16 && strncasecmp(ctype, "application/json", 16) == 0)
        return true;
    return len > 17 && strncasecmp(ctype, "application/", 12) == 0 &&
           strncasecmp(ctype + len - 5, "+json", 5) == 0;
}

/* Reads Content-Length / Transfer-Encoding; true if a body follows the headers. */
static bool req_expects_body(struct cc_http_req *req)
{
    const char *cl = cc_http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = cc_http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    char *end;

    req->declared = UINT64_MAX;
    if (cl) {
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl)
            req->declared = v;
        return req->declared != 0;
    }
    return te != NULL;
}

/*
 * First call: everything decidable from the headers. Returns true when the answer must go out
 * now, before the body is read (libmicrohttpd then closes the connection, which is the point).
 */
static bool req_admit(struct cc_http_req *req)
{
    size_t limit = req->srv->cfg.body_limit;
    bool has_body = req_expects_body(req);

    req_route(req);
    if (!req->rejected && !(req->route->flags & CC_HTTP_PUBLIC))
        req_authenticate(req);
    if (!has_body)
        return false;
    if (req->declared != UINT64_MAX && req->declared > limit) {
        if (!req->rejected)
            layer_problem(req, 413, "body of %llu bytes is over the limit of %zu bytes",
                          (unsigned long long)req->declared, limit);
        return true;
    }
    if (!req->rejected && !(req->route->flags & CC_HTTP_RAW_BODY) &&
        !is_json_type(cc_http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE)))
        layer_problem(req, 415, "expected Content-Type application/json, got '%s'",
                      cc_http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE)
                          ? cc_http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE)
                          : "(none)");
    return false;
}

/*
 * Stores an upload chunk. A rejected request's body is read and dropped (so the connection
 * stays usable); a chunked body over the limit is dropped too and answered 413 at its end.
 * Returns false to abort the connection (no memory, or a sender that will not stop).
 */
static bool req_take_body(struct cc_http_req *req, const char *data, size_t size)
{
    size_t limit = req->srv->cfg.body_limit;

    req->received += size;
    if (req->rejected || req->overflow || req->received > limit) {
        req->overflow = req->overflow || (!req->rejected && req->received > limit);
        return req->received <= (uint64_t)limit * 4 + DRAIN_SLACK;
    }
    if (req->body_len + size + 1 > req->body_cap) {
        size_t want = req->declared != UINT64_MAX ? (size_t)req->declared + 1 : 2 * req->body_cap;
        char *grown;

        if (want < req->body_len + size + 1)
            want = req->body_len + size + 1;
        if (want < 1024)
            want = 1024;
        if (want > limit + 1)
            want = limit + 1;
        grown = realloc(req->body, want);
        if (!grown)
            return false;
        req->body = grown;
        req->body_cap = want;
    }
    memcpy(req->body + req->body_len, data, size);
    req->body_len += size;
    req->body[req->body_len] = '\0';
    return true;
}

/* ---- metrics and reply ------------------------------------------------------------------ */

static struct cc_counter *status_counter(cc_http *srv, struct route *r, int status)
{
    struct cc_counter *c = NULL;
    char labels[512];

    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->ncounters; i++) {
        if (r->counters[i].status == status) {
            c = r->counters[i].counter;
            goto out_unlock;
        }
    }
    snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\",status=\"%d\"", r->method,
             r->pattern, status);
    c = cc_metrics_counter(srv->metrics, REQUESTS_METRIC, "HTTP requests answered.", labels);
    if (c && r->ncounters < MAX_STATUSES)
        r->counters[r->ncounters++] = (struct status_counter){status, c};
out_unlock:
    pthread_mutex_unlock(&r->lock);
    return c;
}

static void req_observe(struct cc_http_req *req, int status)
{
    struct route *r = req->route ? req->route : req->srv->unmatched;
    struct cc_counter *c = status_counter(req->srv, r, status);
    struct timespec now;

    if (c)
        cc_counter_add(c, 1);
    clock_gettime(CLOCK_MONOTONIC, &now);
    cc_histogram_observe(r->latency, (double)(now.tv_sec - req->start.tv_sec) +
                                         (double)(now.tv_nsec - req->start.tv_nsec) / 1e9);
}

/* Queues req->resp (a 500 problem if the handler left it empty). */
static enum MHD_Result req_reply(struct cc_http_req *req)
{
    struct cc_http_resp *resp = &req->resp;
    struct MHD_Response *mr;
    enum MHD_Result ret;

    if (resp->status == 0 && cc_http_problem(resp, 500, NULL, "internal error") < 0)
        return MHD_NO;
    if (resp->stream)
        mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read,
                                               resp->stream, stream_free_cb);
    else if (resp->len > 0)
        mr = MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_FREE);
    else
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!mr)
        return MHD_NO;
    if (resp->stream) {
        stream_link(req, resp->stream);
        resp->stream = NULL; /* now the response's: stream_free_cb ends it */
    } else if (resp->len > 0) {
        resp->body = NULL; /* now libmicrohttpd's */
    }
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, resp->ctype);
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(mr, resp->headers[i].name, resp->headers[i].value);
    ret = MHD_queue_response(req->conn, (unsigned int)resp->status, mr);
    MHD_destroy_response(mr);
    req_observe(req, resp->status);
    return ret;
}

/* ---- the request's life ----------------------------------------------------------------- */

static void req_free(struct cc_http_req *req)
{
    if (!req)
        return;
    resp_release(&req->resp);
    json_decref(req->json);
    free(req->body);
    free(req->pathbuf);
    free(req);
}

static struct cc_http_req *req_new(cc_http *srv, struct MHD_Connection *conn, const char *url,
                                   const char *method)
{
    struct cc_http_req *req = calloc(1, sizeof(*req));

    if (!req)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    req->srv = srv;
    req->conn = conn;
    req->method = method;
    req->path = url;
    return req;
}

/* Parses the body of a JSON route; 400 with Jansson's position when it is not JSON. */
static void req_parse_json(struct cc_http_req *req)
{
    json_error_t jerr;

    if (req->body_len == 0 || (req->route->flags & CC_HTTP_RAW_BODY))
        return;
    req->json = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req->json)
        layer_problem(req, 400, "invalid JSON body at line %d, column %d: %s", jerr.line,
                      jerr.column, jerr.text);
}

/* Last call (whole body read): run the handler unless the request was already answered. */
static void req_run(struct cc_http_req *req)
{
    struct route *r = req->route;
    int rc;

    if (!req->rejected && req->overflow)
        layer_problem(req, 413, "body of more than %zu bytes is over the limit",
                      req->srv->cfg.body_limit);
    if (!req->rejected)
        req_parse_json(req);
    if (req->rejected)
        return;
    rc = r->handler(req, &req->resp, r->ctx);
    if (req->resp.status != 0)
        return;
    if (rc < 0)
        CC_ERROR("handler failed for '%s %s': %s", r->method, r->pattern, strerror(-rc));
    else
        CC_ERROR("handler set no response for '%s %s'", r->method, r->pattern);
    cc_http_problem(&req->resp, 500, NULL, "internal error");
}

/*
 * libmicrohttpd's access handler. First call: headers only; decide what we can and return
 * without a response (a response queued on the first call makes libmicrohttpd drop
 * keep-alive), unless the request must be refused before its body is read. Middle calls:
 * body chunks. Last call (*upload_size == 0): answer.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    struct cc_http_req *req = *state;

    (void)version;
    if (!req) {
        req = req_new(cls, conn, url, method);
        if (!req)
            return MHD_NO;
        *state = req;
        if (req_admit(req))
            return req_reply(req);
        return MHD_YES;
    }
    if (*upload_size > 0) {
        bool ok = req_take_body(req, upload, *upload_size);
        *upload_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    req_run(req);
    return req_reply(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    req_free(*state);
    *state = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t len;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    CC_WARN("http server: %s", msg);
}

/* ---- built-in routes -------------------------------------------------------------------- */

static int handle_healthz(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    (void)req;
    (void)ctx;
    return cc_http_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static int handle_readyz(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    cc_http *srv = ctx;
    char why[512] = "";

    (void)req;
    if (!srv->ready_fn || srv->ready_fn(srv->ready_ctx, why, sizeof(why)))
        return cc_http_json(resp, 200, json_pack("{s:s}", "status", "ready"));
    return cc_http_problem(resp, 503, "Not Ready", "%s", *why ? why : "not ready");
}

static int handle_metrics(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    cc_http *srv = ctx;
    size_t len = 0;
    char *text;

    (void)req;
    if (srv->heap)
        cc_gauge_set(srv->heap, (double)cc_heap_allocated_bytes(NULL));
    text = cc_metrics_render(srv->metrics, &len);
    if (!text)
        return -ENOMEM;
    return resp_set(resp, 200, METRICS_CTYPE, text, len);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

cc_http *cc_http_new_common(const char *service, const struct cc_common_config *common,
                            const cc_auth *auth, cc_metrics *metrics)
{
    return cc_http_new(&(struct cc_http_config){.service = service,
                                                .addr = common->http_addr,
                                                .port = (int)common->http_port,
                                                .threads = (unsigned)common->http_threads,
                                                .body_limit = (size_t)common->http_body_limit,
                                                .auth = auth,
                                                .metrics = metrics});
}

cc_http *cc_http_new(const struct cc_http_config *cfg)
{
    const char *heap_source = "none";
    cc_http *srv;

    if (!cfg || cfg->port < 0 || cfg->port > 65535) {
        CC_ERROR("bad http config: port %d is outside 0..65535", cfg ? cfg->port : -1);
        return NULL;
    }
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->cfg = *cfg;
    streams_init(srv);
    if (srv->cfg.stream_ping_ms == 0)
        srv->cfg.stream_ping_ms = CC_HTTP_DEFAULT_PING_MS;
    if (srv->cfg.threads == 0)
        srv->cfg.threads = CC_HTTP_DEFAULT_THREADS;
    if (srv->cfg.body_limit == 0)
        srv->cfg.body_limit = CC_HTTP_DEFAULT_BODY_LIMIT;
    if (srv->cfg.idle_timeout_s == 0)
        srv->cfg.idle_timeout_s = CC_HTTP_DEFAULT_IDLE_S;
    srv->service = strdup(cfg->service ? cfg->service : "cc");
    srv->addr = strdup(cfg->addr ? cfg->addr : "0.0.0.0");
    if (!srv->service || !srv->addr)
        goto fail_srv;
    srv->cfg.service = srv->service;
    srv->cfg.addr = srv->addr;
    srv->metrics = cfg->metrics;
    if (!srv->metrics) {
        srv->metrics = cc_metrics_new();
        srv->owns_metrics = true;
        if (!srv->metrics)
            goto fail_srv;
    }
    srv->unmatched = calloc(1, sizeof(*srv->unmatched));
    if (!srv->unmatched)
        goto fail_srv;
    pthread_mutex_init(&srv->unmatched->lock, NULL);
    srv->unmatched->method = strdup("*");
    srv->unmatched->pattern = strdup("unmatched");
    if (!srv->unmatched->method || !srv->unmatched->pattern ||
        route_add_metrics(srv, srv->unmatched) < 0)
        goto fail_srv;
    /* every service's allocator figure: a leak shows here, not in the RSS (cc_heap.h) */
    if (cc_heap_allocated_bytes(&heap_source) >= 0) {
        char labels[64];

        snprintf(labels, sizeof(labels), "allocator=\"%s\"", heap_source);
        srv->heap =
            cc_metrics_gauge(srv->metrics, "process_heap_allocated_bytes",
                             "Bytes the allocator has handed out and not had back.", labels);
    }
    if (cc_http_route(srv, "GET", "/healthz", handle_healthz, srv, CC_HTTP_PUBLIC) < 0 ||
        cc_http_route(srv, "GET", "/readyz", handle_readyz, srv, CC_HTTP_PUBLIC) < 0 ||
        cc_http_route(srv, "GET", "/metrics", handle_metrics, srv, CC_HTTP_PUBLIC) < 0)
        goto fail_srv;
    return srv;

fail_srv:
    CC_ERROR("cannot make the http server: out of memory, or its metric names are taken");
    cc_http_free(srv);
    return NULL;
}

void cc_http_set_ready_check(cc_http *srv, cc_http_ready_fn fn, void *ctx)
{
    if (srv->daemon)
        return;
    srv->ready_fn = fn;
    srv->ready_ctx = ctx;
}

cc_metrics *cc_http_metrics(cc_http *srv)
{
    return srv->metrics;
}

int cc_http_start(cc_http *srv)
{
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                         MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

    if (srv->daemon)
        return -EBUSY;
    if (inet_pton(AF_INET, srv->addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)srv->cfg.port);
    } else if (inet_pton(AF_INET6, srv->addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)srv->cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        CC_ERROR("bad http address '%s': expected a numeric IPv4 or IPv6 address", srv->addr);
        return -EINVAL;
    }
    errno = 0;
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)srv->cfg.port, NULL, NULL, on_request, srv,
        /* the logger goes first, or earlier options log to stderr unformatted */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_THREAD_POOL_SIZE, srv->cfg.threads, MHD_OPTION_CONNECTION_TIMEOUT,
        srv->cfg.idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    if (!srv->daemon) {
        int err = errno ? errno : EIO;
        CC_ERROR("cannot listen on '%s' port %d: %s", srv->addr, srv->cfg.port, strerror(err));
        return -err;
    }
    CC_INFO("http listening on '%s' port %d (%u threads)", srv->addr, cc_http_port(srv),
            srv->cfg.threads);
    return 0;
}

int cc_http_port(const cc_http *srv)
{
    const union MHD_DaemonInfo *info;

    if (!srv->daemon)
        return -ENOTCONN;
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? (int)info->port : -ENOTCONN;
}

void cc_http_free(cc_http *srv)
{
    if (!srv)
        return;
    streams_stop(srv);
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    for (size_t i = 0; i < srv->nroutes; i++)
        route_free(srv->routes[i]);
    free(srv->routes);
    route_free(srv->unmatched);
    if (srv->owns_metrics)
        cc_metrics_free(srv->metrics);
    free(srv->service);
    free(srv->addr);
    pthread_cond_destroy(&srv->streams_cv);
    pthread_mutex_destroy(&srv->streams_mu);
    free(srv);
}
