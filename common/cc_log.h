/*
 * cc_log: structured logging, one JSON object per line on stderr.
 *
 * Every record carries time (UTC, ms), level, service and message, plus the
 * interaction and/or agent id when the caller has one. Lines are written with
 * one write(2) each, so records from several threads never interleave.
 * Thread-safe once cc_log_init() has returned; call cc_log_init() first, from
 * main(), before starting threads.
 */
#ifndef CC_LOG_H
#define CC_LOG_H

#include <stdbool.h>

enum cc_log_level {
    CC_LOG_DEBUG = 0,
    CC_LOG_INFO = 1,
    CC_LOG_WARN = 2,
    CC_LOG_ERROR = 3,
};

/* Ids that tie a record to the entity it is about; either may be NULL. */
struct cc_log_ctx {
    const char *interaction_id;
    const char *agent_id;
};

void cc_log_init(const char *service, enum cc_log_level min_level);
/* Parses "debug", "info", "warn" or "error"; returns 0 or -EINVAL. */
int cc_log_level_parse(const char *text, enum cc_log_level *out);
bool cc_log_enabled(enum cc_log_level level);
void cc_log_write(enum cc_log_level level, const struct cc_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CC_LOG_AT(level, ctx, ...)                                                                 \
    do {                                                                                           \
        if (cc_log_enabled(level))                                                                 \
            cc_log_write(level, ctx, __VA_ARGS__);                                                 \
    } while (0)

#define CC_DEBUG(...) CC_LOG_AT(CC_LOG_DEBUG, NULL, __VA_ARGS__)
#define CC_INFO(...)  CC_LOG_AT(CC_LOG_INFO, NULL, __VA_ARGS__)
#define CC_WARN(...)  CC_LOG_AT(CC_LOG_WARN, NULL, __VA_ARGS__)
#define CC_ERROR(...) CC_LOG_AT(CC_LOG_ERROR, NULL, __VA_ARGS__)

/* Variants for records about one entity: CC_INFO_CTX(&(struct cc_log_ctx){.agent_id = id}, ...) */
#define CC_DEBUG_CTX(ctx, ...) CC_LOG_AT(CC_LOG_DEBUG, ctx, __VA_ARGS__)
#define CC_INFO_CTX(ctx, ...)  CC_LOG_AT(CC_LOG_INFO, ctx, __VA_ARGS__)
#define CC_WARN_CTX(ctx, ...)  CC_LOG_AT(CC_LOG_WARN, ctx, __VA_ARGS__)
#define CC_ERROR_CTX(ctx, ...) CC_LOG_AT(CC_LOG_ERROR, ctx, __VA_ARGS__)

#endif
