/* cc_config: table-driven CC_* environment configuration; see cc_config.h. */
#include "cc_config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char **environ;

/* Defaults computed at load time; recognised by address in the common table. */
static const char instance_default[] = "<hostname>-<pid>";
static const char http_port_default[] = "<service default>";

#define COMMON(field) offsetof(struct cc_common_config, field)

static const struct cc_config_var common_vars[] = {
    {"CC_LOG_LEVEL", CC_CFG_LOG_LEVEL, "info", "minimum log level: debug, info, warn or error",
     COMMON(log_level), 0, 0, false},
    {"CC_INSTANCE_ID", CC_CFG_STRING, instance_default,
     "name of this instance in event sources and logs", COMMON(instance_id), 0, 0, false},
    {"CC_KAFKA_BROKERS", CC_CFG_STRING, "localhost:9092", "Kafka bootstrap servers (host:port,...)",
     COMMON(kafka_brokers), 0, 0, false},
    {"CC_KAFKA_SESSION_TIMEOUT_MS", CC_CFG_INT, "45000",
     "consumer group session timeout in ms (dev broker: 6000)", COMMON(kafka_session_timeout_ms),
     1000, 3600000, false},
    {"CC_KAFKA_HEARTBEAT_INTERVAL_MS", CC_CFG_INT, "3000",
     "consumer group heartbeat interval in ms, below the session timeout (dev broker: 1000)",
     COMMON(kafka_heartbeat_interval_ms), 100, 3600000, false},
    {"CC_KAFKA_FETCH_WAIT_MAX_MS", CC_CFG_INT, "100",
     "longest a broker holds a fetch for more data, in ms (dev broker: 10)",
     COMMON(kafka_fetch_wait_max_ms), 0, 300000, false},
    {"CC_KAFKA_LINGER_MS", CC_CFG_INT, "5",
     "longest a producer holds a message to batch it with others, in ms (dev broker: 20)",
     COMMON(kafka_linger_ms), 0, 900000, false},
    {"CC_KAFKA_RETRY_BACKOFF_MAX_MS", CC_CFG_INT, "5000",
     "cap of the backoff between retries of a failing message handler, in ms",
     COMMON(kafka_retry_backoff_max_ms), 1, 3600000, false},
    {"CC_REDIS_URL", CC_CFG_STRING, "redis://127.0.0.1:6379",
     "Redis address: redis://host:port or unix:///path", COMMON(redis_url), 0, 0, false},
    {"CC_PG_DSN", CC_CFG_STRING, "host=localhost dbname=cc", "PostgreSQL connection string (libpq)",
     COMMON(pg_dsn), 0, 0, false},
    {"CC_HTTP_ADDR", CC_CFG_STRING, "0.0.0.0", "numeric address the HTTP API listens on",
     COMMON(http_addr), 0, 0, false},
    {"CC_HTTP_PORT", CC_CFG_INT, http_port_default, "HTTP API port (0 = any free port)",
     COMMON(http_port), 0, 65535, false},
    {"CC_HTTP_THREADS", CC_CFG_INT, "2", "HTTP server thread pool size", COMMON(http_threads), 1,
     256, false},
    {"CC_HTTP_BODY_LIMIT", CC_CFG_INT, "1048576", "largest accepted request body in bytes",
     COMMON(http_body_limit), 1, 1073741824, false},
    {"CC_AUTH_TOKENS", CC_CFG_STRING, "",
     "API tokens as sha256hex:tenant:role, comma-separated (empty = no token is accepted)",
     COMMON(auth_tokens), 0, 0, true},
};

#define N_COMMON (sizeof(common_vars) / sizeof(common_vars[0]))

/* Variables read by the test and bench runners and the local-stack tools, never by a service:
 * no typo warning for them (make run and make test export them to every process). */
static const char *const tooling_prefixes[] = {"CC_TEST_", "CC_BENCH_", "CC_DEVBROKER_", "CC_RUN_"};

static bool is_tooling_var(const char *name)
{
    for (size_t i = 0; i < sizeof(tooling_prefixes) / sizeof(tooling_prefixes[0]); i++) {
        if (strncmp(name, tooling_prefixes[i], strlen(tooling_prefixes[i])) == 0)
            return true;
    }
    return false;
}

struct cc_config_arena {
    char **strings;
    size_t n;
};

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

int cc_config_parse_int(const char *text, long min, long max, long *out)
{
    char *end;
    long v;

    if (!text || !*text || !(*text == '-' || *text == '+' || (*text >= '0' && *text <= '9')))
        return -EINVAL;
    errno = 0;
    v = strtol(text, &end, 10);
    if (end == text || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int cc_config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    for (size_t i = 0; text && i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Copies s into the arena; NULL on ENOMEM. */
static char *arena_strdup(cc_config_arena *a, const char *s)
{
    char **grown = realloc(a->strings, (a->n + 1) * sizeof(*grown));
    char *copy;

    if (!grown)
        return NULL;
    a->strings = grown;
    copy = strdup(s);
    if (copy)
        a->strings[a->n++] = copy;
    return copy;
}

void cc_config_free(cc_config_arena *arena)
{
    if (!arena)
        return;
    for (size_t i = 0; i < arena->n; i++)
        free(arena->strings[i]);
    free(arena->strings);
    free(arena);
}

/* Resolves the computed defaults; buf holds the text when one is built. */
static const char *effective_default(const struct cc_config_var *v, long http_port, char *buf,
                                     size_t n)
{
    if (v->def == instance_default) {
        char host[256] = "localhost";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(buf, n, "%s-%ld", host, (long)getpid());
        return buf;
    }
    if (v->def == http_port_default) {
        snprintf(buf, n, "%ld", http_port);
        return buf;
    }
    return v->def;
}

/* Parses one value into its field. */
static int store_value(const struct cc_config_var *v, const char *text, void *field,
                       cc_config_arena *a, char *err, size_t errlen)
{
    int rc;

    switch (v->type) {
    case CC_CFG_STRING:
        if (!v->def && !*text)
            return fail(err, errlen, "%s: required variable is empty", v->name);
        *(const char **)field = arena_strdup(a, text);
        return *(const char **)field ? 0 : -ENOMEM;
    case CC_CFG_INT:
        rc = cc_config_parse_int(text, v->min, v->max, (long *)field);
        if (rc == -ERANGE)
            return fail(err, errlen, "%s: '%.64s' is out of range %ld..%ld", v->name, text, v->min,
                        v->max);
        if (rc < 0)
            return fail(err, errlen, "%s: '%.64s' is not an integer", v->name, text);
        return 0;
    case CC_CFG_BOOL:
        if (cc_config_parse_bool(text, (bool *)field) < 0)
            return fail(err, errlen, "%s: '%.64s' is not a boolean (true/false/1/0/yes/no/on/off)",
                        v->name, text);
        return 0;
    case CC_CFG_LOG_LEVEL:
        if (cc_log_level_parse(text, (enum cc_log_level *)field) < 0)
            return fail(err, errlen, "%s: '%.64s' is not a log level (debug/info/warn/error)",
                        v->name, text);
        return 0;
    }
    return fail(err, errlen, "%s: unknown variable type %d", v->name, (int)v->type);
}

static int load_table(const struct cc_config_var *vars, size_t n, void *out, long http_port,
                      cc_config_arena *a, char *err, size_t errlen)
{
    char buf[320];

    for (size_t i = 0; i < n; i++) {
        const struct cc_config_var *v = &vars[i];
        const char *text = getenv(v->name);
        if (!text)
            text = effective_default(v, http_port, buf, sizeof(buf));
        if (!text)
            return fail(err, errlen, "%s: required variable is not set", v->name);
        int rc = store_value(v, text, (char *)out + v->offset, a, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static bool table_has(const struct cc_config_var *vars, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(vars[i].name) == len && strncmp(vars[i].name, name, len) == 0)
            return true;
    }
    return false;
}

/* Typo guard: every CC_* variable that no table knows gets a warning. */
static void warn_unknown(const struct cc_config_var *vars, size_t n)
{
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (strncmp(*e, "CC_", 3) != 0 || is_tooling_var(*e))
            continue;
        if (table_has(vars, n, *e, len) || table_has(common_vars, N_COMMON, *e, len))
            continue;
        CC_WARN("unknown environment variable '%.*s' ignored (see --help)", (int)len, *e);
    }
}

static int check_common(const struct cc_common_config *c, char *err, size_t errlen)
{
    if (c->kafka_heartbeat_interval_ms >= c->kafka_session_timeout_ms)
        return fail(err, errlen,
                    "CC_KAFKA_HEARTBEAT_INTERVAL_MS: '%ld' must be lower than "
                    "CC_KAFKA_SESSION_TIMEOUT_MS (%ld)",
                    c->kafka_heartbeat_interval_ms, c->kafka_session_timeout_ms);
    return 0;
}

int cc_config_load(const struct cc_config_var *vars, size_t n, void *out,
                   struct cc_common_config *common, long default_http_port, cc_config_arena **arena,
                   char *err, size_t errlen)
{
    cc_config_arena *a;
    int rc;

    *arena = NULL;
    if (err && errlen > 0)
        err[0] = '\0';
    a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    if (common) {
        rc = load_table(common_vars, N_COMMON, common, default_http_port, a, err, errlen);
        if (rc == 0)
            rc = check_common(common, err, errlen);
        if (rc < 0)
            goto free_arena;
    }
    rc = load_table(vars, n, out, default_http_port, a, err, errlen);
    if (rc < 0)
        goto free_arena;
    warn_unknown(vars, n);
    *arena = a;
    return 0;

free_arena:
    if (rc == -ENOMEM)
        fail(err, errlen, "out of memory while loading the configuration");
    cc_config_free(a);
    return rc;
}

static const char *type_name(enum cc_config_type t)
{
    switch (t) {
    case CC_CFG_STRING:
        return "string";
    case CC_CFG_INT:
        return "integer";
    case CC_CFG_BOOL:
        return "boolean";
    case CC_CFG_LOG_LEVEL:
        return "log level";
    }
    return "?";
}

static void print_var(FILE *f, const struct cc_config_var *v, long http_port)
{
    char buf[320];
    const char *def = v->def;

    if (v->def == http_port_default && http_port >= 0) {
        snprintf(buf, sizeof(buf), "%ld", http_port);
        def = buf;
    }
    fprintf(f, "  %-32s %s", v->name, type_name(v->type));
    if (v->type == CC_CFG_INT)
        fprintf(f, " %ld..%ld", v->min, v->max);
    if (v->secret)
        fprintf(f, ", secret");
    else if (!def)
        fprintf(f, ", required");
    else
        fprintf(f, ", default '%s'", def);
    fprintf(f, "\n      %s\n", v->help ? v->help : "");
}

/* http_port < 0: the service default is not known here. */
static void print_help(FILE *f, const char *service, const struct cc_config_var *vars, size_t n,
                       long http_port)
{
    fprintf(f, "usage: %s [--help]\n\nConfigured by environment variables only.\n", service);
    if (n > 0) {
        fprintf(f, "\n%s variables:\n", service);
        for (size_t i = 0; i < n; i++)
            print_var(f, &vars[i], http_port);
    }
    fprintf(f, "\ncommon variables:\n");
    for (size_t i = 0; i < N_COMMON; i++)
        print_var(f, &common_vars[i], http_port);
}

void cc_config_print_help(FILE *f, const char *service, const struct cc_config_var *vars, size_t n)
{
    print_help(f, service, vars, n, -1);
}

int cc_config_main(int argc, char **argv, const char *service, const struct cc_config_var *vars,
                   size_t n, void *out, struct cc_common_config *common, long default_http_port,
                   cc_config_arena **arena)
{
    char err[512];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(stdout, service, vars, n, default_http_port);
            exit(0);
        }
        fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", service, argv[i]);
        exit(2);
    }
    cc_log_init(service, CC_LOG_INFO);
    if (common)
        common->service = service;
    if (cc_config_load(vars, n, out, common, default_http_port, arena, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: configuration error: %s (see --help)\n", service, err);
        exit(2);
    }
    if (common)
        cc_log_init(service, common->log_level);
    return 0;
}
