/* Unit tests for common/cc_config.c: CC_* environment into a validated struct. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc_config.h"

extern char **environ;

struct test_cfg {
    struct cc_common_config common;
    const char *name;
    long workers;
    bool dry_run;
    enum cc_log_level audit_level;
    const char *secret;
};

static const struct cc_config_var test_vars[] = {
    {"CC_TEST_SVC_NAME", CC_CFG_STRING, NULL, "required name", offsetof(struct test_cfg, name)},
    {"CC_TEST_SVC_WORKERS", CC_CFG_INT, "4", "worker threads", offsetof(struct test_cfg, workers),
     1, 64},
    {"CC_TEST_SVC_DRY_RUN", CC_CFG_BOOL, "false", "do nothing", offsetof(struct test_cfg, dry_run)},
    {"CC_TEST_SVC_AUDIT", CC_CFG_LOG_LEVEL, "warn", "audit level",
     offsetof(struct test_cfg, audit_level)},
    {"CC_TEST_SVC_KEY", CC_CFG_STRING, "s3cr3t-default", "signing key",
     offsetof(struct test_cfg, secret), 0, 0, true},
};
#define N_VARS (sizeof(test_vars) / sizeof(test_vars[0]))

/* Removes every CC_* variable so that the runner's environment cannot leak into a test. */
static void clear_cc_env(void)
{
    for (;;) {
        char **e = environ;
        while (e && *e && strncmp(*e, "CC_", 3) != 0)
            e++;
        if (!e || !*e)
            return;
        char name[256];
        size_t len = strcspn(*e, "=");
        snprintf(name, sizeof(name), "%.*s", (int)len, *e);
        unsetenv(name);
    }
}

static void config_setup(void)
{
    clear_cc_env();
    cc_log_init("test-config", CC_LOG_INFO);
}

TestSuite(cc_config, .init = config_setup, .fini = clear_cc_env);

/* Loads test_vars with the common table; returns the rc and keeps err. */
static int load(struct test_cfg *cfg, cc_config_arena **arena, char *err, size_t n)
{
    memset(cfg, 0, sizeof(*cfg));
    return cc_config_load(test_vars, N_VARS, cfg, &cfg->common, 8080, arena, err, n);
}

Test(cc_config, loads_defaults_for_everything_but_required_variables)
{
    struct test_cfg cfg;
    cc_config_arena *arena;
    char err[256] = "", host[256] = "";

    setenv("CC_TEST_SVC_NAME", "alpha", 1);
    cr_assert_eq(load(&cfg, &arena, err, sizeof(err)), 0, "expected success: %s", err);
    cr_assert_str_eq(cfg.name, "alpha");
    cr_assert_eq(cfg.workers, 4);
    cr_assert_eq(cfg.dry_run, false);
    cr_assert_eq(cfg.audit_level, CC_LOG_WARN);
    cr_assert_str_eq(cfg.secret, "s3cr3t-default");
    cr_assert_eq(cfg.common.log_level, CC_LOG_INFO);
    cr_assert_str_eq(cfg.common.kafka_brokers, "localhost:9092");
    cr_assert_eq(cfg.common.kafka_session_timeout_ms, 45000);
    cr_assert_eq(cfg.common.kafka_heartbeat_interval_ms, 3000);
    cr_assert_eq(cfg.common.kafka_fetch_wait_max_ms, 100);
    cr_assert_eq(cfg.common.kafka_retry_backoff_max_ms, 5000);
    cr_assert_str_eq(cfg.common.redis_url, "redis://127.0.0.1:6379");
    cr_assert_str_eq(cfg.common.pg_dsn, "host=localhost dbname=cc");
    cr_assert_str_eq(cfg.common.http_addr, "0.0.0.0");
    cr_assert_eq(cfg.common.http_port, 8080, "expected the per-service default port");
    cr_assert_eq(cfg.common.http_threads, 2);
    cr_assert_eq(cfg.common.http_body_limit, 1048576);
    cr_assert_str_eq(cfg.common.auth_tokens, "");
    gethostname(host, sizeof(host) - 1);
    char want[320];
    snprintf(want, sizeof(want), "%s-%ld", host, (long)getpid());
    cr_assert_str_eq(cfg.common.instance_id, want, "expected hostname-pid");
    cc_config_free(arena);
}

Test(cc_config, environment_overrides_defaults)
{
    struct test_cfg cfg;
    cc_config_arena *arena;
    char err[256] = "";

    setenv("CC_TEST_SVC_NAME", "beta", 1);
    setenv("CC_TEST_SVC_WORKERS", "64", 1);
    setenv("CC_TEST_SVC_DRY_RUN", "Yes", 1);
    setenv("CC_TEST_SVC_AUDIT", "debug", 1);
    setenv("CC_LOG_LEVEL", "error", 1);
    setenv("CC_INSTANCE_ID", "router-7", 1);
    setenv("CC_KAFKA_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("CC_KAFKA_HEARTBEAT_INTERVAL_MS", "1000", 1);
    setenv("CC_KAFKA_FETCH_WAIT_MAX_MS", "0", 1);
    setenv("CC_KAFKA_LINGER_MS", "20", 1);
    setenv("CC_HTTP_PORT", "0", 1);
    setenv("CC_REDIS_URL", "unix:///tmp/r.sock", 1);
    cr_assert_eq(load(&cfg, &arena, err, sizeof(err)), 0, "expected success: %s", err);
    cr_assert_eq(cfg.workers, 64);
    cr_assert_eq(cfg.dry_run, true);
    cr_assert_eq(cfg.audit_level, CC_LOG_DEBUG);
    cr_assert_eq(cfg.common.log_level, CC_LOG_ERROR);
    cr_assert_str_eq(cfg.common.instance_id, "router-7");
    cr_assert_eq(cfg.common.kafka_session_timeout_ms, 6000);
    cr_assert_eq(cfg.common.kafka_heartbeat_interval_ms, 1000);
    cr_assert_eq(cfg.common.kafka_fetch_wait_max_ms, 0);
    cr_assert_eq(cfg.common.kafka_linger_ms, 20);
    cr_assert_eq(cfg.common.http_port, 0);
    cr_assert_str_eq(cfg.common.redis_url, "unix:///tmp/r.sock");
    cc_config_free(arena);
}

Test(cc_config, strings_are_copies_owned_by_the_arena)
{
    struct test_cfg cfg;
    cc_config_arena *arena;

    setenv("CC_TEST_SVC_NAME", "gamma", 1);
    cr_assert_eq(load(&cfg, &arena, NULL, 0), 0);
    setenv("CC_TEST_SVC_NAME", "changed", 1);
    unsetenv("CC_TEST_SVC_NAME");
    cr_assert_str_eq(cfg.name, "gamma", "expected the value copied at load time");
    cc_config_free(arena);
    cc_config_free(NULL);
}

Test(cc_config, loads_without_the_common_table)
{
    struct test_cfg cfg;
    cc_config_arena *arena;

    memset(&cfg, 0, sizeof(cfg));
    setenv("CC_TEST_SVC_NAME", "delta", 1);
    setenv("CC_HTTP_PORT", "not-checked", 1);
    cr_assert_eq(cc_config_load(test_vars, N_VARS, &cfg, NULL, 0, &arena, NULL, 0), 0,
                 "expected the common variables ignored when common is NULL");
    cr_assert_str_eq(cfg.name, "delta");
    cr_assert_null(cfg.common.kafka_brokers);
    cc_config_free(arena);
}

/* Inline arrays, not pointers: Criterion hands parameters to a separate worker process. */
struct env_case {
    char name[40];
    char value[32];
    char error[128];
};

ParameterizedTestParameters(cc_config, rejects_bad_values_with_a_clear_message)
{
    static struct env_case cases[] = {
        {"CC_HTTP_PORT", "70000", "CC_HTTP_PORT: '70000' is out of range 0..65535"},
        {"CC_HTTP_PORT", "-1", "CC_HTTP_PORT: '-1' is out of range 0..65535"},
        {"CC_HTTP_PORT", "99999999999999999999999", "is out of range 0..65535"},
        {"CC_HTTP_PORT", "80x", "CC_HTTP_PORT: '80x' is not an integer"},
        {"CC_HTTP_PORT", " 80", "CC_HTTP_PORT: ' 80' is not an integer"},
        {"CC_HTTP_PORT", "", "CC_HTTP_PORT: '' is not an integer"},
        {"CC_HTTP_PORT", "0x50", "CC_HTTP_PORT: '0x50' is not an integer"},
        {"CC_HTTP_THREADS", "0", "CC_HTTP_THREADS: '0' is out of range 1..256"},
        {"CC_TEST_SVC_WORKERS", "65", "CC_TEST_SVC_WORKERS: '65' is out of range 1..64"},
        {"CC_TEST_SVC_DRY_RUN", "maybe",
         "CC_TEST_SVC_DRY_RUN: 'maybe' is not a boolean (true/false/1/0/yes/no/on/off)"},
        {"CC_LOG_LEVEL", "loud", "CC_LOG_LEVEL: 'loud' is not a log level (debug/info/warn/error)"},
        {"CC_TEST_SVC_NAME", "", "CC_TEST_SVC_NAME: required variable is empty"},
        {"CC_KAFKA_HEARTBEAT_INTERVAL_MS", "45000",
         "CC_KAFKA_HEARTBEAT_INTERVAL_MS: '45000' must be lower than CC_KAFKA_SESSION_TIMEOUT_MS "
         "(45000)"},
    };
    return cr_make_param_array(struct env_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct env_case *c, cc_config, rejects_bad_values_with_a_clear_message)
{
    struct test_cfg cfg;
    cc_config_arena *arena = (cc_config_arena *)1;
    char err[256] = "";

    setenv("CC_TEST_SVC_NAME", "svc", 1);
    setenv(c->name, c->value, 1);
    cr_assert_eq(load(&cfg, &arena, err, sizeof(err)), -EINVAL, "expected %s='%s' rejected",
                 c->name, c->value);
    cr_assert(strstr(err, c->error) != NULL, "expected '%s', got '%s'", c->error, err);
    cr_assert_null(arena, "expected no arena after a failure");
}

Test(cc_config, reports_a_missing_required_variable)
{
    struct test_cfg cfg;
    cc_config_arena *arena;
    char err[256] = "";

    cr_assert_eq(load(&cfg, &arena, err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "CC_TEST_SVC_NAME: required variable is not set");
}

struct int_case {
    char text[16];
    int rc;
    long value;
};

ParameterizedTestParameters(cc_config, parses_integers_strictly)
{
    static struct int_case cases[] = {
        {"0", 0, 0},         {"42", 0, 42},       {"+7", 0, 7},         {"-5", 0, -5},
        {"100", 0, 100},     {"101", -ERANGE, 0}, {"-6", -ERANGE, 0},   {"", -EINVAL, 0},
        {"4 ", -EINVAL, 0},  {" 4", -EINVAL, 0},  {"4.0", -EINVAL, 0},  {"1e3", -EINVAL, 0},
        {"abc", -EINVAL, 0}, {"-", -EINVAL, 0},   {"0x10", -EINVAL, 0},
    };
    return cr_make_param_array(struct int_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct int_case *c, cc_config, parses_integers_strictly)
{
    long v = 12345;

    cr_assert_eq(cc_config_parse_int(c->text, -5, 100, &v), c->rc, "'%s': expected rc %d", c->text,
                 c->rc);
    cr_assert_eq(v, c->rc == 0 ? c->value : 12345, "'%s': unexpected value %ld", c->text, v);
}

struct bool_case {
    char text[16];
    int rc;
    bool value;
};

ParameterizedTestParameters(cc_config, parses_booleans)
{
    static struct bool_case cases[] = {
        {"true", 0, true},         {"TRUE", 0, true},     {"1", 0, true},
        {"yes", 0, true},          {"on", 0, true},       {"false", 0, false},
        {"0", 0, false},           {"No", 0, false},      {"off", 0, false},
        {"", -EINVAL, false},      {"2", -EINVAL, false}, {"y", -EINVAL, false},
        {"truex", -EINVAL, false},
    };
    return cr_make_param_array(struct bool_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bool_case *c, cc_config, parses_booleans)
{
    bool v = !c->value;

    cr_assert_eq(cc_config_parse_bool(c->text, &v), c->rc, "'%s': expected rc %d", c->text, c->rc);
    if (c->rc == 0)
        cr_assert_eq(v, c->value, "'%s': expected %d", c->text, c->value);
}

Test(cc_config, warns_about_unknown_cc_variables)
{
    struct test_cfg cfg;
    cc_config_arena *arena;
    char line[1024] = "";

    cr_redirect_stderr();
    setenv("CC_TEST_SVC_NAME", "svc", 1);
    setenv("CC_HTTP_PROT", "8080", 1);
    cr_assert_eq(load(&cfg, &arena, NULL, 0), 0);
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    cr_assert(fgets(line, sizeof(line), f) != NULL, "expected a warning line");
    cr_assert(strstr(line, "unknown environment variable 'CC_HTTP_PROT'") != NULL,
              "expected a warning naming the variable, got '%s'", line);
    cr_assert(strstr(line, "\"level\":\"warn\"") != NULL, "expected a warn record: %s", line);
    cc_config_free(arena);
}

/* The help text of test_vars as a string (caller frees). */
static char *help_text(void)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    cc_config_print_help(f, "cc-test", test_vars, N_VARS);
    fclose(f);
    return buf;
}

Test(cc_config, help_lists_every_variable_with_its_default)
{
    char *text = help_text();
    static const char *const names[] = {
        "CC_TEST_SVC_NAME",
        "CC_TEST_SVC_WORKERS",
        "CC_LOG_LEVEL",
        "CC_INSTANCE_ID",
        "CC_KAFKA_BROKERS",
        "CC_KAFKA_SESSION_TIMEOUT_MS",
        "CC_KAFKA_HEARTBEAT_INTERVAL_MS",
        "CC_KAFKA_FETCH_WAIT_MAX_MS",
        "CC_KAFKA_LINGER_MS",
        "CC_KAFKA_RETRY_BACKOFF_MAX_MS",
        "CC_REDIS_URL",
        "CC_PG_DSN",
        "CC_HTTP_ADDR",
        "CC_HTTP_PORT",
        "CC_HTTP_THREADS",
        "CC_HTTP_BODY_LIMIT",
        "CC_AUTH_TOKENS",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_assert(strstr(text, names[i]) != NULL, "expected %s in the help:\n%s", names[i], text);
    cr_assert(strstr(text, "integer 1..64, default '4'") != NULL, "expected type/range/default");
    cr_assert(strstr(text, "CC_TEST_SVC_NAME                 string, required") != NULL,
              "expected the required marker:\n%s", text);
    cr_assert(strstr(text, "default 'localhost:9092'") != NULL, "expected common defaults");
    cr_assert(strstr(text, "worker threads") != NULL, "expected the help line");
    free(text);
}

Test(cc_config, help_never_prints_secret_defaults)
{
    char *text = help_text();

    cr_assert_null(strstr(text, "s3cr3t-default"), "expected the secret default hidden");
    cr_assert(strstr(text, "CC_TEST_SVC_KEY                  string, secret") != NULL,
              "expected the secret marker:\n%s", text);
    free(text);
}

Test(cc_config, main_prints_help_and_exits_zero, .exit_code = 0)
{
    struct test_cfg cfg;
    cc_config_arena *arena;
    char *argv[] = {"cc-test", "--help", NULL};

    cr_redirect_stdout();
    cc_config_main(2, argv, "cc-test", test_vars, N_VARS, &cfg, &cfg.common, 8181, &arena);
    cr_assert_fail("expected --help to exit");
}

Test(cc_config, main_exits_two_on_a_bad_value, .exit_code = 2)
{
    struct test_cfg cfg;
    cc_config_arena *arena;
    char *argv[] = {"cc-test", NULL};

    cr_redirect_stderr();
    setenv("CC_TEST_SVC_NAME", "svc", 1);
    setenv("CC_HTTP_PORT", "70000", 1);
    cc_config_main(1, argv, "cc-test", test_vars, N_VARS, &cfg, &cfg.common, 8181, &arena);
    cr_assert_fail("expected a bad value to exit");
}

Test(cc_config, main_exits_two_on_an_unknown_argument, .exit_code = 2)
{
    struct test_cfg cfg;
    cc_config_arena *arena;
    char *argv[] = {"cc-test", "--verbose", NULL};

    cr_redirect_stderr();
    cc_config_main(2, argv, "cc-test", test_vars, N_VARS, &cfg, &cfg.common, 8181, &arena);
    cr_assert_fail("expected an unknown argument to exit");
}

Test(cc_config, main_loads_and_names_the_service)
{
    struct test_cfg cfg;
    cc_config_arena *arena = NULL;
    char *argv[] = {"cc-test", NULL};

    memset(&cfg, 0, sizeof(cfg));
    setenv("CC_TEST_SVC_NAME", "svc", 1);
    cr_assert_eq(
        cc_config_main(1, argv, "cc-test", test_vars, N_VARS, &cfg, &cfg.common, 8181, &arena), 0);
    cr_assert_str_eq(cfg.common.service, "cc-test");
    cr_assert_eq(cfg.common.http_port, 8181);
    cc_config_free(arena);
}
