/* Unit tests for the pure parts of services/router/router_state.c: state and status names. */
#include <criterion/criterion.h>
#include <errno.h>

#include "router_state.h"

TestSuite(router_state_names);

Test(router_state_names, agent_states_round_trip_with_the_schema_names)
{
    static const char *const names[ROUTER_AGENT_STATE_COUNT] = {
        "logged_out", "available", "reserved", "busy", "wrap_up", "not_ready"};

    for (int i = 0; i < ROUTER_AGENT_STATE_COUNT; i++) {
        enum router_agent_state st;
        cr_assert_str_eq(router_agent_state_name((enum router_agent_state)i), names[i],
                         "expected state %d named '%s'", i, names[i]);
        cr_assert_eq(router_agent_state_parse(names[i], &st), 0, "expected '%s' parsed", names[i]);
        cr_assert_eq((int)st, i, "expected '%s' to be state %d", names[i], i);
    }
}

Test(router_state_names, unknown_names_are_refused)
{
    enum router_agent_state st;

    cr_assert_eq(router_agent_state_parse("wrapup", &st), -EINVAL, "expected the schema spelling");
    cr_assert_eq(router_agent_state_parse(NULL, &st), -EINVAL, "expected NULL refused");
    cr_assert_str_eq(router_agent_state_name(ROUTER_AGENT_STATE_COUNT), "unknown");
    cr_assert_str_eq(router_state_status_name(ROUTER_ST_OVERFLOWED), "overflowed");
    cr_assert_str_eq(router_state_status_name((enum router_state_status)99), "unknown");
}

Test(router_state_names, arguments_are_checked_before_any_io)
{
    struct router_state_result res;

    cr_assert_eq(router_state_answered(NULL, "t", "i1", "a1", 1, 1, &res), -EINVAL);
    cr_assert_eq(router_state_enqueue(NULL, NULL, &res), -EINVAL);
    cr_assert_eq(router_state_queue_view(NULL, "t", "q", 1, NULL), -EINVAL);
}
