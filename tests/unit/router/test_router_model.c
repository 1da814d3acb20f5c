/* Unit tests for services/router/router_model.c: validation tables of good and bad bodies
 * (each bad one with the JSON pointer of the field it must name), rendering, merge patch. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "router_model.h"

TestSuite(router_model, .timeout = 10);

/* The time zones "PostgreSQL knows" in these tests. */
static bool model_tz_known(void *arg, const char *tz)
{
    (void)arg;
    return strcmp(tz, "UTC") == 0 || strcmp(tz, "Europe/Paris") == 0;
}

static json_t *model_load(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);

    cr_assert_not_null(doc, "expected the test JSON to parse: %s (%s)", text, jerr.text);
    return doc;
}

/* True when errs names field. */
static bool model_names(const struct router_errors *errs, const char *field)
{
    for (size_t i = 0; i < errs->n; i++)
        if (strcmp(errs->e[i].field, field) == 0)
            return true;
    return false;
}

static void model_dump(const struct router_errors *errs, char *out, size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < errs->n && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s: %s; ", errs->e[i].field, errs->e[i].message);
}

/* Arrays, not pointers: Criterion runs each test in a fresh process (another address space),
 * so parameters must carry their data. */
#define VALID "(valid)"
struct model_case {
    char path_id[16]; /* "" = POST */
    char body[900];
    char field[48]; /* JSON pointer the error must name, or VALID */
};

static void model_check(const struct model_case *c, int rc, const struct router_errors *errs)
{
    char dump[2048];

    model_dump(errs, dump, sizeof(dump));
    if (strcmp(c->field, VALID) == 0) {
        cr_assert_eq(rc, 0, "expected %s to be valid, got: %s", c->body, dump);
        return;
    }
    cr_assert_eq(rc, -EINVAL, "expected %s to be refused", c->body);
    cr_assert(model_names(errs, c->field), "expected an error on '%s' for %s, got: %s", c->field,
              c->body, dump);
}

/* ---- agents ----------------------------------------------------------------------------- */

ParameterizedTestParameters(router_model, validates_agent_bodies)
{
    static struct model_case cases[] = {
        {"", "{\"name\": \"Alice\"}", VALID},
        {"",
         "{\"id\": \"a-1_B\", \"name\": \"Alice\", \"capacity\": {\"voice\": 0, \"chat\": "
         "100}, \"voice_blocks_other\": false, \"enabled\": false, \"skills\": [{\"skill\": "
         "\"lang_de\", \"proficiency\": 5}]}",
         VALID},
        {"a1", "{\"id\": \"a1\", \"name\": \"Alice\", \"version\": 3, \"created_at\": \"x\"}",
         VALID},
        {"", "{\"name\": \"\\u00e9\\u00e9\"}", VALID},
        {"", "{}", "/name"},
        {"", "[]", ""},
        {"", "{\"name\": \"\"}", "/name"},
        {"", "{\"name\": \"a\\u0001b\"}", "/name"},
        {"", "{\"name\": 7}", "/name"},
        {"", "{\"name\": \"A\", \"bogus\": 1}", "/bogus"},
        {"", "{\"name\": \"A\", \"a/b~\": 1}", "/a~1b~0"},
        {"", "{\"id\": \"-x\", \"name\": \"A\"}", "/id"},
        {"", "{\"id\": \"a.b\", \"name\": \"A\"}", "/id"},
        {"", "{\"id\": \"\", \"name\": \"A\"}", "/id"},
        {"a1", "{\"id\": \"a2\", \"name\": \"A\"}", "/id"},
        {"", "{\"name\": \"A\", \"capacity\": {\"voice\": 2}}", "/capacity/voice"},
        {"", "{\"name\": \"A\", \"capacity\": {\"chat\": -1}}", "/capacity/chat"},
        {"", "{\"name\": \"A\", \"capacity\": {\"sms\": 101}}", "/capacity/sms"},
        {"", "{\"name\": \"A\", \"capacity\": {\"fax\": 1}}", "/capacity/fax"},
        {"", "{\"name\": \"A\", \"capacity\": 3}", "/capacity"},
        {"", "{\"name\": \"A\", \"enabled\": \"yes\"}", "/enabled"},
        {"", "{\"name\": \"A\", \"voice_blocks_other\": 1}", "/voice_blocks_other"},
        {"", "{\"name\": \"A\", \"version\": 0}", "/version"},
        {"", "{\"name\": \"A\", \"skills\": {}}", "/skills"},
        {"", "{\"name\": \"A\", \"skills\": [7]}", "/skills/0"},
        {"", "{\"name\": \"A\", \"skills\": [{\"skill\": \"x\"}]}", "/skills/0/proficiency"},
        {"", "{\"name\": \"A\", \"skills\": [{\"skill\": \"x\", \"proficiency\": 6}]}",
         "/skills/0/proficiency"},
        {"", "{\"name\": \"A\", \"skills\": [{\"skill\": \"x\", \"proficiency\": 0}]}",
         "/skills/0/proficiency"},
        {"", "{\"name\": \"A\", \"skills\": [{\"skill\": \"x y\", \"proficiency\": 1}]}",
         "/skills/0/skill"},
        {"", "{\"name\": \"A\", \"skills\": [{\"skill\": \"x\", \"proficiency\": 1, \"z\": 1}]}",
         "/skills/0/z"},
        {"",
         "{\"name\": \"A\", \"skills\": [{\"skill\": \"x\", \"proficiency\": 1}, {\"skill\": "
         "\"x\", \"proficiency\": 2}]}",
         "/skills/1/skill"},
    };
    return cr_make_param_array(struct model_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct model_case *c, router_model, validates_agent_bodies)
{
    struct router_errors errs = {0};
    struct router_agent a;
    json_t *doc = model_load(c->body);
    int rc = router_agent_parse(doc, c->path_id[0] ? c->path_id : NULL, &a, &errs);

    model_check(c, rc, &errs);
    router_agent_clear(&a);
    json_decref(doc);
}

Test(router_model, fills_agent_defaults_and_sorts_skills)
{
    struct router_errors errs = {0};
    struct router_agent a;
    json_t *doc = model_load("{\"name\": \"Bob\", \"skills\": [{\"skill\": \"zulu\", "
                             "\"proficiency\": 2}, {\"skill\": \"alpha\", \"proficiency\": 4}]}");

    cr_assert_eq(router_agent_parse(doc, NULL, &a, &errs), 0);
    cr_assert_str_eq(a.id, "", "expected no id when the body has none (the API makes one)");
    cr_assert_eq(a.capacity[ROUTER_CH_VOICE], 1);
    cr_assert_eq(a.capacity[ROUTER_CH_CHAT], 3);
    cr_assert_eq(a.capacity[ROUTER_CH_EMAIL], 5);
    cr_assert_eq(a.capacity[ROUTER_CH_SMS], 3);
    cr_assert(a.voice_blocks_other && a.enabled, "expected both flags on by default");
    cr_assert_eq(a.nskills, 2);
    cr_assert_str_eq(a.skills[0].skill, "alpha", "expected skills sorted by name");
    cr_assert_eq(a.skills[0].level, 4);
    router_agent_clear(&a);
    json_decref(doc);
}

Test(router_model, reports_every_error_and_counts_those_it_cannot_keep)
{
    struct router_errors errs = {0};
    struct router_agent a;
    char body[2048];
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"name\": \"\"");
    json_t *doc;

    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, ", \"bad%d\": 1", i);
    snprintf(body + n, sizeof(body) - n, "}");
    doc = model_load(body);
    cr_assert_eq(router_agent_parse(doc, NULL, &a, &errs), -EINVAL);
    cr_assert_eq(errs.n, ROUTER_ERRORS_MAX, "expected the error list full");
    cr_assert_eq(errs.n + errs.dropped, 21, "expected 21 errors counted, got %zu + %zu", errs.n,
                 errs.dropped);
    router_agent_clear(&a);
    json_decref(doc);
}

/* ---- queues ----------------------------------------------------------------------------- */

#define Q "\"name\": \"Q\", \"channels\": [\"voice\"], \"strategy\": \"ring_all\""

ParameterizedTestParameters(router_model, validates_queue_bodies)
{
    static struct model_case cases[] = {
        {"", "{" Q "}", VALID},
        {"q",
         "{" Q ", \"id\": \"q\", \"priority\": 1000, \"overflow_queue_id\": \"o\", "
         "\"no_agent_action\": \"overflow\", \"closed_action\": \"overflow\", \"timezone\": "
         "\"Europe/Paris\", \"opening_hours\": [{\"day\": 1, \"open\": \"00:00\", \"close\": "
         "\"12:00\"}, {\"day\": 1, \"open\": \"12:00\", \"close\": \"24:00\"}], "
         "\"holidays\": [{\"date\": \"2028-02-29\", \"name\": \"leap\"}], \"tier_rules\": "
         "[{\"level\": 3, \"after_s\": 60}, {\"level\": 2, \"after_s\": 30}], \"skills\": "
         "[{\"skill\": \"de\", \"min_proficiency\": 3}], \"overflow_queue_id\": \"o\"}",
         VALID},
        {"", "{" Q ", \"overflow_queue_id\": null}", VALID},
        {"", "{\"name\": \"Q\", \"channels\": [\"voice\"]}", "/strategy"},
        {"", "{\"name\": \"Q\", \"channels\": [\"voice\"], \"strategy\": \"fifo\"}", "/strategy"},
        {"", "{\"name\": \"Q\", \"strategy\": \"random\"}", "/channels"},
        {"", "{\"name\": \"Q\", \"strategy\": \"random\", \"channels\": []}", "/channels"},
        {"", "{\"name\": \"Q\", \"strategy\": \"random\", \"channels\": [\"fax\"]}", "/channels/0"},
        {"", "{\"name\": \"Q\", \"strategy\": \"random\", \"channels\": [\"sms\", \"sms\"]}",
         "/channels/1"},
        {"", "{" Q ", \"priority\": 1001}", "/priority"},
        {"", "{" Q ", \"priority\": 1.5}", "/priority"},
        {"", "{" Q ", \"sl_threshold_s\": 0}", "/sl_threshold_s"},
        {"", "{" Q ", \"wrapup_s\": 3601}", "/wrapup_s"},
        {"", "{" Q ", \"ring_timeout_s\": 0}", "/ring_timeout_s"},
        {"", "{" Q ", \"max_no_answer\": -1}", "/max_no_answer"},
        {"", "{" Q ", \"max_wait_s\": 2592001}", "/max_wait_s"},
        {"", "{" Q ", \"max_length\": -1}", "/max_length"},
        {"", "{" Q ", \"ring_progressive_interval_s\": 0}", "/ring_progressive_interval_s"},
        {"", "{" Q ", \"callback_enabled\": null}", "/callback_enabled"},
        {"q", "{" Q ", \"overflow_queue_id\": \"q\"}", "/overflow_queue_id"},
        {"", "{" Q ", \"overflow_queue_id\": \"no way\"}", "/overflow_queue_id"},
        {"", "{" Q ", \"no_agent_action\": \"overflow\"}", "/no_agent_action"},
        {"", "{" Q ", \"no_agent_action\": \"wait\"}", "/no_agent_action"},
        {"", "{" Q ", \"closed_action\": \"overflow\"}", "/closed_action"},
        {"", "{" Q ", \"closed_reason\": \"no way\"}", "/closed_reason"},
        {"", "{" Q ", \"timezone\": \"Mars/Olympus\"}", "/timezone"},
        {"", "{" Q ", \"timezone\": \"\"}", "/timezone"},
        {"",
         "{" Q ", \"opening_hours\": [{\"day\": 8, \"open\": \"09:00\", \"close\": "
         "\"17:00\"}]}",
         "/opening_hours/0/day"},
        {"", "{" Q ", \"opening_hours\": [{\"open\": \"09:00\", \"close\": \"17:00\"}]}",
         "/opening_hours/0/day"},
        {"",
         "{" Q ", \"opening_hours\": [{\"day\": 1, \"open\": \"24:00\", \"close\": "
         "\"24:00\"}]}",
         "/opening_hours/0/open"},
        {"",
         "{" Q ", \"opening_hours\": [{\"day\": 1, \"open\": \"9:00\", \"close\": "
         "\"17:00\"}]}",
         "/opening_hours/0/open"},
        {"",
         "{" Q ", \"opening_hours\": [{\"day\": 1, \"open\": \"09:60\", \"close\": "
         "\"17:00\"}]}",
         "/opening_hours/0/open"},
        {"",
         "{" Q ", \"opening_hours\": [{\"day\": 1, \"open\": \"17:00\", \"close\": "
         "\"09:00\"}]}",
         "/opening_hours/0/close"},
        {"",
         "{" Q ", \"opening_hours\": [{\"day\": 2, \"open\": \"09:00\", \"close\": "
         "\"13:00\"}, {\"day\": 2, \"open\": \"12:00\", \"close\": \"18:00\"}]}",
         "/opening_hours"},
        {"",
         "{" Q ", \"opening_hours\": [{\"day\": 1, \"open\": \"09:00\", \"close\": "
         "\"17:00\", \"tz\": \"UTC\"}]}",
         "/opening_hours/0/tz"},
        {"", "{" Q ", \"holidays\": [{\"date\": \"2026-02-29\"}]}", "/holidays/0/date"},
        {"", "{" Q ", \"holidays\": [{\"date\": \"2026-13-01\"}]}", "/holidays/0/date"},
        {"", "{" Q ", \"holidays\": [{\"date\": \"2026-1-01\"}]}", "/holidays/0/date"},
        {"", "{" Q ", \"holidays\": [{\"date\": \"2026-12-25\"}, {\"date\": \"2026-12-25\"}]}",
         "/holidays/1/date"},
        {"", "{" Q ", \"tier_rules\": [{\"level\": 1, \"after_s\": 0}]}", "/tier_rules/0/level"},
        {"", "{" Q ", \"tier_rules\": [{\"level\": 2}]}", "/tier_rules/0"},
        {"",
         "{" Q ", \"tier_rules\": [{\"level\": 2, \"after_s\": 60}, {\"level\": 3, "
         "\"after_s\": 30}]}",
         "/tier_rules"},
        {"",
         "{" Q ", \"tier_rules\": [{\"level\": 2, \"after_s\": 1}, {\"level\": 2, "
         "\"after_s\": 5}]}",
         "/tier_rules"},
        {"", "{" Q ", \"skills\": [{\"skill\": \"de\", \"proficiency\": 3}]}",
         "/skills/0/proficiency"},
        {"q", "{" Q ", \"id\": \"other\"}", "/id"},
    };
    return cr_make_param_array(struct model_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct model_case *c, router_model, validates_queue_bodies)
{
    struct router_errors errs = {0};
    struct router_queue q;
    json_t *doc = model_load(c->body);
    int rc =
        router_queue_parse(doc, c->path_id[0] ? c->path_id : NULL, model_tz_known, NULL, &q, &errs);

    model_check(c, rc, &errs);
    router_queue_clear(&q);
    json_decref(doc);
}

Test(router_model, renders_a_queue_that_parses_back_to_the_same_document)
{
    struct router_errors errs = {0};
    struct router_queue q, again;
    json_t *doc = model_load(
        "{\"name\": \"Sales DE\", \"channels\": [\"chat\", \"voice\"], \"strategy\": "
        "\"best_skill\", \"priority\": 7, \"wrapup_s\": 30, \"max_wait_s\": 300, "
        "\"overflow_queue_id\": \"sales-en\", \"timezone\": \"Europe/Paris\", \"opening_hours\": "
        "[{\"day\": 5, \"open\": \"08:30\", \"close\": \"24:00\"}, {\"day\": 1, \"open\": "
        "\"08:00\", \"close\": \"18:00\"}], \"holidays\": [{\"date\": \"2026-12-25\", \"name\": "
        "\"Weihnachten\"}], \"tier_rules\": [{\"level\": 2, \"after_s\": 20}], \"skills\": "
        "[{\"skill\": \"lang_de\", \"min_proficiency\": 3}]}");
    json_t *out, *out2;

    cr_assert_eq(router_queue_parse(doc, "sales-de", model_tz_known, NULL, &q, &errs), 0);
    q.version = 4;
    out = router_queue_to_json(&q);
    cr_assert_not_null(out);
    cr_assert_str_eq(json_string_value(json_object_get(out, "id")), "sales-de");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(out, "channels"), 0)),
                     "voice", "expected channels in canonical order");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(out, "opening_hours"), 0), "day")),
                 1, "expected opening hours sorted by day");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(out, "opening_hours"), 1), "close")),
                     "24:00");
    cr_assert_eq(router_queue_parse(out, "sales-de", model_tz_known, NULL, &again, &errs), 0,
                 "expected a rendered queue to be a valid PUT body");
    cr_assert_eq(again.version, 4, "expected the echoed version kept as the precondition");
    out2 = router_queue_to_json(&again);
    cr_assert(json_equal(out, out2), "expected parse(render(q)) to render the same");
    json_decref(out2);
    json_decref(out);
    router_queue_clear(&again);
    router_queue_clear(&q);
    json_decref(doc);
}

/* ---- memberships, reasons, names, merge patch ------------------------------------------- */

ParameterizedTestParameters(router_model, validates_membership_bodies)
{
    static struct model_case cases[] = {
        {"", "{}", VALID},
        {"", "{\"level\": 100, \"position\": 100000, \"penalty\": 1000}", VALID},
        {"", "{\"queue_id\": \"q\", \"agent_id\": \"a\"}", VALID},
        {"", "{\"level\": 0}", "/level"},
        {"", "{\"position\": 0}", "/position"},
        {"", "{\"penalty\": -1}", "/penalty"},
        {"", "{\"penalty\": 1001}", "/penalty"},
        {"", "{\"queue_id\": \"other\"}", "/queue_id"},
        {"", "{\"tier\": 1}", "/tier"},
        {"", "[1]", ""},
    };
    return cr_make_param_array(struct model_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct model_case *c, router_model, validates_membership_bodies)
{
    struct router_errors errs = {0};
    struct router_member m;
    json_t *doc = model_load(c->body);

    model_check(c, router_member_parse(doc, "q", "a", &m, &errs), &errs);
    json_decref(doc);
}

Test(router_model, gives_a_membership_without_body_the_defaults)
{
    struct router_errors errs = {0};
    struct router_member m;

    cr_assert_eq(router_member_parse(NULL, "q", "a", &m, &errs), 0);
    cr_assert(m.level == 1 && m.position == 1 && m.penalty == 0, "expected level 1, position 1, "
                                                                 "penalty 0");
    cr_assert_str_eq(m.agent_id, "a");
}

ParameterizedTestParameters(router_model, validates_reason_bodies)
{
    static struct model_case cases[] = {
        {"", "{\"label\": \"Lunch\"}", VALID},
        {"", "{\"code\": \"lunch\", \"label\": \"Lunch\", \"counts_as_break\": true}", VALID},
        {"", "{}", "/label"},
        {"", "{\"label\": \"L\", \"code\": \"other\"}", "/code"},
        {"", "{\"label\": \"L\", \"counts_as_break\": \"no\"}", "/counts_as_break"},
        {"", "{\"label\": \"L\", \"paid\": true}", "/paid"},
    };
    return cr_make_param_array(struct model_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct model_case *c, router_model, validates_reason_bodies)
{
    struct router_errors errs = {0};
    struct router_reason r;
    json_t *doc = model_load(c->body);

    model_check(c, router_reason_parse(doc, "lunch", &r, &errs), &errs);
    json_decref(doc);
}

Test(router_model, accepts_only_well_formed_ids)
{
    char longest[ROUTER_ID_MAX + 2];

    cr_assert(router_id_valid("a"));
    cr_assert(router_id_valid("0190b4c2-0000-7000-8000-000000000000"), "expected a UUID valid");
    cr_assert(router_id_valid("Agent_7-b"));
    cr_assert_not(router_id_valid(""));
    cr_assert_not(router_id_valid(NULL));
    cr_assert_not(router_id_valid("_a"), "expected a leading '_' refused (not an event id)");
    cr_assert_not(router_id_valid("a b"));
    cr_assert_not(router_id_valid("a.b"));
    cr_assert_not(router_id_valid("a/b"));
    memset(longest, 'x', ROUTER_ID_MAX);
    longest[ROUTER_ID_MAX] = '\0';
    cr_assert(router_id_valid(longest), "expected 64 characters accepted");
    longest[ROUTER_ID_MAX] = 'x';
    longest[ROUTER_ID_MAX + 1] = '\0';
    cr_assert_not(router_id_valid(longest), "expected 65 characters refused");
}

Test(router_model, names_every_strategy_both_ways)
{
    for (int s = 0; s < ROUTER_STRAT_COUNT; s++) {
        enum router_strategy back;
        cr_assert_eq(router_strategy_parse(router_strategy_name(s), &back), 0);
        cr_assert_eq((int)back, s, "expected '%s' to parse back", router_strategy_name(s));
    }
    cr_assert_eq(router_strategy_parse("fifo", &(enum router_strategy){0}), -EINVAL);
}

Test(router_model, applies_a_merge_patch_per_rfc_7396)
{
    json_t *target = model_load("{\"a\": \"b\", \"c\": {\"d\": \"e\", \"f\": \"g\"}, \"l\": [1]}");
    json_t *patch = model_load("{\"a\": \"z\", \"c\": {\"f\": null}, \"l\": [2, 3], \"n\": 1}");
    json_t *want = model_load("{\"a\": \"z\", \"c\": {\"d\": \"e\"}, \"l\": [2, 3], \"n\": 1}");
    json_t *got = router_merge_patch(target, patch);

    cr_assert(json_equal(got, want), "expected the RFC 7396 result");
    cr_assert_str_eq(json_string_value(json_object_get(target, "a")), "b",
                     "expected the target untouched");
    json_decref(got);
    json_decref(want);
    json_decref(patch);
    json_decref(target);
}
