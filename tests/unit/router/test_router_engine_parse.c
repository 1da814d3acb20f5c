/* Unit tests for router_engine_parse (services/router/router_engine.c): a table of commands and
 * facts, each either accepted as a given kind or refused with a reason naming the field. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "cc_bus.h"
#include "router_engine.h"

TestSuite(router_engine_parse, .timeout = 10);

#define ENV_HEAD                                                                                   \
    "{\"specversion\":\"1.0\",\"id\":\"01a202b2-c583-7005-8023-5f2d8e6a7b05\",\"source\":"         \
    "\"/sip-edge/s1\",\"time\":\"2026-11-22T10:00:00.131Z\",\"tenant\":\"acme\","

/* Arrays, not pointers: Criterion runs each parameter in a fresh process. */
struct parse_case {
    char topic[32];
    char msg[700];
    int kind;       /* enum router_cmd_kind expected, or -1 = refused */
    char field[40]; /* refused: text the reason must contain */
};

ParameterizedTestParameters(router_engine_parse, accepts_or_refuses)
{
    static struct parse_case cases[] = {
        /* route */
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.route\",\"subject\":\"ix-1\",\"data\":{\"queue_id\":"
                  "\"q1\",\"channel\":\"voice\",\"priority\":10,\"skills\":[{\"skill\":\"de\","
                  "\"min_proficiency\":2}],\"callback\":{\"number\":\"+4930123\"}}}",
         ROUTER_CMD_ROUTE, ""},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.route\",\"subject\":\"ix-1\",\"data\":{\"queue_id\":"
                  "\"q1\",\"priority\":0}}",
         -1, "data.channel"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.route\",\"subject\":\"ix-1\",\"data\":{\"queue_id\":"
                  "\"q1\",\"channel\":\"fax\",\"priority\":0}}",
         -1, "data.channel"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.route\",\"subject\":\"ix-1\",\"data\":{\"queue_id\":"
                  "\"q1\",\"channel\":\"chat\",\"priority\":1001}}",
         -1, "data.priority"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.route\",\"subject\":\"ix-1\",\"data\":{\"queue_id\":"
                  "\"q 1\",\"channel\":\"chat\",\"priority\":1}}",
         -1, "data.queue_id"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.route\",\"subject\":\"ix-1\",\"data\":{\"queue_id\":"
                  "\"q1\",\"channel\":\"chat\",\"priority\":1,\"skills\":[{\"skill\":\"de\","
                  "\"min_proficiency\":6}]}}",
         -1, "data.skills[0].min_proficiency"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.route\",\"subject\":\"ix-1\",\"data\":{\"queue_id\":"
                  "\"q1\",\"channel\":\"chat\",\"priority\":1,\"skills\":[{\"min_proficiency\":"
                  "2}]}}",
         -1, "data.skills[0].skill"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.route\",\"data\":{\"queue_id\":\"q1\",\"channel\":"
                  "\"chat\",\"priority\":1}}",
         -1, "subject"},
        {CC_TOPIC_ROUTING_REQUESTS, ENV_HEAD "\"type\":\"cc.routing.route\",\"subject\":\"ix\"}",
         -1, "data"},
        {CC_TOPIC_ROUTING_REQUESTS, "{not json", -1, ""},
        {CC_TOPIC_ROUTING_REQUESTS, "{\"specversion\":\"1.0\"}", -1, ""},
        /* cancel, requeue, callback */
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.cancel\",\"subject\":\"ix-1\",\"data\":{\"reason\":"
                  "\"abandoned\"}}",
         ROUTER_CMD_CANCEL, ""},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.cancel\",\"subject\":\"ix-1\",\"data\":{\"reason\":"
                  "\"bored\"}}",
         -1, "data.reason"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.requeue\",\"subject\":\"ix-1\",\"data\":{\"reason\":"
                  "\"supervisor\",\"queue_id\":\"q1\",\"at_head\":true,\"priority\":50}}",
         ROUTER_CMD_REQUEUE, ""},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.requeue\",\"subject\":\"ix-1\",\"data\":{\"reason\":"
                  "\"supervisor\",\"queue_id\":\"q1\"}}",
         -1, "data.at_head"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.requeue\",\"subject\":\"ix-1\",\"data\":{\"reason\":"
                  "\"no_answer\",\"queue_id\":\"q1\",\"at_head\":true,\"exclude_agent_ids\":"
                  "[\"a1\",\"a2\"]}}",
         ROUTER_CMD_REQUEUE, ""},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.requeue\",\"subject\":\"ix-1\",\"data\":{\"reason\":"
                  "\"no_answer\",\"queue_id\":\"q1\",\"at_head\":true,\"exclude_agent_ids\":"
                  "[\"a1\",\"a b\"]}}",
         -1, "data.exclude_agent_ids[1]"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.callback\",\"subject\":\"ix-1\",\"data\":{\"number\":"
                  "\"+4930\",\"keep_place\":true}}",
         ROUTER_CMD_CALLBACK, ""},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.callback\",\"subject\":\"ix-1\",\"data\":{\"number\":"
                  "\"\",\"keep_place\":true}}",
         -1, "data.number"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.callback\",\"subject\":\"ix-1\",\"data\":{\"number\":"
                  "\"+4930\",\"keep_place\":false,\"scheduled_at\":\"2026-11-25T10:00:00Z\"}}",
         ROUTER_CMD_CALLBACK, ""},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.callback\",\"subject\":\"ix-1\",\"data\":{\"number\":"
                  "\"+4930\",\"keep_place\":false}}",
         -1, "data.scheduled_at"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.callback\",\"subject\":\"ix-1\",\"data\":{\"number\":"
                  "\"+4930\",\"keep_place\":true,\"scheduled_at\":\"2026-11-25T10:00:00Z\"}}",
         -1, "data.scheduled_at"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.callback\",\"subject\":\"ix-1\",\"data\":{\"number\":"
                  "\"+4930\",\"keep_place\":false,\"scheduled_at\":\"tomorrow\"}}",
         -1, "data.scheduled_at"},
        {CC_TOPIC_ROUTING_REQUESTS,
         ENV_HEAD "\"type\":\"cc.routing.callback\",\"subject\":\"ix-1\",\"data\":{\"number\":"
                  "\"+4930\",\"keep_place\":false,\"scheduled_at\":\"2027-01-01T10:00:00Z\"}}",
         -1, "data.scheduled_at"},
        /* facts */
        {CC_TOPIC_INTERACTIONS,
         ENV_HEAD "\"type\":\"cc.interaction.answered\",\"subject\":\"ix-1\",\"data\":{"
                  "\"answered_by\":\"agent\",\"agent_id\":\"a1\",\"wait_ms\":5}}",
         ROUTER_CMD_ANSWERED, ""},
        {CC_TOPIC_INTERACTIONS,
         ENV_HEAD "\"type\":\"cc.interaction.answered\",\"subject\":\"ix-1\",\"data\":{"
                  "\"answered_by\":\"agent\",\"wait_ms\":5}}",
         -1, "data.agent_id"},
        {CC_TOPIC_INTERACTIONS,
         ENV_HEAD "\"type\":\"cc.interaction.answered\",\"subject\":\"ix-1\",\"data\":{"
                  "\"answered_by\":\"customer\",\"wait_ms\":5}}",
         ROUTER_CMD_IGNORE, ""},
        {CC_TOPIC_INTERACTIONS,
         ENV_HEAD "\"type\":\"cc.interaction.ended\",\"subject\":\"ix-1\",\"data\":{"
                  "\"ended_by\":\"agent\",\"talk_ms\":100,\"hold_ms\":0}}",
         ROUTER_CMD_ENDED, ""},
        {CC_TOPIC_INTERACTIONS,
         ENV_HEAD "\"type\":\"cc.interaction.ended\",\"subject\":\"ix-1\",\"data\":{"
                  "\"ended_by\":\"agent\",\"talk_ms\":-1,\"hold_ms\":0}}",
         -1, "data.talk_ms"},
        {CC_TOPIC_INTERACTIONS,
         ENV_HEAD "\"type\":\"cc.interaction.abandoned\",\"subject\":\"ix-1\",\"data\":{"
                  "\"queue_id\":\"q1\",\"wait_ms\":5}}",
         ROUTER_CMD_ABANDONED, ""},
        {CC_TOPIC_INTERACTIONS,
         ENV_HEAD "\"type\":\"cc.interaction.no_answer\",\"subject\":\"ix-1\",\"data\":{"
                  "\"party\":\"agent\",\"agent_id\":\"a1\",\"reason\":\"timeout\",\"ring_ms\":"
                  "20000}}",
         ROUTER_CMD_NO_ANSWER, ""},
        {CC_TOPIC_INTERACTIONS,
         ENV_HEAD "\"type\":\"cc.interaction.held\",\"subject\":\"ix-1\",\"data\":{}}",
         ROUTER_CMD_IGNORE, ""},
        /* our own events are ignored, whatever they hold */
        {CC_TOPIC_INTERACTIONS,
         "{\"specversion\":\"1.0\",\"id\":\"01a202b2-c583-7005-8023-5f2d8e6a7b05\",\"source\":"
         "\"/router/r1\",\"time\":\"2026-11-22T10:00:00.131Z\",\"tenant\":\"acme\",\"type\":"
         "\"cc.interaction.answered\",\"subject\":\"ix-1\",\"data\":{}}",
         ROUTER_CMD_IGNORE, ""},
        {CC_TOPIC_AGENTS,
         ENV_HEAD "\"type\":\"cc.agent.registered\",\"subject\":\"a1\",\"data\":{\"contact\":"
                  "\"sip:1@10.0.0.1\",\"expires_s\":3600}}",
         ROUTER_CMD_REGISTERED, ""},
        {CC_TOPIC_AGENTS,
         ENV_HEAD "\"type\":\"cc.agent.registered\",\"subject\":\"a1\",\"data\":{\"contact\":"
                  "\"sip:1@10.0.0.1\"}}",
         -1, "data.expires_s"},
    };
    return cr_make_param_array(struct parse_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct parse_case *c, router_engine_parse, accepts_or_refuses)
{
    struct router_cmd cmd;
    char err[256] = "";
    int rc = router_engine_parse(c->topic, c->msg, strlen(c->msg), &cmd, err, sizeof(err));

    if (c->kind < 0) {
        cr_assert_lt(rc, 0, "expected %.120s to be refused", c->msg);
        cr_assert(strstr(err, c->field) != NULL, "expected the reason to name '%s', got '%s'",
                  c->field, err);
        return;
    }
    cr_assert_eq(rc, 0, "expected %.120s to be accepted, got '%s'", c->msg, err);
    cr_assert_eq((int)cmd.kind, c->kind, "expected kind %d, got %d for %.120s", c->kind,
                 (int)cmd.kind, c->msg);
    router_cmd_clear(&cmd);
}

/* keep_place false: the time, in unix ms; keep_place true: none. */
Test(router_engine_parse, keeps_a_scheduled_callbacks_time)
{
    static const char msg[] =
        ENV_HEAD "\"type\":\"cc.routing.callback\",\"subject\":\"ix-1\",\"data\":{\"number\":"
                 "\"+4930\",\"keep_place\":false,\"scheduled_at\":\"2026-11-25T10:00:00Z\"}}";
    static const char keep[] =
        ENV_HEAD "\"type\":\"cc.routing.callback\",\"subject\":\"ix-1\",\"data\":{\"number\":"
                 "\"+4930\",\"keep_place\":true}}";
    struct router_cmd cmd;
    char err[256] = "";

    cr_assert_eq(
        router_engine_parse(CC_TOPIC_ROUTING_REQUESTS, msg, strlen(msg), &cmd, err, sizeof(err)), 0,
        "%s", err);
    cr_assert_eq(cmd.at_ms, 1795600800000LL, "expected 2026-11-25T10:00:00Z, got %lld",
                 (long long)cmd.at_ms);
    cr_assert_str_eq(cmd.number, "+4930");
    router_cmd_clear(&cmd);
    cr_assert_eq(
        router_engine_parse(CC_TOPIC_ROUTING_REQUESTS, keep, strlen(keep), &cmd, err, sizeof(err)),
        0, "%s", err);
    cr_assert_eq(cmd.at_ms, 0, "expected no time when the place is kept");
    router_cmd_clear(&cmd);
}

Test(router_engine_parse, keeps_the_route_fields)
{
    static const char msg[] = ENV_HEAD
        "\"type\":\"cc.routing.route\",\"subject\":\"ix-9\",\"data\":{\"queue_id\":\"q1\","
        "\"channel\":\"email\",\"priority\":7,\"skills\":[{\"skill\":\"de\",\"min_proficiency\":"
        "2},{\"skill\":\"billing\",\"min_proficiency\":3}]}}";
    struct router_cmd cmd;
    char err[128];

    cr_assert_eq(
        router_engine_parse(CC_TOPIC_ROUTING_REQUESTS, msg, strlen(msg), &cmd, err, sizeof(err)), 0,
        "expected the route to parse: %s", err);
    cr_assert_str_eq(cmd.tenant, "acme");
    cr_assert_str_eq(cmd.subject, "ix-9");
    cr_assert_str_eq(cmd.queue_id, "q1");
    cr_assert_eq(cmd.channel, ROUTER_CH_EMAIL);
    cr_assert_eq(cmd.priority, 7);
    cr_assert_eq(cmd.nskills, 2);
    cr_assert_str_eq(cmd.skills[1].skill, "billing");
    cr_assert_eq(cmd.skills[1].level, 3);
    cr_assert_str_eq(cmd.skills_json,
                     "[{\"skill\":\"de\",\"min_proficiency\":2},{\"skill\":\"billing\","
                     "\"min_proficiency\":3}]");
    router_cmd_clear(&cmd);
}
