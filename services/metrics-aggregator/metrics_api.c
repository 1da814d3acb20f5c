/* metrics_api: routes, parameters and answers of the metrics REST API (see the header). */
#include "metrics_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cc_event.h"
#include "cc_http_rest.h"
#include "cc_log.h"
#include "cc_time.h"
#include "metrics_config.h"
#include "metrics_csv.h"
#include "metrics_kpi.h"
#include "metrics_live.h"
#include "metrics_query.h"
#include "metrics_stream.h"
#include "metrics_wallboard.h"

#define API_ROLES                                                                                  \
    (CC_HTTP_ROLE(CC_ROLE_ADMIN) | CC_HTTP_ROLE(CC_ROLE_SUPERVISOR) |                              \
     CC_HTTP_ROLE(CC_ROLE_ANALYST) | CC_HTTP_ROLE(CC_ROLE_SERVICE))
#define API_JSON      "application/json"
#define API_CSV       "text/csv; charset=utf-8"
#define API_STEP_MS   (15 * 60 * 1000LL)
#define API_DAY_MS    (24 * 3600 * 1000LL)
#define API_WALLBOARD "/wallboard/"
#define API_TOKEN_MAX 512

struct metrics_api {
    cc_pg_pool *pool;
    metrics_query *q;
    metrics_live *live;
    metrics_stream *stream;
    char tz[METRICS_QUERY_TZ_MAX + 1]; /* the default of live and stream */
};

/* ---- answers --------------------------------------------------------------------------------- */

static int api_bad(struct cc_http_resp *resp, const char *param, const char *why)
{
    return cc_http_problem(resp, 400, NULL, "query parameter '%s' %s", param, why);
}

static int api_unavailable(struct cc_http_resp *resp)
{
    cc_http_add_header(resp, "Retry-After", "1");
    return cc_http_problem(resp, 503, NULL, "the metrics store is unavailable, retry");
}

/* Maps a query failure: -EINVAL is a value PostgreSQL refused, which can only be the time zone
 * (api_tz checked it against PostgreSQL's names already: a safety net, not the usual path). */
static int api_query_error(struct cc_http_resp *resp, int rc)
{
    if (rc == -EINVAL)
        return api_bad(resp, "tz", "is not a known time zone");
    return api_unavailable(resp);
}

/* A document with its 4-decimal numbers as computed. */
static int api_json(struct cc_http_resp *resp, json_t *doc)
{
    size_t len;
    char *body = metrics_kpi_dump(doc, &len);
    int rc;

    json_decref(doc);
    if (!body)
        return -ENOMEM;
    rc = cc_http_bytes(resp, 200, API_JSON, body, len);
    free(body);
    return rc;
}

static cc_pg *api_acquire(metrics_api *api, struct cc_http_resp *resp)
{
    cc_pg *pg = cc_pg_pool_acquire(api->pool);

    if (!pg)
        api_unavailable(resp);
    return pg;
}

/* ---- parameters (each false: answered 400 naming the parameter) ------------------------------ */

static bool api_time(struct cc_http_req *req, struct cc_http_resp *resp, const char *name,
                     int64_t *ms)
{
    const char *v = cc_http_query(req, name);

    if (!v || !*v) {
        api_bad(resp, name, "is required (an RFC 3339 date-time)");
        return false;
    }
    if (cc_time_parse_iso8601(v, ms) < 0) {
        api_bad(resp, name, "must be an RFC 3339 date-time with an offset");
        return false;
    }
    return true;
}

/* from and to: both there, to after from, at most METRICS_QUERY_MAX_RANGE_D days apart; on
 * 15-minute boundaries when aligned is set. */
static bool api_range(struct cc_http_req *req, struct cc_http_resp *resp, bool aligned,
                      int64_t *from, int64_t *to)
{
    if (!api_time(req, resp, "from", from) || !api_time(req, resp, "to", to))
        return false;
    if (aligned && *from % API_STEP_MS != 0) {
        api_bad(resp, "from", "must fall on a 15-minute boundary (the rollup's resolution)");
        return false;
    }
    if (aligned && *to % API_STEP_MS != 0) {
        api_bad(resp, "to", "must fall on a 15-minute boundary (the rollup's resolution)");
        return false;
    }
    if (*to <= *from) {
        api_bad(resp, "to", "must be after 'from'");
        return false;
    }
    if (*to - *from > METRICS_QUERY_MAX_RANGE_D * API_DAY_MS) {
        cc_http_problem(resp, 400, NULL, "query parameters 'from'..'to' span more than %d days",
                        METRICS_QUERY_MAX_RANGE_D);
        return false;
    }
    return true;
}

/* tz (default dflt): one of PostgreSQL's time-zone names, checked before any query runs. */
static bool api_tz(const metrics_api *api, struct cc_http_req *req, struct cc_http_resp *resp,
                   const char *dflt, const char **tz)
{
    const char *v = cc_http_query(req, "tz");

    *tz = v && *v ? v : dflt;
    if (!metrics_query_tz_known(api->q, *tz)) {
        api_bad(resp, "tz",
                "must be a time zone PostgreSQL knows (an IANA name such as "
                "Europe/Berlin)");
        return false;
    }
    return true;
}

/* An optional id filter: NULL when absent; false when present and not an id. */
static bool api_id(struct cc_http_req *req, struct cc_http_resp *resp, const char *name,
                   const char **out)
{
    const char *v = cc_http_query(req, name);

    *out = NULL;
    if (!v)
        return true;
    if (!cc_event_id_valid(v, CC_EVENT_ID_MAX)) {
        api_bad(resp, name, "must be an id (letters, digits, . _ : @ -; at most 128)");
        return false;
    }
    *out = v;
    return true;
}

static bool api_channel(struct cc_http_req *req, struct cc_http_resp *resp, const char **out)
{
    static const char *const channels[] = {"voice", "chat", "sms", "email"};
    const char *v = cc_http_query(req, "channel");

    *out = NULL;
    if (!v)
        return true;
    for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++)
        if (strcmp(v, channels[i]) == 0)
            *out = v;
    if (!*out)
        api_bad(resp, "channel", "must be one of voice, chat, sms, email");
    return *out != NULL;
}

static bool api_interval(struct cc_http_req *req, struct cc_http_resp *resp, int *minutes)
{
    const char *v = cc_http_query(req, "interval");

    if (!v || strcmp(v, "15m") == 0)
        *minutes = 15;
    else if (strcmp(v, "1h") == 0)
        *minutes = 60;
    else if (strcmp(v, "1d") == 0)
        *minutes = 1440;
    else {
        api_bad(resp, "interval", "must be one of 15m, 1h, 1d");
        return false;
    }
    return true;
}

/* group_by: a comma list of names (each a bit of allowed), possibly empty. */
static bool api_group_by(struct cc_http_req *req, struct cc_http_resp *resp, unsigned allowed,
                         bool single, unsigned *out)
{
    const char *v = cc_http_query(req, "group_by");
    char buf[128], *cursor, *tok;

    *out = 0;
    if (!v || !*v)
        return true;
    if (strlen(v) >= sizeof(buf))
        goto bad;
    snprintf(buf, sizeof(buf), "%s", v);
    cursor = buf;
    while ((tok = strsep(&cursor, ",")) != NULL) {
        unsigned dim = metrics_query_dim(tok);

        if (!(dim & allowed) || (single && *out))
            goto bad;
        *out |= dim;
    }
    return true;
bad:
    api_bad(resp, "group_by",
            single ? "must be one of queue, contact_reason, channel"
                   : "must be a comma list of queue, agent, channel, campaign");
    return false;
}

/* CSV when format=csv or an Accept naming text/csv; false on a bad format. */
static bool api_wants_csv(struct cc_http_req *req, struct cc_http_resp *resp, bool *csv)
{
    const char *f = cc_http_query(req, "format");
    const char *accept = cc_http_header(req, "Accept");

    if (f) {
        *csv = strcmp(f, "csv") == 0;
        if (!*csv && strcmp(f, "json") != 0) {
            api_bad(resp, "format", "must be json or csv");
            return false;
        }
        return true;
    }
    *csv = accept && strcasestr(accept, "text/csv") != NULL;
    return true;
}

/* ---- handlers -------------------------------------------------------------------------------- */

static int h_intervals(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    metrics_api *api = ctx;
    struct metrics_interval_args a = {.now_ms = cc_time_now_ms()};
    const char *tenant = cc_http_principal(req)->tenant;
    json_t *doc = NULL;
    bool csv;
    cc_pg *pg;
    int rc;

    if (!api_range(req, resp, true, &a.from_ms, &a.to_ms) ||
        !api_interval(req, resp, &a.interval_min) || !api_tz(api, req, resp, "UTC", &a.tz) ||
        !api_group_by(req, resp, 0xfu, false, &a.group_by) ||
        !api_id(req, resp, "queue_id", &a.queue_id) ||
        !api_id(req, resp, "agent_id", &a.agent_id) || !api_channel(req, resp, &a.channel) ||
        !api_id(req, resp, "campaign_id", &a.campaign_id) || !api_wants_csv(req, resp, &csv))
        return 0;
    if (!(pg = api_acquire(api, resp)))
        return 0;
    rc = metrics_query_intervals(api->q, pg, tenant, &a, &doc);
    cc_pg_pool_release(api->pool, pg);
    if (rc < 0)
        return api_query_error(resp, rc);
    if (csv) {
        char *text = metrics_csv_intervals(doc);
        json_decref(doc);
        if (!text)
            return -ENOMEM;
        cc_http_add_header(resp, "Content-Disposition", "attachment; filename=\"intervals.csv\"");
        rc = cc_http_bytes(resp, 200, API_CSV, text, strlen(text));
        free(text);
        return rc;
    }
    return api_json(resp, doc);
}

static int h_fcr(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    metrics_api *api = ctx;
    const char *tenant = cc_http_principal(req)->tenant, *tz;
    int64_t from, to;
    unsigned group;
    json_t *doc = NULL;
    cc_pg *pg;
    int rc;

    if (!api_range(req, resp, false, &from, &to) || !api_tz(api, req, resp, "UTC", &tz) ||
        !api_group_by(req, resp,
                      METRICS_DIM_QUEUE | METRICS_DIM_CHANNEL | METRICS_DIM_CONTACT_REASON, true,
                      &group))
        return 0;
    if (!(pg = api_acquire(api, resp)))
        return 0;
    rc = metrics_query_fcr(api->q, pg, tenant, from, to, tz, group, cc_time_now_ms(), &doc);
    cc_pg_pool_release(api->pool, pg);
    if (rc < 0)
        return api_query_error(resp, rc);
    return api_json(resp, doc);
}

static int h_outbound(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    metrics_api *api = ctx;
    const char *tenant = cc_http_principal(req)->tenant, *campaign;
    json_t *doc = NULL;
    cc_pg *pg;
    int rc;

    if (!api_id(req, resp, "campaign_id", &campaign))
        return 0;
    if (!(pg = api_acquire(api, resp)))
        return 0;
    rc = metrics_query_outbound(api->q, pg, tenant, campaign, cc_time_now_ms(), &doc);
    cc_pg_pool_release(api->pool, pg);
    if (rc < 0)
        return api_query_error(resp, rc);
    return api_json(resp, doc);
}

static int h_live(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    metrics_api *api = ctx;
    const char *tenant = cc_http_principal(req)->tenant, *tz;
    json_t *doc = NULL;
    cc_pg *pg;
    int rc;

    if (!api_tz(api, req, resp, api->tz, &tz))
        return 0;
    if (!(pg = api_acquire(api, resp)))
        return 0;
    rc = metrics_live_view(api->live, pg, tenant, tz, cc_time_now_ms(), &doc);
    cc_pg_pool_release(api->pool, pg);
    if (rc < 0)
        return api_query_error(resp, rc);
    cc_http_add_header(resp, "Cache-Control", "no-store");
    return api_json(resp, doc);
}

static int h_stream(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    metrics_api *api = ctx;
    const char *tenant = cc_http_principal(req)->tenant, *tz;
    int rc;

    if (!api_tz(api, req, resp, api->tz, &tz))
        return 0;
    rc = metrics_stream_subscribe(api->stream, resp, tenant, tz);
    if (rc == -EINVAL || rc == -EAGAIN)
        return api_query_error(resp, rc);
    return rc;
}

/* ---- wallboard ------------------------------------------------------------------------------- */

static int api_asset(struct cc_http_resp *resp, const char *name)
{
    const struct metrics_asset *a = metrics_wallboard_asset(name);

    if (!a)
        return cc_http_problem(resp, 404, NULL, "no file '%s' in the wallboard", name);
    cc_http_add_header(resp, "Cache-Control", "no-cache");
    cc_http_add_header(resp, "X-Content-Type-Options", "nosniff");
    cc_http_add_header(resp, "Referrer-Policy", "no-referrer"); /* the URL carries a token */
    return cc_http_bytes(resp, 200, a->content_type, a->data, a->len);
}

/* Percent-encodes s (RFC 3986 unreserved kept) into out[cap]; false when it does not fit. */
static bool api_urlencode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     strchr("-._~", c);

        if (n + (plain ? 1 : 3) >= cap)
            return false;
        if (plain) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return true;
}

/* "/wallboard" redirects to "/wallboard/" (relative links need the slash), keeping ?token;
 * "/wallboard/" is index.html. Public: a wall TV has no login; the data needs the token. */
static int h_wallboard(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    const char *path = cc_http_path(req), *token = cc_http_query(req, "token");
    char location[sizeof(API_WALLBOARD) + 8 + 3 * API_TOKEN_MAX];
    char enc[3 * API_TOKEN_MAX + 1];

    (void)ctx;
    if (path[strlen(path) - 1] == '/')
        return api_asset(resp, "index.html");
    if (token && strlen(token) <= API_TOKEN_MAX && api_urlencode(token, enc, sizeof(enc)))
        snprintf(location, sizeof(location), "%s?token=%s", API_WALLBOARD, enc);
    else
        snprintf(location, sizeof(location), "%s", API_WALLBOARD);
    cc_http_add_header(resp, "Location", location);
    return cc_http_text(resp, 301, "text/plain; charset=utf-8", "moved to /wallboard/\n");
}

static int h_wallboard_file(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    (void)ctx;
    return api_asset(resp, cc_http_param(req, "file"));
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

metrics_api *metrics_api_new_schema(cc_http *srv, cc_pg_pool *pool, cc_producer *producer,
                                    const struct metrics_config *cfg, const char *schema)
{
    const struct cc_http_rest_route routes[] = {
        {"GET", "/v1/metrics/intervals", h_intervals, API_ROLES},
        {"GET", "/v1/metrics/fcr", h_fcr, API_ROLES},
        {"GET", "/v1/metrics/outbound", h_outbound, API_ROLES},
        {"GET", "/v1/metrics/live", h_live, API_ROLES | CC_HTTP_QUERY_TOKEN},
        {"GET", "/v1/metrics/stream", h_stream, API_ROLES | CC_HTTP_QUERY_TOKEN},
        {"GET", "/wallboard", h_wallboard, CC_HTTP_PUBLIC | CC_HTTP_TRAILING_SLASH},
        {"GET", "/wallboard/{file}", h_wallboard_file, CC_HTTP_PUBLIC},
    };
    char source[256];
    metrics_api *api;
    cc_pg *pg;
    int rc;

    if (!srv || !pool || !cfg || !cfg->timezone || strlen(cfg->timezone) > METRICS_QUERY_TZ_MAX) {
        CC_ERROR("bad metrics api arguments");
        return NULL;
    }
    api = calloc(1, sizeof(*api));
    if (!api)
        return NULL;
    api->pool = pool;
    snprintf(api->tz, sizeof(api->tz), "%s", cfg->timezone);
    pg = cc_pg_pool_acquire(pool); /* for the time-zone names */
    if (pg)
        api->q = metrics_query_new(
            &(struct metrics_query_config){.schema = schema, .fcr_days = (int)cfg->fcr_days}, pg);
    cc_pg_pool_release(pool, pg);
    api->live = metrics_live_new(
        &(struct metrics_live_config){.schema = schema, .sl_default_s = (int)cfg->sl_default_s});
    snprintf(source, sizeof(source), "/%s/%s", METRICS_SERVICE,
             cfg->common.instance_id ? cfg->common.instance_id : "0");
    if (api->q && !metrics_query_tz_known(api->q, api->tz)) {
        CC_ERROR("bad CC_METRICS_TZ: '%s' is not a time zone postgresql knows", api->tz);
        goto fail_api;
    }
    if (api->q && api->live)
        api->stream = metrics_stream_new(api->live, pool, producer,
                                         &(struct metrics_stream_config){
                                             .stream_interval_ms = cfg->stream_interval_ms,
                                             .snapshot_interval_s = cfg->snapshot_interval_s,
                                             .timezone = cfg->timezone,
                                             .source = source,
                                         });
    if (!api->stream)
        goto fail_api;
    rc = cc_http_rest_routes(srv, routes, sizeof(routes) / sizeof(routes[0]), api);
    if (rc < 0) {
        CC_ERROR("cannot add the metrics routes: %s", strerror(-rc));
        goto fail_api;
    }
    return api;

fail_api:
    metrics_api_free(api);
    return NULL;
}

metrics_api *metrics_api_new(cc_http *srv, cc_pg_pool *pool, cc_producer *producer,
                             const struct metrics_config *cfg)
{
    return metrics_api_new_schema(srv, pool, producer, cfg, NULL);
}

void metrics_api_free(metrics_api *api)
{
    if (!api)
        return;
    metrics_stream_free(api->stream);
    metrics_live_free(api->live);
    metrics_query_free(api->q);
    free(api);
}
