/*
 * Integration tests of sip-edge's outbound calls (cc.dialer.originate) with real SIP: cc-sip-edge
 * and cc-router as processes against the stack, sipp as the carrier trunk (UAS at
 * CC_SIPEDGE_TRUNK_URI, challenging with a digest 407) and as the agent's phone (registered with
 * digest auth), the test itself as the dialer (it produces the commands).
 *
 * Scenarios: an originate answered by the customer and routed to the campaign's queue (created
 * outbound, answered by the customer, queued/offered by the router, answered by the agent,
 * ended, in order; the trunk and the phone complete; a redelivered command does not dial
 * again); a busy customer (486 -> ended busy); nobody answering (ring timeout -> CANCEL ->
 * ended no_answer); no trunk configured (ended failed, a log line); attempts recorded and never
 * dialled, reported at a start-up or by the instance taking a dead one over.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cc_event.h"
#include "cc_id.h"
#include "cc_log.h"
#include "cc_time.h"
#include "itest.h"
#include "sipedge_store.h"
#include "itest_sipedge.h"
#include "itest_sipedge_call.h"

static struct itest_sipedge so;
/* The time of the test's commands: one per test, so that sending a command again is a
 * redelivery of the same command (its interaction id derives from its time). */
static int64_t so_time_ms;
static sipedge_store *so_store; /* tests that look at sipedge.originations */

static void so_setup(void)
{
    so_time_ms = 0;
    cc_log_init("test-sipedge-outbound", CC_LOG_WARN);
    itest_sipedge_setup(&so, "so");
}

static void so_teardown(void)
{
    sipedge_store_free(so_store);
    so_store = NULL;
    itest_sipedge_teardown(&so);
}

TestSuite(sipedge_outbound, .init = so_setup, .fini = so_teardown, .timeout = 300);

/* The dialer: one cc.dialer.originate for attempt (keyed by it), age_s seconds old. */
static void so_originate_aged(const char *attempt, const char *to, int ring_timeout_s, int age_s)
{
    char when[32];
    json_t *env =
        cc_event_build("cc.dialer.originate", "/dialer/test", attempt, so.tenant,
                       json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "attempt_id", attempt,
                                 "campaign_id", "camp1", "queue_id", "q1", "to", to, "caller_id",
                                 "+4930123456", "ring_timeout_s", ring_timeout_s, "priority", 5));

    cr_assert_not_null(env, "expected an originate envelope");
    if (!so_time_ms)
        so_time_ms = cc_time_now_ms();
    cr_assert_eq(cc_time_format_iso8601(so_time_ms - age_s * 1000LL, when), 0);
    json_object_set_new(env, "time", json_string(when));
    cr_assert_eq(cc_producer_send_event(so.producer, CC_TOPIC_DIALER_COMMANDS, attempt, env), 0,
                 "expected the originate command to be sent");
    json_decref(env);
}

static void so_originate(const char *attempt, const char *to, int ring_timeout_s)
{
    so_originate_aged(attempt, to, ring_timeout_s, 0);
}

/* sip-edge with a trunk at a sipp UAS running scenario (-d talk_ms); agents as the fixture
 * makes them (nagents 0: only the services and the queue). */
static struct itest_proc *so_start(const char *scenario, const char *talk_ms, int nagents,
                                   int ports[2])
{
    int trunk_port = itest_free_udp_port();
    const char *extra[] = {"-d", talk_ms ? talk_ms : "0", NULL};

    snprintf(so.trunk_uri, sizeof(so.trunk_uri), "sip:127.0.0.1:%d;transport=udp", trunk_port);
    if (nagents > 0) {
        itest_sipedge_start_with_agents(&so, nagents, 20, 0, 100, ports);
    } else {
        itest_sipedge_router_start(&so);
        itest_sipedge_edge_start(&so, 100);
        itest_sipedge_queue(&so, "q1", 20, 0);
    }
    return itest_sipedge_sipp(&so, scenario, NULL, trunk_port, extra);
}

/* The interaction sip-edge created for attempt (asserts it came, outbound, of the campaign). */
static const char *so_interaction(const char *attempt, size_t *index)
{
    json_t *ev =
        itest_sipedge_expect(&so, "cc.interaction.created", NULL, "attempt_id", attempt, index);

    cr_assert_str_eq(itest_sipedge_str(ev, "direction"), "outbound");
    cr_assert_str_eq(itest_sipedge_str(ev, "campaign_id"), "camp1");
    cr_assert_str_eq(itest_sipedge_str(ev, "queue_id"), "q1");
    cr_assert_str_eq(itest_sipedge_str(ev, "from"), "+4930123456", "expected the caller id");
    return json_string_value(json_object_get(ev, "subject"));
}

/* One attempt (ring ring_s) through a trunk running trunk_scn, no agents: created, then the
 * trunk done (trunk_what). Returns the attempt's ended event (borrowed), its interaction in
 * *ix. */
static json_t *so_attempt_ended(const char *trunk_scn, const char *trunk_what, const char *attempt,
                                const char *to, int ring_s, const char **ix)
{
    struct itest_proc *trunk = so_start(trunk_scn, NULL, 0, NULL);

    so_originate(attempt, to, ring_s);
    *ix = so_interaction(attempt, NULL);
    itest_sipedge_sipp_done(&so, trunk, trunk_what, 30000);
    return itest_sipedge_expect(&so, "cc.interaction.ended", *ix, NULL, NULL, NULL);
}

/* (1) Answered and routed: the trunk challenges (407), sip-edge authenticates, the customer
 * answers; answered (customer) -> route -> the router offers a1 -> a1 answers -> the customer
 * is re-INVITEd with a1's SDP -> the customer hangs up a second later -> ended. */
Test(sipedge_outbound, originate_answered_by_the_customer_is_routed_to_an_agent)
{
    struct itest_proc *trunk, *phone;
    size_t created, cust, queued, offered, agent, ended;
    const char *ix;
    json_t *ev;
    int ports[2];

    trunk = so_start("trunk_answer.xml", "1000", 1, ports);
    phone = itest_sipedge_sipp(&so, "agent_answer.xml", NULL, ports[0], NULL);
    so_originate("att-1", "+4915112345678", 30);
    ix = so_interaction("att-1", &created);
    ev = itest_sipedge_expect(&so, "cc.interaction.answered", ix, "answered_by", "customer", &cust);
    cr_assert(itest_sipedge_int(ev, "wait_ms") >= 250, "expected the trunk's 300 ms of ringing");
    itest_sipedge_expect(&so, "cc.interaction.queued", ix, NULL, NULL, &queued);
    itest_sipedge_expect(&so, "cc.interaction.offered", ix, NULL, NULL, &offered);
    ev = itest_sipedge_expect(&so, "cc.interaction.answered", ix, "answered_by", "agent", &agent);
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a1");
    itest_sipedge_sipp_done(&so, trunk, "the trunk (407, answer, re-INVITE, BYE)", 90000);
    itest_sipedge_sipp_done(&so, phone, "a1's phone", 20000);
    ev = itest_sipedge_expect(&so, "cc.interaction.ended", ix, NULL, NULL, &ended);
    cr_assert(created < cust && cust < agent && agent < ended,
              "expected sip-edge's created, answered (customer), answered (agent), ended in order");
    cr_assert(queued < offered, "expected the router's queued before offered");
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "customer");
    cr_assert_str_eq(itest_sipedge_str(ev, "agent_id"), "a1");
    cr_assert(itest_sipedge_int(ev, "talk_ms") >= 900, "expected about 1 s of talk, got %lld",
              (long long)itest_sipedge_int(ev, "talk_ms"));

    /* the same command again (a redelivery): acknowledged, not dialled */
    so_originate("att-1", "+4915112345678", 30);
    cr_assert(itest_proc_wait_line(&so.edge, "was dialled already", NULL, 0, 20000),
              "expected sip-edge to ignore the redelivered command (see %s)", so.edge.log);
    cr_assert_eq(itest_sipedge_count(&so, "cc.interaction.created", ix, 500), 1,
                 "expected one created for the attempt");
    itest_sipedge_stop_services(&so);
}

/* (2) Busy: 486 from the trunk -> ended {customer, busy, 486}; nothing routed. */
Test(sipedge_outbound, busy_customer_ends_the_attempt_busy)
{
    const char *ix;
    json_t *ev =
        so_attempt_ended("trunk_busy.xml", "the busy trunk", "att-busy", "+4915100000001", 30, &ix);

    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "busy");
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "customer");
    cr_assert_eq(itest_sipedge_int(ev, "sip_status"), 486);
    cr_assert_eq(itest_sipedge_count(&so, "cc.routing.route", ix, 300), 0,
                 "expected no routing for a busy customer");
    itest_sipedge_stop_services(&so);
}

/* (3) No answer within ring_timeout_s: sip-edge CANCELs -> ended {customer, no_answer}. */
Test(sipedge_outbound, unanswered_customer_is_cancelled_at_the_ring_timeout)
{
    const char *ix;
    json_t *ev = so_attempt_ended("trunk_noanswer.xml", "the unanswered trunk (CANCEL)",
                                  "att-noans", "+4915100000002", 2, &ix);

    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "no_answer");
    cr_assert(itest_sipedge_int(ev, "duration_ms") >= 1900, "expected the 2 s ring timeout");
    itest_sipedge_stop_services(&so);
}

/* (4) No trunk configured: the attempt fails at once with a log line, sip-edge keeps serving. */
Test(sipedge_outbound, originate_without_a_trunk_fails_cleanly)
{
    const char *ix;
    json_t *ev;

    so.trunk_uri[0] = '\0';
    itest_sipedge_router_start(&so);
    itest_sipedge_edge_start(&so, 100);
    so_originate("att-notrunk", "+4915100000003", 30);
    ix = so_interaction("att-notrunk", NULL);
    ev = itest_sipedge_expect(&so, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "failed");
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "system");
    cr_assert(itest_proc_wait_line(&so.edge, "no trunk", NULL, 0, 5000),
              "expected a log line naming the missing trunk");
    itest_sipedge_stop_services(&so);
}

/* (5) A command older than CC_SIPEDGE_ORIGINATE_MAX_AGE_S (60 s) is not dialled: ended {system,
 * failed, detail expired}; the trunk then sees only the next, fresh attempt (busy). */
Test(sipedge_outbound, originate_older_than_the_max_age_is_not_dialled)
{
    struct itest_proc *trunk = so_start("trunk_busy.xml", NULL, 0, NULL);
    const char *ix, *ix2;
    json_t *ev;

    so_originate_aged("att-old", "+4915100000004", 30, 90);
    ix = so_interaction("att-old", NULL);
    ev = itest_sipedge_expect(&so, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "failed");
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "system");
    cr_assert_str_eq(itest_sipedge_str(ev, "detail"), "expired");
    cr_assert(itest_proc_wait_line(&so.edge, "expired: the command is", NULL, 0, 5000),
              "expected a log line naming the expired command");
    so_originate("att-fresh", "+4915100000005", 30);
    ix2 = so_interaction("att-fresh", NULL);
    itest_sipedge_sipp_done(&so, trunk, "the busy trunk (one INVITE: the fresh attempt)", 30000);
    ev = itest_sipedge_expect(&so, "cc.interaction.ended", ix2, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "busy",
                     "expected the fresh attempt to be the one the trunk saw");
    itest_sipedge_stop_services(&so);
}

/* One recorded-not-dialled row as a crash between the row and the INVITE leaves it. */
static void so_recorded_row(sipedge_store *st, const char *attempt, const char *instance,
                            int64_t recorded_ms, char ix[CC_UUID_STRLEN + 1])
{
    struct sipedge_origination o = {.priority = 5, .recorded_ms = recorded_ms};

    cr_assert_eq(cc_uuid_v7(ix), 0, "expected an interaction id");
    snprintf(o.attempt_id, sizeof(o.attempt_id), "%s", attempt);
    snprintf(o.tenant, sizeof(o.tenant), "%.64s", so.tenant);
    snprintf(o.interaction_id, sizeof(o.interaction_id), "%s", ix);
    snprintf(o.campaign_id, sizeof(o.campaign_id), "camp1");
    snprintf(o.queue_id, sizeof(o.queue_id), "q1");
    snprintf(o.caller_id, sizeof(o.caller_id), "+4930123456");
    snprintf(o.destination, sizeof(o.destination), "+4915100000006");
    snprintf(o.instance, sizeof(o.instance), "%s", instance);
    cr_assert_eq(sipedge_store_origination_claim(st, &o), 0, "expected attempt '%s' recorded",
                 attempt);
}

/* (6) Attempts recorded but never dialled -- one of this instance's previous process, one of a
 * long-gone instance -- are reported at start-up (created, then ended {system, failed, detail
 * not_dialled}) and marked, so a second start reports them no more. */
Test(sipedge_outbound, attempts_recorded_but_never_dialled_are_reported_failed_at_start_up)
{
    char dir[512], gone[96], ix_own[CC_UUID_STRLEN + 1], ix_gone[CC_UUID_STRLEN + 1], att_own[96],
        att_gone[96];
    int64_t now = cc_time_now_ms();
    sipedge_store *st = so_store = sipedge_store_new(itest_env("CC_PG_DSN"), 1, 5000);
    json_t *ev;

    cr_assert_not_null(st, "expected a store on CC_PG_DSN");
    snprintf(dir, sizeof(dir), "%s/services/sip-edge/migrations", itest_env("CC_TEST_TOP"));
    cr_assert_eq(sipedge_store_migrate(st, dir), 0, "expected the migrations of %s", dir);
    itest_unique(so.instance, sizeof(so.instance), "iseeinst");
    itest_unique(gone, sizeof(gone), "gone");
    itest_unique(att_own, sizeof(att_own), "att-own");
    itest_unique(att_gone, sizeof(att_gone), "att-gone");
    so_recorded_row(st, att_own, so.instance, now - 1000, ix_own);
    so_recorded_row(st, att_gone, gone, now - 200 * 1000, ix_gone); /* > 60 s max age + 60 s */

    itest_sipedge_edge_start(&so, 100);
    ev = itest_sipedge_expect(&so, "cc.interaction.created", ix_own, "attempt_id", att_own, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "direction"), "outbound");
    cr_assert_str_eq(itest_sipedge_str(ev, "campaign_id"), "camp1");
    ev = itest_sipedge_expect(&so, "cc.interaction.ended", ix_own, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "reason"), "failed");
    cr_assert_str_eq(itest_sipedge_str(ev, "ended_by"), "system");
    cr_assert_str_eq(itest_sipedge_str(ev, "detail"), "not_dialled");
    ev = itest_sipedge_expect(&so, "cc.interaction.ended", ix_gone, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "detail"), "not_dialled");
    cr_assert_eq(sipedge_store_origination_take(st, att_own), -EALREADY,
                 "expected the attempt marked (no longer recorded)");
    cr_assert_eq(sipedge_store_origination_take(st, att_gone), -EALREADY,
                 "expected the gone instance's attempt marked too");

    /* the same instance again: nothing left to report */
    itest_sipedge_stop_services(&so);
    itest_sipedge_edge_start(&so, 100);
    cr_assert_eq(itest_sipedge_count(&so, "cc.interaction.ended", ix_own, 1500), 1,
                 "expected the attempt reported once");
    itest_sipedge_stop_services(&so);
}

/* (6b) An attempt recorded by an instance that dies (SIGKILL) and never comes back is reported
 * by the live instance that takes the dead one over (CC_SIPEDGE_INSTANCE_DEAD_S=2), well before
 * it is old enough for any start-up to report it. */
Test(sipedge_outbound, attempts_of_a_dead_instance_are_reported_by_the_one_taking_it_over)
{
    char dead[96], ix[CC_UUID_STRLEN + 1], att[96], source[160];
    sipedge_store *st = so_store = sipedge_store_new(itest_env("CC_PG_DSN"), 1, 5000);
    json_t *ev;

    cr_assert_not_null(st, "expected a store on CC_PG_DSN");
    itest_unique(dead, sizeof(dead), "isedeadorig");
    snprintf(so.instance, sizeof(so.instance), "%s", dead);
    itest_sipedge_edge_start(&so, 100); /* migrates, and registers the instance alive */
    itest_proc_kill(&so.edge);
    itest_unique(att, sizeof(att), "att-dead");
    so_recorded_row(st, att, dead, cc_time_now_ms() - 1000, ix);
    itest_unique(so.instance, sizeof(so.instance), "iseelive");
    so.edge_env = "CC_SIPEDGE_INSTANCE_DEAD_S=2";
    itest_sipedge_edge_start(&so, 100);
    ev = itest_sipedge_expect(&so, "cc.interaction.ended", ix, NULL, NULL, NULL);
    cr_assert_str_eq(itest_sipedge_str(ev, "detail"), "not_dialled");
    snprintf(source, sizeof(source), "/sip-edge/%s", so.instance);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "source")), source,
                     "expected the instance that took the dead one over to report it");
    cr_assert(itest_proc_wait_line(&so.edge, dead, NULL, 0, 5000),
              "expected the takeover logged (see %s)", so.edge.log);
    cr_assert_eq(sipedge_store_origination_take(st, att), -EALREADY,
                 "expected the attempt marked (no longer recorded)");
    itest_sipedge_stop_services(&so);
}

/* (7) A CC_SIPEDGE_TRUNK_URI that is not a sip: URI with a host stops sip-edge at start-up
 * (exit 1) with a line naming the variable, before it connects to anything. */
Test(sipedge_outbound, bad_trunk_uri_is_a_start_up_error)
{
    static const char *const bad[] = {"carrier.example:5060", "sip:", "http://carrier.example",
                                      "sip:carrier example"};
    char bin[512], dir[512], log[600], name[96], env_trunk[200];
    const char *env[] = {env_trunk, NULL};
    char *argv[] = {bin, NULL};

    snprintf(bin, sizeof(bin), "%s/bin/cc-sip-edge", itest_env("CC_TEST_BIN_DIR"));
    snprintf(dir, sizeof(dir), "%s/tests/logs", itest_env("CC_TEST_BIN_DIR"));
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "expected the log directory %s", dir);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(env_trunk, sizeof(env_trunk), "CC_SIPEDGE_TRUNK_URI=%s", bad[i]);
        snprintf(log, sizeof(log), "%s/%s.log", dir,
                 itest_unique(name, sizeof(name), "isee-badtrunk"));
        cr_assert_eq(itest_proc_spawn(&so.edge, argv, env, log), 0,
                     "expected cc-sip-edge to start");
        cr_assert_eq(itest_proc_wait(&so.edge, 20000), 1,
                     "expected exit 1 for trunk URI '%s' (see %s)", bad[i], log);
        cr_assert(itest_proc_wait_line(&so.edge, "bad CC_SIPEDGE_TRUNK_URI", NULL, 0, 0),
                  "expected a start-up error naming CC_SIPEDGE_TRUNK_URI for '%s' (see %s)", bad[i],
                  log);
        cr_assert_not(itest_proc_sanitizer_report(&so.edge), "expected no sanitizer report (%s)",
                      log);
    }
}
