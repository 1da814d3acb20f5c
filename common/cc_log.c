/* cc_log: JSON-lines logging to stderr; see cc_log.h. */
#include "cc_log.h"
#include "cc_time.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CC_LOG_LINE_MAX 4096

static const char *log_service = "cc";
static enum cc_log_level log_min = CC_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cc_log_init(const char *service, enum cc_log_level min_level)
{
    log_service = service;
    log_min = min_level;
}

int cc_log_level_parse(const char *text, enum cc_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (text && strcasecmp(text, level_names[i]) == 0) {
            *out = (enum cc_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

bool cc_log_enabled(enum cc_log_level level)
{
    return level >= log_min;
}

/* Appends src to buf[*len..cap) as JSON string content; truncates silently. */
static void append_escaped(char *buf, size_t *len, size_t cap, const char *src)
{
    static const char hex[] = "0123456789abcdef";

    for (const unsigned char *p = (const unsigned char *)src; *p && *len + 7 < cap; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            buf[(*len)++] = '\\';
            buf[(*len)++] = (char)c;
        } else if (c == '\n') {
            buf[(*len)++] = '\\';
            buf[(*len)++] = 'n';
        } else if (c < 0x20) {
            memcpy(buf + *len, "\\u00", 4);
            *len += 4;
            buf[(*len)++] = hex[c >> 4];
            buf[(*len)++] = hex[c & 0xf];
        } else {
            buf[(*len)++] = (char)c;
        }
    }
}

static void append_raw(char *buf, size_t *len, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (*len + n >= cap)
        n = cap - *len - 1;
    memcpy(buf + *len, src, n);
    *len += n;
}

static void append_field(char *buf, size_t *len, size_t cap, const char *name, const char *value)
{
    append_raw(buf, len, cap, ",\"");
    append_raw(buf, len, cap, name);
    append_raw(buf, len, cap, "\":\"");
    append_escaped(buf, len, cap, value);
    append_raw(buf, len, cap, "\"");
}

void cc_log_write(enum cc_log_level level, const struct cc_log_ctx *ctx, const char *fmt, ...)
{
    char msg[CC_LOG_LINE_MAX / 2];
    char line[CC_LOG_LINE_MAX];
    char stamp[CC_TIME_ISO8601_LEN];
    size_t len = 0;
    va_list ap;
    int saved_errno = errno;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    cc_time_format_iso8601(cc_time_now_ms(), stamp);

    append_raw(line, &len, sizeof(line) - 2, "{\"time\":\"");
    append_raw(line, &len, sizeof(line) - 2, stamp);
    append_raw(line, &len, sizeof(line) - 2, "\"");
    append_field(line, &len, sizeof(line) - 2, "level", level_names[level]);
    append_field(line, &len, sizeof(line) - 2, "service", log_service);
    if (ctx && ctx->interaction_id)
        append_field(line, &len, sizeof(line) - 2, "interaction_id", ctx->interaction_id);
    if (ctx && ctx->agent_id)
        append_field(line, &len, sizeof(line) - 2, "agent_id", ctx->agent_id);
    append_field(line, &len, sizeof(line) - 2, "message", msg);
    line[len++] = '}';
    line[len++] = '\n';
    if (write(STDERR_FILENO, line, len) < 0) {
        /* nowhere left to report a failing stderr */
    }
    errno = saved_errno;
}
