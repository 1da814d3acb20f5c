/*
 * Integration tests of queued callbacks through sip-edge with real SIP: cc-sip-edge and
 * cc-router as processes against the stack, sipp as the caller, as the agent's phone (registered
 * with digest auth) and as the carrier trunk (UAS at CC_SIPEDGE_TRUNK_URI, challenging with a
 * digest 407).
 *
 * Scenarios: a queued caller asks to be called back (REST): it is released with 480, the
 * interaction keeps its place, and when the router assigns the agent, the agent's phone rings
 * first (the customer's number as From, a placeholder offer), then the customer is dialled
 * through the trunk with the agent's SDP and its answer is passed to the agent in a re-INVITE;
 * ended carries the agent and the talk. A callback scheduled for later rings the agent only from
 * its time on (the router holds it out of the queue). The same callback survives a SIGKILL of
 * sip-edge (the restarted instance restores it from sipedge.callbacks), and one whose instance
 * never comes back (another instance takes it over, and acts on an assignment made before it
 * did, which reached no holder). Bad requests: a bad
 * number or time, unknown fields, an agent's token, an unknown call, a second request; no trunk
 * -> 501. A queue whose callback_enabled is false: the router rejects the callback and sip-edge
 * ends it.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_bus.h"
#include "cc_log.h"
#include "cc_time.h"
#include "itest.h"
#include "itest_bus.h"
#include "itest_sipedge.h"
#include "itest_sipedge_call.h"

#define SCB_AGENT_A1 "scb-agent-a1-token"
#define SCB_NUMBER   "+4915112345678"

static struct itest_sipedge scb;
static struct itest_proc scb_first; /* (2c)'s first instance: killed by the teardown if left */
static char scb_tokens[300];

static void scb_setup(void)
{
    char h1[65];

    cc_log_init("test-sipedge-callback", CC_LOG_WARN);
    itest_sipedge_setup(&scb, "scb");
    cc_auth_hash_token(SCB_AGENT_A1, h1);
    snprintf(scb_tokens, sizeof(scb_tokens), "%s:%s:agent:a1", h1, scb.tenant);
    scb.extra_tokens = scb_tokens;
}

static void scb_teardown(void)
{
    itest_proc_kill(&scb_first);
    itest_sipedge_teardown(&scb);
}

TestSuite(sipedge_callback, .init = scb_setup, .fini = scb_teardown, .timeout = 300);

/* Services with a trunk on *trunk_port (0: none), q1, a1 registered on *agent_port but not
 * available, and a caller queued in q1: returns the call's interaction id; the caller (sipp,
 * caller_callback.xml) into *caller. */
static const char *scb_queued_call(bool trunk, int *trunk_port, int *agent_port,
                                   struct itest_proc **caller)
{
    char did[32];
    const char *ix;

    *trunk_port = trunk ? itest_free_udp_port() : 0;
    if (trunk)
        snprintf(scb.trunk_uri, sizeof(scb.trunk_uri), "sip:127.0.0.1:%d;transport=udp",
                 *trunk_port);
    itest_sipedge_start_agents_unregistered(&scb, 1, 20, 0, 100);
    *agent_port = itest_free_udp_port();
    itest_sipedge_register(&scb, "a1", "1001", *agent_port);
    itest_sipedge_did(&scb, did, sizeof(did), "q1");
    *caller = itest_sipedge_caller(&scb, "caller_callback.xml", did, NULL);
    ix = itest_sipedge_interaction_of(&scb, did);
    itest_sipedge_expect(&scb, "cc.interaction.queued", ix, NULL, NULL, NULL);
    return ix;
}

/* POST /v1/calls/<ix>/callback with body and token (NULL: admin), expecting want. */
static json_t *scb_request(const char *ix, const char *body, const char *token, int want)
{
    char path[200];

    snprintf(path, sizeof(path), "/v1/calls/%s/callback", ix);
    return itest_sipedge_rest(scb.edge_http_port, "POST", path, token, body, want);
}

/* The callback requested for ix: 202 with the call as a callback, the caller released, and
 * cc.routing.callback keeping its place. */
static void scb_request_ok(const char *ix, struct itest_proc *caller)
{
    json_t *v = scb_request(ix, "{\"number\":\"" SCB_NUMBER "\"}", NULL, 202);

    cr_assert_str_eq(json_string_value(json_object_get(v, "state")), "callback");
    cr_assert_str_eq(json_string_value(json_object_get(v, "callback_number")), SCB_NUMBER);
    json_decref(v);
    itest_sipedge_sipp_done(&scb, caller, "the caller (released with 480, callback requested)",
                            20000);
    v = itest_sipedge_expect(&scb, "cc.routing.callback", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(v, "number"), SCB_NUMBER);
    cr_assert(json_is_true(json_object_get(json_object_get(v, "data"), "keep_place")),
              "expected keep_place true");
}

/* a1 made available: the router assigns it the callback (the number in the decision) -- not
 * before not_before_ms (unix ms) when it is given --, a1's phone answers, the customer is
 * dialled and answers, hangs up a second later: ended. */
static void scb_callback_completes(const char *ix, int trunk_port, int agent_port,
                                   int64_t not_before_ms)
{
    const char *talk[] = {"-d", "1000", NULL};
    struct itest_proc *trunk, *phone;
    size_t assigned, answered, ended;
    json_t *ev, *cb;

    trunk = itest_sipedge_sipp(&scb, "trunk_callback.xml", NULL, trunk_port, talk);
    phone = itest_sipedge_sipp(&scb, "agent_callback.xml", NULL, agent_port, NULL);
    itest_sipedge_available(&scb, "a1");
    if (not_before_ms > 0)
        cr_assert_eq(itest_sipedge_count(&scb, "cc.routing.assigned", ix, 1500), 0,
                     "expected a1 not rung before the callback's time");
    ev = itest_sipedge_expect(&scb, "cc.routing.assigned", ix, "agent_id", "a1", &assigned);
    cr_assert(cc_time_now_ms() >= not_before_ms, "expected the callback not before its time");
    cb = json_object_get(json_object_get(ev, "data"), "callback");
    cr_assert_str_eq(json_string_value(json_object_get(cb, "number")), SCB_NUMBER,
                     "expected the decision to carry the number to call back");
    ev = itest_sipedge_expect(&scb, "cc.interaction.answered", ix, "agent_id", "a1", &answered);
    if (not_before_ms > 0)
        cr_assert(itest_sipedge_int(ev, "wait_ms") <= cc_time_now_ms() - not_before_ms + 200,
                  "expected the wait counted from the callback's time, got %lld ms",
                  (long long)itest_sipedge_int(ev, "wait_ms"));
    itest_sipedge_sipp_done(&scb, trunk, "the trunk (407, the agent's SDP, answer, BYE)", 60000);
    itest_sipedge_sipp_done(&scb, phone, "a1's phone (placeholder, re-INVITE, BYE)", 20000);
    ev = itest_sipedge_expect(&scb, "cc.interaction.ended", ix, NULL, NULL, &ended);
    cr_assert(assigned < answered && answered < ended, "expected assigned, answered, ended");
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "customer");
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "normal");
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a1");
    cr_assert(itest_sipedge_int(ev, "talk_ms") >= 900, "expected about 1 s of talk, got %lld",
              (long long)itest_sipedge_int(ev, "talk_ms"));
    cr_assert_eq(itest_sipedge_count(&scb, "cc.interaction.abandoned", ix, 300), 0,
                 "expected the released caller not to count as abandoned");
    cr_assert_eq(itest_sipedge_count(&scb, "cc.interaction.ended", ix, 0), 1,
                 "expected exactly one ended");
}

/* (1) Requested, kept in place, agent first, then the customer; bad requests refused. */
Test(sipedge_callback, queued_caller_is_called_back_agent_first)
{
    struct itest_proc *caller;
    int trunk_port, agent_port;
    char path[200];
    const char *ix = scb_queued_call(true, &trunk_port, &agent_port, &caller);
    json_t *v;

    json_decref(scb_request(ix, "{\"number\":\"12ab\"}", NULL, 422));
    json_decref(scb_request(ix, "{\"number\":\"" SCB_NUMBER "\",\"when\":1}", NULL, 422));
    json_decref(scb_request(ix, "[1]", NULL, 422));
    json_decref(scb_request(ix, "{}", SCB_AGENT_A1, 403));
    json_decref(scb_request("no-such-call", "{}", NULL, 404));
    scb_request_ok(ix, caller);
    json_decref(scb_request(ix, "{}", NULL, 409)); /* asked already */
    snprintf(path, sizeof(path), "/v1/calls/%s", ix);
    v = itest_sipedge_rest(scb.edge_http_port, "GET", path, NULL, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(v, "state")), "callback");
    json_decref(v);
    scb_callback_completes(ix, trunk_port, agent_port, 0);
    json_decref(itest_sipedge_rest(scb.edge_http_port, "GET", path, NULL, NULL, 404));
    itest_sipedge_stop_services(&scb);
}

/* (2) sip-edge is killed while the callback waits; restarted as the same instance it restores
 * the callback and completes it when the agent comes. */
Test(sipedge_callback, a_waiting_callback_survives_a_kill_of_sip_edge)
{
    struct itest_proc *caller;
    int trunk_port, agent_port;
    const char *ix;

    itest_unique(scb.instance, sizeof(scb.instance), "iseecb");
    ix = scb_queued_call(true, &trunk_port, &agent_port, &caller);
    scb_request_ok(ix, caller);
    itest_proc_kill(&scb.edge);
    itest_sipedge_edge_start(&scb, 100);
    cr_assert(itest_proc_wait_line(&scb.edge, "restored 1 queued callback", NULL, 0, 10000),
              "expected the restarted sip-edge to restore the callback (see %s)", scb.edge.log);
    scb_callback_completes(ix, trunk_port, agent_port, 0);
    itest_sipedge_stop_services(&scb);
}

/* (2b) sip-edge is killed while the callback waits and never comes back: another instance
 * takes the dead one over once it has been silent for 2 s (CC_SIPEDGE_INSTANCE_DEAD_S), the
 * callback's row moves to it, and it completes the callback when the agent comes. */
Test(sipedge_callback, a_dead_instances_callback_is_taken_over_by_a_live_one)
{
    struct itest_proc *caller;
    int trunk_port, agent_port;
    char dead[96];
    const char *ix;

    itest_unique(dead, sizeof(dead), "isedeadcb");
    snprintf(scb.instance, sizeof(scb.instance), "%s", dead);
    ix = scb_queued_call(true, &trunk_port, &agent_port, &caller);
    scb_request_ok(ix, caller);
    itest_proc_kill(&scb.edge);
    itest_unique(scb.instance, sizeof(scb.instance), "iselivecb");
    scb.edge_env = "CC_SIPEDGE_INSTANCE_DEAD_S=2";
    itest_sipedge_edge_start(&scb, 100);
    cr_assert(itest_proc_wait_line(&scb.edge, dead, NULL, 0, 20000),
              "expected the live instance to take the dead one over (see %s)", scb.edge.log);
    cr_assert(
        itest_proc_wait_line(&scb.edge, "1 queued callback(s) now waiting here", NULL, 0, 5000),
        "expected the callback taken over (see %s)", scb.edge.log);
    cr_assert_eq(itest_sipedge_count(&scb, "cc.interaction.ended", ix, 0), 0,
                 "expected the waiting callback not reported ended");
    scb_callback_completes(ix, trunk_port, agent_port, 0);
    itest_sipedge_stop_services(&scb);
}

/* (2c) The agent comes while the callback's instance is dead and not yet taken over: the
 * router's assignment reaches no holder. The live instance (running since before the death, so
 * reading decisions) keeps it and, once it has taken the callback over (4 s of silence), rings
 * a1 for the ring time left: one assignment, no withdrawal by the router's 20-s ring timeout
 * (which would count a no-answer against a1 and assign again). */
Test(sipedge_callback, an_assignment_that_reached_no_holder_rings_once_the_callback_is_taken_over)
{
    static const char *const decisions[] = {CC_TOPIC_ROUTING_DECISIONS};
    struct itest_proc *caller;
    int trunk_port, agent_port;
    char dead[96], group[128];
    const char *ix;

    itest_unique(dead, sizeof(dead), "isedeadcb");
    snprintf(scb.instance, sizeof(scb.instance), "%s", dead);
    ix = scb_queued_call(true, &trunk_port, &agent_port, &caller);
    scb_request_ok(ix, caller);
    scb_first = scb.edge;
    memset(&scb.edge, 0, sizeof(scb.edge));
    itest_unique(scb.instance, sizeof(scb.instance), "iselivecb");
    /* its decisions group committed at the end first: a new group's "latest" offset is read a
     * moment after its partitions are assigned, and the assignment must not fall before it */
    snprintf(group, sizeof(group), "sip-edge-%s", scb.instance);
    cr_assert_eq(itest_group_at_end(group, decisions, 1), 0);
    scb.edge_env = "CC_SIPEDGE_INSTANCE_DEAD_S=4";
    itest_sipedge_edge_start(&scb, 100);
    itest_proc_kill(&scb_first);
    scb_callback_completes(ix, trunk_port, agent_port, 0);
    cr_assert(itest_proc_wait_line(&scb.edge, "while no instance held the callback", NULL, 0, 0),
              "expected the live instance to act on the assignment it kept (see %s)", scb.edge.log);
    cr_assert_eq(itest_sipedge_count(&scb, "cc.routing.assigned", ix, 0), 1,
                 "expected a1 assigned once");
    cr_assert_eq(itest_sipedge_count(&scb, "cc.routing.withdrawn", ix, 0), 0,
                 "expected no ring timeout of the router");
    itest_sipedge_stop_services(&scb);
}

/* (3) Scheduled for 5 s later: the request carries the time (keep_place false, scheduled_at), the
 * router parks the interaction, and a1, available at once, is rung only from that time on. A
 * time in the past or too far ahead is refused. */
Test(sipedge_callback, a_scheduled_callback_rings_the_agent_at_its_time)
{
    struct itest_proc *caller;
    int trunk_port, agent_port;
    char when[32], body[160];
    const char *ix = scb_queued_call(true, &trunk_port, &agent_port, &caller);
    json_int_t scheduled = 0;
    int64_t at;
    json_t *v;

    json_decref(scb_request(ix, "{\"at\":\"2020-01-01T00:00:00Z\"}", NULL, 422));
    json_decref(scb_request(ix, "{\"at\":\"2999-01-01T00:00:00Z\"}", NULL, 422));
    json_decref(scb_request(ix, "{\"at\":\"tomorrow\"}", NULL, 422));
    at = cc_time_now_ms() + 5000;
    cr_assert_eq(cc_time_format_iso8601(at, when), 0);
    snprintf(body, sizeof(body), "{\"number\":\"" SCB_NUMBER "\",\"at\":\"%s\"}", when);
    v = scb_request(ix, body, NULL, 202);
    cr_assert_str_eq(json_string_value(json_object_get(v, "state")), "callback");
    cr_assert_str_eq(json_string_value(json_object_get(v, "callback_at")), when);
    json_decref(v);
    itest_sipedge_sipp_done(&scb, caller, "the caller (released with 480)", 20000);
    v = itest_sipedge_expect(&scb, "cc.routing.callback", ix, NULL, NULL, NULL);
    cr_assert(json_is_false(json_object_get(json_object_get(v, "data"), "keep_place")),
              "expected keep_place false");
    cr_assert_str_eq(itest_sipedge_str(v, "scheduled_at"), when);
    for (int n = 0; n < 100 && scheduled != 1; n++) { /* the router applies the command */
        usleep(50 * 1000);
        v = itest_sipedge_rest(scb.router_port, "GET", "/v1/queues/q1/live", NULL, NULL, 200);
        scheduled = json_integer_value(json_object_get(v, "scheduled_callbacks"));
        json_decref(v);
    }
    cr_assert_eq(scheduled, 1, "expected the router to hold the callback out of the queue");
    scb_callback_completes(ix, trunk_port, agent_port, at);
    itest_sipedge_stop_services(&scb);
}

/* (4) Without a trunk nobody can be called back: 501, and the caller stays queued. */
Test(sipedge_callback, without_a_trunk_a_callback_is_refused)
{
    struct itest_proc *caller;
    int trunk_port, agent_port;
    char path[200];
    const char *ix = scb_queued_call(false, &trunk_port, &agent_port, &caller);
    json_t *v = scb_request(ix, "{}", NULL, 501);

    json_decref(v);
    snprintf(path, sizeof(path), "/v1/calls/%s", ix);
    v = itest_sipedge_rest(scb.edge_http_port, "GET", path, NULL, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(v, "state")), "queued");
    json_decref(v);
    snprintf(path, sizeof(path), "/v1/calls/%s/hangup", ix);
    json_decref(itest_sipedge_rest(scb.edge_http_port, "POST", path, NULL, NULL, 202));
    itest_proc_kill(caller); /* it expects a 480 naming a callback, which never comes */
    itest_sipedge_stop_services(&scb);
}

/* (5) The queue takes no callbacks (callback_enabled false): the router ends the interaction
 * (cc.routing.rejected {callback_disabled}) and sip-edge ends the callback rejected. */
Test(sipedge_callback, a_queue_without_callbacks_ends_the_callback_rejected)
{
    struct itest_proc *caller;
    char did[32], path[200];
    const char *ix;
    json_t *ev;

    snprintf(scb.trunk_uri, sizeof(scb.trunk_uri), "sip:127.0.0.1:%d;transport=udp",
             itest_free_udp_port());
    itest_sipedge_start_agents_unregistered(&scb, 1, 20, 0, 100);
    json_decref(itest_sipedge_rest(scb.router_port, "POST", "/v1/queues", NULL,
                                   "{\"id\":\"nocb\",\"name\":\"nocb\",\"channels\":[\"voice\"],"
                                   "\"strategy\":\"longest_idle\",\"callback_enabled\":false}",
                                   201));
    itest_sipedge_did(&scb, did, sizeof(did), "nocb");
    caller = itest_sipedge_caller(&scb, "caller_callback.xml", did, NULL);
    ix = itest_sipedge_interaction_of(&scb, did);
    itest_sipedge_expect(&scb, "cc.interaction.queued", ix, NULL, NULL, NULL);
    json_decref(scb_request(ix, "{\"number\":\"" SCB_NUMBER "\"}", NULL, 202));
    itest_sipedge_sipp_done(&scb, caller, "the caller (released with 480)", 20000);
    ev = itest_sipedge_expect(&scb, "cc.routing.rejected", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "callback_disabled");
    ev = itest_sipedge_expect(&scb, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "system");
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "rejected");
    snprintf(path, sizeof(path), "/v1/calls/%s", ix);
    json_decref(itest_sipedge_rest(scb.edge_http_port, "GET", path, NULL, NULL, 404));
    itest_sipedge_stop_services(&scb);
}
