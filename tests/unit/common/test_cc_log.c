/* Unit tests for common/cc_log.c: JSON-lines records on stderr. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cc_log.h"

static void log_setup(void)
{
    cr_redirect_stderr();
    cc_log_init("test-svc", CC_LOG_INFO);
}

TestSuite(cc_log, .init = log_setup);

/* Reads the whole redirected stderr and parses its first line as JSON. */
static json_t *read_first_record(void)
{
    char buf[8192] = {0};
    FILE *f = cr_get_redirected_stderr();
    json_error_t jerr;

    fflush(stderr);
    cr_assert(fgets(buf, sizeof(buf), f) != NULL, "expected one log line on stderr");
    json_t *rec = json_loads(buf, 0, &jerr);
    cr_assert(rec != NULL, "expected a JSON line, got '%s' (%s)", buf, jerr.text);
    return rec;
}

Test(cc_log, writes_one_json_object_with_the_standard_fields)
{
    CC_INFO("started on port %d", 8080);
    json_t *rec = read_first_record();

    cr_assert_str_eq(json_string_value(json_object_get(rec, "level")), "info");
    cr_assert_str_eq(json_string_value(json_object_get(rec, "service")), "test-svc");
    cr_assert_str_eq(json_string_value(json_object_get(rec, "message")), "started on port 8080");
    const char *t = json_string_value(json_object_get(rec, "time"));
    cr_assert(t && strlen(t) == 24 && t[23] == 'Z', "expected an RFC 3339 UTC time, got '%s'", t);
    json_decref(rec);
}

Test(cc_log, carries_the_interaction_and_agent_ids)
{
    CC_WARN_CTX(&((struct cc_log_ctx){.interaction_id = "i-1", .agent_id = "a-7"}), "rona");
    json_t *rec = read_first_record();

    cr_assert_str_eq(json_string_value(json_object_get(rec, "interaction_id")), "i-1");
    cr_assert_str_eq(json_string_value(json_object_get(rec, "agent_id")), "a-7");
    cr_assert_str_eq(json_string_value(json_object_get(rec, "level")), "warn");
    json_decref(rec);
}

Test(cc_log, escapes_quotes_newlines_and_control_characters)
{
    CC_ERROR("bad input \"%s\"\n\x01 end", "x\\y");
    json_t *rec = read_first_record();

    cr_assert_str_eq(json_string_value(json_object_get(rec, "message")),
                     "bad input \"x\\y\"\n\x01 end");
    json_decref(rec);
}

Test(cc_log, drops_records_below_the_minimum_level)
{
    CC_DEBUG("invisible");
    CC_INFO("visible");
    json_t *rec = read_first_record();

    cr_assert_str_eq(json_string_value(json_object_get(rec, "message")), "visible");
    json_decref(rec);
}

struct level_case {
    char text[16]; /* inline: parameters are copied to the worker process */
    int expected;  /* -1: rejected */
};

ParameterizedTestParameters(cc_log, parses_level_names)
{
    static struct level_case cases[] = {
        {"debug", CC_LOG_DEBUG}, {"INFO", CC_LOG_INFO}, {"warn", CC_LOG_WARN},
        {"error", CC_LOG_ERROR}, {"verbose", -1},       {"", -1},
    };
    return cr_make_param_array(struct level_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct level_case *c, cc_log, parses_level_names)
{
    enum cc_log_level lvl = CC_LOG_INFO;
    int rc = cc_log_level_parse(c->text, &lvl);

    if (c->expected < 0) {
        cr_assert_lt(rc, 0, "expected '%s' to be rejected", c->text);
    } else {
        cr_assert_eq(rc, 0, "expected '%s' to parse", c->text);
        cr_assert_eq((int)lvl, c->expected);
    }
}
