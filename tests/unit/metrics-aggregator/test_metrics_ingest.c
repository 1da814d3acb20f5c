/* Unit tests for services/metrics-aggregator/metrics_ingest.c: a table of events each parsed into
 * a kind or refused with a reason naming the field; the fields a fact keeps; the 15-minute split
 * of agent state spans. */
#include <criterion/criterion.h>
#include <errno.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "metrics_ingest.h"

TestSuite(metrics_ingest, .timeout = 10);

#define MI_HEAD(type)                                                                              \
    "{\"specversion\":\"1.0\",\"id\":\"01a202b2-c583-7005-8023-5f2d8e6a7b05\",\"source\":"         \
    "\"/router/r1\",\"time\":\"2026-11-22T10:00:00.131Z\",\"tenant\":\"acme\",\"type\":\"" type    \
    "\",\"subject\":\"ix-1\",\"data\":"

/* Arrays, not pointers: Criterion runs each parameter in a fresh process. */
struct mi_case {
    char msg[600];
    int kind;       /* enum metrics_kind expected, or -1 = refused */
    char field[48]; /* refused: text the reason must contain */
};

ParameterizedTestParameters(metrics_ingest, parses_or_refuses)
{
    static struct mi_case cases[] = {
        {MI_HEAD("cc.interaction.created") "{\"channel\":\"voice\",\"direction\":\"inbound\","
                                           "\"queue_id\":\"q1\",\"from\":\"+49\",\"to\":\"+1\","
                                           "\"priority\":0,\"customer_id\":\"c1\"}}",
         METRICS_KIND_CREATED, ""},
        {MI_HEAD("cc.interaction.created") "{\"channel\":\"voice\",\"direction\":\"inbound\","
                                           "\"from\":\"+49\",\"to\":\"+1\",\"priority\":0}}",
         -1, "'queue_id'"},
        {MI_HEAD("cc.interaction.created") "{\"channel\":\"voice\",\"direction\":\"inbound\","
                                           "\"queue_id\":\"q1\",\"from\":\"+49\",\"to\":\"+1\","
                                           "\"priority\":\"high\"}}",
         -1, "'priority'"},
        {MI_HEAD("cc.interaction.queued") "{\"queue_id\":\"q1\",\"priority\":5,"
                                          "\"sl_threshold_s\":30}}",
         METRICS_KIND_QUEUED, ""},
        {MI_HEAD("cc.interaction.queued") "{\"queue_id\":\"q1\",\"priority\":5,"
                                          "\"sl_threshold_s\":0}}",
         -1, "'sl_threshold_s'"},
        {MI_HEAD("cc.interaction.answered") "{\"answered_by\":\"agent\",\"agent_id\":\"a1\","
                                            "\"wait_ms\":20000}}",
         METRICS_KIND_ANSWERED, ""},
        {MI_HEAD("cc.interaction.answered") "{\"answered_by\":\"agent\",\"wait_ms\":20000}}", -1,
         "'agent_id'"},
        {MI_HEAD("cc.interaction.answered") "{\"answered_by\":\"customer\",\"wait_ms\":0}}",
         METRICS_KIND_ANSWERED, ""},
        {MI_HEAD("cc.interaction.answered") "{\"answered_by\":\"agent\",\"agent_id\":\"a1\","
                                            "\"wait_ms\":-1}}",
         -1, "'wait_ms'"},
        {MI_HEAD("cc.interaction.abandoned") "{\"queue_id\":\"q1\",\"wait_ms\":\"12\"}}", -1,
         "'wait_ms' must be an integer"},
        {MI_HEAD("cc.interaction.ended") "{\"ended_by\":\"customer\",\"talk_ms\":1,\"hold_ms\":0,"
                                         "\"duration_ms\":5}}",
         METRICS_KIND_ENDED, ""},
        {MI_HEAD("cc.interaction.ended") "{\"ended_by\":\"customer\",\"talk_ms\":1}}", -1,
         "'hold_ms'"},
        {MI_HEAD("cc.interaction.wrapup_completed") "{\"agent_id\":\"a1\",\"wrapup_ms\":5}}",
         METRICS_KIND_WRAPUP, ""},
        {MI_HEAD("cc.interaction.disposition_set") "{\"agent_id\":\"a1\",\"disposition\":\"sale\","
                                                   "\"is_conversion\":true,\"contact_reasons\":["
                                                   "\"billing\",\"NULL\"]}}",
         METRICS_KIND_DISPOSITION, ""},
        {MI_HEAD("cc.interaction.disposition_set") "{\"agent_id\":\"a1\",\"disposition\":\"sale\","
                                                   "\"contact_reasons\":[\"bad id\"]}}",
         -1, "'contact_reasons'[0]"},
        {MI_HEAD("cc.interaction.disposition_set") "{\"agent_id\":\"a1\",\"disposition\":\"sale\","
                                                   "\"resolved\":\"yes\"}}",
         -1, "'resolved'"},
        {MI_HEAD("cc.interaction.message") "{\"message_id\":\"m1\",\"direction\":\"outbound\","
                                           "\"sender\":\"agent\",\"agent_id\":\"a1\","
                                           "\"content_type\":\"text/plain\"}}",
         METRICS_KIND_MESSAGE, ""},
        {MI_HEAD("cc.interaction.message") "{\"message_id\":\"m1\",\"direction\":\"inbound\","
                                           "\"sender\":\"customer\",\"content_type\":"
                                           "\"text/plain\"}}",
         METRICS_KIND_IGNORE, ""},
        {MI_HEAD("cc.interaction.transferred") "{\"transfer_type\":\"blind\",\"target_type\":"
                                               "\"queue\",\"target\":\"q2\",\"channel_change\":"
                                               "\"voice\"}}",
         METRICS_KIND_TRANSFERRED, ""},
        {MI_HEAD("cc.interaction.overflowed") "{\"from_queue_id\":\"q1\",\"to_queue_id\":\"q2\","
                                              "\"reason\":\"max_wait\",\"wait_ms\":1}}",
         METRICS_KIND_OVERFLOWED, ""},
        {MI_HEAD("cc.interaction.survey_completed") "{\"csat\":5}}", METRICS_KIND_SURVEY, ""},
        {MI_HEAD("cc.interaction.survey_completed") "{\"nps\":11}}", -1, "'nps'"},
        {MI_HEAD("cc.interaction.survey_completed") "{\"agent_id\":\"a1\"}}", -1,
         "needs 'csat' or 'nps'"},
        {MI_HEAD("cc.agent.logged_in") "{\"capacity\":{\"voice\":1},\"queue_ids\":[\"q1\"],"
                                       "\"state\":\"not_ready\",\"reason_code\":\"login\"}}",
         METRICS_KIND_AGENT_LOGIN, ""},
        {MI_HEAD("cc.agent.logged_in") "{\"queue_ids\":[\"q1\"],\"state\":\"available\"}}", -1,
         "'capacity'"},
        {MI_HEAD("cc.agent.state_changed") "{\"from_state\":\"available\",\"to_state\":"
                                           "\"not_ready\",\"duration_ms\":5,\"changed_by\":"
                                           "\"agent\"}}",
         -1, "'reason_code'"},
        {MI_HEAD("cc.agent.state_changed") "{\"from_state\":\"available\",\"to_state\":"
                                           "\"busy\",\"duration_ms\":5,\"changed_by\":"
                                           "\"system\"}}",
         METRICS_KIND_AGENT_STATE, ""},
        {MI_HEAD("cc.agent.logged_out") "{\"logged_out_by\":\"agent\",\"session_ms\":9}}",
         METRICS_KIND_AGENT_LOGOUT, ""},
        /* types the KPIs do not use: OK, no effect (data not checked) */
        {MI_HEAD("cc.interaction.offered") "{}}", METRICS_KIND_IGNORE, ""},
        {MI_HEAD("cc.agent.registered") "{}}", METRICS_KIND_IGNORE, ""},
        {MI_HEAD("cc.interaction.future_thing") "{\"x\":1}}", METRICS_KIND_IGNORE, ""},
        /* envelopes */
        {"{\"not\":\"an event\"}", -1, "specversion"},
        {"not json", -1, ""},
        {MI_HEAD("cc.interaction.answered") "[1]}", -1, ""},
        {"{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"/x\",\"time\":"
         "\"2026-11-22T10:00:00Z\",\"tenant\":\"acme\",\"type\":\"cc.interaction.answered\","
         "\"data\":{\"answered_by\":\"customer\",\"wait_ms\":0}}",
         -1, "subject"},
    };
    return cr_make_param_array(struct mi_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct mi_case *c, metrics_ingest, parses_or_refuses)
{
    struct metrics_fact f;
    char err[256] = "";
    int rc = metrics_fact_parse(c->msg, strlen(c->msg), &f, err, sizeof(err));

    if (c->kind < 0) {
        cr_expect_eq(rc, -EINVAL, "expected '%s' refused, got %d", c->msg, rc);
        cr_expect(strstr(err, c->field) != NULL, "expected the reason '%s' to name '%s'", err,
                  c->field);
        cr_expect_eq(f.kind, METRICS_KIND_IGNORE, "expected a refused fact cleared");
    } else {
        cr_expect_eq(rc, 0, "expected '%s' accepted, got %d (%s)", c->msg, rc, err);
        cr_expect_eq(f.kind, (enum metrics_kind)c->kind, "expected kind %d for '%s', got %d",
                     c->kind, c->msg, f.kind);
    }
    metrics_fact_clear(&f);
}

Test(metrics_ingest, keeps_the_fields_a_kpi_needs)
{
    const char *msg = MI_HEAD("cc.interaction.answered") "{\"answered_by\":\"agent\","
                                                         "\"agent_id\":\"a7\",\"queue_id\":"
                                                         "\"q3\",\"wait_ms\":20000}}";
    struct metrics_fact f;
    char err[256];

    cr_assert_eq(metrics_fact_parse(msg, strlen(msg), &f, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(f.ev.tenant, "acme");
    cr_expect_str_eq(f.ev.subject, "ix-1");
    cr_expect_eq(f.t_ms, 1795341600131LL, "expected the event time in ms, got %lld",
                 (long long)f.t_ms);
    cr_expect_str_eq(f.agent_id, "a7");
    cr_expect_str_eq(f.queue_id, "q3");
    cr_expect_str_eq(f.answered_by, "agent");
    cr_expect_eq(f.wait_ms, 20000);
    cr_expect_eq(f.talk_ms, METRICS_ABSENT, "expected absent fields to be METRICS_ABSENT");
    cr_expect_eq(f.csat, METRICS_ABSENT);
    metrics_fact_clear(&f);
}

Test(metrics_ingest, takes_the_state_left_and_its_time_from_agent_events)
{
    const char *changed =
        MI_HEAD("cc.agent.state_changed") "{\"from_state\":\"not_ready\",\"to_state\":"
                                          "\"available\",\"duration_ms\":2400000,"
                                          "\"changed_by\":\"agent\"}}";
    const char *out = MI_HEAD("cc.agent.logged_out") "{\"logged_out_by\":\"agent\","
                                                     "\"session_ms\":9,\"last_state\":"
                                                     "\"available\",\"last_state_ms\":61000}}";
    struct metrics_fact f;
    char err[256];

    cr_assert_eq(metrics_fact_parse(changed, strlen(changed), &f, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(f.span_state, "not_ready");
    cr_expect_str_eq(f.state, "available");
    cr_expect_eq(f.span_ms, 2400000);
    metrics_fact_clear(&f);
    cr_assert_eq(metrics_fact_parse(out, strlen(out), &f, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(f.span_state, "available");
    cr_expect_str_eq(f.state, "logged_out");
    cr_expect_eq(f.span_ms, 61000);
    metrics_fact_clear(&f);
}

/* 2026-11-22T09:40:00Z .. 10:20:00Z */
#define MI_0940 (1795340400000LL)
#define MI_MIN  (60 * 1000LL)

/* A 40-minute not_ready ending 10:20 is [09:40,10:20): 09:30 gets 5 min, 09:45 15, 10:00 15 and
 * 10:15 5 -- four buckets, 40 minutes in all (no bucket can hold more than 15). */
Test(metrics_ingest, splits_a_40_minute_span_over_four_buckets)
{
    static const int64_t want_min[] = {5, 15, 15, 5};
    int64_t b[8], ms[8];
    size_t n = metrics_split_15m(MI_0940, MI_0940 + 40 * MI_MIN, b, ms, 8);

    cr_assert_eq(n, 4, "expected [09:40,10:20) in 4 buckets, got %zu", n);
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(b[i], MI_0940 - 10 * MI_MIN + (int64_t)i * 15 * MI_MIN,
                     "expected piece %zu in the bucket starting %zu x 15 min after 09:30", i, i);
        cr_expect_eq(ms[i], want_min[i] * MI_MIN, "expected %lld min in piece %zu, got %lld ms",
                     (long long)want_min[i], i, (long long)ms[i]);
    }
}

Test(metrics_ingest, keeps_a_span_inside_one_bucket_whole)
{
    int64_t b[2], ms[2];

    cr_assert_eq(metrics_split_15m(MI_0940 + 1, MI_0940 + 2 * MI_MIN, b, ms, 2), 1);
    cr_expect_eq(b[0], MI_0940 - 10 * MI_MIN);
    cr_expect_eq(ms[0], 2 * MI_MIN - 1);
}

Test(metrics_ingest, ends_a_span_on_a_boundary_without_an_empty_piece)
{
    int64_t b[4], ms[4];
    int64_t t0945 = MI_0940 + 5 * MI_MIN;

    cr_assert_eq(metrics_split_15m(t0945, t0945 + 15 * MI_MIN, b, ms, 4), 1,
                 "expected [09:45,10:00) to be exactly one bucket");
    cr_expect_eq(ms[0], 15 * MI_MIN);
    cr_expect_eq(metrics_split_15m(t0945, t0945, b, ms, 4), 0, "expected an empty span to give 0");
    cr_expect_eq(metrics_split_15m(t0945, t0945 - 1, b, ms, 4), 0, "expected a reversed span 0");
}

Test(metrics_ingest, counts_pieces_beyond_the_capacity_without_writing_them)
{
    int64_t b[1] = {-7}, ms[1] = {-7};
    size_t n = metrics_split_15m(0, 8 * 3600 * 1000LL, b, ms, 1);

    cr_expect_eq(n, 32, "expected an 8 h span in 32 buckets, got %zu", n);
    cr_expect_eq(b[0], 0);
    cr_expect_eq(ms[0], 15 * MI_MIN);
    cr_expect_eq(metrics_split_15m(0, 8 * 3600 * 1000LL, NULL, NULL, 0), 32);
}

Test(metrics_ingest, floors_buckets_of_times_before_1970)
{
    cr_expect_eq(metrics_bucket_of(-1), -METRICS_BUCKET_MS);
    cr_expect_eq(metrics_bucket_of(0), 0);
    cr_expect_eq(metrics_bucket_of(METRICS_BUCKET_MS - 1), 0);
    cr_expect_eq(metrics_bucket_of(METRICS_BUCKET_MS), METRICS_BUCKET_MS);
}
