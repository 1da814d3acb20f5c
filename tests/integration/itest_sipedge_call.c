/* itest_sipedge_call: the sip-edge suites' shared waits and call set-up (see the header). */
#include "itest_sipedge_call.h"

#include <criterion/criterion.h>

json_t *itest_sipedge_expect(struct itest_sipedge *t, const char *type, const char *subject,
                             const char *field, const char *value, size_t *index)
{
    json_t *ev = itest_sipedge_wait(t, type, subject, field, value, ITEST_SIPEDGE_WAIT_MS, index);

    cr_assert_not_null(ev, "expected %s for %s%s%s%s%s", type, subject ? subject : "(any)",
                       field ? " with " : "", field ? field : "", field ? " = " : "",
                       field ? value : "");
    return ev;
}

const char *itest_sipedge_one_agent_call(struct itest_sipedge *t, const char *phone_scn,
                                         const char *const phone_extra[], const char *caller_scn,
                                         const char *pause, struct itest_proc **phone,
                                         struct itest_proc **caller)
{
    char did[32];
    int ports[2];

    itest_sipedge_start_with_agents(t, 1, 20, 0, 100, ports);
    itest_sipedge_did(t, did, sizeof(did), "q1");
    *phone = itest_sipedge_sipp(t, phone_scn, NULL, ports[0], phone_extra);
    *caller = itest_sipedge_caller(t, caller_scn, did, pause);
    return itest_sipedge_interaction_of(t, did);
}
