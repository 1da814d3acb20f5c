/*
 * cc_config: CC_* environment variables into one validated struct per service, table-driven.
 *
 * A service describes its variables in a const table of struct cc_config_var (name, type,
 * default, help, offsetof into its struct) and embeds struct cc_common_config for the variables
 * every service has. cc_config_main() is what main() calls: --help prints the table, a wrong
 * value stops start-up with a clear message. Load once from main() before starting threads;
 * the filled struct is then read-only and may be shared freely.
 */
#ifndef CC_CONFIG_H
#define CC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cc_log.h"

enum cc_config_type { CC_CFG_STRING, CC_CFG_INT, CC_CFG_BOOL, CC_CFG_LOG_LEVEL };

struct cc_config_var {
    const char *name;         /* "CC_HTTP_PORT" */
    enum cc_config_type type; /* field type: char* / long / bool / enum cc_log_level */
    const char *def;          /* default as text; NULL = required */
    const char *help;         /* one line */
    size_t offset;            /* offsetof into the service's struct */
    long min, max;            /* CC_CFG_INT range (inclusive) */
    bool secret;              /* never printed */
};

/* Common variables every service has; embed `struct cc_common_config common;` in the service's
 * struct. */
struct cc_common_config {
    const char *service;              /* set by the service, not from env */
    enum cc_log_level log_level;      /* CC_LOG_LEVEL=info */
    const char *instance_id;          /* CC_INSTANCE_ID, default hostname-pid */
    const char *kafka_brokers;        /* CC_KAFKA_BROKERS=localhost:9092 */
    long kafka_session_timeout_ms;    /* CC_KAFKA_SESSION_TIMEOUT_MS=45000 (dev: 6000) */
    long kafka_heartbeat_interval_ms; /* CC_KAFKA_HEARTBEAT_INTERVAL_MS=3000 (dev: 1000) */
    long kafka_fetch_wait_max_ms;     /* CC_KAFKA_FETCH_WAIT_MAX_MS=100 (dev: 10) */
    long kafka_linger_ms;             /* CC_KAFKA_LINGER_MS=5 producer batching (dev: 20) */
    long kafka_retry_backoff_max_ms;  /* CC_KAFKA_RETRY_BACKOFF_MAX_MS=5000 handler retry cap */
    const char *redis_url;            /* CC_REDIS_URL=redis://127.0.0.1:6379 */
    const char *pg_dsn;               /* CC_PG_DSN=host=localhost dbname=cc */
    const char *http_addr;            /* CC_HTTP_ADDR=0.0.0.0 */
    long http_port;                   /* CC_HTTP_PORT (per-service default; 0 = any free port) */
    long http_threads;                /* CC_HTTP_THREADS=2 */
    long http_body_limit;             /* CC_HTTP_BODY_LIMIT=1048576 bytes */
    const char *auth_tokens;          /* CC_AUTH_TOKENS: sha256hex:tenant:role,... (secret) */
};

typedef struct cc_config_arena cc_config_arena;

/* Loads `vars` (array of n) from the environment into `out`, plus the common table when
 * `common` is non-NULL (common->service is left as the caller set it). Strings are strdup'd into
 * an arena owned by the config (free with cc_config_free(*arena)); on failure nothing is left
 * allocated and *arena is NULL. Validation failure: returns -EINVAL, err = "CC_HTTP_PORT: '70000'
 * is out of range 0..65535"; -ENOMEM on allocation failure. Unknown CC_* variables in the
 * environment: a warning each (typo guard). Not thread-safe (reads environ). */
int cc_config_load(const struct cc_config_var *vars, size_t n, void *out,
                   struct cc_common_config *common, long default_http_port, cc_config_arena **arena,
                   char *err, size_t errlen);
/* Frees every string of a loaded config; the struct's string pointers dangle after. NULL ok. */
void cc_config_free(cc_config_arena *arena);
/* Prints every variable (common ones too) with type, default and help; secrets show no default. */
void cc_config_print_help(FILE *f, const char *service, const struct cc_config_var *vars, size_t n);
/* Convenience for main(): handles --help/-h (print, exit 0) and load errors (print to stderr,
 * exit 2). Returns 0 on success. Sets common->service = service when common is non-NULL. */
int cc_config_main(int argc, char **argv, const char *service, const struct cc_config_var *vars,
                   size_t n, void *out, struct cc_common_config *common, long default_http_port,
                   cc_config_arena **arena);
/* The parsers the loader uses, exposed for reuse and tests. Strict: the whole string must parse.
 * Return 0, or -EINVAL (bad syntax) / -ERANGE (outside min..max); *out untouched on failure. */
int cc_config_parse_int(const char *text, long min, long max, long *out);
/* true/false/1/0/yes/no/on/off, case-insensitive. */
int cc_config_parse_bool(const char *text, bool *out);

#endif
