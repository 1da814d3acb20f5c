/*
 * Integration test of sip-edge's ringing refresh: a caller waiting in a queue gets 180 Ringing
 * again every CC_SIPEDGE_PROGRESS_S (RFC 3261 13.3.1.1: a UAS keeps a long-ringing INVITE
 * alive with a provisional response at least once a minute). sip-edge turns Sofia's own N2
 * retransmission off (its sorted list costs O(ringing calls) per call) and re-sends the 180
 * itself; this test sets the interval to 1 s and counts the 180s a sip_phone caller receives
 * while nobody can answer (a queue without agents), then hangs up (CANCEL: abandoned).
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "cc_log.h"
#include "cc_time.h"
#include "itest_sipedge.h"
#include "itest_sipedge_call.h"

static struct itest_sipedge sp;

static void sp_setup(void)
{
    cc_log_init("test-sipedge-progress", CC_LOG_WARN);
    itest_sipedge_setup(&sp, "sp");
}

static void sp_teardown(void)
{
    itest_sipedge_teardown(&sp);
}

TestSuite(sipedge_progress, .init = sp_setup, .fini = sp_teardown, .timeout = 300);

Test(sipedge_progress, waiting_caller_gets_180_again_every_progress_interval_until_it_hangs_up)
{
    struct itest_phone *ph;
    char did[32];
    const char *ix;
    int64_t first_ms, third_ms;

    /* inherited by cc-sip-edge (each Criterion test runs in a process of its own) */
    cr_assert_eq(setenv("CC_SIPEDGE_PROGRESS_S", "1", 1), 0, "expected setenv to work");
    itest_sipedge_router_start(&sp);
    itest_sipedge_edge_start(&sp, 100);
    itest_sipedge_queue(&sp, "q1", 20, 0); /* no agents: the caller waits */
    itest_sipedge_did(&sp, did, sizeof(did), "q1");
    ph = itest_sipedge_phone(&sp);
    itest_phone_send(ph, "invite sip:%s@%s", did, sp.sip_target);
    itest_phone_expect(ph, "event progress call=1 status=180", NULL, 0, 10000);
    first_ms = cc_time_mono_ms();
    /* each expect consumes one line: the second and third 180 of the same call */
    itest_phone_expect(ph, "event progress call=1 status=180", NULL, 0, 10000);
    itest_phone_expect(ph, "event progress call=1 status=180", NULL, 0, 10000);
    third_ms = cc_time_mono_ms();
    cr_assert(third_ms - first_ms >= 1500 && third_ms - first_ms < 8000,
              "expected two refreshes about 1 s apart, got both within %lld ms",
              (long long)(third_ms - first_ms));
    itest_phone_send(ph, "bye 1"); /* CANCEL while it rings */
    itest_phone_expect(ph, "event failed call=1 status=487", NULL, 0, 10000);
    ix = itest_sipedge_interaction_of(&sp, did);
    itest_sipedge_expect(&sp, "cc.interaction.abandoned", ix, NULL, NULL, NULL);
    itest_phone_stop(ph);
    itest_sipedge_stop_services(&sp);
}
