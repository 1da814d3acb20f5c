/*
 * Unit tests for the assignments sip-edge keeps of queued callbacks it does not hold
 * (sipedge_calls_keep_unheld, services/sip-edge/sipedge_callback.c): only a callback's
 * assignment within its ring time is kept, the latest one per interaction, and a withdrawal of
 * that agent, a rejection or an overflow forgets it; the store is bounded.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cc_time.h"
#include "sipedge_call_int.h"

TestSuite(sipedge_unheld);

static struct sipedge_decision su_decision(enum sipedge_decision_kind kind, const char *ix,
                                           const char *agent, bool callback, int64_t age_ms)
{
    struct sipedge_decision d = {.kind = kind, .callback = callback, .ring_timeout_s = 20};

    d.time_ms = cc_time_now_ms() - age_ms;
    snprintf(d.interaction_id, sizeof(d.interaction_id), "%s", ix);
    snprintf(d.tenant, sizeof(d.tenant), "acme");
    snprintf(d.agent_id, sizeof(d.agent_id), "%s", agent);
    return d;
}

static const struct sipedge_decision *su_kept(const sipedge_calls *cs, const char *ix)
{
    for (size_t i = 0; cs->unheld && i < SIPEDGE_UNHELD_MAX; i++)
        if (strcmp(cs->unheld[i].interaction_id, ix) == 0)
            return &cs->unheld[i];
    return NULL;
}

Test(sipedge_unheld, keeps_the_latest_assignment_of_a_callback_until_it_is_withdrawn)
{
    sipedge_calls *cs = sipedge_calls_new(&(struct sipedge_calls_config){0});
    struct sipedge_decision d;

    cr_assert_not_null(cs);
    d = su_decision(SIPEDGE_DECISION_ASSIGNED, "ix-call", "a1", false, 0);
    sipedge_calls_keep_unheld(cs, &d); /* not a callback: another instance's call */
    cr_assert_null(cs->unheld);
    d = su_decision(SIPEDGE_DECISION_ASSIGNED, "ix-cb", "a1", true, 21000);
    sipedge_calls_keep_unheld(cs, &d); /* its ring time is over */
    cr_assert_eq(cs->unheld_count, 0);
    d = su_decision(SIPEDGE_DECISION_ASSIGNED, "ix-cb", "a1", true, 1000);
    sipedge_calls_keep_unheld(cs, &d);
    d = su_decision(SIPEDGE_DECISION_ASSIGNED, "ix-cb", "a2", true, 0);
    sipedge_calls_keep_unheld(cs, &d); /* the router assigned it again: the latest wins */
    cr_assert_eq(cs->unheld_count, 1);
    cr_assert_str_eq(su_kept(cs, "ix-cb")->agent_id, "a2");
    d = su_decision(SIPEDGE_DECISION_WITHDRAWN, "ix-cb", "a1", false, 0);
    sipedge_calls_keep_unheld(cs, &d); /* another agent's offer: kept */
    cr_assert_eq(cs->unheld_count, 1);
    d = su_decision(SIPEDGE_DECISION_WITHDRAWN, "ix-cb", "a2", false, 0);
    sipedge_calls_keep_unheld(cs, &d);
    cr_assert_eq(cs->unheld_count, 0);
    cr_assert_null(su_kept(cs, "ix-cb"));
    d = su_decision(SIPEDGE_DECISION_ASSIGNED, "ix-cb", "a2", true, 0);
    sipedge_calls_keep_unheld(cs, &d);
    d = su_decision(SIPEDGE_DECISION_REJECTED, "ix-cb", "", false, 0);
    sipedge_calls_keep_unheld(cs, &d);
    cr_assert_eq(cs->unheld_count, 0);
    d = su_decision(SIPEDGE_DECISION_ASSIGNED, "ix-cb", "a2", true, 0);
    sipedge_calls_keep_unheld(cs, &d);
    d = su_decision(SIPEDGE_DECISION_OVERFLOWED, "ix-cb", "", false, 0);
    sipedge_calls_keep_unheld(cs, &d);
    cr_assert_eq(cs->unheld_count, 0);
    sipedge_calls_free(cs);
}

Test(sipedge_unheld, keeps_at_most_its_bound_the_newest_overwriting_the_oldest)
{
    sipedge_calls *cs = sipedge_calls_new(&(struct sipedge_calls_config){0});
    char ix[32];

    cr_assert_not_null(cs);
    for (int i = 0; i < SIPEDGE_UNHELD_MAX + 10; i++) {
        struct sipedge_decision d;

        snprintf(ix, sizeof(ix), "ix-%d", i);
        d = su_decision(SIPEDGE_DECISION_ASSIGNED, ix, "a1", true, 0);
        sipedge_calls_keep_unheld(cs, &d);
    }
    cr_assert_eq(cs->unheld_count, SIPEDGE_UNHELD_MAX);
    cr_assert_null(su_kept(cs, "ix-9"), "expected the oldest overwritten");
    cr_assert_not_null(su_kept(cs, "ix-10"));
    snprintf(ix, sizeof(ix), "ix-%d", SIPEDGE_UNHELD_MAX + 9);
    cr_assert_not_null(su_kept(cs, ix));
    sipedge_calls_free(cs);
}
