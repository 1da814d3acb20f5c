/*
 * cc_event: the CloudEvents 1.0 structured-mode JSON envelope every bus message uses.
 *
 * Required attributes: specversion "1.0", id, source (URI-reference), type ("cc." prefix),
 * time (RFC 3339) and the extension `tenant` (1..64 chars of [A-Za-z0-9_-]). Optional:
 * datacontenttype (must be "application/json"), subject (string), data (object). Other extension
 * attributes are allowed when their value is a string, number or boolean. No global state:
 * every function is thread-safe on distinct arguments.
 */
#ifndef CC_EVENT_H
#define CC_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CC_EVENT_MAX_BYTES  (1024 * 1024) /* larger messages are rejected by cc_event_parse */
#define CC_EVENT_TENANT_MAX 64

typedef struct cc_event { /* strings are borrowed from `json` and live as long as it */
    const char *id, *source, *type, *subject, *tenant;
    int64_t time_ms;
    json_t *data; /* borrowed; may be NULL */
    json_t *json; /* owned: the whole envelope */
} cc_event;

/* True when t is a valid tenant id: 1..CC_EVENT_TENANT_MAX characters of [A-Za-z0-9_-]. The one
 * rule for tenants everywhere (events, tokens, REST paths). */
bool cc_tenant_valid(const char *t);
/* True when s is an id as proto/schemas/common.schema.json#/$defs/id defines ids -- an ASCII
 * letter or digit, then letters, digits and . _ : @ - -- of at most max characters (the
 * schema's 128, or a service's tighter column size). NULL is false. */
bool cc_event_id_valid(const char *s, size_t max);
#define CC_EVENT_ID_MAX 128 /* common.schema.json's longest id */
/* Builds an envelope with a fresh UUIDv7 id, the current time and datacontenttype
 * "application/json". Steals `data` (may be NULL; must be an object otherwise). subject may be
 * NULL. Returns a new json_t, or NULL (and frees data) on invalid arguments or ENOMEM. */
json_t *cc_event_build(const char *type, const char *source, const char *subject,
                       const char *tenant, json_t *data);
/* Serialises compactly (keys in insertion order). Returns a malloc'd NUL-terminated string the
 * caller frees, *len (may be NULL) set to its length; NULL on ENOMEM. */
char *cc_event_dump(const json_t *envelope, size_t *len);
/* Parses and validates bytes (not NUL-terminated; rejects > CC_EVENT_MAX_BYTES, invalid UTF-8 /
 * JSON, missing or mistyped attributes). On success fills *ev (call cc_event_clear after) and
 * returns 0; on failure returns -EINVAL, leaves *ev zeroed and writes a human-readable reason into
 * err (may be NULL), e.g. "missing required attribute 'tenant'". */
int cc_event_parse(const void *bytes, size_t len, cc_event *ev, char *err, size_t errlen);
/* Validates an already-parsed envelope (borrowed). Returns 0, or -EINVAL with the reason in err. */
int cc_event_validate(const json_t *envelope, char *err, size_t errlen);
/* Releases ev->json and zeroes *ev. Safe on a zeroed or already-cleared event. */
void cc_event_clear(cc_event *ev);

#endif
