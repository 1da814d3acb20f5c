/*
 * Integration tests of the router following an attended transfer: cc-router as a real process
 * against the stack's Redis, PostgreSQL and dev broker, fed the facts sip-edge publishes on
 * cc.interactions (answered, transferred {attended, agent}, ended). Same fixture as
 * test_router_engine.c (its own tenant, router consumer group and bus watch per test; the
 * router_engine suite's lock shared, so its load tests run alone).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_bus.h"
#include "cc_event.h"
#include "cc_id.h"
#include "cc_log.h"
#include "cc_pg.h"
#include "cc_redis.h"
#include "cc_time.h"
#include "itest.h"
#include "itest_bus.h"
#include "itest_http.h"

#define RT_ADMIN      "re-admin-token"
#define RT_AGENT1     "re-agent-a1-token"
#define RT_JSON       "Content-Type: application/json\r\n"
#define RT_MAX_EVENTS 40000

struct rt_router {
    pid_t pid;
    int port;
    char log[256];
};

struct rt_watch {
    cc_consumer *consumer;
    cc_producer *dl; /* required by cc_consumer_new; never used (the handler never rejects) */
    json_t *events;  /* our tenant's envelopes, in arrival order */
    char group[96];
};

static char rt_tenant[80], rt_group[96];
static const char *const rt_router_topics[] = {CC_TOPIC_ROUTING_REQUESTS, CC_TOPIC_INTERACTIONS,
                                               CC_TOPIC_AGENTS};
static pid_t rt_pids[4]; /* routers still running: the fixture kills them after a failure */
/* Overrides for the next router started (private Redis / database of the rebuild test). */
static pid_t rt_redis_pid;
static char rt_redis_sock[128];
static cc_producer *rt_producer;
static struct rt_watch rt_watch;
/* Shared by every test of this suite, exclusive for a load test: the two 10,000-request tests
 * saturate this machine's cores, so they run alone (their figures then mean something and the
 * small tests' 15 s waits hold). */
static int rt_lock_fd = -1;

/* ---- processes -------------------------------------------------------------------------- */

static void rt_bus_cfg(struct cc_bus_config *cfg)
{
    cc_bus_config_defaults(cfg);
    cfg->brokers = itest_env("CC_KAFKA_BROKERS");
    cfg->client_id = "test-router-transfer";
    cfg->session_timeout_ms = 6000;
    cfg->heartbeat_interval_ms = 1000;
    cfg->fetch_wait_max_ms = 10;
    cfg->linger_ms = 1;
}

static char *rt_tokens(void)
{
    static char spec[512];
    char a[65], g[65];

    cc_auth_hash_token(RT_ADMIN, a);
    cc_auth_hash_token(RT_AGENT1, g);
    snprintf(spec, sizeof(spec), "%s:%s:admin,%s:%s:agent:a1", a, rt_tenant, g, rt_tenant);
    return spec;
}

/* Starts cc-router (instance name given) and waits until it consumes; fills r. */
static void rt_router_start(struct rt_router *r, const char *instance)
{
    char bin[512], mig[512], line[4096];
    int64_t until;
    FILE *f;

    snprintf(bin, sizeof(bin), "%s/bin/cc-router", itest_env("CC_TEST_BIN_DIR"));
    snprintf(mig, sizeof(mig), "%s/services/router/migrations", itest_env("CC_TEST_TOP"));
    snprintf(r->log, sizeof(r->log), "/tmp/%s.log", instance);
    r->port = 0;
    r->pid = fork();
    cr_assert(r->pid >= 0, "expected fork to work");
    if (r->pid == 0) {
        int fd = open(r->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("CC_AUTH_TOKENS", rt_tokens(), 1);
        setenv("CC_HTTP_PORT", "0", 1);
        setenv("CC_HTTP_ADDR", "127.0.0.1", 1);
        setenv("CC_INSTANCE_ID", instance, 1);
        setenv("CC_ROUTER_CONSUMER_GROUP", rt_group, 1);
        setenv("CC_ROUTER_MIGRATIONS_DIR", mig, 1);
        setenv("CC_ROUTER_TICK_MS", "20", 1);
        setenv("CC_ROUTER_CONSUMERS", "1", 1);
        setenv("CC_ROUTER_OUTBOX_LEASE_MS", "1000", 1);
        setenv("CC_LOG_LEVEL", "info", 1);
        /* only this test's tenant: the routers of the other tests (their own groups over the
         * same topics) skip its load instead of rejecting it as unknown */
        setenv("CC_ROUTER_TENANTS", rt_tenant, 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    for (size_t i = 0; i < sizeof(rt_pids) / sizeof(rt_pids[0]); i++)
        if (rt_pids[i] == 0) {
            rt_pids[i] = r->pid;
            break;
        }
    until = cc_time_mono_ms() + 30000;
    while (r->port == 0 && cc_time_mono_ms() < until) {
        usleep(50 * 1000);
        f = fopen(r->log, "r");
        while (f && fgets(line, sizeof(line), f)) {
            const char *p = strstr(line, "routing: http ");
            if (p)
                sscanf(p, "routing: http %*[^:]:%d", &r->port);
        }
        if (f)
            fclose(f);
        cr_assert(waitpid(r->pid, NULL, WNOHANG) == 0, "expected cc-router to run (see %s)",
                  r->log);
    }
    cr_assert(r->port > 0, "expected cc-router to be routing within 30 s (see %s)", r->log);
}

/* Stops the router with sig; for SIGTERM asserts a clean exit and no sanitizer report. */
static void rt_router_stop(struct rt_router *r, int sig)
{
    char cmd[600];
    int status = 0;

    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
    waitpid(r->pid, &status, 0);
    for (size_t i = 0; i < sizeof(rt_pids) / sizeof(rt_pids[0]); i++)
        if (rt_pids[i] == r->pid)
            rt_pids[i] = 0;
    r->pid = 0;
    if (sig != SIGTERM)
        return;
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "expected cc-router to exit 0 on SIGTERM (see %s)", r->log);
    snprintf(cmd, sizeof(cmd), "grep -a -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' '%s'",
             r->log);
    cr_expect(system(cmd) != 0, "expected no sanitizer report in %s", r->log);
}

/* ---- bus -------------------------------------------------------------------------------- */

static enum cc_bus_verdict rt_watch_handler(void *ctx, const struct cc_bus_msg *m, char *reason,
                                            size_t reasonlen)
{
    struct rt_watch *w = ctx;
    json_t *doc = json_loadb(m->value, m->len, 0, NULL);
    const char *tenant = json_string_value(json_object_get(doc, "tenant"));
    const char *key = json_string_value(json_object_get(json_object_get(doc, "data"), "key"));

    (void)reason;
    (void)reasonlen;
    /* ours: our tenant, or a deadletter of a message keyed with our tenant's prefix */
    if (doc &&
        ((tenant && strcmp(tenant, rt_tenant) == 0) ||
         (key && strncmp(key, rt_tenant, strlen(rt_tenant)) == 0)) &&
        json_array_size(w->events) < RT_MAX_EVENTS) {
        json_object_set_new(doc, "_topic", json_string(m->topic));
        json_array_append(w->events, doc);
    }
    json_decref(doc);
    return CC_BUS_OK;
}

static void rt_watch_start(struct rt_watch *w)
{
    static const char *const topics[] = {CC_TOPIC_ROUTING_DECISIONS, CC_TOPIC_AGENTS,
                                         CC_TOPIC_INTERACTIONS, CC_TOPIC_DEADLETTER};
    struct cc_bus_config cfg;

    rt_bus_cfg(&cfg);
    itest_unique(w->group, sizeof(w->group), "rewatch");
    w->events = json_array();
    w->dl = cc_producer_new(&cfg);
    w->consumer = cc_consumer_new(&cfg, w->group, topics, 4, rt_watch_handler, w, w->dl);
    cr_assert_not_null(w->consumer, "expected a watch consumer");
}

static void rt_watch_stop(struct rt_watch *w)
{
    cc_consumer_free(w->consumer);
    cc_producer_free(w->dl);
    json_decref(w->events);
    memset(w, 0, sizeof(*w));
}

/* True when ev matches type, subject (NULL = any) and, when field is non-NULL, data.field ==
 * value (string). */
static bool rt_match(const json_t *ev, const char *type, const char *subject, const char *field,
                     const char *value)
{
    const char *t = json_string_value(json_object_get(ev, "type"));
    const char *s = json_string_value(json_object_get(ev, "subject"));
    const char *v;

    if (!t || strcmp(t, type) != 0 || (subject && (!s || strcmp(s, subject) != 0)))
        return false;
    if (!field)
        return true;
    v = json_string_value(json_object_get(json_object_get(ev, "data"), field));
    return v && strcmp(v, value) == 0;
}

/* Polls until the n-th (1-based) event matching arrives; returns it (borrowed) or NULL. */
static json_t *rt_wait_nth(const char *type, const char *subject, const char *field,
                           const char *value, size_t nth, int timeout_ms)
{
    int64_t until = cc_time_mono_ms() + timeout_ms;
    size_t seen_idx = 0;

    for (;;) {
        size_t count = 0;
        json_t *ev;

        json_array_foreach(rt_watch.events, seen_idx, ev)
        {
            if (rt_match(ev, type, subject, field, value) && ++count == nth)
                return ev;
        }
        if (cc_time_mono_ms() > until)
            return NULL;
        cc_consumer_poll(rt_watch.consumer, 20);
    }
}

static json_t *rt_wait(const char *type, const char *subject, const char *field, const char *value,
                       int timeout_ms)
{
    return rt_wait_nth(type, subject, field, value, 1, timeout_ms);
}

/* Counts events matching so far (after draining for settle_ms). */
static size_t rt_count(const char *type, const char *subject, int settle_ms)
{
    int64_t until = cc_time_mono_ms() + settle_ms;
    size_t i, n = 0;
    json_t *ev;

    while (cc_time_mono_ms() < until)
        cc_consumer_poll(rt_watch.consumer, 20);
    json_array_foreach(rt_watch.events, i, ev)
    {
        if (rt_match(ev, type, subject, NULL, NULL))
            n++;
    }
    return n;
}

/* Produces a CloudEvent of type with data (JSON text) about subject on topic. */
static void rt_send(const char *topic, const char *type, const char *subject, const char *data)
{
    json_t *d = json_loads(data, 0, NULL);
    json_t *env;

    cr_assert_not_null(d, "expected test JSON to parse: %s", data);
    env = cc_event_build(type, "/test/router-transfer", subject, rt_tenant, d);
    cr_assert_not_null(env, "expected an envelope for %s", type);
    cr_assert_eq(cc_producer_send_event(rt_producer, topic, subject, env), 0,
                 "expected %s to be queued", type);
    json_decref(env);
    cr_assert_eq(cc_producer_flush(rt_producer, 10000), 0, "expected %s delivered", type);
}

static void rt_route(const char *ix, const char *queue, const char *channel)
{
    char data[256];

    snprintf(data, sizeof(data), "{\"queue_id\":\"%s\",\"channel\":\"%s\",\"priority\":0}", queue,
             channel);
    rt_send(CC_TOPIC_ROUTING_REQUESTS, "cc.routing.route", ix, data);
}

/* An interaction id of this test: "<tenant>-<n>" (a valid id; deadletters keyed by it are
 * recognised as ours). */
static void rt_ix(char *buf, size_t n, const char *what)
{
    snprintf(buf, n, "%s-%s", rt_tenant, what);
}

/* ---- REST ------------------------------------------------------------------------------- */

static json_t *rt_http(const struct rt_router *r, const char *method, const char *path,
                       const char *token, const char *body, int want)
{
    struct itest_http_reply rep;

    itest_http_fetch(r->port, method, path, token, body ? RT_JSON : NULL, body, &rep);
    cr_assert_eq(rep.status, want, "expected %s %s -> %d, got %d: %.300s", method, path, want,
                 rep.status, rep.body);
    return json_loadb(rep.body, rep.body_len, 0, NULL);
}

static void rt_put(const struct rt_router *r, const char *method, const char *path,
                   const char *body, int want)
{
    json_decref(rt_http(r, method, path, RT_ADMIN, body, want));
}

/* Waits until the queue's live view shows `members` members (config sync is asynchronous:
 * NOTIFY -> listener -> Redis). */
static void rt_wait_members(const struct rt_router *r, const char *queue, int members)
{
    char path[160];
    int64_t until = cc_time_mono_ms() + 10000;
    long got = -1;

    snprintf(path, sizeof(path), "/v1/queues/%s/live", queue);
    while (cc_time_mono_ms() < until) {
        json_t *v = rt_http(r, "GET", path, RT_ADMIN, NULL, 200);
        got = (long)json_integer_value(json_object_get(v, "members"));
        json_decref(v);
        if (got == members)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("expected queue '%s' to show %d members in redis, got %ld", queue, members, got);
}

static void rt_agent(const struct rt_router *r, const char *id)
{
    char body[200];

    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"name\":\"Agent %s\"}", id, id);
    rt_put(r, "POST", "/v1/agents", body, 201);
}

static void rt_member(const struct rt_router *r, const char *queue, const char *agent, int pos)
{
    char path[160], body[80];

    snprintf(path, sizeof(path), "/v1/queues/%s/members/%s", queue, agent);
    snprintf(body, sizeof(body), "{\"position\":%d}", pos);
    rt_put(r, "PUT", path, body, 201);
}

static void rt_state(const struct rt_router *r, const char *agent, const char *token,
                     const char *body)
{
    char path[160];

    snprintf(path, sizeof(path), "/v1/agents/%s/state", agent);
    json_decref(rt_http(r, "POST", path, token, body, 200));
}

/* Registers a SIP contact for agent (a cc.agents registered fact, as sip-edge sends) and
 * waits until the router holds it: a voice offer needs a phone to ring. */
static void rt_register(const struct rt_router *r, const char *agent)
{
    char data[200], path[128];
    int64_t until = cc_time_mono_ms() + 10000;

    snprintf(data, sizeof(data), "{\"contact\":\"sip:%s@127.0.0.1:5070\",\"expires_s\":3600}",
             agent);
    rt_send(CC_TOPIC_AGENTS, "cc.agent.registered", agent, data);
    snprintf(path, sizeof(path), "/v1/agents/%s/live", agent);
    while (cc_time_mono_ms() < until) {
        json_t *v = rt_http(r, "GET", path, RT_ADMIN, NULL, 200);
        const char *c = json_string_value(json_object_get(v, "contact"));
        bool ok = c && strstr(c, agent);
        json_decref(v);
        if (ok)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("expected agent '%s' to get its registered contact", agent);
}

/* ---- fixture ---------------------------------------------------------------------------- */

/* Takes the suite's lock in mode (LOCK_SH or LOCK_EX; a held lock is converted). */
static void rt_lock(int mode)
{
    char path[512];

    if (rt_lock_fd < 0) {
        snprintf(path, sizeof(path), "%s/router_engine.lock", itest_env("CC_TEST_BIN_DIR"));
        rt_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    }
    cr_assert(rt_lock_fd >= 0 && flock(rt_lock_fd, mode) == 0, "expected the suite lock");
}

static void rt_setup(void)
{
    struct cc_bus_config cfg;

    cc_log_init("test-router-transfer", CC_LOG_WARN);
    itest_unique(rt_tenant, sizeof(rt_tenant), "re");
    itest_unique(rt_group, sizeof(rt_group), "rerouter");
    /* the routers of this test read only what comes after this point, not the history of the
     * shared topics */
    cr_assert_eq(itest_group_at_end(rt_group, rt_router_topics, 3), 0,
                 "expected group '%s' positioned at the end of the router's topics", rt_group);
    rt_bus_cfg(&cfg);
    rt_producer = cc_producer_new(&cfg);
    cr_assert_not_null(rt_producer, "expected a producer");
    rt_watch_start(&rt_watch);
    rt_lock(LOCK_SH);
}

/* Prints what the watch saw (on a failure, to tell why). */
static void rt_dump(void)
{
    size_t i;
    json_t *ev;

    json_array_foreach(rt_watch.events, i, ev)
    {
        char *data = json_dumps(json_object_get(ev, "data"), JSON_COMPACT);
        fprintf(stderr, "  seen %s %s %s %.200s\n",
                json_string_value(json_object_get(ev, "_topic")),
                json_string_value(json_object_get(ev, "type")),
                json_string_value(json_object_get(ev, "subject")), data ? data : "");
        free(data);
    }
}

static void rt_teardown(void)
{
    if (rt_redis_pid > 0) {
        kill(rt_redis_pid, SIGKILL);
        waitpid(rt_redis_pid, NULL, 0);
        unlink(rt_redis_sock);
        rt_redis_pid = 0;
    }
    for (size_t i = 0; i < sizeof(rt_pids) / sizeof(rt_pids[0]); i++)
        if (rt_pids[i] > 0) { /* the test failed before stopping it */
            kill(rt_pids[i], SIGKILL);
            waitpid(rt_pids[i], NULL, 0);
            rt_pids[i] = 0;
        }
    if (rt_lock_fd >= 0)
        close(rt_lock_fd); /* releases the lock */
    rt_lock_fd = -1;
    rt_watch_stop(&rt_watch);
    cc_producer_free(rt_producer);
    rt_producer = NULL;
}

TestSuite(router_transfer, .init = rt_setup, .fini = rt_teardown, .timeout = 120);

/* GET /v1/agents/{agent}/live (new reference). */
static json_t *rt_live(const struct rt_router *r, const char *agent)
{
    char path[128];

    snprintf(path, sizeof(path), "/v1/agents/%s/live", agent);
    return rt_http(r, "GET", path, RT_ADMIN, NULL, 200);
}

/* Asserts agent's live view: state, voice capacity in use, talk_ms, handled and whether ix is
 * among its interactions. */
static void rt_expect_live(const struct rt_router *r, const char *agent, const char *state,
                           long used, long talk_ms, long handled, const char *ix, bool holds)
{
    json_t *v = rt_live(r, agent), *it;
    bool found = false;
    size_t i;

    cr_assert_str_eq(json_string_value(json_object_get(v, "state")), state,
                     "expected %s live state %s", agent, state);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(v, "used"), "voice")), used,
                 "expected %s to use %ld voice slot(s)", agent, used);
    cr_assert_eq(json_integer_value(json_object_get(v, "talk_ms")), talk_ms,
                 "expected %s talk_ms %ld, got %lld", agent, talk_ms,
                 (long long)json_integer_value(json_object_get(v, "talk_ms")));
    cr_assert_eq(json_integer_value(json_object_get(v, "handled")), handled,
                 "expected %s handled %ld", agent, handled);
    json_array_foreach(json_object_get(v, "interactions"), i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "id")), ix) == 0)
            found = true;
    }
    cr_assert_eq(found, holds, "expected %s %s %s", agent, holds ? "to hold" : "not to hold", ix);
    json_decref(v);
}

/* Sends cc.interaction.transferred {attended, agent} as sip-edge does after REFER/Replaces. */
static void rt_attended(const char *ix, const char *from, const char *to, const char *consult)
{
    char data[512];

    snprintf(data, sizeof(data),
             "{\"transfer_type\":\"attended\",\"target_type\":\"agent\",\"target\":\"%s\","
             "\"from_agent_id\":\"%s\",\"from_queue_id\":\"q1\",\"consult_interaction_id\":"
             "\"%s\",\"talk_ms\":1500}",
             to, from, consult);
    rt_send(CC_TOPIC_INTERACTIONS, "cc.interaction.transferred", ix, data);
}

/* An attended transfer as sip-edge reports it: a1 (q1, wrap-up 30 s) answered the call and
 * consulted a2 (rung directly, outside routing), then REFER/Replaces bridged the customer with
 * a2. transferred {attended, agent a2} (delivered twice) moves the call: a1 to wrap-up with its
 * 1.5 s of talk, a2 busy holding it; the consultation's own ended is not the router's; the
 * call's ended naming a2 then ends it normally (a2 to wrap-up). A transfer to an agent the
 * router does not know releases the transferring agent all the same. */
Test(router_transfer, an_attended_transfer_moves_the_call_to_the_consulted_agent_once)
{
    struct rt_router r;
    char ix[128], ix2[128], consult[128], inst[96];
    json_t *ev;

    rt_router_start(&r, itest_unique(inst, sizeof(inst), "rer"));
    rt_agent(&r, "a1");
    rt_agent(&r, "a2");
    rt_agent(&r, "a3");
    rt_put(&r, "POST", "/v1/queues",
           "{\"id\":\"q1\",\"name\":\"Q1\",\"channels\":[\"voice\"],\"strategy\":"
           "\"longest_idle\",\"wrapup_s\":30,\"ring_timeout_s\":30}",
           201);
    rt_put(&r, "POST", "/v1/queues",
           "{\"id\":\"q2\",\"name\":\"Q2\",\"channels\":[\"voice\"],\"strategy\":"
           "\"longest_idle\",\"ring_timeout_s\":30}",
           201);
    rt_member(&r, "q1", "a1", 1);
    rt_member(&r, "q2", "a3", 1);
    rt_wait_members(&r, "q1", 1);
    rt_wait_members(&r, "q2", 1);
    rt_register(&r, "a1");
    rt_register(&r, "a3");
    rt_state(&r, "a1", RT_AGENT1, "{\"state\":\"available\"}");
    rt_state(&r, "a2", RT_ADMIN, "{\"state\":\"available\"}");
    rt_state(&r, "a3", RT_ADMIN, "{\"state\":\"available\"}");

    rt_ix(ix, sizeof(ix), "att");
    rt_ix(consult, sizeof(consult), "att-consult");
    rt_route(ix, "q1", "voice");
    cr_assert_not_null(rt_wait("cc.routing.assigned", ix, "agent_id", "a1", 15000),
                       "expected the call offered to a1");
    rt_send(CC_TOPIC_INTERACTIONS, "cc.interaction.answered", ix,
            "{\"answered_by\":\"agent\",\"agent_id\":\"a1\",\"queue_id\":\"q1\"}");
    cr_assert_not_null(rt_wait("cc.agent.state_changed", "a1", "to_state", "busy", 10000),
                       "expected a1 busy after answered");

    rt_attended(ix, "a1", "a2", consult);
    rt_attended(ix, "a1", "a2", consult); /* a redelivery */
    rt_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", consult,
            "{\"ended_by\":\"agent\",\"reason\":\"transferred\",\"talk_ms\":900,"
            "\"agent_id\":\"a2\"}");
    ev = rt_wait("cc.agent.state_changed", "a1", "to_state", "wrap_up", 10000);
    if (!ev)
        rt_dump();
    cr_assert_not_null(ev, "expected a1 released into q1's wrap-up by the transfer");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ev, "data"), "from_state")),
                     "busy", "expected a1 to leave busy");
    ev = rt_wait("cc.agent.state_changed", "a2", "to_state", "busy", 10000);
    cr_assert_not_null(ev, "expected a2 busy with the transferred call");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(ev, "data"), "interaction_id")), ix,
        "expected a2's busy to name the call");
    cr_assert_eq(rt_count("cc.agent.state_changed", "a1", 500), 4,
                 "expected a1: available, reserved, busy, wrap_up -- nothing for the redelivery");
    cr_assert_eq(rt_count("cc.agent.state_changed", "a2", 0), 2,
                 "expected a2: available, busy -- nothing for the redelivery");
    rt_expect_live(&r, "a1", "wrap_up", 0, 1500, 1, ix, false);
    rt_expect_live(&r, "a2", "busy", 1, 0, 0, ix, true);

    rt_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix,
            "{\"ended_by\":\"customer\",\"talk_ms\":2000,\"hold_ms\":0,\"agent_id\":\"a2\"}");
    ev = rt_wait("cc.agent.state_changed", "a2", "to_state", "wrap_up", 10000);
    if (!ev)
        rt_dump();
    cr_assert_not_null(ev, "expected a2 in q1's wrap-up after the call's ended");
    rt_expect_live(&r, "a2", "wrap_up", 0, 2000, 1, ix, false);
    rt_expect_live(&r, "a1", "wrap_up", 0, 1500, 1, ix, false);

    /* to an agent the router does not know: a3 is released, the call held by nobody here */
    rt_ix(ix2, sizeof(ix2), "att-out");
    rt_route(ix2, "q2", "voice");
    cr_assert_not_null(rt_wait("cc.routing.assigned", ix2, "agent_id", "a3", 15000),
                       "expected the second call offered to a3");
    rt_send(CC_TOPIC_INTERACTIONS, "cc.interaction.answered", ix2,
            "{\"answered_by\":\"agent\",\"agent_id\":\"a3\",\"queue_id\":\"q2\"}");
    cr_assert_not_null(rt_wait("cc.agent.state_changed", "a3", "to_state", "busy", 10000),
                       "expected a3 busy after answered");
    rt_attended(ix2, "a3", "ghost", consult);
    ev = rt_wait_nth("cc.agent.state_changed", "a3", "to_state", "available", 2, 10000);
    if (!ev)
        rt_dump();
    cr_assert_not_null(ev, "expected a3 available again (q2 has no wrap-up) after the transfer");
    rt_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix2,
            "{\"ended_by\":\"customer\",\"talk_ms\":700,\"hold_ms\":0,\"agent_id\":\"ghost\"}");
    cr_assert_eq(rt_count("cc.agent.state_changed", "a3", 500), 4,
                 "expected a3: available, reserved, busy, available -- nothing for the ended");
    rt_expect_live(&r, "a3", "available", 0, 1500, 1, ix2, false);
    rt_router_stop(&r, SIGTERM);
}
