/*
 * Integration tests of what happens to the calls of a sip-edge process that dies (SIGKILL):
 * cc-sip-edge and cc-router as processes against the stack, sipp as the caller and the agent's
 * phone (registered with digest auth).
 *
 * Scenarios: a1 talks to a caller and a second caller waits in q1 when sip-edge is killed.
 * - Restarted as the same instance, it reports both calls ended {system, failed, detail
 *   instance_lost} from its call journal (the answered one with a1 and its talk), and the router
 *   releases a1 (busy -> wrap-up, as after any call) instead of keeping it busy for ever.
 * - Started as ANOTHER instance (the dead one never comes back: a new pod name, a default
 *   hostname-pid id), it takes the dead instance over once it has been silent for
 *   CC_SIPEDGE_INSTANCE_DEAD_S and reports the same, under its own source.
 * Each ended is reported once: the journal's entries are gone after the recovery.
 * Fencing: a process paused for longer than CC_SIPEDGE_INSTANCE_DEAD_S is taken over by a peer;
 * resumed, it finds out and stops itself.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc_log.h"
#include "itest.h"
#include "itest_http.h"
#include "itest_sipedge.h"
#include "itest_sipedge_call.h"

static struct itest_sipedge sr;
static struct itest_proc sr_paused; /* (3)'s first instance: killed by the teardown if left */

static void sr_setup(void)
{
    cc_log_init("test-sipedge-recovery", CC_LOG_WARN);
    itest_sipedge_setup(&sr, "sr");
}

static void sr_teardown(void)
{
    itest_proc_kill(&sr_paused);
    itest_sipedge_teardown(&sr);
}

TestSuite(sipedge_recovery, .init = sr_setup, .fini = sr_teardown, .timeout = 300);

/* a1 answers a caller who stays on the line; a second caller waits in q1; then sip-edge is
 * SIGKILLed and the SIP peers with it. The two interaction ids into talking / waiting. */
static void sr_two_calls_then_kill(const char **talking, const char **waiting)
{
    struct itest_proc *phone, *caller, *second;
    char did[32];

    *talking = itest_sipedge_one_agent_call(&sr, "agent_answer.xml", NULL, "caller_answer.xml",
                                            "120000", &phone, &caller);
    itest_sipedge_expect(&sr, "cc.interaction.answered", *talking, "agent_id", "a1", NULL);
    itest_sipedge_did(&sr, did, sizeof(did), "q1");
    second = itest_sipedge_caller(&sr, "caller_cancel.xml", did, "120000");
    *waiting = itest_sipedge_interaction_of(&sr, did);
    itest_sipedge_expect(&sr, "cc.interaction.queued", *waiting, NULL, NULL, NULL);
    usleep(1500 * 1000); /* the journal: written every 10 ms, liveness every second */
    itest_proc_kill(&sr.edge);
    itest_proc_kill(phone);
    itest_proc_kill(caller);
    itest_proc_kill(second);
}

/* Both calls reported ended instance_lost by a sip-edge whose source starts with source, once
 * each, and a1 released by the router. */
static void sr_expect_reported(const char *talking, const char *waiting, const char *source)
{
    size_t ended, released;
    json_t *ev;

    ev = itest_sipedge_expect(&sr, "cc.interaction.ended", talking, "detail", "instance_lost",
                              &ended);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "source")), source,
                     "expected the recovering instance as the source");
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "system");
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "failed");
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a1", "expected the agent who talked");
    cr_assert(itest_sipedge_int(ev, "talk_ms") > 0, "expected the talk up to the death");
    ev =
        itest_sipedge_expect(&sr, "cc.interaction.ended", waiting, "detail", "instance_lost", NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "", "expected no agent on the waiting");
    cr_assert_eq(itest_sipedge_int(ev, "talk_ms"), 0);
    ev = itest_sipedge_wait(&sr, "cc.agent.state_changed", "a1", "from_state", "busy",
                            ITEST_SIPEDGE_WAIT_MS, &released);
    cr_assert(ev && released > ended, "expected the router to release a1 after the ended");
    cr_assert(strcmp(itest_sipedge_str(ev, "to_state"), "wrap_up") == 0 ||
                  strcmp(itest_sipedge_str(ev, "to_state"), "available") == 0,
              "expected a1 in wrap-up or available, got '%s'", itest_sipedge_str(ev, "to_state"));
    cr_assert_eq(itest_sipedge_count(&sr, "cc.interaction.ended", talking, 1500), 1,
                 "expected one ended of the answered call");
    cr_assert_eq(itest_sipedge_count(&sr, "cc.interaction.ended", waiting, 0), 1,
                 "expected one ended of the waiting call");
    cr_assert_eq(itest_sipedge_count(&sr, "cc.routing.assigned", waiting, 0), 0,
                 "expected the waiting call never assigned (no agent was free)");
}

/* The value of metric name (a counter without labels) in sip-edge's /metrics. */
static long sr_metric(const char *name)
{
    struct itest_http_reply r;
    char needle[128];
    const char *p;

    itest_http_fetch(sr.edge_http_port, "GET", "/metrics", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    snprintf(needle, sizeof(needle), "\n%s ", name);
    p = strstr(r.body, needle);
    cr_assert(p, "expected %s in sip-edge's metrics", name);
    return strtol(p + strlen(needle), NULL, 10);
}

/* (1) The same instance restarted: its journal names what the previous process held. */
Test(sipedge_recovery, a_restarted_instance_reports_the_calls_it_lost)
{
    const char *talking, *waiting;
    char source[160];

    itest_unique(sr.instance, sizeof(sr.instance), "iserec");
    sr_two_calls_then_kill(&talking, &waiting);
    itest_sipedge_edge_start(&sr, 100);
    cr_assert(
        itest_proc_wait_line(&sr.edge, "a previous process of this instance left", NULL, 0, 10000),
        "expected the restart to report the calls (see %s)", sr.edge.log);
    snprintf(source, sizeof(source), "/sip-edge/%s", sr.instance);
    sr_expect_reported(talking, waiting, source);
    cr_assert_eq(sr_metric("sipedge_calls_lost_total"), 2);
    itest_sipedge_stop_services(&sr);
}

/* (2) Another instance takes the dead one over once it has been silent for 2 s. */
Test(sipedge_recovery, a_live_instance_takes_a_dead_one_over)
{
    const char *talking, *waiting;
    char dead[96], source[160];

    itest_unique(dead, sizeof(dead), "isedead");
    snprintf(sr.instance, sizeof(sr.instance), "%s", dead);
    sr_two_calls_then_kill(&talking, &waiting);
    itest_unique(sr.instance, sizeof(sr.instance), "iselive");
    sr.edge_env = "CC_SIPEDGE_INSTANCE_DEAD_S=2";
    itest_sipedge_edge_start(&sr, 100);
    cr_assert(itest_proc_wait_line(&sr.edge, dead, NULL, 0, 20000),
              "expected the live instance to take the dead one over (see %s)", sr.edge.log);
    snprintf(source, sizeof(source), "/sip-edge/%s", sr.instance);
    sr_expect_reported(talking, waiting, source);
    cr_assert_eq(sr_metric("sipedge_takeovers_total"), 1);
    cr_assert_eq(sr_metric("sipedge_calls_lost_total"), 2);
    itest_sipedge_stop_services(&sr);
}

/* (3) Fencing: instance A is paused (SIGSTOP, as a frozen VM) for longer than
 * CC_SIPEDGE_INSTANCE_DEAD_S while B runs; B takes A over. Resumed, A finds itself taken over and
 * stops itself (SIGTERM to itself: a clean exit), so that two processes never act for one
 * instance. */
Test(sipedge_recovery, a_process_taken_over_while_paused_stops_itself)
{
    struct itest_proc *a = &sr_paused;
    char first[96];

    sr.edge_env = "CC_SIPEDGE_INSTANCE_DEAD_S=2";
    itest_sipedge_router_start(&sr);
    itest_unique(first, sizeof(first), "isepaused");
    snprintf(sr.instance, sizeof(sr.instance), "%s", first);
    itest_sipedge_edge_start(&sr, 100);
    *a = sr.edge;
    memset(&sr.edge, 0, sizeof(sr.edge));
    itest_unique(sr.instance, sizeof(sr.instance), "isepeer");
    itest_sipedge_edge_start(&sr, 100);
    cr_assert_eq(kill(a->pid, SIGSTOP), 0);
    cr_assert(itest_proc_wait_line(&sr.edge, first, NULL, 0, 20000),
              "expected the peer to take the paused instance over (see %s)", sr.edge.log);
    cr_assert_eq(kill(a->pid, SIGCONT), 0);
    cr_assert(itest_proc_wait_line(a, "was taken over by another", NULL, 0, 10000),
              "expected the resumed instance to see it was taken over (see %s)", a->log);
    cr_assert_eq(itest_proc_wait(a, 15000), 0, "expected it to stop itself cleanly (see %s)",
                 a->log);
    cr_assert(!itest_proc_sanitizer_report(a), "expected no sanitizer report (see %s)", a->log);
    itest_sipedge_stop_services(&sr);
}
