/* Unit tests for common/cc_event.c: CloudEvents envelope build, dump, parse, validate. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cc_event.h"
#include "cc_id.h"
#include "cc_time.h"

TestSuite(cc_event);

#define GOOD_EVENT                                                                                 \
    "{\"specversion\":\"1.0\",\"id\":\"0190b4c2-7e1a-7c3d-8a9b-0123456789ab\","                    \
    "\"source\":\"/router/r1\",\"type\":\"cc.interaction.assigned\","                              \
    "\"time\":\"2026-11-22T10:00:00.123Z\",\"datacontenttype\":\"application/json\","              \
    "\"subject\":\"int-1\",\"tenant\":\"acme\",\"data\":{\"agent\":\"a-7\"}}"

Test(cc_event, build_dump_parse_round_trips)
{
    char err[128] = "";
    size_t len = 0;
    cc_event ev;
    int64_t before = cc_time_now_ms();

    json_t *env = cc_event_build("cc.interaction.created", "/sip-edge/e1", "int-42", "acme",
                                 json_pack("{s:s, s:i}", "queue", "sales", "priority", 3));
    cr_assert_not_null(env, "expected a valid envelope");
    char *text = cc_event_dump(env, &len);
    cr_assert_not_null(text);
    cr_assert_eq(len, strlen(text));
    cr_assert_eq(cc_event_parse(text, len, &ev, err, sizeof(err)), 0, "expected parse ok: %s", err);
    cr_assert(cc_uuid_valid(ev.id), "expected a uuid id, got '%s'", ev.id);
    cr_assert_eq(ev.id[14], '7', "expected a UUIDv7 id, got '%s'", ev.id);
    cr_assert_str_eq(ev.type, "cc.interaction.created");
    cr_assert_str_eq(ev.source, "/sip-edge/e1");
    cr_assert_str_eq(ev.subject, "int-42");
    cr_assert_str_eq(ev.tenant, "acme");
    cr_assert(ev.time_ms >= before && ev.time_ms <= cc_time_now_ms(),
              "expected the build time, got %lld", (long long)ev.time_ms);
    cr_assert_str_eq(json_string_value(json_object_get(ev.data, "queue")), "sales");
    cr_assert_eq(json_integer_value(json_object_get(ev.data, "priority")), 3);
    cr_assert(json_equal(ev.json, env), "expected the parsed envelope to equal the built one");
    cc_event_clear(&ev);
    cr_assert_null(ev.json, "expected clear to zero the event");
    cc_event_clear(&ev);
    free(text);
    json_decref(env);
}

Test(cc_event, dump_puts_attributes_in_the_documented_order)
{
    json_t *env = cc_event_build("cc.agents.logged_in", "/router/r1", NULL, "t1", NULL);
    char *text = cc_event_dump(env, NULL);

    cr_assert_not_null(text);
    cr_assert(strncmp(text, "{\"specversion\":\"1.0\",\"id\":\"", 27) == 0,
              "expected specversion then id first, got %s", text);
    const char *src = strstr(text, "\"source\""), *type = strstr(text, "\"type\"");
    const char *time = strstr(text, "\"time\""), *tenant = strstr(text, "\"tenant\"");
    cr_assert(src && type && time && tenant && src < type && type < time && time < tenant,
              "expected source, type, time, tenant in order: %s", text);
    cr_assert_null(strstr(text, "\"subject\""), "expected no subject when NULL");
    cr_assert_null(strstr(text, "\"data\""), "expected no data when NULL");
    cr_assert_null(strchr(text, ' '), "expected compact output");
    free(text);
    json_decref(env);
}

Test(cc_event, build_rejects_bad_arguments_and_frees_data)
{
    /* ASan reports a leak if a rejected build does not release the stolen data */
    cr_assert_null(cc_event_build("interaction.created", "/x", NULL, "t", json_object()));
    cr_assert_null(cc_event_build("cc.", "/x", NULL, "t", json_object()));
    cr_assert_null(cc_event_build(NULL, "/x", NULL, "t", json_object()));
    cr_assert_null(cc_event_build("cc.x", "", NULL, "t", json_object()));
    cr_assert_null(cc_event_build("cc.x", "/has space", NULL, "t", json_object()));
    cr_assert_null(cc_event_build("cc.x", "/x", "", "t", json_object()));
    cr_assert_null(cc_event_build("cc.x", "/x", NULL, "bad tenant", json_object()));
    cr_assert_null(cc_event_build("cc.x", "/x", NULL, NULL, json_object()));
    cr_assert_null(cc_event_build("cc.x", "/x", NULL, "t", json_array()));
}

Test(cc_event, parses_a_complete_event)
{
    char err[128] = "";
    cc_event ev;

    cr_assert_eq(cc_event_parse(GOOD_EVENT, strlen(GOOD_EVENT), &ev, err, sizeof(err)), 0,
                 "expected the reference event to parse: %s", err);
    cr_assert_str_eq(ev.id, "0190b4c2-7e1a-7c3d-8a9b-0123456789ab");
    cr_assert_eq(ev.time_ms, 1795341600123LL);
    cr_assert_str_eq(ev.subject, "int-1");
    cc_event_clear(&ev);
}

Test(cc_event, parses_bytes_that_are_not_nul_terminated)
{
    size_t n = strlen(GOOD_EVENT);
    char *buf = malloc(n);
    cc_event ev;

    memcpy(buf, GOOD_EVENT, n);
    cr_assert_eq(cc_event_parse(buf, n, &ev, NULL, 0), 0);
    cc_event_clear(&ev);
    free(buf);
}

Test(cc_event, accepts_scalar_extensions_and_no_optional_attributes)
{
    const char *text = "{\"specversion\":\"1.0\",\"id\":\"x1\",\"source\":\"urn:cc:test\","
                       "\"type\":\"cc.test\",\"time\":\"2026-11-22T10:00:00+01:00\","
                       "\"tenant\":\"A_b-9\",\"traceparent\":\"00-ab\",\"seq\":4,\"replay\":true}";
    char err[128] = "";
    cc_event ev;

    cr_assert_eq(cc_event_parse(text, strlen(text), &ev, err, sizeof(err)), 0,
                 "expected ok, got: %s", err);
    cr_assert_null(ev.subject);
    cr_assert_null(ev.data);
    cr_assert_eq(ev.time_ms, 1795341600000LL - 3600000);
    cc_event_clear(&ev);
}

/* Inline arrays, not pointers: Criterion hands parameters to a separate worker process. */
struct reject_case {
    char json[256];
    char reason[96];
};

#define BASE_ATTRS                                                                                 \
    "\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"/s\",\"type\":\"cc.t\","                   \
    "\"time\":\"2026-11-22T10:00:00Z\",\"tenant\":\"acme\""

ParameterizedTestParameters(cc_event, rejects_invalid_envelopes_with_a_reason)
{
    static struct reject_case cases[] = {
        {"not json", "invalid JSON at byte"},
        {"[1,2]", "event is not a JSON object"},
        {"{" BASE_ATTRS "} trailing", "invalid JSON"},
        {"{" BASE_ATTRS ",\"id\":\"e2\"}", "invalid JSON"}, /* duplicate key */
        {"{\"id\":\"e1\",\"source\":\"/s\",\"type\":\"cc.t\",\"time\":\"2026-11-22T10:00:00Z\","
         "\"tenant\":\"acme\"}",
         "missing required attribute 'specversion'"},
        {"{\"specversion\":1.0,\"id\":\"e1\"}", "attribute 'specversion' must be a string"},
        {"{\"specversion\":\"0.3\",\"id\":\"e1\"}",
         "unsupported specversion '0.3' (expected '1.0')"},
        {"{\"specversion\":\"1.0\",\"source\":\"/s\"}", "missing required attribute 'id'"},
        {"{\"specversion\":\"1.0\",\"id\":\"\"}", "attribute 'id' must not be empty"},
        {"{\"specversion\":\"1.0\",\"id\":7}", "attribute 'id' must be a string"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\"}", "missing required attribute 'source'"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/a b\"}",
         "attribute 'source' is not a URI-reference"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/a%zz\"}",
         "attribute 'source' is not a URI-reference"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/s\"}",
         "missing required attribute 'type'"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/s\",\"type\":\"com.x\"}",
         "attribute 'type' must start with 'cc.'"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/s\",\"type\":\"cc.t\"}",
         "missing required attribute 'tenant'"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/s\",\"type\":\"cc.t\","
         "\"tenant\":\"a/b\"}",
         "attribute 'tenant' must be 1..64 characters of [A-Za-z0-9_-]"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/s\",\"type\":\"cc.t\","
         "\"tenant\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
         "attribute 'tenant' must be 1..64 characters of [A-Za-z0-9_-]"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/s\",\"type\":\"cc.t\","
         "\"tenant\":\"acme\"}",
         "missing required attribute 'time'"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/s\",\"type\":\"cc.t\","
         "\"tenant\":\"acme\",\"time\":\"yesterday\"}",
         "attribute 'time' is not an RFC 3339 timestamp"},
        {"{" BASE_ATTRS ",\"datacontenttype\":\"text/plain\"}",
         "attribute 'datacontenttype' must be 'application/json'"},
        {"{" BASE_ATTRS ",\"datacontenttype\":5}", "attribute 'datacontenttype' must be a string"},
        {"{" BASE_ATTRS ",\"subject\":\"\"}", "attribute 'subject' must be a non-empty string"},
        {"{" BASE_ATTRS ",\"subject\":3}", "attribute 'subject' must be a non-empty string"},
        {"{" BASE_ATTRS ",\"data\":[1]}", "attribute 'data' must be an object"},
        {"{" BASE_ATTRS ",\"data\":\"x\"}", "attribute 'data' must be an object"},
        {"{" BASE_ATTRS ",\"data_base64\":\"eA==\"}", "attribute 'data_base64' is not supported"},
        {"{" BASE_ATTRS ",\"Trace\":\"x\"}", "invalid attribute name 'Trace'"},
        {"{" BASE_ATTRS ",\"ext\":{\"a\":1}}",
         "attribute 'ext' must be a string, number or boolean"},
        {"{" BASE_ATTRS ",\"ext\":null}", "attribute 'ext' must be a string, number or boolean"},
        {"{" BASE_ATTRS ",\"subject\":\"\\u0000\"}", "invalid JSON"},
    };
    return cr_make_param_array(struct reject_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct reject_case *c, cc_event, rejects_invalid_envelopes_with_a_reason)
{
    char err[160] = "";
    cc_event ev;

    cr_assert_eq(cc_event_parse(c->json, strlen(c->json), &ev, err, sizeof(err)), -EINVAL,
                 "expected %s rejected", c->json);
    cr_assert(strstr(err, c->reason) != NULL, "expected reason '%s', got '%s'", c->reason, err);
    cr_assert_null(ev.json, "expected a zeroed event after a failure");
}

Test(cc_event, rejects_null_bytes)
{
    cc_event ev;

    cr_assert_eq(cc_event_parse(NULL, 0, &ev, NULL, 0), -EINVAL);
}

Test(cc_event, rejects_invalid_utf8)
{
    const char text[] = "{\"specversion\":\"1.0\",\"id\":\"\xff\xfe\"}";
    char err[128] = "";
    cc_event ev;

    cr_assert_eq(cc_event_parse(text, sizeof(text) - 1, &ev, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "invalid JSON") != NULL, "expected a JSON error, got '%s'", err);
}

Test(cc_event, rejects_events_over_one_mebibyte)
{
    size_t n = CC_EVENT_MAX_BYTES + 1;
    char *big = malloc(n);
    char err[128] = "";
    cc_event ev;

    memset(big, ' ', n);
    cr_assert_eq(cc_event_parse(big, n, &ev, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "exceeds the limit") != NULL, "expected a size error, got '%s'", err);
    free(big);
}

Test(cc_event, validate_checks_an_already_parsed_envelope)
{
    char err[128] = "";
    json_t *env = json_loads(GOOD_EVENT, 0, NULL);

    cr_assert_eq(cc_event_validate(env, err, sizeof(err)), 0, "expected valid: %s", err);
    json_object_set_new(env, "tenant", json_integer(3));
    cr_assert_eq(cc_event_validate(env, err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "attribute 'tenant' must be a string");
    cr_assert_eq(cc_event_validate(NULL, NULL, 0), -EINVAL, "expected NULL to be invalid");
    json_decref(env);
}

Test(cc_event, ids_follow_the_common_schema_rule)
{
    cr_assert(cc_event_id_valid("a1", 128));
    cr_assert(cc_event_id_valid("0190b4c2-a1b2-7c3d-8e4f-0123456789ab", 128));
    cr_assert(cc_event_id_valid("agent.1042@acme:x_y-z", 128));
    cr_assert_not(cc_event_id_valid("", 128), "expected an empty id refused");
    cr_assert_not(cc_event_id_valid(NULL, 128), "expected NULL refused");
    cr_assert_not(cc_event_id_valid("-a", 128), "expected a leading '-' refused");
    cr_assert_not(cc_event_id_valid("a b", 128), "expected a space refused");
    cr_assert_not(cc_event_id_valid("a/b", 128), "expected a '/' refused");
    cr_assert_not(cc_event_id_valid("abcd", 3), "expected an id longer than max refused");
}
