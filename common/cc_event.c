/* cc_event: CloudEvents 1.0 structured JSON envelope; see cc_event.h. */
#include "cc_event.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cc_id.h"
#include "cc_time.h"

#define CC_EVENT_CONTENT_TYPE "application/json"

/* Writes a formatted reason into err (when there is one) and returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;

    if (err && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

bool cc_event_id_valid(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > max || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._:@-", s[i]))
            return false;
    return true;
}

bool cc_tenant_valid(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > CC_EVENT_TENANT_MAX)
        return false;
    return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986 URI-reference by character set: unreserved, reserved and %HH escapes only. The
 * structure is not checked further; a relative reference such as "/router/r1" is the norm. */
static bool uri_reference_valid(const char *s)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                  "-._~:/?#[]@!$&'()*+,;=";

    for (const char *p = s; *p; p++) {
        if (*p == '%') {
            if (!is_hex(p[1]) || !is_hex(p[2]))
                return false;
            p += 2;
        } else if (!strchr(allowed, *p)) {
            return false;
        }
    }
    return true;
}

/* CloudEvents attribute names: lowercase ASCII letters and digits only. */
static bool attribute_name_valid(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789") == n;
}

/* Fetches a required non-empty string attribute. */
static int required_string(const json_t *env, const char *name, const char **out, char *err,
                           size_t errlen)
{
    const json_t *v = json_object_get(env, name);

    if (!v)
        return fail(err, errlen, "missing required attribute '%s'", name);
    if (!json_is_string(v))
        return fail(err, errlen, "attribute '%s' must be a string", name);
    if (json_string_length(v) == 0)
        return fail(err, errlen, "attribute '%s' must not be empty", name);
    *out = json_string_value(v);
    return 0;
}

static int validate_required(const json_t *env, char *err, size_t errlen)
{
    const char *s;
    int64_t ms;

    if (required_string(env, "specversion", &s, err, errlen) < 0)
        return -EINVAL;
    if (strcmp(s, "1.0") != 0)
        return fail(err, errlen, "unsupported specversion '%.16s' (expected '1.0')", s);
    if (required_string(env, "id", &s, err, errlen) < 0)
        return -EINVAL;
    if (required_string(env, "source", &s, err, errlen) < 0)
        return -EINVAL;
    if (!uri_reference_valid(s))
        return fail(err, errlen, "attribute 'source' is not a URI-reference");
    if (required_string(env, "type", &s, err, errlen) < 0)
        return -EINVAL;
    if (strncmp(s, "cc.", 3) != 0 || s[3] == '\0')
        return fail(err, errlen, "attribute 'type' must start with 'cc.'");
    if (required_string(env, "tenant", &s, err, errlen) < 0)
        return -EINVAL;
    if (!cc_tenant_valid(s))
        return fail(err, errlen, "attribute 'tenant' must be 1..%d characters of [A-Za-z0-9_-]",
                    CC_EVENT_TENANT_MAX);
    if (required_string(env, "time", &s, err, errlen) < 0)
        return -EINVAL;
    if (cc_time_parse_iso8601(s, &ms) < 0)
        return fail(err, errlen, "attribute 'time' is not an RFC 3339 timestamp");
    return 0;
}

static int validate_optional(const json_t *env, char *err, size_t errlen)
{
    const json_t *v;

    v = json_object_get(env, "datacontenttype");
    if (v && !json_is_string(v))
        return fail(err, errlen, "attribute 'datacontenttype' must be a string");
    if (v && strcmp(json_string_value(v), CC_EVENT_CONTENT_TYPE) != 0)
        return fail(err, errlen, "attribute 'datacontenttype' must be '" CC_EVENT_CONTENT_TYPE "'");
    v = json_object_get(env, "subject");
    if (v && (!json_is_string(v) || json_string_length(v) == 0))
        return fail(err, errlen, "attribute 'subject' must be a non-empty string");
    v = json_object_get(env, "data");
    if (v && !json_is_object(v))
        return fail(err, errlen, "attribute 'data' must be an object");
    if (json_object_get(env, "data_base64"))
        return fail(err, errlen, "attribute 'data_base64' is not supported (data must be JSON)");
    return 0;
}

/* Every other member is an extension attribute: a valid name and a scalar value. */
static int validate_extensions(const json_t *env, char *err, size_t errlen)
{
    const char *name;
    const json_t *v;

    json_object_foreach((json_t *)env, name, v)
    {
        if (strcmp(name, "data") == 0)
            continue;
        if (!attribute_name_valid(name))
            return fail(err, errlen, "invalid attribute name '%.40s' (lowercase a-z0-9 only)",
                        name);
        if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v))
            return fail(err, errlen, "attribute '%.40s' must be a string, number or boolean", name);
    }
    return 0;
}

int cc_event_validate(const json_t *envelope, char *err, size_t errlen)
{
    if (!json_is_object(envelope))
        return fail(err, errlen, "event is not a JSON object");
    if (validate_required(envelope, err, errlen) < 0 ||
        validate_optional(envelope, err, errlen) < 0 ||
        validate_extensions(envelope, err, errlen) < 0)
        return -EINVAL;
    return 0;
}

static int set_string(json_t *obj, const char *key, const char *value)
{
    return json_object_set_new(obj, key, json_string(value));
}

json_t *cc_event_build(const char *type, const char *source, const char *subject,
                       const char *tenant, json_t *data)
{
    char id[37], stamp[CC_TIME_ISO8601_LEN];
    json_t *env;
    int rc = 0;

    if (!type || strncmp(type, "cc.", 3) != 0 || type[3] == '\0' || !source || !*source ||
        !uri_reference_valid(source) || (subject && !*subject) || !tenant ||
        !cc_tenant_valid(tenant) || (data && !json_is_object(data)))
        goto free_data;
    if (cc_uuid_v7(id) < 0 || cc_time_format_iso8601(cc_time_now_ms(), stamp) < 0)
        goto free_data;
    env = json_object();
    if (!env)
        goto free_data;
    rc |= set_string(env, "specversion", "1.0");
    rc |= set_string(env, "id", id);
    rc |= set_string(env, "source", source);
    rc |= set_string(env, "type", type);
    rc |= set_string(env, "time", stamp);
    rc |= set_string(env, "datacontenttype", CC_EVENT_CONTENT_TYPE);
    if (subject)
        rc |= set_string(env, "subject", subject);
    rc |= set_string(env, "tenant", tenant);
    if (data) {
        rc |= json_object_set_new(env, "data", data);
        data = NULL; /* stolen even when the set failed */
    }
    if (rc != 0)
        goto free_env;
    return env;

free_env:
    json_decref(env);
free_data:
    json_decref(data);
    return NULL;
}

char *cc_event_dump(const json_t *envelope, size_t *len)
{
    char *s = json_dumps(envelope, JSON_COMPACT);

    if (s && len)
        *len = strlen(s);
    return s;
}

int cc_event_parse(const void *bytes, size_t len, cc_event *ev, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root;
    int64_t ms = 0;

    memset(ev, 0, sizeof(*ev));
    if (!bytes)
        return fail(err, errlen, "no event bytes");
    if (len > CC_EVENT_MAX_BYTES)
        return fail(err, errlen, "event of %zu bytes exceeds the limit of %d bytes", len,
                    CC_EVENT_MAX_BYTES);
    root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(err, errlen, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
    if (cc_event_validate(root, err, errlen) < 0)
        goto free_root;

    ev->json = root;
    ev->id = json_string_value(json_object_get(root, "id"));
    ev->source = json_string_value(json_object_get(root, "source"));
    ev->type = json_string_value(json_object_get(root, "type"));
    ev->subject = json_string_value(json_object_get(root, "subject"));
    ev->tenant = json_string_value(json_object_get(root, "tenant"));
    cc_time_parse_iso8601(json_string_value(json_object_get(root, "time")), &ms);
    ev->time_ms = ms;
    ev->data = json_object_get(root, "data");
    return 0;

free_root:
    json_decref(root);
    return -EINVAL;
}

void cc_event_clear(cc_event *ev)
{
    if (!ev)
        return;
    json_decref(ev->json);
    memset(ev, 0, sizeof(*ev));
}
