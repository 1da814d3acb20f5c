/*
 * Tests of the outbox entry layout (router_outbox): one stream entry per script command holds
 * all its events, which the publisher splits, turns into CloudEvents with deterministic ids and
 * produces in order. Pure functions: no server needed (kept beside the router's integration
 * tests, which read the outbox the same way).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "router_outbox.h"

TestSuite(router_outbox, .timeout = 10);

/* An entry of three events as the script writes it (batched command: ct, ck). */
static const char *const ro_entry[] = {
    "tenant",  "t1",
    "time_ms", "1760000000000",
    "ct",      "1760000000000123",
    "ck",      "enqueue",
    "topic",   "cc.interactions",
    "key",     "i1",
    "type",    "cc.interaction.queued",
    "data",    "{\"queue_id\":\"q\",\"priority\":0,\"sl_threshold_s\":20}",
    "topic",   "cc.routing.decisions",
    "key",     "i1",
    "type",    "cc.routing.assigned",
    "data",    "{\"agent_id\":\"a1\",\"queue_id\":\"q\"}",
    "topic",   "cc.routing.decisions",
    "key",     "i1",
    "type",    "cc.routing.assigned",
    "data",    "{\"agent_id\":\"a2\",\"queue_id\":\"q\"}",
};

Test(router_outbox, splits_an_entry_into_its_events_in_order)
{
    static struct router_outbox_entry e;
    int n = router_outbox_entry_parse(ro_entry, sizeof(ro_entry) / sizeof(ro_entry[0]), &e);

    cr_assert_eq(n, 3, "expected three events, got %d", n);
    cr_assert_str_eq(e.tenant, "t1", "expected the entry's tenant");
    cr_assert_str_eq(e.time_ms, "1760000000000", "expected the entry's time");
    cr_assert_str_eq(e.ct, "1760000000000123", "expected the consume time");
    cr_assert_str_eq(e.ck, "enqueue", "expected the command");
    cr_assert_str_eq(e.events[0].type, "cc.interaction.queued", "expected queued first");
    cr_assert_str_eq(e.events[1].type, "cc.routing.assigned", "expected assigned second");
    cr_assert_not_null(strstr(e.events[2].data, "a2"), "expected a2's offer last");
    for (int i = 0; i < 3; i++)
        cr_assert_str_eq(e.events[i].subject, "i1", "expected the key as subject of event %d", i);
}

Test(router_outbox, reads_an_entry_of_one_event_written_before_the_layout)
{
    static const char *const old[] = {
        "topic",   "cc.agents", "key",     "a1", "type", "cc.agent.state_changed", "tenant", "t1",
        "subject", "a1",        "time_ms", "5",  "data", "{\"to_state\":\"busy\"}"};
    static struct router_outbox_entry e;

    cr_assert_eq(router_outbox_entry_parse(old, sizeof(old) / sizeof(old[0]), &e), 1,
                 "expected one event");
    cr_assert_str_eq(e.tenant, "t1", "expected the tenant after the first event's fields");
    cr_assert_str_eq(e.events[0].subject, "a1", "expected the subject field");
    cr_assert_str_eq(e.events[0].topic, "cc.agents", "expected the topic");
    cr_assert_null(e.ct, "expected no consume time");
}

Test(router_outbox, gives_every_event_of_an_entry_its_own_stable_id)
{
    char first[37], again[37], second[37], third[37];

    cr_assert_eq(
        router_outbox_event_id("1760000000000-0", 0, "t1", "cc.routing.assigned", "i1", first), 0);
    cr_assert_eq(
        router_outbox_event_id("1760000000000-0", 0, "t1", "cc.routing.assigned", "i1", again), 0);
    cr_assert_eq(
        router_outbox_event_id("1760000000000-0", 1, "t1", "cc.routing.assigned", "i1", second), 0);
    cr_assert_eq(
        router_outbox_event_id("1760000000000-0", 2, "t1", "cc.routing.assigned", "i1", third), 0);
    cr_assert_str_eq(first, again, "expected the same id when published again");
    cr_assert_str_neq(first, second, "expected two offers of one entry to differ (ring all)");
    cr_assert_str_neq(second, third, "expected every index to give another id");
    cr_assert_eq(strncmp(first, second, 13), 0, "expected the entry's milliseconds in both: %s %s",
                 first, second);
    cr_assert_eq(router_outbox_event_id("nope", 0, "t1", "x", "i1", first), -EINVAL,
                 "expected a bad entry id refused");
}

Test(router_outbox, builds_the_envelope_of_each_event_and_refuses_bad_data)
{
    static const char *const bad[] = {
        "tenant", "t1", "time_ms", "1760000000000",          "topic", "cc.agents",
        "key",    "a1", "type",    "cc.agent.state_changed", "data",  "[1]"};
    static struct router_outbox_entry e;
    char err[160], id1[37];
    json_t *env;

    cr_assert_eq(router_outbox_entry_parse(ro_entry, sizeof(ro_entry) / sizeof(ro_entry[0]), &e),
                 3);
    env = router_outbox_envelope("1760000000000-7", &e, 1, "/router/test", err, sizeof(err));
    cr_assert_not_null(env, "expected an envelope: %s", err);
    cr_assert_eq(
        router_outbox_event_id("1760000000000-7", 1, "t1", "cc.routing.assigned", "i1", id1), 0);
    cr_assert_str_eq(json_string_value(json_object_get(env, "id")), id1,
                     "expected the id of event 1");
    cr_assert_str_eq(json_string_value(json_object_get(env, "subject")), "i1",
                     "expected the key as subject");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(env, "data"), "agent_id")),
                     "a1", "expected the second event's data");
    json_decref(env);
    cr_assert_null(
        router_outbox_envelope("1760000000000-7", &e, 3, "/router/test", err, sizeof(err)),
        "expected no fourth event");

    cr_assert_eq(router_outbox_entry_parse(bad, sizeof(bad) / sizeof(bad[0]), &e), 1);
    cr_assert_null(
        router_outbox_envelope("1760000000000-8", &e, 0, "/router/test", err, sizeof(err)),
        "expected data that is not an object refused");
    cr_assert_not_null(strstr(err, "not a JSON object"), "expected the reason, got '%s'", err);
}

Test(router_outbox, builds_the_same_event_as_text_without_parsing_the_data)
{
    static const char *const bad[] = {
        "tenant", "t1",   "time_ms", "1760000000000",          "topic", "cc.agents",
        "key",    "a\"1", "type",    "cc.agent.state_changed", "data",  "{}"};
    static struct router_outbox_entry e;
    char err[160], id[37];
    size_t len = 0;

    cr_assert_eq(router_outbox_entry_parse(ro_entry, sizeof(ro_entry) / sizeof(ro_entry[0]), &e),
                 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *ref =
            router_outbox_envelope("1760000000000-7", &e, i, "/router/t", err, sizeof(err));
        char *text = router_outbox_event_text("1760000000000-7", &e, i, "/router/t", id, &len, err,
                                              sizeof(err));
        json_t *got;

        cr_assert_not_null(ref, "expected the reference envelope: %s", err);
        cr_assert_not_null(text, "expected the text of event %zu: %s", i, err);
        cr_assert_eq(len, strlen(text), "expected the length of the text");
        got = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        cr_assert(json_equal(got, ref), "expected event %zu as text to equal the envelope: %s", i,
                  text);
        cr_assert_str_eq(id, json_string_value(json_object_get(ref, "id")), "expected its id");
        json_decref(got);
        json_decref(ref);
        free(text);
    }
    cr_assert_eq(router_outbox_entry_parse(bad, sizeof(bad) / sizeof(bad[0]), &e), 1);
    cr_assert_null(
        router_outbox_event_text("1760000000000-8", &e, 0, "/router/t", id, &len, err, sizeof(err)),
        "expected a subject that needs escaping refused");
}
