/* cc_http_rest: see cc_http_rest.h. */
#include "cc_http_rest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cc_http_rest_routes(cc_http *srv, const struct cc_http_rest_route *routes, size_t n, void *ctx)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = cc_http_route(srv, routes[i].method, routes[i].pattern, routes[i].fn, ctx,
                           routes[i].flags);
    return rc;
}

int cc_http_rest_store_error(struct cc_http_resp *resp, int rc, const char *what, const char *id)
{
    switch (rc) {
    case -ENOENT:
        return cc_http_problem(resp, 404, NULL, "no %s '%s'", what, id);
    case -EEXIST:
        return cc_http_problem(resp, 409, NULL, "%s '%s' already exists", what, id);
    case -ESTALE:
        return cc_http_problem(resp, 409, NULL,
                               "%s '%s' was changed since the version given (If-Match or "
                               "'version'): read it again and retry",
                               what, id);
    case -EINVAL:
        return cc_http_problem(resp, 422, NULL, "the database refused the values of %s '%s'", what,
                               id);
    case -EAGAIN:
        cc_http_add_header(resp, "Retry-After", "1");
        return cc_http_problem(resp, 503, NULL, "the store is busy, retry");
    case -EIO:
        cc_http_add_header(resp, "Retry-After", "1");
        return cc_http_problem(resp, 503, NULL, "the store is unavailable");
    default:
        return rc < 0 ? rc : -EIO;
    }
}

int cc_http_rest_unprocessable(struct cc_http_resp *resp, json_t *errors)
{
    const json_t *first = json_array_get(errors, 0);
    const char *field = json_string_value(json_object_get(first, "field"));
    const char *message = json_string_value(json_object_get(first, "message"));
    char detail[512];
    json_t *doc;
    char *text;
    int rc;

    if (!errors)
        return -ENOMEM;
    snprintf(detail, sizeof(detail), "invalid field '%s': %s%s", field ? field : "",
             message ? message : "", json_array_size(errors) > 1 ? " (and more, see errors)" : "");
    doc = json_pack("{s:s, s:s, s:i, s:s, s:o}", "type", "about:blank", "title",
                    "Unprocessable Entity", "status", 422, "detail", detail, "errors", errors);
    text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return -ENOMEM;
    rc = cc_http_text(resp, 422, CC_HTTP_PROBLEM_CTYPE, text);
    free(text);
    return rc;
}

void cc_http_rest_etag(struct cc_http_resp *resp, long long version)
{
    char etag[32];

    snprintf(etag, sizeof(etag), "\"%lld\"", version);
    cc_http_add_header(resp, "ETag", etag);
}

int cc_http_rest_no_content(struct cc_http_resp *resp)
{
    return cc_http_text(resp, 204, "application/json", "");
}

bool cc_http_rest_if_match(struct cc_http_req *req, struct cc_http_resp *resp, long long *version)
{
    const char *h = cc_http_header(req, "If-Match");
    char digits[24];
    size_t len;
    char *end;

    *version = 0;
    if (!h || strcmp(h, "*") == 0)
        return true;
    if (strncmp(h, "W/", 2) == 0)
        h += 2;
    len = strlen(h);
    if (len >= 2 && h[0] == '"' && h[len - 1] == '"') {
        h++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(digits))
        goto err_header;
    memcpy(digits, h, len);
    digits[len] = '\0';
    *version = strtoll(digits, &end, 10);
    if (*end || *version < 1 || digits[0] < '0' || digits[0] > '9')
        goto err_header;
    return true;
err_header:
    cc_http_problem(resp, 400, NULL, "If-Match must be an ETag of this API, e.g. \"3\"");
    return false;
}

void cc_http_rest_cursor_encode(const char *key, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 0;

    if (cap == 0)
        return;
    for (const unsigned char *p = (const unsigned char *)key; *p && n + 3 <= cap; p++) {
        out[n++] = digits[*p >> 4];
        out[n++] = digits[*p & 0xf];
    }
    out[n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool cc_http_rest_cursor_decode(const char *cursor, char *out, size_t cap)
{
    size_t len = strlen(cursor);

    if (len == 0 || len % 2 || len / 2 >= cap)
        return false;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_value(cursor[2 * i]), lo = hex_value(cursor[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            return false;
        out[i] = (char)(hi << 4 | lo);
    }
    out[len / 2] = '\0';
    return true;
}

bool cc_http_rest_page_args(struct cc_http_req *req, struct cc_http_resp *resp,
                            struct cc_http_page *pa)
{
    const char *limit = cc_http_query(req, "limit");
    const char *cursor = cc_http_query(req, "cursor");
    char *end;
    long v;

    pa->limit = CC_HTTP_REST_LIMIT_DEFAULT;
    pa->after = NULL;
    if (limit) {
        v = strtol(limit, &end, 10);
        if (!*limit || *end || v < 1 || v > CC_HTTP_REST_LIMIT_MAX) {
            cc_http_problem(resp, 400, NULL, "'limit' must be an integer 1..%d",
                            CC_HTTP_REST_LIMIT_MAX);
            return false;
        }
        pa->limit = (size_t)v;
    }
    if (cursor) {
        if (!cc_http_rest_cursor_decode(cursor, pa->after_buf, sizeof(pa->after_buf))) {
            cc_http_problem(resp, 400, NULL, "'cursor' is not a cursor of this list");
            return false;
        }
        pa->after = pa->after_buf;
    }
    return true;
}

int cc_http_rest_page_answer(struct cc_http_resp *resp, json_t *items, size_t limit,
                             cc_http_rest_key_fn key_of)
{
    char key[CC_HTTP_REST_KEY_MAX + 1], cursor[2 * CC_HTTP_REST_KEY_MAX + 1];
    const char *k;
    json_t *doc;

    if (!items)
        return -ENOMEM;
    if (json_array_size(items) > limit) {
        k = key_of(json_array_get(items, limit - 1), key, sizeof(key));
        json_array_remove(items, limit);
        cc_http_rest_cursor_encode(k ? k : "", cursor, sizeof(cursor));
        doc = json_pack("{s:o, s:s}", "items", items, "next_cursor", cursor);
    } else {
        doc = json_pack("{s:o}", "items", items);
    }
    return doc ? cc_http_json(resp, 200, doc) : -ENOMEM;
}
