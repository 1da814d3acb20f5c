/*
 * Integration test of sip-edge's attended transfer with real SIP: cc-sip-edge and cc-router as
 * processes against the stack, sipp as the customer (caller_bridged.xml) and as the consulted
 * agent a2's phone (agent_consulted.xml), and a Sofia-SIP test phone (tests/helpers/sip_phone)
 * as the transferring agent a1: it answers, consults a2 in a dialog of its own (a fresh
 * Call-ID, as real phones do; the INVITE challenged by digest 407), then REFERs with Replaces.
 *
 * Asserts: the consultation interaction (created with the customer's call as parent, ended
 * reason transferred), transferred {attended, agent a2, from a1, consult_interaction_id} on the
 * customer's interaction, the customer bridged to a2 (re-INVITEs both ways) and then ended by
 * the customer with a2's talk time, and every sipp instance completed.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cc_log.h"
#include "itest_sipedge.h"
#include "itest_sipedge_call.h"

static struct itest_sipedge st;

static void st_setup(void)
{
    cc_log_init("test-sipedge-transfer", CC_LOG_WARN);
    itest_sipedge_setup(&st, "st");
}

static void st_teardown(void)
{
    itest_sipedge_teardown(&st);
}

TestSuite(sipedge_transfer, .init = st_setup, .fini = st_teardown, .timeout = 300);

/* The customer (sipp) is routed to a1, a real phone (sip_phone): it answers, consults a2 (sipp)
 * with an INVITE of its own Call-ID, challenged 407 and authenticated with a1's digest, then
 * REFERs the customer's call with Replaces naming the consultation dialog. */
Test(sipedge_transfer, attended_transfer_bridges_the_customer_to_the_consulted_agent)
{
    struct itest_proc *p2, *caller;
    struct itest_phone *a1;
    const char *ix, *consult;
    char did[32], line[1024], cid1[300] = "", cid2[300] = "";
    int port2 = itest_free_udp_port();
    const char *p2_extra[] = {NULL};
    json_t *ev;

    itest_sipedge_start_agents_unregistered(&st, 2, 20, 0, 100);
    a1 = itest_sipedge_phone(&st);
    itest_sipedge_phone_register(&st, a1, "a1", "1001");
    itest_sipedge_register(&st, "a2", "1002", port2);
    itest_sipedge_available(&st, "a1"); /* a2 is consulted directly, not routed */
    itest_sipedge_did(&st, did, sizeof(did), "q1");
    p2 = itest_sipedge_sipp(&st, "agent_consulted.xml", NULL, port2, p2_extra);
    caller = itest_sipedge_caller(&st, "caller_bridged.xml", did, "1000");
    ix = itest_sipedge_interaction_of(&st, did);
    itest_phone_expect(a1, "event answered call=1 ", line, sizeof(line), ITEST_SIPEDGE_WAIT_MS);
    cr_assert(sscanf(strstr(line, "call_id="), "call_id=%299s", cid1) == 1, "expected a Call-ID");
    itest_sipedge_expect(&st, "cc.interaction.answered", ix, "agent_id", "a1", NULL);

    itest_phone_send(a1, "invite sip:agent-a2@%s", st.tenant);
    itest_phone_expect(a1, "event answered call=2 ", line, sizeof(line), ITEST_SIPEDGE_WAIT_MS);
    cr_assert(sscanf(strstr(line, "call_id="), "call_id=%299s", cid2) == 1, "expected a Call-ID");
    cr_assert_str_neq(cid1, cid2, "expected the consultation to have a Call-ID of its own");
    ev = itest_sipedge_expect(&st, "cc.interaction.created", NULL, "parent_interaction_id", ix,
                              NULL);
    consult = json_string_value(json_object_get(ev, "subject"));
    cr_assert_str_eq(itest_sipedge_str(ev, "to"), "agent-a2");
    itest_sipedge_expect(&st, "cc.interaction.answered", consult, "agent_id", "a2", NULL);

    itest_phone_send(a1, "refer-replaces 1 2");
    itest_phone_expect(a1, "event refer_sent call=1 status=202", NULL, 0, 10000);
    itest_phone_expect(a1, "event notify call=1 sipfrag=200", NULL, 0, 10000);
    itest_phone_expect(a1, "event ended call=1 by=remote", NULL, 0, 10000);
    itest_phone_expect(a1, "event ended call=2 by=remote", NULL, 0, 10000);
    ev = itest_sipedge_expect(&st, "cc.interaction.transferred", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "transfer_type"), "attended");
    cr_assert_str_eq(itest_sipedge_str(ev, "target_type"), "agent");
    cr_assert_str_eq(itest_sipedge_str(ev, "target"), "a2");
    cr_assert_str_eq(itest_sipedge_str(ev, "from_agent_id"), "a1");
    cr_assert_str_eq(itest_sipedge_str(ev, "consult_interaction_id"), consult);
    ev = itest_sipedge_expect(&st, "cc.interaction.ended", consult, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "transferred");

    itest_sipedge_sipp_done(&st, caller, "the customer (re-INVITEd to a2)", 90000);
    itest_sipedge_sipp_done(&st, p2, "a2's phone (re-INVITEd to the customer)", 20000);
    ev = itest_sipedge_expect(&st, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "customer");
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a2", "expected a2 as the last agent");
    cr_assert(itest_sipedge_int(ev, "talk_ms") >= 900, "expected a2's second of talk, got %lld",
              (long long)itest_sipedge_int(ev, "talk_ms"));
    cr_assert_eq(itest_sipedge_count(&st, "cc.interaction.ended", ix, 300), 1,
                 "expected exactly one ended of the customer's call");
    itest_phone_stop(a1);
    itest_sipedge_stop_services(&st);
}

/* A call answered by a1 on sip-edge with a trunk: the trunk, a sipp UAS running trunk_scn
 * (into *trunk), listens first; then itest_sipedge_one_agent_call with a1's phone (into *p1)
 * on phone_scn (phone_extra may be NULL) and the caller (into *caller) on caller_scn (-d pause).
 * Returns the interaction once a1 answered. */
static const char *st_trunk_call(const char *trunk_scn, const char *phone_scn,
                                 const char *const phone_extra[], const char *caller_scn,
                                 const char *pause, struct itest_proc **trunk,
                                 struct itest_proc **p1, struct itest_proc **caller)
{
    int trunk_port = itest_free_udp_port();
    const char *none[] = {NULL};
    const char *ix;

    snprintf(st.trunk_uri, sizeof(st.trunk_uri), "sip:127.0.0.1:%d;transport=udp", trunk_port);
    *trunk = itest_sipedge_sipp(&st, trunk_scn, NULL, trunk_port, none);
    ix = itest_sipedge_one_agent_call(&st, phone_scn, phone_extra, caller_scn, pause, p1, caller);
    itest_sipedge_expect(&st, "cc.interaction.answered", ix, "agent_id", "a1", NULL);
    return ix;
}

/* transferred {blind, number, target, from a1} and cc.routing.cancel {transferred} from
 * sip-edge, then the router releasing a1 to wrap-up. */
static void st_number_transferred(const char *ix, const char *number)
{
    json_t *ev = itest_sipedge_expect(&st, "cc.interaction.transferred", ix, NULL, NULL, NULL);

    cr_assert_str_eq(itest_sipedge_str(ev, "transfer_type"), "blind");
    cr_assert_str_eq(itest_sipedge_str(ev, "target_type"), "number");
    cr_assert_str_eq(itest_sipedge_str(ev, "target"), number);
    cr_assert_str_eq(itest_sipedge_str(ev, "from_agent_id"), "a1");
    itest_sipedge_expect(&st, "cc.routing.cancel", ix, "reason", "transferred", NULL);
    itest_sipedge_expect(&st, "cc.agent.state_changed", "a1", "to_state", "wrap_up", NULL);
}

/* REST blind transfer to a number: the agent is released at once, the number dialled through
 * the trunk (digest answered), the customer re-INVITEd with the far end's SDP; the customer
 * hangs up a second later: ended {customer, normal} without agent talk. */
Test(sipedge_transfer, rest_blind_transfer_to_a_number_bridges_the_customer_through_the_trunk)
{
    struct itest_proc *trunk, *p1, *caller;
    char path[200];
    const char *ix;
    json_t *ev;

    ix = st_trunk_call("trunk_transfer.xml", "agent_answer.xml", NULL, "caller_bridged.xml", "1000",
                       &trunk, &p1, &caller);
    snprintf(path, sizeof(path), "/v1/calls/%s/transfer", ix);
    json_decref(itest_sipedge_rest(st.edge_http_port, "POST", path, NULL,
                                   "{\"type\":\"blind\",\"target_type\":\"number\","
                                   "\"target\":\"sip:x@y\"}",
                                   422));
    ev = itest_sipedge_rest(st.edge_http_port, "POST", path, NULL,
                            "{\"type\":\"blind\",\"target_type\":\"number\","
                            "\"target\":\"+4930555000\"}",
                            202);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "state")), "transferring",
                     "expected the call to be transferring while the number rings");
    json_decref(ev);
    st_number_transferred(ix, "+4930555000");
    itest_sipedge_sipp_done(&st, p1, "a1's phone (released)", 20000);
    itest_sipedge_sipp_done(&st, trunk, "the trunk (407, answer, BYE)", 30000);
    itest_sipedge_sipp_done(&st, caller, "the customer (re-INVITEd to the far end)", 30000);
    ev = itest_sipedge_expect(&st, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "customer");
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "normal");
    cr_assert_eq(itest_sipedge_int(ev, "talk_ms"), 0, "expected no agent talk after the transfer");
    cr_assert_null(json_object_get(json_object_get(ev, "data"), "agent_id"),
                   "expected no agent on the call at its end");
    itest_sipedge_stop_services(&st);
}

/* REFER to a number that is busy: the call ends {system, busy, 486}, the customer released. */
Test(sipedge_transfer, refer_to_a_busy_number_ends_the_call_busy)
{
    struct itest_proc *trunk, *p1, *caller;
    const char *refer[] = {"-key", "target", "+4930555001", "-key", "domain", st.tenant, NULL};
    const char *ix;
    json_t *ev;

    ix = st_trunk_call("trunk_busy.xml", "agent_refer.xml", refer, "caller_agent_hangup.xml", NULL,
                       &trunk, &p1, &caller);
    st_number_transferred(ix, "+4930555001");
    itest_sipedge_sipp_done(&st, p1, "a1's phone (REFER, NOTIFY 200, BYE)", 20000);
    itest_sipedge_sipp_done(&st, trunk, "the busy trunk", 20000);
    itest_sipedge_sipp_done(&st, caller, "the customer (released by BYE)", 20000);
    ev = itest_sipedge_expect(&st, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "system");
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "busy");
    cr_assert_eq(itest_sipedge_int(ev, "sip_status"), 486);
    itest_sipedge_stop_services(&st);
}
