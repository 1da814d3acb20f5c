/*
 * Integration tests of sip-edge with real SIP: cc-sip-edge and cc-router as processes against
 * the stack's Redis, PostgreSQL and dev broker, sipp as the callers and as the agents' phones
 * (registering with digest authentication), on itest_sipedge's fixture: each test has its own
 * tenant (so its own queue, agents, SIP domain and DID), router consumer group (positioned at
 * the end of the router's topics) and sip-edge instance on a free UDP port, and watches
 * cc.interactions / cc.agents / cc.routing.* keeping only its tenant's events.
 *
 * Scenarios: an answered call end to end (created, queued, offered, answered, ended in order);
 * an unknown DID (404); a wrong password (401, no binding); a caller abandoning while queued;
 * an agent not answering (the router's ring timer withdraws the offer, sip-edge cancels the leg
 * without a no_answer of its own, the next agent gets the call); a busy agent (486); the agent
 * hanging up first; over capacity (503 with Retry-After).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cc_log.h"
#include "itest_sipedge.h"
#include "itest_sipedge_call.h"

static struct itest_sipedge sc;

static void sc_setup(void)
{
    cc_log_init("test-sipedge-calls", CC_LOG_WARN);
    itest_sipedge_setup(&sc, "sc");
}

static void sc_teardown(void)
{
    itest_sipedge_teardown(&sc);
}

TestSuite(sipedge_calls, .init = sc_setup, .fini = sc_teardown, .timeout = 300);

/* Agents a1 and a2 in q1 (ring timeout ring_s, not_ready after one unanswered offer): a1's
 * phone runs a1_scn (described as a1_what), a2's answers; a caller of q1's DID waits for an
 * answer and talks. Returns the interaction once the caller and both phones are done. */
static const char *sc_second_agent_answers(int ring_s, const char *a1_scn, const char *a1_what)
{
    struct itest_proc *p1, *p2, *caller;
    char did[32];
    int ports[2];

    itest_sipedge_start_with_agents(&sc, 2, ring_s, 1, 100, ports);
    itest_sipedge_did(&sc, did, sizeof(did), "q1");
    p1 = itest_sipedge_sipp(&sc, a1_scn, NULL, ports[0], NULL);
    p2 = itest_sipedge_sipp(&sc, "agent_answer.xml", NULL, ports[1], NULL);
    caller = itest_sipedge_caller(&sc, "caller_answer.xml", did, "500");
    itest_sipedge_sipp_done(&sc, caller, "the caller", 90000);
    itest_sipedge_sipp_done(&sc, p1, a1_what, 10000);
    itest_sipedge_sipp_done(&sc, p2, "a2's phone", 10000);
    return itest_sipedge_interaction_of(&sc, did);
}

/* (1) The spine: a caller reaches agent a1 through the DID; the phone rings, answers, the caller
 * talks for a second and hangs up. cc.interactions tells it; each producer's events in order
 * (sip-edge: created, answered, ended; the router: queued, offered). Across the two producers no
 * order is promised: the router's events go through its outbox, whose publisher may be another
 * instance (the tests' routers share one Redis), and sip-edge acts on the assigned decision. */
Test(sipedge_calls, answered_call_shows_created_queued_offered_answered_ended_in_order)
{
    static const char *const order[] = {"cc.interaction.created", "cc.interaction.queued",
                                        "cc.interaction.offered", "cc.interaction.answered",
                                        "cc.interaction.ended"};
    static const int after[] = {-1, -1, 1, 0, 3}; /* the same producer's previous one */
    struct itest_proc *phone, *caller;
    size_t idx[5];
    const char *ix;
    json_t *ev;

    ix = itest_sipedge_one_agent_call(&sc, "agent_answer.xml", NULL, "caller_answer.xml", "1000",
                                      &phone, &caller);
    itest_sipedge_sipp_done(&sc, caller, "the caller", 90000);
    itest_sipedge_sipp_done(&sc, phone, "a1's phone", 10000);

    for (size_t i = 0; i < 5; i++) {
        itest_sipedge_expect(&sc, order[i], ix, NULL, NULL, &idx[i]);
        cr_assert(after[i] < 0 || idx[i] > idx[after[i]], "expected %s after %s", order[i],
                  after[i] < 0 ? "nothing" : order[after[i]]);
    }
    ev = json_array_get(sc.events, idx[0]);
    cr_assert_str_eq(itest_sipedge_str(ev, "queue_id"), "q1");
    cr_assert_str_eq(itest_sipedge_str(ev, "channel"), "voice");
    cr_assert_str_eq(itest_sipedge_str(ev, "from"), "+4917612345678",
                     "expected the caller's number");
    cr_assert(strncmp(json_string_value(json_object_get(ev, "source")), "/sip-edge/", 10) == 0,
              "expected sip-edge as the source of created");
    ev = json_array_get(sc.events, idx[3]);
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a1", "expected a1 to answer");
    cr_assert_str_eq(itest_sipedge_str(ev, "answered_by"), "agent");
    cr_assert(itest_sipedge_int(ev, "ring_ms") >= 150,
              "expected the phone's 200 ms of ringing in ring_ms");
    ev = json_array_get(sc.events, idx[4]);
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "customer",
                     "expected the caller to hang up");
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "normal");
    cr_assert(itest_sipedge_int(ev, "talk_ms") >= 900 && itest_sipedge_int(ev, "talk_ms") < 5000,
              "expected about 1 s of talk, got %lld", (long long)itest_sipedge_int(ev, "talk_ms"));
    cr_assert_eq(itest_sipedge_count(&sc, "cc.interaction.ended", ix, 300), 1,
                 "expected exactly one ended");
    itest_sipedge_stop_services(&sc);
}

/* (2) A number nobody configured: 404, and no interaction. */
Test(sipedge_calls, unknown_did_is_answered_404)
{
    struct itest_proc *caller;

    itest_sipedge_router_start(&sc);
    itest_sipedge_edge_start(&sc, 100);
    caller = itest_sipedge_caller(&sc, "caller_404.xml", "+4900000000001", NULL);
    itest_sipedge_sipp_done(&sc, caller, "the 404 caller", 20000);
    cr_assert(itest_proc_wait_line(&sc.edge, "unknown number '+4900000000001'", NULL, 0, 2000),
              "expected a log line about the unknown number");
    itest_sipedge_stop_services(&sc);
}

/* (3) A phone with the wrong password is challenged again (401) and no binding exists. */
Test(sipedge_calls, register_with_a_wrong_password_gets_401_and_no_binding)
{
    json_t *v;
    const char *extra[] = {"-s",   "1001",    "-au",     "1001", "-ap",      "not-the-password",
                           "-key", "domain",  sc.tenant, "-key", "uas_port", "5999",
                           "-key", "expires", "300",     NULL};

    itest_sipedge_router_start(&sc);
    itest_sipedge_edge_start(&sc, 100);
    json_decref(itest_sipedge_rest(
        sc.edge_http_port, "POST", "/v1/sip/credentials", NULL,
        "{\"username\":\"1001\",\"password\":\"agent-secret-1\",\"agent_id\":\"a1\"}", 201));
    itest_sipedge_sipp_done(&sc,
                            itest_sipedge_sipp(&sc, "agent_register_refused.xml", sc.sip_target,
                                               itest_free_udp_port(), extra),
                            "agent_register_refused.xml", 20000);
    v = itest_sipedge_rest(sc.edge_http_port, "GET", "/v1/sip/registrations", NULL, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(v, "items")), 0,
                 "expected no registration after a failed authentication");
    json_decref(v);
    cr_assert_eq(itest_sipedge_count(&sc, "cc.agent.registered", "a1", 500), 0,
                 "expected no cc.agent.registered for a refused phone");
    itest_sipedge_stop_services(&sc);
}

/* (4) No agent is available: the caller waits 1.5 s, hangs up (CANCEL): abandoned with the
 * wait, then ended (reason abandoned). */
Test(sipedge_calls, caller_abandoning_while_queued_is_abandoned_with_its_wait)
{
    struct itest_proc *caller;
    char did[32];
    const char *ix;
    json_t *ev;

    itest_sipedge_router_start(&sc);
    itest_sipedge_edge_start(&sc, 100);
    itest_sipedge_queue(&sc, "q1", 20, 0);
    itest_sipedge_did(&sc, did, sizeof(did), "q1");
    caller = itest_sipedge_caller(&sc, "caller_cancel.xml", did, "1500");
    itest_sipedge_sipp_done(&sc, caller, "the abandoning caller", 90000);
    ix = itest_sipedge_interaction_of(&sc, did);
    /* the router queued it */
    itest_sipedge_expect(&sc, "cc.interaction.queued", ix, NULL, NULL, NULL);
    ev = itest_sipedge_expect(&sc, "cc.interaction.abandoned", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "queue_id"), "q1");
    cr_assert(itest_sipedge_int(ev, "wait_ms") >= 1400 && itest_sipedge_int(ev, "wait_ms") < 10000,
              "expected about 1.5 s of wait, got %lld",
              (long long)itest_sipedge_int(ev, "wait_ms"));
    ev = itest_sipedge_expect(&sc, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "abandoned");
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "customer");
    itest_sipedge_stop_services(&sc);
}

/* (5) RONA: a1 (idle longest) rings for the queue's 2 s and never answers: the router's ring
 * timer withdraws the offer (ring_timeout) and puts a1 not_ready (max_no_answer 1), sip-edge
 * CANCELs a1's leg without a no_answer of its own, and a2 gets the call and answers. */
Test(sipedge_calls, unanswered_offer_is_withdrawn_by_the_router_and_the_next_agent_gets_the_call)
{
    const char *ix;
    json_t *ev;
    size_t iw, ia;

    ix = sc_second_agent_answers(2, "agent_ring.xml", "a1's phone (rings, cancelled)");
    ev = itest_sipedge_expect(&sc, "cc.routing.withdrawn", ix, "agent_id", "a1", &iw);
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "ring_timeout",
                     "expected the router's ring timer to withdraw a1's offer");
    cr_assert_str_eq(itest_sipedge_str(ev, "queue_id"), "q1");
    ev = itest_sipedge_expect(&sc, "cc.interaction.answered", ix, NULL, NULL, &ia);
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a2",
                     "expected the next agent a2 to answer");
    cr_assert(ia > iw, "expected a2's answer after a1's offer was withdrawn");
    itest_sipedge_expect(&sc, "cc.agent.state_changed", "a1", "to_state", "not_ready", NULL);
    itest_sipedge_count(&sc, "cc.interaction.no_answer", ix, 300); /* let late events come */
    cr_assert_eq(itest_sipedge_count_from(&sc, "cc.interaction.no_answer", ix, "/sip-edge/"), 0,
                 "expected no no_answer from sip-edge for a withdrawn offer");
    itest_sipedge_stop_services(&sc);
}

/* (6) a1's phone is busy (486): no_answer (busy, 486) and a2 answers. */
Test(sipedge_calls, busy_agent_is_no_answer_busy_and_the_next_agent_answers)
{
    const char *ix;
    json_t *ev;

    ix = sc_second_agent_answers(20, "agent_busy.xml", "a1's busy phone");
    ev = itest_sipedge_expect(&sc, "cc.interaction.no_answer", ix, "agent_id", "a1", NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "busy");
    cr_assert_eq(itest_sipedge_int(ev, "sip_status"), 486);
    ev = itest_sipedge_expect(&sc, "cc.interaction.answered", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a2");
    itest_sipedge_stop_services(&sc);
}

/* (7) The agent hangs up first: the caller gets the BYE, ended_by agent. */
Test(sipedge_calls, agent_hanging_up_first_releases_the_caller)
{
    struct itest_proc *phone, *caller;
    const char *ix;
    json_t *ev;

    ix = itest_sipedge_one_agent_call(&sc, "agent_hangup.xml", NULL, "caller_agent_hangup.xml",
                                      NULL, &phone, &caller);
    itest_sipedge_sipp_done(&sc, caller, "the caller (BYE'd by sip-edge)", 90000);
    itest_sipedge_sipp_done(&sc, phone, "a1's phone (hangs up)", 10000);
    ev = itest_sipedge_expect(&sc, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "agent");
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a1");
    cr_assert(itest_sipedge_int(ev, "talk_ms") >= 900, "expected about 1 s of talk, got %lld",
              (long long)itest_sipedge_int(ev, "talk_ms"));
    itest_sipedge_stop_services(&sc);
}

/* (8) CC_SIPEDGE_MAX_CALLS=1: while one caller waits in the queue, a second gets 503. */
Test(sipedge_calls, over_capacity_is_answered_503_with_retry_after)
{
    struct itest_proc *first, *second;
    char did[32];

    itest_sipedge_router_start(&sc);
    itest_sipedge_edge_start(&sc, 1);
    itest_sipedge_queue(&sc, "q1", 20, 0);
    itest_sipedge_did(&sc, did, sizeof(did), "q1");
    first = itest_sipedge_caller(&sc, "caller_cancel.xml", did, "5000");
    cr_assert(itest_proc_wait_line(&sc.edge, "queued in 'q1'", NULL, 0, 5000),
              "expected the first call to be up");
    second = itest_sipedge_caller(&sc, "caller_503.xml", did, NULL);
    itest_sipedge_sipp_done(&sc, second, "the second caller (503)", 20000);
    itest_sipedge_sipp_done(&sc, first, "the first caller", 20000);
    cr_assert(itest_proc_wait_line(&sc.edge, "over capacity", NULL, 0, 2000),
              "expected a log line about the refused call");
    itest_sipedge_stop_services(&sc);
}
