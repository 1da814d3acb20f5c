/*
 * Unit tests for the pure parts of services/sip-edge/sipedge_journal.c: a journal entry's JSON
 * value both ways (with and without an agent), every malformed value refused, and the durations
 * a lost call is reported with, and which takeover group names are accepted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sipedge_journal.h"

TestSuite(sipedge_journal);

static struct sipedge_journal_entry sj_entry(bool answered)
{
    struct sipedge_journal_entry e = {.created_ms = 1795600000000};

    snprintf(e.interaction_id, sizeof(e.interaction_id), "01a210cc-4ffb-77fe-b0e8-fb84f4e82ef3");
    snprintf(e.tenant, sizeof(e.tenant), "acme");
    snprintf(e.queue_id, sizeof(e.queue_id), "sales");
    snprintf(e.boot, sizeof(e.boot), "01a210cc-0000-7000-8000-000000000001");
    if (answered) {
        snprintf(e.agent_id, sizeof(e.agent_id), "agent-7");
        e.answered_ms = 1795600012000;
    }
    return e;
}

Test(sipedge_journal, an_entry_reads_back_as_written)
{
    for (int answered = 0; answered < 2; answered++) {
        struct sipedge_journal_entry e = sj_entry(answered), back;
        char *text = sipedge_journal_entry_text(&e);

        cr_assert_not_null(text);
        cr_assert_eq(sipedge_journal_entry_parse(e.interaction_id, text, &back), 0, "%s", text);
        cr_assert_str_eq(back.interaction_id, e.interaction_id);
        cr_assert_str_eq(back.tenant, "acme");
        cr_assert_str_eq(back.queue_id, "sales");
        cr_assert_str_eq(back.agent_id, answered ? "agent-7" : "");
        cr_assert_str_eq(back.boot, e.boot);
        cr_assert_eq(back.created_ms, e.created_ms);
        cr_assert_eq(back.answered_ms, answered ? 1795600012000 : 0);
        cr_assert_eq(strstr(text, "answered_ms") != NULL, answered != 0,
                     "expected answered_ms only with an agent: %s", text);
        free(text);
    }
}

Test(sipedge_journal, malformed_values_are_refused)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"queue_id\":\"q\",\"created_ms\":1}",                 /* no tenant */
        "{\"tenant\":\"\",\"queue_id\":\"q\",\"created_ms\":1}", /* empty tenant */
        "{\"tenant\":\"t\",\"created_ms\":1}",                   /* no queue */
        "{\"tenant\":\"t\",\"queue_id\":\"q\"}",                 /* no created_ms */
        "{\"tenant\":\"t\",\"queue_id\":\"q\",\"created_ms\":\"1\"}",
        "{\"tenant\":\"t\",\"queue_id\":\"q\",\"created_ms\":1,\"agent_id\":5}",
        "{\"tenant\":\"t\",\"queue_id\":\"q\",\"created_ms\":1,\"answered_ms\":1.5}",
        "{\"tenant\":\"t\",\"tenant\":\"u\",\"queue_id\":\"q\",\"created_ms\":1}",
        "{\"tenant\":\"tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt\","
        "\"queue_id\":\"q\",\"created_ms\":1}", /* 68 characters: over SIPEDGE_ID_MAX */
    };
    struct sipedge_journal_entry e;
    char longid[100];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(sipedge_journal_entry_parse("ix", bad[i], &e), -EINVAL, "accepted: %s",
                     bad[i]);
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    cr_assert_eq(sipedge_journal_entry_parse(
                     longid, "{\"tenant\":\"t\",\"queue_id\":\"q\",\"created_ms\":1}", &e),
                 -EINVAL, "expected an over-long interaction id refused");
    cr_assert_eq(sipedge_journal_entry_parse(NULL, "{}", &e), -EINVAL);
    cr_assert_eq(sipedge_journal_entry_parse("ix", NULL, &e), -EINVAL);
    cr_assert_eq(sipedge_journal_entry_parse(
                     "ix", "{\"tenant\":\"t\",\"queue_id\":\"q\",\"created_ms\":1}", &e),
                 0, "expected the minimal entry (no agent, no boot) accepted");
}

Test(sipedge_journal, a_lost_call_counts_up_to_when_its_instance_was_last_seen)
{
    struct sipedge_journal_entry waiting = sj_entry(false), talking = sj_entry(true);
    int64_t duration, talk;

    sipedge_journal_lost_times(&talking, 1795600030000, &duration, &talk);
    cr_assert_eq(duration, 30000);
    cr_assert_eq(talk, 18000);
    sipedge_journal_lost_times(&waiting, 1795600030000, &duration, &talk);
    cr_assert_eq(duration, 30000);
    cr_assert_eq(talk, 0, "expected no talk without an agent");
    /* last seen before the answer (or the creation): nothing negative */
    sipedge_journal_lost_times(&talking, 1795600011000, &duration, &talk);
    cr_assert_eq(duration, 11000);
    cr_assert_eq(talk, 0);
    sipedge_journal_lost_times(&talking, 1795599999000, &duration, &talk);
    cr_assert_eq(duration, 0);
    cr_assert_eq(talk, 0);
}

Test(sipedge_journal, a_takeover_group_is_a_short_plain_name)
{
    char longest[SIPEDGE_ID_MAX + 2];

    cr_assert(sipedge_journal_group_valid("default"));
    cr_assert(sipedge_journal_group_valid("eu-west_1"));
    memset(longest, 'g', SIPEDGE_ID_MAX);
    longest[SIPEDGE_ID_MAX] = '\0';
    cr_assert(sipedge_journal_group_valid(longest), "expected %d characters accepted",
              SIPEDGE_ID_MAX);
    longest[SIPEDGE_ID_MAX] = 'g';
    longest[SIPEDGE_ID_MAX + 1] = '\0';
    cr_assert(!sipedge_journal_group_valid(longest), "expected one more refused");
    cr_assert(!sipedge_journal_group_valid(""));
    cr_assert(!sipedge_journal_group_valid(NULL));
    cr_assert(!sipedge_journal_group_valid("a}b"), "expected a brace (the key's hash tag) refused");
    cr_assert(!sipedge_journal_group_valid("a b"));
    cr_assert(!sipedge_journal_group_valid("a:b"));
}
