/*
 * cc_http_rest: the REST conventions every service's API shares, on top of cc_http.
 *
 *   - errors: RFC 7807 problems; a store's errno-style failure mapped to one status
 *     (-ENOENT 404, -EEXIST/-ESTALE 409, -EINVAL 422, -EAGAIN/-EIO 503 + Retry-After);
 *     field-level 422 {"errors": [{"field": "/json/pointer", "message"}]}.
 *   - optimistic concurrency: `ETag: "<version>"` on reads and writes; `If-Match: "<version>"`
 *     (also W/"N", bare N; `*` = no condition) on PUT/PATCH/DELETE; a stale version is a 409
 *     (proto/openapi/README.md).
 *   - lists: `limit` (1..500, default 50) and an opaque `cursor` (the hex of the last key of the
 *     previous page: a keyset underneath); a page is {"items": [...], "next_cursor"?}.
 *
 * Functions taking a resp answer it themselves when they return false (or an int < 0 from a
 * setter); the caller then just returns 0. Pure helpers, no state: thread-safe.
 */
#ifndef CC_HTTP_REST_H
#define CC_HTTP_REST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cc_http.h"

#define CC_HTTP_REST_LIMIT_DEFAULT 50
#define CC_HTTP_REST_LIMIT_MAX     500
#define CC_HTTP_REST_KEY_MAX       1024 /* bytes of a decoded cursor key */
#define CC_HTTP_PROBLEM_CTYPE      "application/problem+json"

/* The paging arguments of a list request. */
struct cc_http_page {
    size_t limit;
    const char *after; /* NULL on the first page, else the decoded key (in after_buf) */
    char after_buf[CC_HTTP_REST_KEY_MAX + 1];
};

/* One row of a service's route table (see cc_http_route). */
struct cc_http_rest_route {
    const char *method, *pattern;
    cc_http_handler fn;
    unsigned flags; /* CC_HTTP_ROLE(...) mask and other route flags */
};

/* The keyset key of one list item (written into buf[cap] or borrowed from item), or NULL. */
typedef const char *(*cc_http_rest_key_fn)(const json_t *item, char *buf, size_t cap);

/* Adds the n routes of a table, each with ctx; stops at the first failure and returns it
 * (cc_http_route's codes), else 0. */
int cc_http_rest_routes(cc_http *srv, const struct cc_http_rest_route *routes, size_t n, void *ctx);
/* Answers a store failure about `what` 'id' (see the mapping above); any other negative rc is
 * returned as is (500), a non-negative one as -EIO. Returns the setter's result. */
int cc_http_rest_store_error(struct cc_http_resp *resp, int rc, const char *what, const char *id);
/* 422 problem+json whose detail names the first error and whose "errors" member is errors (an
 * array of {field, message}; stolen, even on failure). 0 or negative. */
int cc_http_rest_unprocessable(struct cc_http_resp *resp, json_t *errors);
/* Adds `ETag: "<version>"`. */
void cc_http_rest_etag(struct cc_http_resp *resp, long long version);
/* 204 with no body. */
int cc_http_rest_no_content(struct cc_http_resp *resp);
/* Reads If-Match into *version (0 when absent or `*`). false: malformed, answered 400. */
bool cc_http_rest_if_match(struct cc_http_req *req, struct cc_http_resp *resp, long long *version);
/* Writes the cursor of key (lowercase hex; truncated to whole bytes that fit in cap). */
void cc_http_rest_cursor_encode(const char *key, char *out, size_t cap);
/* Decodes a cursor into out[cap]; false when it is not even-length lowercase hex of 1..cap-1
 * bytes without NUL. The key's own validity is the caller's to check. */
bool cc_http_rest_cursor_decode(const char *cursor, char *out, size_t cap);
/* Reads ?limit and ?cursor into *pa. false: bad value, answered 400. */
bool cc_http_rest_page_args(struct cc_http_req *req, struct cc_http_resp *resp,
                            struct cc_http_page *pa);
/* Answers 200 {"items": items, "next_cursor": <cursor of item limit-1>} when items holds more
 * than limit elements (the list was read with limit + 1: the extra one is dropped), else
 * {"items": items}. Steals items (NULL: -ENOMEM). */
int cc_http_rest_page_answer(struct cc_http_resp *resp, json_t *items, size_t limit,
                             cc_http_rest_key_fn key_of);

#endif
