/*
 * Integration tests of sip-edge's call control with real SIP: cc-sip-edge and cc-router as
 * processes against the stack, sipp as callers and agent phones (itest_sipedge's fixture).
 *
 * Scenarios: hold and resume by re-INVITE from the caller and from the agent (passed through,
 * held/resumed, hold_ms in ended); REST: list/get with tenant and agent scoping, hold, resume,
 * hangup; blind transfer to a queue by REST and by REFER (the agent leg released, transferred +
 * requeue published, the caller kept up and bridged to the next assigned agent by a re-INVITE);
 * a withdrawn offer cancelled without a no_answer of sip-edge's. The transfers go through the
 * real router: it releases a1 on the requeue and offers the caller to a2, q2's only member.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cc_auth.h"
#include "cc_event.h"
#include "cc_log.h"
#include "cc_time.h"
#include "itest_sipedge.h"
#include "itest_sipedge_call.h"

#define SCT_AGENT_A1 "sct-agent-a1-token"
#define SCT_AGENT_A2 "sct-agent-a2-token"
#define SCT_OTHER    "sct-other-tenant-token"

static struct itest_sipedge sct;
static char sct_tokens[800];

static void sct_setup(void)
{
    char h1[65], h2[65], h3[65];

    cc_log_init("test-sipedge-control", CC_LOG_WARN);
    itest_sipedge_setup(&sct, "sct");
    cc_auth_hash_token(SCT_AGENT_A1, h1);
    cc_auth_hash_token(SCT_AGENT_A2, h2);
    cc_auth_hash_token(SCT_OTHER, h3);
    snprintf(sct_tokens, sizeof(sct_tokens), "%s:%s:agent:a1,%s:%s:agent:a2,%s:sct-other:admin", h1,
             sct.tenant, h2, sct.tenant, h3);
    sct.extra_tokens = sct_tokens;
}

static void sct_teardown(void)
{
    itest_sipedge_teardown(&sct);
}

TestSuite(sipedge_control, .init = sct_setup, .fini = sct_teardown, .timeout = 300);

/* (1) The caller holds (re-INVITE a=sendonly) for a second and resumes: both re-INVITEs reach
 * the agent's phone, held (by the customer) and resumed (about 1 s) are published, and ended
 * carries the hold time. */
Test(sipedge_control, caller_hold_is_passed_to_the_agent_and_published)
{
    struct itest_proc *phone, *caller;
    const char *ix;
    json_t *ev;

    ix = itest_sipedge_one_agent_call(&sct, "agent_reinvited.xml", NULL, "caller_hold.xml", "1000",
                                      &phone, &caller);
    itest_sipedge_sipp_done(&sct, caller, "the holding caller", 90000);
    itest_sipedge_sipp_done(&sct, phone, "a1's phone (gets sendonly, then sendrecv)", 10000);
    ev = itest_sipedge_expect(&sct, "cc.interaction.held", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "held_by"), "customer");
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a1");
    ev = itest_sipedge_expect(&sct, "cc.interaction.resumed", ix, NULL, NULL, NULL);
    cr_assert(itest_sipedge_int(ev, "hold_ms") >= 900 && itest_sipedge_int(ev, "hold_ms") < 5000,
              "expected about 1 s of hold, got %lld", (long long)itest_sipedge_int(ev, "hold_ms"));
    ev = itest_sipedge_expect(&sct, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert(itest_sipedge_int(ev, "hold_ms") >= 900, "expected the hold in ended, got %lld",
              (long long)itest_sipedge_int(ev, "hold_ms"));
    itest_sipedge_stop_services(&sct);
}

/* (2) The agent's phone holds the caller (re-INVITE a=sendonly) and resumes: the caller gets
 * both offers, held_by agent. */
Test(sipedge_control, agent_hold_is_passed_to_the_caller_and_published)
{
    struct itest_proc *phone, *caller;
    const char *ix;
    json_t *ev;
    const char *hold[] = {"-d", "800", NULL};

    ix = itest_sipedge_one_agent_call(&sct, "agent_hold.xml", hold, "caller_reinvited.xml", "500",
                                      &phone, &caller);
    itest_sipedge_sipp_done(&sct, caller, "the held caller", 90000);
    itest_sipedge_sipp_done(&sct, phone, "a1's phone (holds, resumes)", 10000);
    ev = itest_sipedge_expect(&sct, "cc.interaction.held", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "held_by"), "agent");
    ev = itest_sipedge_expect(&sct, "cc.interaction.resumed", ix, NULL, NULL, NULL);
    cr_assert(itest_sipedge_int(ev, "hold_ms") >= 700, "expected about 0.8 s of hold, got %lld",
              (long long)itest_sipedge_int(ev, "hold_ms"));
    itest_sipedge_stop_services(&sct);
}

/* (3) REST: the call is listed for its tenant and its agent only; a supervisor's hold
 * re-INVITEs the caller sendonly (held by supervisor), a second hold is a 409, resume
 * re-INVITEs it back (resumed). */
Test(sipedge_control, rest_lists_holds_and_resumes_a_call)
{
    struct itest_proc *phone, *caller;
    char path[200];
    const char *ix;
    json_t *v;

    ix = itest_sipedge_one_agent_call(&sct, "agent_answer.xml", NULL, "caller_reinvited.xml", "500",
                                      &phone, &caller);
    itest_sipedge_expect(&sct, "cc.interaction.answered", ix, NULL, NULL, NULL);

    v = itest_sipedge_rest(sct.edge_http_port, "GET", "/v1/calls", NULL, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(v, "items")), 1, "expected one active call");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(v, "items"), 0), "interaction_id")),
                     ix);
    json_decref(v);
    snprintf(path, sizeof(path), "/v1/calls/%s", ix);
    v = itest_sipedge_rest(sct.edge_http_port, "GET", path, SCT_AGENT_A1, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(v, "state")), "connected");
    cr_assert_str_eq(json_string_value(json_object_get(v, "agent_id")), "a1");
    json_decref(v);
    json_decref(itest_sipedge_rest(sct.edge_http_port, "GET", path, SCT_AGENT_A2, NULL, 404));
    json_decref(itest_sipedge_rest(sct.edge_http_port, "GET", path, SCT_OTHER, NULL, 404));
    v = itest_sipedge_rest(sct.edge_http_port, "GET", "/v1/calls", SCT_OTHER, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(v, "items")), 0,
                 "expected no call for another tenant");
    json_decref(v);

    snprintf(path, sizeof(path), "/v1/calls/%s/hold", ix);
    json_decref(itest_sipedge_rest(sct.edge_http_port, "POST", path, NULL, NULL, 202));
    cr_assert_str_eq(
        itest_sipedge_str(itest_sipedge_expect(&sct, "cc.interaction.held", ix, NULL, NULL, NULL),
                          "held_by"),
        "supervisor");
    json_decref(itest_sipedge_rest(sct.edge_http_port, "POST", path, NULL, NULL, 409));
    usleep(300 * 1000);
    snprintf(path, sizeof(path), "/v1/calls/%s/resume", ix);
    json_decref(itest_sipedge_rest(sct.edge_http_port, "POST", path, SCT_AGENT_A1, NULL, 202));
    itest_sipedge_expect(&sct, "cc.interaction.resumed", ix, NULL, NULL, NULL);
    itest_sipedge_sipp_done(&sct, caller, "the caller (re-INVITEd sendonly, then back)", 90000);
    itest_sipedge_sipp_done(&sct, phone, "a1's phone", 10000);
    cr_assert(
        itest_sipedge_int(itest_sipedge_expect(&sct, "cc.interaction.ended", ix, NULL, NULL, NULL),
                          "hold_ms") >= 250,
        "expected the REST hold in ended.hold_ms");
    itest_sipedge_stop_services(&sct);
}

/* (4) REST hangup of a connected call: both sides get a BYE, ended_by supervisor, and the call
 * is gone (404). */
Test(sipedge_control, rest_hangup_releases_both_sides)
{
    struct itest_proc *phone, *caller;
    char path[200];
    const char *ix;
    json_t *ev;

    ix = itest_sipedge_one_agent_call(&sct, "agent_answer.xml", NULL, "caller_agent_hangup.xml",
                                      NULL, &phone, &caller);
    itest_sipedge_expect(&sct, "cc.interaction.answered", ix, NULL, NULL, NULL);
    snprintf(path, sizeof(path), "/v1/calls/%s/hangup", ix);
    json_decref(itest_sipedge_rest(sct.edge_http_port, "POST", path, NULL, NULL, 202));
    itest_sipedge_sipp_done(&sct, caller, "the caller (BYE'd)", 20000);
    itest_sipedge_sipp_done(&sct, phone, "a1's phone (BYE'd)", 20000);
    ev = itest_sipedge_expect(&sct, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "supervisor");
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a1");
    snprintf(path, sizeof(path), "/v1/calls/%s", ix);
    json_decref(itest_sipedge_rest(sct.edge_http_port, "GET", path, NULL, NULL, 404));
    itest_sipedge_stop_services(&sct);
}

/* Both transfer tests: a1 (q1) answers, is transferred away to q2; a2 gets the caller. */
static void sct_transfer_check(const char *ix, struct itest_proc *caller, struct itest_proc *p1,
                               struct itest_proc *p2)
{
    json_t *ev;

    ev = itest_sipedge_expect(&sct, "cc.interaction.transferred", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "transfer_type"), "blind");
    cr_assert_str_eq(itest_sipedge_str(ev, "target_type"), "queue");
    cr_assert_str_eq(itest_sipedge_str(ev, "target"), "q2");
    cr_assert_str_eq(itest_sipedge_str(ev, "from_agent_id"), "a1");
    cr_assert_str_eq(itest_sipedge_str(ev, "from_queue_id"), "q1");
    ev = itest_sipedge_expect(&sct, "cc.routing.requeue", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "transfer");
    cr_assert_str_eq(itest_sipedge_str(ev, "queue_id"), "q2");
    itest_sipedge_sipp_done(&sct, p1, "a1's phone (released by the transfer)", 20000);
    ev = itest_sipedge_expect(&sct, "cc.routing.assigned", ix, "agent_id", "a2", NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "queue_id"), "q2", "expected the router to offer q2");
    itest_sipedge_expect(&sct, "cc.interaction.answered", ix, "agent_id", "a2", NULL);
    itest_sipedge_sipp_done(&sct, caller, "the caller (bridged to a2 by a re-INVITE)", 90000);
    itest_sipedge_sipp_done(&sct, p2, "a2's phone", 20000);
    ev = itest_sipedge_expect(&sct, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a2", "expected a2 to end the call");
    cr_assert_str_eq(itest_sipedge_str(ev, "queue_id"), "q2");
    cr_assert_eq(itest_sipedge_count(&sct, "cc.interaction.ended", ix, 300), 1,
                 "expected exactly one ended across the transfer");
}

/* a1 and a2 in q1 (a1 idle longest, so it gets the call), a2 alone in q2 too. */
static void sct_transfer_setup(int ports[2])
{
    itest_sipedge_start_with_agents(&sct, 2, 20, 0, 100, ports);
    itest_sipedge_queue(&sct, "q2", 20, 0);
    json_decref(itest_sipedge_rest(sct.router_port, "PUT", "/v1/queues/q2/members/a2", NULL,
                                   "{\"position\":1}", 201));
    itest_sipedge_wait_members(&sct, "q2", 1);
}

/* (5) Blind transfer to a queue by REST. */
Test(sipedge_control, rest_blind_transfer_to_a_queue_moves_the_caller_to_the_next_agent)
{
    struct itest_proc *p1, *p2, *caller;
    char did[32], path[200];
    const char *ix;
    int ports[2];

    sct_transfer_setup(ports);
    itest_sipedge_did(&sct, did, sizeof(did), "q1");
    p1 = itest_sipedge_sipp(&sct, "agent_answer.xml", NULL, ports[0], NULL);
    caller = itest_sipedge_caller(&sct, "caller_bridged.xml", did, "500");
    ix = itest_sipedge_interaction_of(&sct, did);
    itest_sipedge_expect(&sct, "cc.interaction.answered", ix, "agent_id", "a1", NULL);
    /* a2's phone only now: a2 must not have been offered the call meanwhile */
    p2 = itest_sipedge_sipp(&sct, "agent_answer.xml", NULL, ports[1], NULL);
    snprintf(path, sizeof(path), "/v1/calls/%s/transfer", ix);
    json_decref(itest_sipedge_rest(sct.edge_http_port, "POST", path, SCT_AGENT_A1,
                                   "{\"type\":\"blind\",\"target_type\":\"queue\",\"bogus\":1}",
                                   422));
    json_decref(itest_sipedge_rest(sct.edge_http_port, "POST", path, SCT_AGENT_A1,
                                   "{\"type\":\"blind\",\"target_type\":\"queue\","
                                   "\"target\":\"q2\"}",
                                   202));
    sct_transfer_check(ix, caller, p1, p2);
    itest_sipedge_stop_services(&sct);
}

/* (6) Blind transfer to a queue by REFER from the agent's phone (202, NOTIFY 200, BYE). */
Test(sipedge_control, refer_from_the_agent_phone_is_a_blind_transfer)
{
    struct itest_proc *p1, *p2, *caller;
    char did[32];
    const char *ix;
    int ports[2];
    const char *refer[] = {"-key", "target", "q2", "-key", "domain", sct.tenant, NULL};

    sct_transfer_setup(ports);
    itest_sipedge_did(&sct, did, sizeof(did), "q1");
    p1 = itest_sipedge_sipp(&sct, "agent_refer.xml", NULL, ports[0], refer);
    caller = itest_sipedge_caller(&sct, "caller_bridged.xml", did, "500");
    ix = itest_sipedge_interaction_of(&sct, did);
    itest_sipedge_expect(&sct, "cc.interaction.answered", ix, "agent_id", "a1", NULL);
    p2 = itest_sipedge_sipp(&sct, "agent_answer.xml", NULL, ports[1], NULL);
    sct_transfer_check(ix, caller, p1, p2);
    itest_sipedge_stop_services(&sct);
}

/* (7) The router withdraws a ringing offer: the phone gets a CANCEL and sip-edge publishes no
 * no_answer of its own (the router counted it). */
Test(sipedge_control, withdrawn_offer_is_cancelled_without_no_answer)
{
    struct itest_proc *phone, *caller;
    const char *ix;
    json_t *env;

    ix = itest_sipedge_one_agent_call(&sct, "agent_ring.xml", NULL, "caller_cancel.xml", "3000",
                                      &phone, &caller);
    itest_sipedge_expect(&sct, "cc.routing.assigned", ix, "agent_id", "a1", NULL);
    cr_assert(itest_proc_wait_line(&sct.edge, "ringing agent 'a1'", NULL, 0, 10000),
              "expected sip-edge to ring a1");
    env = cc_event_build(
        "cc.routing.withdrawn", "/router/test", ix, sct.tenant,
        json_pack("{s:s, s:s, s:s}", "agent_id", "a1", "queue_id", "q1", "reason", "ring_timeout"));
    cr_assert_eq(cc_producer_send_event(sct.producer, CC_TOPIC_ROUTING_DECISIONS, ix, env), 0,
                 "expected the withdrawn decision to be sent");
    json_decref(env);
    itest_sipedge_sipp_done(&sct, phone, "a1's phone (cancelled)", 20000);
    itest_sipedge_sipp_done(&sct, caller, "the caller", 20000);
    itest_sipedge_expect(&sct, "cc.interaction.abandoned", ix, NULL, NULL, NULL);
    cr_assert_eq(itest_sipedge_count_from(&sct, "cc.interaction.no_answer", ix, "/sip-edge/"), 0,
                 "expected no no_answer from sip-edge after a withdrawn offer");
    itest_sipedge_stop_services(&sct);
}
