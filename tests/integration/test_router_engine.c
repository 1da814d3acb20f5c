/*
 * Integration tests of the router engine: the cc-router binary as a real process against the
 * stack's Redis, PostgreSQL and dev broker. Each test has its own tenant, its own consumer group
 * for the router (so routers of tests running in parallel never share partitions) and watches
 * the bus with a consumer of its own, keeping only its tenant's events.
 *
 * Scenarios (expected winners worked out by hand in each test): a route request is assigned to
 * the longest-idle agent and the call's life (answered -> ended -> wrap-up -> available) shows
 * as cc.agent.state_changed events with durations; cancel; RONA through the ring-timeout timer;
 * unknown queue -> rejected decision; malformed requests -> cc.deadletter while the router
 * carries on; closed hours -> rejected; a router SIGKILLed during load while a second one
 * finishes the work with every request decided exactly once.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
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

#define RE_ADMIN      "re-admin-token"
#define RE_AGENT1     "re-agent-a1-token"
#define RE_JSON       "Content-Type: application/json\r\n"
#define RE_MAX_EVENTS 40000

struct re_router {
    pid_t pid;
    int port;
    char log[256];
};

struct re_watch {
    cc_consumer *consumer;
    cc_producer *dl; /* required by cc_consumer_new; never used (the handler never rejects) */
    json_t *events;  /* our tenant's envelopes, in arrival order */
    char group[96];
};

static char re_tenant[80], re_group[96];
static const char *const re_router_topics[] = {CC_TOPIC_ROUTING_REQUESTS, CC_TOPIC_INTERACTIONS,
                                               CC_TOPIC_AGENTS};
static pid_t re_pids[4]; /* routers still running: the fixture kills them after a failure */
/* Overrides for the next router started (private Redis / database of the rebuild test). */
static char re_env_redis[256], re_env_pg[512], re_env_tenants[96];
static pid_t re_redis_pid;
static char re_redis_sock[128];
static cc_producer *re_producer;
static struct re_watch re_watch;
static bool re_watch_decisions_only; /* load tests keep decisions only */
/* Shared by every test of this suite, exclusive for a load test: the two 10,000-request tests
 * saturate this machine's cores, so they run alone (their figures then mean something and the
 * small tests' 15 s waits hold). */
static int re_lock_fd = -1;

/* ---- processes -------------------------------------------------------------------------- */

static void re_bus_cfg(struct cc_bus_config *cfg)
{
    cc_bus_config_defaults(cfg);
    cfg->brokers = itest_env("CC_KAFKA_BROKERS");
    cfg->client_id = "test-router-engine";
    cfg->session_timeout_ms = 6000;
    cfg->heartbeat_interval_ms = 1000;
    cfg->fetch_wait_max_ms = 10;
    cfg->linger_ms = 1;
}

static char *re_tokens(void)
{
    static char spec[512];
    char a[65], g[65];

    cc_auth_hash_token(RE_ADMIN, a);
    cc_auth_hash_token(RE_AGENT1, g);
    snprintf(spec, sizeof(spec), "%s:%s:admin,%s:%s:agent:a1", a, re_tenant, g, re_tenant);
    return spec;
}

/* Starts cc-router (instance name given) and waits until it consumes; fills r. */
static void re_router_start(struct re_router *r, const char *instance)
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
        setenv("CC_AUTH_TOKENS", re_tokens(), 1);
        setenv("CC_HTTP_PORT", "0", 1);
        setenv("CC_HTTP_ADDR", "127.0.0.1", 1);
        setenv("CC_INSTANCE_ID", instance, 1);
        setenv("CC_ROUTER_CONSUMER_GROUP", re_group, 1);
        setenv("CC_ROUTER_MIGRATIONS_DIR", mig, 1);
        setenv("CC_ROUTER_TICK_MS", "20", 1);
        setenv("CC_ROUTER_CONSUMERS", "1", 1);
        setenv("CC_ROUTER_OUTBOX_LEASE_MS", "1000", 1);
        setenv("CC_LOG_LEVEL", "info", 1);
        if (re_env_redis[0])
            setenv("CC_REDIS_URL", re_env_redis, 1);
        if (re_env_pg[0])
            setenv("CC_PG_DSN", re_env_pg, 1);
        /* only this test's tenant: the routers of the other tests (their own groups over the
         * same topics) skip its load instead of rejecting it as unknown */
        setenv("CC_ROUTER_TENANTS", re_env_tenants[0] ? re_env_tenants : re_tenant, 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    for (size_t i = 0; i < sizeof(re_pids) / sizeof(re_pids[0]); i++)
        if (re_pids[i] == 0) {
            re_pids[i] = r->pid;
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
static void re_router_stop(struct re_router *r, int sig)
{
    char cmd[600];
    int status = 0;

    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
    waitpid(r->pid, &status, 0);
    for (size_t i = 0; i < sizeof(re_pids) / sizeof(re_pids[0]); i++)
        if (re_pids[i] == r->pid)
            re_pids[i] = 0;
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

static enum cc_bus_verdict re_watch_handler(void *ctx, const struct cc_bus_msg *m, char *reason,
                                            size_t reasonlen)
{
    struct re_watch *w = ctx;
    json_t *doc = json_loadb(m->value, m->len, 0, NULL);
    const char *tenant = json_string_value(json_object_get(doc, "tenant"));
    const char *key = json_string_value(json_object_get(json_object_get(doc, "data"), "key"));

    (void)reason;
    (void)reasonlen;
    /* ours: our tenant, or a deadletter of a message keyed with our tenant's prefix */
    if (doc && (!re_watch_decisions_only || strcmp(m->topic, CC_TOPIC_ROUTING_DECISIONS) == 0) &&
        ((tenant && strcmp(tenant, re_tenant) == 0) ||
         (key && strncmp(key, re_tenant, strlen(re_tenant)) == 0)) &&
        json_array_size(w->events) < RE_MAX_EVENTS) {
        json_object_set_new(doc, "_topic", json_string(m->topic));
        json_array_append(w->events, doc);
    }
    json_decref(doc);
    return CC_BUS_OK;
}

static void re_watch_start(struct re_watch *w)
{
    static const char *const topics[] = {CC_TOPIC_ROUTING_DECISIONS, CC_TOPIC_AGENTS,
                                         CC_TOPIC_INTERACTIONS, CC_TOPIC_DEADLETTER};
    struct cc_bus_config cfg;

    re_bus_cfg(&cfg);
    itest_unique(w->group, sizeof(w->group), "rewatch");
    w->events = json_array();
    w->dl = cc_producer_new(&cfg);
    w->consumer = cc_consumer_new(&cfg, w->group, topics, 4, re_watch_handler, w, w->dl);
    cr_assert_not_null(w->consumer, "expected a watch consumer");
}

static void re_watch_stop(struct re_watch *w)
{
    cc_consumer_free(w->consumer);
    cc_producer_free(w->dl);
    json_decref(w->events);
    memset(w, 0, sizeof(*w));
}

/* True when ev matches type, subject (NULL = any) and, when field is non-NULL, data.field ==
 * value (string). */
static bool re_match(const json_t *ev, const char *type, const char *subject, const char *field,
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
static json_t *re_wait_nth(const char *type, const char *subject, const char *field,
                           const char *value, size_t nth, int timeout_ms)
{
    int64_t until = cc_time_mono_ms() + timeout_ms;
    size_t seen_idx = 0;

    for (;;) {
        size_t count = 0;
        json_t *ev;

        json_array_foreach(re_watch.events, seen_idx, ev)
        {
            if (re_match(ev, type, subject, field, value) && ++count == nth)
                return ev;
        }
        if (cc_time_mono_ms() > until)
            return NULL;
        cc_consumer_poll(re_watch.consumer, 20);
    }
}

static json_t *re_wait(const char *type, const char *subject, const char *field, const char *value,
                       int timeout_ms)
{
    return re_wait_nth(type, subject, field, value, 1, timeout_ms);
}

/* Counts events matching so far (after draining for settle_ms). */
static size_t re_count(const char *type, const char *subject, int settle_ms)
{
    int64_t until = cc_time_mono_ms() + settle_ms;
    size_t i, n = 0;
    json_t *ev;

    while (cc_time_mono_ms() < until)
        cc_consumer_poll(re_watch.consumer, 20);
    json_array_foreach(re_watch.events, i, ev)
    {
        if (re_match(ev, type, subject, NULL, NULL))
            n++;
    }
    return n;
}

/* Produces a CloudEvent of type with data (JSON text) about subject on topic. */
static void re_send(const char *topic, const char *type, const char *subject, const char *data)
{
    json_t *d = json_loads(data, 0, NULL);
    json_t *env;

    cr_assert_not_null(d, "expected test JSON to parse: %s", data);
    env = cc_event_build(type, "/test/router-engine", subject, re_tenant, d);
    cr_assert_not_null(env, "expected an envelope for %s", type);
    cr_assert_eq(cc_producer_send_event(re_producer, topic, subject, env), 0,
                 "expected %s to be queued", type);
    json_decref(env);
    cr_assert_eq(cc_producer_flush(re_producer, 10000), 0, "expected %s delivered", type);
}

static void re_route(const char *ix, const char *queue, const char *channel)
{
    char data[256];

    snprintf(data, sizeof(data), "{\"queue_id\":\"%s\",\"channel\":\"%s\",\"priority\":0}", queue,
             channel);
    re_send(CC_TOPIC_ROUTING_REQUESTS, "cc.routing.route", ix, data);
}

/* An interaction id of this test: "<tenant>-<n>" (a valid id; deadletters keyed by it are
 * recognised as ours). */
static void re_ix(char *buf, size_t n, const char *what)
{
    snprintf(buf, n, "%s-%s", re_tenant, what);
}

/* ---- REST ------------------------------------------------------------------------------- */

static json_t *re_http(const struct re_router *r, const char *method, const char *path,
                       const char *token, const char *body, int want)
{
    struct itest_http_reply rep;

    itest_http_fetch(r->port, method, path, token, body ? RE_JSON : NULL, body, &rep);
    cr_assert_eq(rep.status, want, "expected %s %s -> %d, got %d: %.300s", method, path, want,
                 rep.status, rep.body);
    return json_loadb(rep.body, rep.body_len, 0, NULL);
}

static void re_put(const struct re_router *r, const char *method, const char *path,
                   const char *body, int want)
{
    json_decref(re_http(r, method, path, RE_ADMIN, body, want));
}

/* Waits until the queue's live view shows `members` members (config sync is asynchronous:
 * NOTIFY -> listener -> Redis). */
static void re_wait_members(const struct re_router *r, const char *queue, int members)
{
    char path[160];
    int64_t until = cc_time_mono_ms() + 10000;
    long got = -1;

    snprintf(path, sizeof(path), "/v1/queues/%s/live", queue);
    while (cc_time_mono_ms() < until) {
        json_t *v = re_http(r, "GET", path, RE_ADMIN, NULL, 200);
        got = (long)json_integer_value(json_object_get(v, "members"));
        json_decref(v);
        if (got == members)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("expected queue '%s' to show %d members in redis, got %ld", queue, members, got);
}

static void re_agent(const struct re_router *r, const char *id)
{
    char body[200];

    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"name\":\"Agent %s\"}", id, id);
    re_put(r, "POST", "/v1/agents", body, 201);
}

static void re_member(const struct re_router *r, const char *queue, const char *agent, int pos)
{
    char path[160], body[80];

    snprintf(path, sizeof(path), "/v1/queues/%s/members/%s", queue, agent);
    snprintf(body, sizeof(body), "{\"position\":%d}", pos);
    re_put(r, "PUT", path, body, 201);
}

static void re_state(const struct re_router *r, const char *agent, const char *token,
                     const char *body)
{
    char path[160];

    snprintf(path, sizeof(path), "/v1/agents/%s/state", agent);
    json_decref(re_http(r, "POST", path, token, body, 200));
}

/* Registers a SIP contact for agent (a cc.agents registered fact, as sip-edge sends) and
 * waits until the router holds it: a voice offer needs a phone to ring. */
static void re_register(const struct re_router *r, const char *agent)
{
    char data[200], path[128];
    int64_t until = cc_time_mono_ms() + 10000;

    snprintf(data, sizeof(data), "{\"contact\":\"sip:%s@127.0.0.1:5070\",\"expires_s\":3600}",
             agent);
    re_send(CC_TOPIC_AGENTS, "cc.agent.registered", agent, data);
    snprintf(path, sizeof(path), "/v1/agents/%s/live", agent);
    while (cc_time_mono_ms() < until) {
        json_t *v = re_http(r, "GET", path, RE_ADMIN, NULL, 200);
        const char *c = json_string_value(json_object_get(v, "contact"));
        bool ok = c && strstr(c, agent);
        json_decref(v);
        if (ok)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("expected agent '%s' to get its registered contact", agent);
}

/* Creates voice queue id (strategy longest_idle; extra: its other fields, as JSON members). */
static void re_voice_queue(const struct re_router *r, const char *id, const char *extra)
{
    char body[512];

    snprintf(body, sizeof(body),
             "{\"id\":\"%s\",\"name\":\"Queue %s\",\"channels\":[\"voice\"],"
             "\"strategy\":\"longest_idle\",%s}",
             id, id, extra);
    re_put(r, "POST", "/v1/queues", body, 201);
}

/* Voice queue id (as re_voice_queue) with agent as its one member, synced to Redis. */
static void re_voice_queue_of(const struct re_router *r, const char *id, const char *extra,
                              const char *agent)
{
    re_voice_queue(r, id, extra);
    re_member(r, id, agent, 1);
    re_wait_members(r, id, 1);
}

/* Agents a1 and a2, members of voice queue q1 (extra as re_voice_queue) at positions pos1 and
 * pos2, both with a phone; a1 turns available 30 ms before a2, so a1 is the longest idle. */
static void re_two_agents_in_q1(const struct re_router *r, const char *extra, int pos1, int pos2)
{
    re_agent(r, "a1");
    re_agent(r, "a2");
    re_voice_queue(r, "q1", extra);
    re_member(r, "q1", "a1", pos1);
    re_member(r, "q1", "a2", pos2);
    re_wait_members(r, "q1", 2);
    re_register(r, "a1");
    re_register(r, "a2");
    re_state(r, "a1", RE_AGENT1, "{\"state\":\"available\"}"); /* the agent itself */
    usleep(30 * 1000);
    re_state(r, "a2", RE_ADMIN, "{\"state\":\"available\"}"); /* a supervisor/admin */
}

/* Registers agent's phone and makes it available (acting with token). */
static void re_ready(const struct re_router *r, const char *agent, const char *token)
{
    re_register(r, agent);
    re_state(r, agent, token, "{\"state\":\"available\"}");
}

/* Routes voice call ix in queue and expects it rejected for reason; returns the decision's data
 * (borrowed). */
static json_t *re_rejected(const char *ix, const char *queue, const char *reason)
{
    json_t *ev, *d;

    re_route(ix, queue, "voice");
    ev = re_wait("cc.routing.rejected", ix, NULL, NULL, 15000);
    cr_assert_not_null(ev, "expected %s rejected (%s)", ix, reason);
    d = json_object_get(ev, "data");
    cr_assert_str_eq(json_string_value(json_object_get(d, "reason")), reason,
                     "expected %s rejected for the reason '%s'", ix, reason);
    return d;
}

/* Routes voice call ix in queue, expects it offered to agent, answers it as agent and waits
 * until agent is busy with it. */
static void re_answered_call(const char *ix, const char *queue, const char *agent)
{
    char data[256];

    re_route(ix, queue, "voice");
    cr_assert_not_null(re_wait("cc.routing.assigned", ix, "agent_id", agent, 15000),
                       "expected %s offered to %s", ix, agent);
    snprintf(data, sizeof(data),
             "{\"answered_by\":\"agent\",\"agent_id\":\"%s\",\"queue_id\":\"%s\"}", agent, queue);
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.answered", ix, data);
    cr_assert_not_null(re_wait("cc.agent.state_changed", agent, "to_state", "busy", 10000),
                       "expected %s busy after answered", agent);
}

/* ---- fixture ---------------------------------------------------------------------------- */

/* Takes the suite's lock in mode (LOCK_SH or LOCK_EX; a held lock is converted). */
static void re_lock(int mode)
{
    char path[512];

    if (re_lock_fd < 0) {
        snprintf(path, sizeof(path), "%s/router_engine.lock", itest_env("CC_TEST_BIN_DIR"));
        re_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    }
    cr_assert(re_lock_fd >= 0 && flock(re_lock_fd, mode) == 0, "expected the suite lock");
}

static void re_setup(void)
{
    struct cc_bus_config cfg;

    cc_log_init("test-router-engine", CC_LOG_WARN);
    itest_unique(re_tenant, sizeof(re_tenant), "re");
    itest_unique(re_group, sizeof(re_group), "rerouter");
    /* the routers of this test read only what comes after this point, not the history of the
     * shared topics */
    cr_assert_eq(itest_group_at_end(re_group, re_router_topics, 3), 0,
                 "expected group '%s' positioned at the end of the router's topics", re_group);
    re_bus_cfg(&cfg);
    re_producer = cc_producer_new(&cfg);
    cr_assert_not_null(re_producer, "expected a producer");
    re_watch_start(&re_watch);
    re_lock(LOCK_SH);
}

/* Prints what the watch saw (on a failure, to tell why). */
static void re_dump(void)
{
    size_t i;
    json_t *ev;

    json_array_foreach(re_watch.events, i, ev)
    {
        char *data = json_dumps(json_object_get(ev, "data"), JSON_COMPACT);
        fprintf(stderr, "  seen %s %s %s %.200s\n",
                json_string_value(json_object_get(ev, "_topic")),
                json_string_value(json_object_get(ev, "type")),
                json_string_value(json_object_get(ev, "subject")), data ? data : "");
        free(data);
    }
}

static void re_teardown(void)
{
    if (re_redis_pid > 0) {
        kill(re_redis_pid, SIGKILL);
        waitpid(re_redis_pid, NULL, 0);
        unlink(re_redis_sock);
        re_redis_pid = 0;
    }
    for (size_t i = 0; i < sizeof(re_pids) / sizeof(re_pids[0]); i++)
        if (re_pids[i] > 0) { /* the test failed before stopping it */
            kill(re_pids[i], SIGKILL);
            waitpid(re_pids[i], NULL, 0);
            re_pids[i] = 0;
        }
    if (re_lock_fd >= 0)
        close(re_lock_fd); /* releases the lock */
    re_lock_fd = -1;
    re_watch_stop(&re_watch);
    cc_producer_free(re_producer);
    re_producer = NULL;
}

TestSuite(router_engine, .init = re_setup, .fini = re_teardown, .timeout = 120);

/* Two agents in a longest_idle queue: a1 became available first, so a1 has been idle longest
 * and wins the first call. Then the call's life: answered -> a1 busy; ended (wrap-up 1 s) ->
 * a1 wrap_up, and the ticker ends the wrap-up about 1 s later -> available, each
 * cc.agent.state_changed carrying the time spent in the state it leaves. */
Test(router_engine, assigns_the_longest_idle_agent_and_follows_the_call_to_wrap_up)
{
    struct re_router r;
    char ix[128], data[256], inst[96];
    json_t *ev, *d;

    re_router_start(&r, itest_unique(inst, sizeof(inst), "rer"));
    re_two_agents_in_q1(&r, "\"wrapup_s\":1,\"ring_timeout_s\":30", 2, 1);

    re_ix(ix, sizeof(ix), "call1");
    re_route(ix, "q1", "voice");
    ev = re_wait("cc.routing.assigned", ix, NULL, NULL, 15000);
    cr_assert_not_null(ev, "expected cc.routing.assigned for %s", ix);
    d = json_object_get(ev, "data");
    cr_assert_str_eq(json_string_value(json_object_get(d, "agent_id")), "a1",
                     "expected the longest idle agent a1 to win");
    cr_assert_str_eq(json_string_value(json_object_get(d, "strategy")), "longest_idle");
    cr_assert_str_eq(json_string_value(json_object_get(d, "agent_contact")),
                     "sip:a1@127.0.0.1:5070", "expected the registered contact in the decision");
    cr_assert(strncmp(json_string_value(json_object_get(ev, "source")), "/router/", 8) == 0,
              "expected the router as the source");
    cr_assert(cc_uuid_valid(json_string_value(json_object_get(ev, "id"))),
              "expected a UUID event id");
    cr_assert_not_null(re_wait("cc.interaction.offered", ix, NULL, NULL, 5000),
                       "expected cc.interaction.offered on cc.interactions");
    cr_assert_not_null(re_wait("cc.agent.state_changed", "a1", "to_state", "reserved", 5000),
                       "expected a1 reserved");

    snprintf(data, sizeof(data),
             "{\"answered_by\":\"agent\",\"agent_id\":\"a1\",\"queue_id\":\"q1\",\"wait_ms\":5}");
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.answered", ix, data);
    cr_assert_not_null(re_wait("cc.agent.state_changed", "a1", "to_state", "busy", 10000),
                       "expected a1 busy after answered");
    /* answering twice changes nothing */
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.answered", ix, data);
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix,
            "{\"ended_by\":\"customer\",\"talk_ms\":1200,\"hold_ms\":0,\"agent_id\":\"a1\"}");
    ev = re_wait("cc.agent.state_changed", "a1", "to_state", "wrap_up", 10000);
    cr_assert_not_null(ev, "expected a1 in wrap-up after ended");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ev, "data"), "from_state")),
                     "busy");
    ev = re_wait_nth("cc.agent.state_changed", "a1", "to_state", "available", 2, 10000);
    cr_assert_not_null(ev, "expected a1 available again when the 1 s wrap-up timer fired");
    d = json_object_get(ev, "data");
    cr_assert_str_eq(json_string_value(json_object_get(d, "from_state")), "wrap_up");
    cr_assert(json_integer_value(json_object_get(d, "duration_ms")) >= 900,
              "expected about 1 s of wrap-up, got %lld ms",
              (long long)json_integer_value(json_object_get(d, "duration_ms")));
    cr_assert_eq(re_count("cc.agent.state_changed", "a1", 300), 5,
                 "expected exactly available, reserved, busy, wrap_up, available -- the repeated "
                 "answered must not add one");
    /* the session's start: logged_in with the agent's queues (what the metrics service counts
     * per queue), once */
    ev = re_wait("cc.agent.logged_in", "a1", "state", "available", 5000);
    cr_assert_not_null(ev, "expected cc.agent.logged_in for a1 when it became available");
    d = json_object_get(json_object_get(ev, "data"), "queue_ids");
    cr_assert(json_is_array(d) && json_array_size(d) == 1 &&
                  strcmp(json_string_value(json_array_get(d, 0)), "q1") == 0,
              "expected queue_ids [\"q1\"] in logged_in");
    cr_assert_eq(re_count("cc.agent.logged_in", "a1", 0), 1, "expected one logged_in for a1");
    re_router_stop(&r, SIGTERM);
}

/* A not-ready span names its reason when it ends (from_reason_code), and a log-out ends the
 * session with cc.agent.logged_out {logged_out_by, session_ms}. */
Test(router_engine, reports_the_reason_of_a_not_ready_span_and_the_session_at_log_out)
{
    struct re_router r;
    char inst[96];
    json_t *ev, *d;

    re_router_start(&r, itest_unique(inst, sizeof(inst), "rer"));
    re_agent(&r, "a1");
    re_put(&r, "PUT", "/v1/not-ready-reasons/break",
           "{\"label\":\"Break\",\"counts_as_break\":true}", 201);
    re_state(&r, "a1", RE_AGENT1, "{\"state\":\"not_ready\",\"reason\":\"break\"}");
    cr_assert_not_null(re_wait("cc.agent.state_changed", "a1", "to_state", "not_ready", 10000),
                       "expected a1 not_ready");
    re_state(&r, "a1", RE_AGENT1, "{\"state\":\"available\"}");
    ev = re_wait("cc.agent.state_changed", "a1", "to_state", "available", 10000);
    cr_assert_not_null(ev, "expected a1 available after its break");
    d = json_object_get(ev, "data");
    cr_assert_str_eq(json_string_value(json_object_get(d, "from_reason_code")), "break",
                     "expected the break named on the span it ends");
    re_state(&r, "a1", RE_AGENT1, "{\"state\":\"logged_out\"}");
    ev = re_wait("cc.agent.logged_out", "a1", NULL, NULL, 10000);
    cr_assert_not_null(ev, "expected cc.agent.logged_out");
    d = json_object_get(ev, "data");
    cr_assert_str_eq(json_string_value(json_object_get(d, "logged_out_by")), "agent");
    cr_assert(json_integer_value(json_object_get(d, "session_ms")) >= 0,
              "expected the session length");
    cr_assert_null(json_object_get(d, "last_state_ms"),
                   "expected the last span only in state_changed (never counted twice)");
    re_router_stop(&r, SIGTERM);
}

/* One agent, ring timeout 1 s, max_no_answer 1: the offer to a1 is not answered, the ticker's
 * ring timeout makes a1 not_ready "no_answer" and re-offers the call to a2 (who became
 * available later, so a1 was picked first). */
Test(router_engine, re_offers_to_the_next_agent_after_a_ring_timeout)
{
    struct re_router r;
    char ix[128], inst[96];
    json_t *ev;

    re_router_start(&r, itest_unique(inst, sizeof(inst), "rer"));
    re_two_agents_in_q1(&r, "\"ring_timeout_s\":1,\"max_no_answer\":1", 1, 2);

    re_ix(ix, sizeof(ix), "rona");
    re_route(ix, "q1", "voice");
    ev = re_wait("cc.routing.assigned", ix, NULL, NULL, 15000);
    if (!ev || !re_match(ev, "cc.routing.assigned", ix, "agent_id", "a1"))
        re_dump();
    cr_assert(ev && re_match(ev, "cc.routing.assigned", ix, "agent_id", "a1"),
              "expected the first offer to a1");
    ev = re_wait("cc.agent.state_changed", "a1", "to_state", "not_ready", 10000);
    cr_assert_not_null(ev, "expected a1 not_ready after the 1 s ring timeout");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ev, "data"), "reason_code")),
                     "no_answer");
    ev = re_wait("cc.routing.assigned", ix, "agent_id", "a2", 10000);
    if (!ev)
        re_dump();
    cr_assert_not_null(ev, "expected the call re-offered to a2");
    re_router_stop(&r, SIGTERM);
}

/* A blind transfer as sip-edge asks for it: a1 (q1) answered the call, then a requeue with
 * reason transfer to q2 releases a1 (wrap-up of q1) and the router offers the call to a2, q2's
 * member. The same command delivered twice (same event id) moves nothing the second time. */
Test(router_engine, a_transfer_requeue_moves_an_answered_call_to_the_target_queue_once)
{
    struct re_router r;
    char ix[128], inst[96];
    json_t *env, *ev;

    re_router_start(&r, itest_unique(inst, sizeof(inst), "rer"));
    re_agent(&r, "a1");
    re_agent(&r, "a2");
    re_voice_queue_of(&r, "q1", "\"wrapup_s\":5,\"ring_timeout_s\":30", "a1");
    re_voice_queue_of(&r, "q2", "\"ring_timeout_s\":30", "a2");
    re_ready(&r, "a1", RE_AGENT1);
    re_ready(&r, "a2", RE_ADMIN);

    re_ix(ix, sizeof(ix), "xfer");
    re_answered_call(ix, "q1", "a1");

    env = cc_event_build(
        "cc.routing.requeue", "/test/router-engine", ix, re_tenant,
        json_pack("{s:s, s:s, s:b}", "reason", "transfer", "queue_id", "q2", "at_head", 0));
    cr_assert_not_null(env, "expected a requeue envelope");
    for (int i = 0; i < 2; i++) /* a redelivery: the same event twice */
        cr_assert_eq(cc_producer_send_event(re_producer, CC_TOPIC_ROUTING_REQUESTS, ix, env), 0,
                     "expected the requeue to be queued");
    json_decref(env);
    cr_assert_eq(cc_producer_flush(re_producer, 10000), 0, "expected the requeues delivered");

    ev = re_wait("cc.routing.assigned", ix, "agent_id", "a2", 15000);
    if (!ev)
        re_dump();
    cr_assert_not_null(ev, "expected the transferred call offered to a2");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ev, "data"), "queue_id")),
                     "q2", "expected the offer in the target queue");
    cr_assert_not_null(re_wait("cc.agent.state_changed", "a1", "to_state", "wrap_up", 10000),
                       "expected a1 released into q1's wrap-up");
    cr_assert_eq(re_count("cc.interaction.queued", ix, 500), 2,
                 "expected queued once for the route and once for the transfer, not again for "
                 "the redelivered requeue");
    cr_assert_eq(re_count("cc.routing.assigned", ix, 0), 2, "expected exactly two offers");
    re_router_stop(&r, SIGTERM);
}

/* A queue nobody configured: a business answer (cc.routing.rejected unknown_queue), not a
 * deadletter. Malformed requests (not JSON; a route without channel) go to cc.deadletter with
 * the reason, and the router carries on: a later valid request is decided. A cancel removes a
 * waiting call. */
Test(router_engine, rejects_unknown_queues_deadletters_bad_requests_and_cancels)
{
    struct re_router r;
    char ix[128], bad[128], bad2[128], wait_ix[128], inst[96];
    json_t *ev, *v;

    re_router_start(&r, itest_unique(inst, sizeof(inst), "rer"));
    re_put(&r, "POST", "/v1/queues",
           "{\"id\":\"q1\",\"name\":\"Q1\",\"channels\":[\"chat\"],\"strategy\":\"linear\"}", 201);
    re_wait_members(&r, "q1", 0);

    re_ix(ix, sizeof(ix), "nowhere");
    re_rejected(ix, "no-such-queue", "unknown_queue");

    re_ix(bad, sizeof(bad), "notjson");
    cr_assert_eq(cc_producer_send(re_producer, CC_TOPIC_ROUTING_REQUESTS, bad, "{not json", 9), 0);
    re_ix(bad2, sizeof(bad2), "nochannel");
    re_send(CC_TOPIC_ROUTING_REQUESTS, "cc.routing.route", bad2,
            "{\"queue_id\":\"q1\",\"priority\":0}");
    ev = re_wait(CC_BUS_DEADLETTER_TYPE, NULL, "key", bad, 15000);
    cr_assert_not_null(ev, "expected the non-JSON request in cc.deadletter");
    /* every test runs its own router group over the shared topics: any of them may be first */
    cr_assert(strncmp(json_string_value(json_object_get(json_object_get(ev, "data"), "group")),
                      "rerouter", 8) == 0,
              "expected a router's group to have rejected it");
    ev = re_wait(CC_BUS_DEADLETTER_TYPE, NULL, "key", bad2, 15000);
    cr_assert_not_null(ev, "expected the route without channel in cc.deadletter");
    cr_assert(strstr(json_string_value(json_object_get(json_object_get(ev, "data"), "reason")),
                     "channel") != NULL,
              "expected the reason to name the channel");

    /* still alive: a valid chat request waits (no agent), then is cancelled */
    re_ix(wait_ix, sizeof(wait_ix), "waiting");
    re_route(wait_ix, "q1", "chat");
    cr_assert_not_null(re_wait("cc.interaction.queued", wait_ix, NULL, NULL, 15000),
                       "expected the router to carry on and queue the next request");
    v = re_http(&r, "GET", "/v1/queues/q1/live", RE_ADMIN, NULL, 200);
    cr_assert_eq(json_integer_value(json_object_get(v, "waiting")), 1, "expected 1 waiting");
    json_decref(v);
    re_send(CC_TOPIC_ROUTING_REQUESTS, "cc.routing.cancel", wait_ix, "{\"reason\":\"abandoned\"}");
    for (int i = 0; i < 200; i++) {
        long waiting;
        v = re_http(&r, "GET", "/v1/queues/q1/live", RE_ADMIN, NULL, 200);
        waiting = (long)json_integer_value(json_object_get(v, "waiting"));
        json_decref(v);
        if (waiting == 0)
            break;
        cr_assert(i < 199, "expected the cancel to empty the queue");
        usleep(50 * 1000);
    }
    re_router_stop(&r, SIGTERM);
}

/* A queue closed today (today's UTC date is a holiday) rejects with its closed reason. The
 * agent REST rules: an agent token may not act for another agent (404), not_ready needs a
 * configured reason code. */
Test(router_engine, rejects_in_closed_hours_and_guards_agent_state_changes)
{
    struct re_router r;
    char ix[128], body[512], day[16], inst[96];
    time_t now = time(NULL);
    struct tm tm;
    json_t *d, *v;

    gmtime_r(&now, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    re_router_start(&r, itest_unique(inst, sizeof(inst), "rer"));
    snprintf(body, sizeof(body),
             "{\"id\":\"shut\",\"name\":\"Closed\",\"channels\":[\"voice\"],\"strategy\":"
             "\"linear\",\"timezone\":\"UTC\",\"closed_reason\":\"holiday\",\"holidays\":[{"
             "\"date\":\"%s\",\"name\":\"Today\"}]}",
             day);
    re_put(&r, "POST", "/v1/queues", body, 201);
    re_wait_members(&r, "shut", 0);
    re_ix(ix, sizeof(ix), "closed");
    d = re_rejected(ix, "shut", "closed");
    cr_assert(strstr(json_string_value(json_object_get(d, "detail")), "holiday") != NULL,
              "expected the detail to carry the queue's closed_reason 'holiday'");

    re_agent(&r, "a1");
    re_agent(&r, "a2");
    json_decref(
        re_http(&r, "POST", "/v1/agents/a2/state", RE_AGENT1, "{\"state\":\"available\"}", 404));
    json_decref(re_http(&r, "POST", "/v1/agents/a1/state", RE_AGENT1,
                        "{\"state\":\"not_ready\",\"reason\":\"lunch\"}", 422));
    re_put(&r, "PUT", "/v1/not-ready-reasons/lunch", "{\"label\":\"Lunch\"}", 201);
    v = re_http(&r, "POST", "/v1/agents/a1/state", RE_AGENT1,
                "{\"state\":\"not_ready\",\"reason\":\"lunch\"}", 200);
    cr_assert_str_eq(json_string_value(json_object_get(v, "state")), "not_ready");
    cr_assert_str_eq(json_string_value(json_object_get(v, "reason")), "lunch");
    json_decref(v);
    json_decref(
        re_http(&r, "POST", "/v1/agents/a1/wrapup", RE_AGENT1, "{\"action\":\"end\"}", 409));
    json_decref(re_http(&r, "POST", "/v1/agents/a1/state", RE_AGENT1, "{\"state\":\"busy\"}", 422));
    re_router_stop(&r, SIGTERM);
}

/* Starts a private redis-server on a unix socket (so FLUSHALL hurts no other test). */
static void re_private_redis(char *url, size_t n)
{
    char name[64];
    int64_t until;

    itest_unique(name, sizeof(name), "reredis");
    snprintf(re_redis_sock, sizeof(re_redis_sock), "/tmp/%s.sock", name);
    re_redis_pid = fork();
    cr_assert(re_redis_pid >= 0, "expected fork to work");
    if (re_redis_pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", re_redis_sock,
               "--save", "", "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    for (until = cc_time_mono_ms() + 5000; access(re_redis_sock, F_OK) != 0;) {
        cr_assert(cc_time_mono_ms() < until, "expected redis-server up on %s", re_redis_sock);
        usleep(20 * 1000);
    }
    snprintf(url, n, "unix://%s", re_redis_sock);
}

/* Creates a private database in the stack's PostgreSQL; writes its DSN. */
static void re_private_db(char *dsn, size_t n)
{
    char name[64], sql[128];
    cc_pg *pg = cc_pg_new(itest_env("CC_PG_DSN"));

    cr_assert_not_null(pg, "expected PostgreSQL");
    itest_unique(name, sizeof(name), "redb");
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    cr_assert_eq(cc_pg_exec(pg, sql, 0, NULL), 0, "expected database %s created", name);
    cc_pg_free(pg);
    snprintf(dsn, n, "%s dbname=%s", itest_env("CC_PG_DSN"), name);
}

/* A router on a private Redis and database serving only this test's tenant, with agent a1
 * available in chat queue q1 (linear, ring timeout 600 s). */
static void re_private_solo(struct re_router *r)
{
    char inst[96];

    re_private_redis(re_env_redis, sizeof(re_env_redis));
    re_private_db(re_env_pg, sizeof(re_env_pg));
    snprintf(re_env_tenants, sizeof(re_env_tenants), "%s", re_tenant);
    re_router_start(r, itest_unique(inst, sizeof(inst), "rer"));
    re_agent(r, "a1");
    re_put(r, "POST", "/v1/queues",
           "{\"id\":\"q1\",\"name\":\"Q1\",\"channels\":[\"chat\"],\"strategy\":\"linear\","
           "\"ring_timeout_s\":600}",
           201);
    re_member(r, "q1", "a1", 1);
    re_wait_members(r, "q1", 1);
    re_state(r, "a1", RE_AGENT1, "{\"state\":\"available\"}");
}

/* FLUSHALL of the private Redis at URL ctx (also a load test's fault). */
static void re_fault_flush(void *ctx)
{
    cc_redis *redis = cc_redis_new(ctx);
    redisReply *rep;

    cr_assert_not_null(redis, "expected the private redis");
    rep = cc_redis_command(redis, "FLUSHALL");
    cr_assert(rep && rep->type == REDIS_REPLY_STATUS, "expected FLUSHALL to work");
    freeReplyObject(rep);
    cc_redis_free(redis);
}

static long re_agent_used(const struct re_router *r, const char *agent, const char *ch,
                          json_t **interactions)
{
    char path[128];
    json_t *v;
    long used;

    snprintf(path, sizeof(path), "/v1/agents/%s/live", agent);
    v = re_http(r, "GET", path, RE_ADMIN, NULL, 200);
    used = (long)json_integer_value(json_object_get(json_object_get(v, "used"), ch));
    if (interactions)
        *interactions = json_incref(json_object_get(v, "interactions"));
    json_decref(v);
    return used;
}

/* Interaction ids c1..cn of this test into ix[0..n). */
static void re_ix_n(char (*ix)[128], int n)
{
    for (int k = 0; k < n; k++) {
        char what[16];
        snprintf(what, sizeof(what), "c%d", k + 1);
        re_ix(ix[k], sizeof(ix[k]), what);
    }
}

/* Routes ix[from..to) to q1 (re_private_solo), waiting for each to be offered to a1 (offered)
 * or queued. */
static void re_route_q1(char (*ix)[128], int from, int to, bool offered)
{
    for (int k = from; k < to; k++) {
        re_route(ix[k], "q1", "chat");
        if (offered)
            cr_assert_not_null(re_wait("cc.routing.assigned", ix[k], "agent_id", "a1", 15000),
                               "expected %s offered to a1", ix[k]);
        else
            cr_assert_not_null(re_wait("cc.interaction.queued", ix[k], NULL, NULL, 15000),
                               "expected %s queued", ix[k]);
    }
}

/* a1 answers ix[0..n). */
static void re_answer_a1(char (*ix)[128], int n)
{
    for (int k = 0; k < n; k++)
        re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.answered", ix[k],
                "{\"answered_by\":\"agent\",\"agent_id\":\"a1\",\"wait_ms\":1}");
}

/* A private router with a1 alone in q1 (chat capacity 3): ix[0..3) routed to a1 and answered,
 * ix[3..n) waiting. */
static void re_a1_full_then_waiting(struct re_router *r, char (*ix)[128], int n)
{
    re_private_solo(r);
    re_ix_n(ix, n);
    re_route_q1(ix, 0, 3, true);
    re_answer_a1(ix, 3);
    re_route_q1(ix, 3, n, false);
}

/* Redis loses everything (FLUSHALL) with interactions in every state: a1 (chat capacity 3)
 * holds c1 and c2 (answered) and rings for c3; c4 and c5 wait. After the flush the next
 * request (c6) meets NOSTATE, the router rebuilds from PostgreSQL -- config, a1's presence,
 * the six open interactions with their original enqueue times -- and dispatches: the oldest
 * waiting, c3 (whose offer was lost with Redis), is offered to a1 again, filling its third
 * slot. Nothing forgotten (2 held + 1 offered + 3 waiting = 6), a1 never beyond 3 chats. */
Test(router_engine, rebuilds_from_postgresql_after_redis_loses_everything)
{
    struct re_router r;
    char ix[6][128];
    json_t *v, *items, *it;
    size_t i;
    int held = 0, offered = 0;

    re_private_solo(&r);
    re_ix_n(ix, 6);
    re_route_q1(ix, 0, 3, true);
    re_answer_a1(ix, 2);
    re_route_q1(ix, 3, 5, false);
    for (int n = 0; n < 200; n++) { /* both answers applied (and persisted) */
        held = 0;
        re_agent_used(&r, "a1", "chat", &items);
        json_array_foreach(items, i, it)
        {
            held +=
                strcmp(json_string_value(json_object_get(it, "status")) ?: "", "in_progress") == 0;
        }
        json_decref(items);
        if (held == 2)
            break;
        usleep(50 * 1000);
    }
    cr_assert_eq(held, 2, "expected c1 and c2 in progress before the flush");

    re_fault_flush(re_env_redis);

    re_route(ix[5], "q1", "chat");
    cr_assert_not_null(re_wait_nth("cc.routing.assigned", ix[2], "agent_id", "a1", 2, 20000),
                       "expected c3, the oldest waiting, offered to a1 again after the rebuild");
    cr_assert_eq(re_agent_used(&r, "a1", "chat", &items), 3,
                 "expected a1 to hold exactly its 3 chats (2 in progress + 1 offered)");
    json_array_foreach(items, i, it)
    {
        const char *st = json_string_value(json_object_get(it, "status"));
        offered += st && strcmp(st, "offered") == 0;
    }
    cr_assert_eq(json_array_size(items), 3, "expected 3 interactions on a1");
    cr_assert_eq(offered, 1, "expected one offered (c3)");
    json_decref(items);
    v = re_http(&r, "GET", "/v1/queues/q1/live", RE_ADMIN, NULL, 200);
    cr_assert_eq(json_integer_value(json_object_get(v, "waiting")), 3,
                 "expected c4, c5, c6 still waiting: nothing forgotten");
    json_decref(v);
    re_router_stop(&r, SIGTERM);
    re_env_redis[0] = re_env_pg[0] = re_env_tenants[0] = '\0';
}

/* The state of interaction ix in the private database's router.interactions ("" if none). */
static void re_row_state(const char *ix, char *state, size_t n)
{
    cc_pg *pg = cc_pg_new(re_env_pg);
    PGresult *res;

    cr_assert_not_null(pg, "expected the private database");
    res = cc_pg_query(pg, "SELECT state FROM router.interactions WHERE tenant = $1 AND id = $2", 2,
                      (const char *const[]){re_tenant, ix});
    cr_assert_not_null(res, "expected router.interactions to be readable");
    snprintf(state, n, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    cc_pg_free(pg);
}

/* Rows of the private database matching a query with the tenant as $1 and two ids. */
static long re_rows(const char *sql, const char *id1, const char *id2)
{
    cc_pg *pg = cc_pg_new(re_env_pg);
    PGresult *res;
    long n;

    cr_assert_not_null(pg, "expected the private database");
    res = cc_pg_query(pg, sql, 3, (const char *const[]){re_tenant, id1, id2});
    cr_assert_not_null(res, "expected router.interactions to be readable");
    n = PQntuples(res) ? atol(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    cc_pg_free(pg);
    return n;
}

/* A requeue's order (at_head false) and exclusions survive Redis losing everything: a1 (chat
 * capacity 3) holds c1-c3 (answered); c4, c5, c6 wait in that order. c4 is requeued anew
 * (behind c6), c5 excludes a1. After FLUSHALL, c1 ends (the command that meets NOSTATE: the
 * rebuild restores the waiting ones from PostgreSQL, with their order and exclusions): a1's
 * free slot goes to c6, as c4 is behind it and c5 is not for a1; c2 ends: c4; c3 ends: c5 is
 * never offered to a1. */
Test(router_engine, a_requeues_order_and_exclusions_survive_a_rebuild)
{
    static const char ended[] =
        "{\"ended_by\":\"customer\",\"talk_ms\":10,\"hold_ms\":0,\"agent_id\":\"a1\"}";
    struct re_router r;
    char ix[6][128];
    long ready = 0;

    re_a1_full_then_waiting(&r, ix, 6);
    re_send(CC_TOPIC_ROUTING_REQUESTS, "cc.routing.requeue", ix[3],
            "{\"reason\":\"supervisor\",\"queue_id\":\"q1\",\"at_head\":false}");
    re_send(CC_TOPIC_ROUTING_REQUESTS, "cc.routing.requeue", ix[4],
            "{\"reason\":\"supervisor\",\"queue_id\":\"q1\",\"at_head\":true,"
            "\"exclude_agent_ids\":[\"a1\"]}");
    for (int n = 0; n < 300 && ready != 2; n++) { /* both requeues persisted */
        usleep(50 * 1000);
        ready = re_rows("SELECT count(*) FROM router.interactions WHERE tenant = $1 AND "
                        "((id = $2 AND order_ms IS NOT NULL) OR (id = $3 AND excluded ? 'a1'))",
                        ix[3], ix[4]);
    }
    cr_assert_eq(ready, 2, "expected c4's order and c5's exclusion in PostgreSQL");
    ready = 0;
    for (int n = 0; n < 300 && ready != 3; n++) { /* the three answers persisted */
        usleep(50 * 1000);
        ready = re_rows("SELECT count(*) FROM router.interactions WHERE tenant = $1 AND "
                        "state = 'assigned' AND id NOT IN ($2, $3)",
                        ix[3], ix[4]);
    }
    cr_assert_eq(ready, 3, "expected c1-c3 in progress before the flush");

    re_fault_flush(re_env_redis);

    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix[0], ended);
    cr_assert_not_null(re_wait("cc.routing.assigned", ix[5], "agent_id", "a1", 20000),
                       "expected c6 offered to a1 after the rebuild (c4 behind it, c5 not for a1)");
    cr_assert_eq(re_count("cc.routing.assigned", ix[3], 0), 0, "expected c4 not offered yet");
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix[1], ended);
    cr_assert_not_null(re_wait("cc.routing.assigned", ix[3], "agent_id", "a1", 20000),
                       "expected c4 offered to a1 next");
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix[2], ended);
    cr_assert_eq(re_count("cc.routing.assigned", ix[4], 2000), 0,
                 "expected c5 never offered to a1, which it excludes");
    re_router_stop(&r, SIGTERM);
    re_env_redis[0] = re_env_pg[0] = re_env_tenants[0] = '\0';
}

/* A callback scheduled 6 s ahead is parked; Redis loses everything and the rebuild (set off by
 * c1's end, which frees a slot of a1) parks it again from PostgreSQL: a1's free slot is not
 * given to c4 before its time, and c4 is offered to a1 once its time comes. */
Test(router_engine, a_scheduled_callback_survives_a_rebuild)
{
    static const char ended[] =
        "{\"ended_by\":\"customer\",\"talk_ms\":10,\"hold_ms\":0,\"agent_id\":\"a1\"}";
    struct re_router r;
    char ix[4][128], when[32], data[200];
    int64_t at;
    long ready = 0;

    re_a1_full_then_waiting(&r, ix, 4);
    at = cc_time_now_ms() + 6000; /* the flush and the rebuild come well before */
    cr_assert_eq(cc_time_format_iso8601(at, when), 0);
    snprintf(data, sizeof(data),
             "{\"number\":\"+4930123456\",\"keep_place\":false,\"scheduled_at\":\"%s\"}", when);
    re_send(CC_TOPIC_ROUTING_REQUESTS, "cc.routing.callback", ix[3], data);
    for (int n = 0; n < 300 && ready != 4; n++) { /* the time and the three answers persisted */
        usleep(50 * 1000);
        ready = re_rows("SELECT count(*) FROM router.interactions WHERE tenant = $1 AND "
                        "((id = $2 AND callback_at_ms IS NOT NULL) OR (id <> $3 AND "
                        "state = 'assigned'))",
                        ix[3], ix[3]);
    }
    cr_assert_eq(ready, 4, "expected c4's callback time and c1-c3 in progress in PostgreSQL");

    re_fault_flush(re_env_redis);

    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix[0], ended);
    cr_assert_eq(re_count("cc.routing.assigned", ix[3], 1500), 0,
                 "expected c4 not offered before its time");
    cr_assert_not_null(re_wait("cc.routing.assigned", ix[3], "agent_id", "a1", 20000),
                       "expected c4 offered to a1 at its time");
    cr_assert(cc_time_now_ms() >= at, "expected c4's offer not before its time");
    re_router_stop(&r, SIGTERM);
    re_env_redis[0] = re_env_pg[0] = re_env_tenants[0] = '\0';
}

/* Runs sql on the private database (asserting it worked). */
static void re_exec(const char *sql)
{
    cc_pg *pg = cc_pg_new(re_env_pg);
    PGresult *res;

    cr_assert_not_null(pg, "expected the private database");
    res = cc_pg_query(pg, sql, 0, NULL);
    cr_assert_not_null(res, "expected '%.60s...' to run", sql);
    PQclear(res);
    cc_pg_free(pg);
}

/* An answer whose PostgreSQL write fails (a trigger refuses the first UPDATE to "assigned") is
 * applied in Redis and retried; the retry's script finds it answered already by the same agent
 * and writes the row then. Before, the repeat wrote nothing: the row stayed "waiting", so a
 * rebuild would have offered the call again while a1 talked. */
Test(router_engine, an_answer_whose_row_write_failed_is_written_when_retried)
{
    struct re_router r;
    char ix[1][128], state[32] = "", cmd[600];

    re_private_solo(&r);
    re_exec("CREATE SEQUENCE router.re_fail_once");
    re_exec("CREATE FUNCTION router.re_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.state = 'assigned' AND nextval('router.re_fail_once') = 1 THEN RAISE "
            "EXCEPTION 're_fail_once: the first answer fails'; END IF; RETURN NEW; END $$");
    re_exec("CREATE TRIGGER re_fail_once BEFORE UPDATE ON router.interactions FOR EACH ROW "
            "EXECUTE FUNCTION router.re_fail_once()");
    re_ix_n(ix, 1);
    re_route_q1(ix, 0, 1, true);
    re_answer_a1(ix, 1);
    for (int n = 0; n < 200 && strcmp(state, "assigned") != 0; n++) {
        usleep(50 * 1000);
        re_row_state(ix[0], state, sizeof(state));
    }
    cr_assert_str_eq(state, "assigned", "expected the row in progress once the answer was retried");
    cr_assert_eq(re_rows("SELECT count(*) FROM router.interactions WHERE tenant = $1 AND id = $2 "
                         "AND agent_id = 'a1' AND id = $3",
                         ix[0], ix[0]),
                 1, "expected a1 on the row");
    snprintf(cmd, sizeof(cmd), "grep -a -q 're_fail_once: the first answer fails' '%s'", r.log);
    cr_assert_eq(system(cmd), 0, "expected the first write to have failed (see %s)", r.log);
    re_router_stop(&r, SIGTERM);
    re_env_redis[0] = re_env_pg[0] = re_env_tenants[0] = '\0';
}

/* A route runs its script first and is persisted after it, so a finished interaction is known
 * to Redis alone by its tombstone; a rebuild restores the tombstones of the last day from
 * PostgreSQL. c1 ends, Redis loses everything, and a route request for c1 comes again (a
 * redelivery): nothing is routed for c1, while c2 is routed to a1 as usual. */
Test(router_engine, a_route_that_comes_again_after_the_end_and_a_flush_routes_nothing)
{
    struct re_router r;
    char c1[128], c2[128], state[16] = "";

    re_private_solo(&r);
    re_ix(c1, sizeof(c1), "c1");
    re_ix(c2, sizeof(c2), "c2");
    re_route(c1, "q1", "chat");
    cr_assert_not_null(re_wait("cc.routing.assigned", c1, "agent_id", "a1", 15000),
                       "expected c1 offered to a1");
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.answered", c1,
            "{\"answered_by\":\"agent\",\"agent_id\":\"a1\",\"wait_ms\":1}");
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", c1,
            "{\"ended_by\":\"customer\",\"talk_ms\":10,\"hold_ms\":0,\"agent_id\":\"a1\"}");
    for (int n = 0; n < 300 && strcmp(state, "ended") != 0; n++) {
        usleep(50 * 1000);
        re_row_state(c1, state, sizeof(state));
    }
    cr_assert_str_eq(state, "ended", "expected c1 closed in PostgreSQL before the flush");

    re_fault_flush(re_env_redis);

    re_route(c1, "q1", "chat"); /* the same interaction again, after its end */
    re_route(c2, "q1", "chat");
    cr_assert_not_null(re_wait("cc.routing.assigned", c2, "agent_id", "a1", 20000),
                       "expected c2 offered to a1 after the rebuild");
    cr_assert_eq(re_count("cc.interaction.queued", c1, 1500), 1,
                 "expected c1 queued once: the route after its end must route nothing");
    cr_assert_eq(re_count("cc.routing.assigned", c1, 0), 1, "expected c1 offered once");
    re_row_state(c1, state, sizeof(state));
    cr_assert_str_eq(state, "ended", "expected c1 still closed in PostgreSQL");
    re_router_stop(&r, SIGTERM);
    re_env_redis[0] = re_env_pg[0] = re_env_tenants[0] = '\0';
}

/* ---- load at the scale ------------------------------------------------------------ */

/* Issue 3's fault scenarios: 200 agents (chat capacity 3 = 600 slots) over 4 queues, each agent
 * a member of two; 10,000 chat route requests sent in one burst (far more than the slots), two
 * cc-router processes in one group. The test plays the agents: it answers every assignment at
 * once and ends it RE_HOLD_MS later, so slots stay full and free up all along. A fault (SIGKILL
 * of one router, or FLUSHALL of the test's private Redis) strikes once a third are assigned.
 * The ledger replays the decisions consumed: an assignment +1 for its agent, an ended fact -1
 * when the test sends it (before any router can act on it, so the ledger never exceeds what the
 * router holds: above capacity here means above capacity there). */
#define RE_LOAD_AGENTS 200
#define RE_LOAD_QUEUES 4
#define RE_LOAD_CALLS  10000
#define RE_LOAD_CAP    3
#define RE_HOLD_MS     300
/* The longest a load run may go without progress: far above what a fault costs (the stack's 6 s
 * session timeout before a killed router's partitions move, the 5 s longest retry back-off
 * while the state is rebuilt). */
#define RE_STALL_MS 60000
/* A load test's whole budget: its wait for the suite lock (the other load test may hold it),
 * router start-up, set-up, the run (81 requests/s, over 2 minutes, on this 2-core machine
 * under parallel load, ASan build) and the drain. RE_STALL_MS is what catches a stuck run. */
#define RE_LOAD_TIMEOUT_S 600

struct re_load_stats {
    int assigned;   /* distinct interactions assigned */
    int events;     /* cc.routing.assigned events, distinct ids */
    int duplicates; /* the same event id seen again (re-published; dropped) */
    int reassigned; /* a second assignment (new id) of an interaction not yet ended */
    int same_agent; /* ... of those, to the agent that held it already */
    int late;       /* an assignment of an interaction the test already ended */
    int early;      /* re-assigned or after end before the fault struck */
    int withdrawn;  /* cc.routing.withdrawn */
    int rejected;   /* cc.routing.rejected / no_agent_timeout */
    int max_used;   /* highest ledger value of any agent */
    int at_cap;     /* assignments that filled an agent's last slot */
    int over_cap;   /* assignments beyond capacity */
    int64_t fault_ms, total_ms;
};

/* Sends a fact without waiting for delivery (the load loop flushes once per round). */
static void re_send_nowait(const char *topic, const char *type, const char *subject,
                           const char *data)
{
    json_t *d = json_loads(data, 0, NULL);
    json_t *env = cc_event_build(type, "/test/router-engine", subject, re_tenant, d);

    cr_assert_not_null(env, "expected an envelope for %s", type);
    cr_assert_eq(cc_producer_send_event(re_producer, topic, subject, env), 0,
                 "expected %s to be queued", type);
    json_decref(env);
}

static int re_agent_index(const char *agent)
{
    return agent && agent[0] == 'g' ? atoi(agent + 1) : -1;
}

/* Creates the queues and agents through r (agent g<n> in queues q<n%4> and q<(n+1)%4>) and
 * makes every agent available. */
static void re_load_setup(const struct re_router *r)
{
    static const char *const strategies[RE_LOAD_QUEUES] = {"round_robin", "longest_idle", "linear",
                                                           "fewest_interactions"};
    char body[256], id[16], q[16];

    for (int k = 0; k < RE_LOAD_QUEUES; k++) {
        snprintf(body, sizeof(body),
                 "{\"id\":\"q%d\",\"name\":\"Q%d\",\"channels\":[\"chat\"],\"strategy\":\"%s\","
                 "\"ring_timeout_s\":600}",
                 k, k, strategies[k]);
        re_put(r, "POST", "/v1/queues", body, 201);
    }
    for (int a = 0; a < RE_LOAD_AGENTS; a++) {
        snprintf(id, sizeof(id), "g%03d", a);
        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"name\":\"Agent %s\",\"capacity\":{\"chat\":%d}}", id, id,
                 RE_LOAD_CAP);
        re_put(r, "POST", "/v1/agents", body, 201);
        snprintf(q, sizeof(q), "q%d", a % RE_LOAD_QUEUES);
        re_member(r, q, id, a / RE_LOAD_QUEUES + 1);
        snprintf(q, sizeof(q), "q%d", (a + 1) % RE_LOAD_QUEUES);
        re_member(r, q, id, a / RE_LOAD_QUEUES + 1);
    }
    for (int k = 0; k < RE_LOAD_QUEUES; k++) {
        snprintf(q, sizeof(q), "q%d", k);
        re_wait_members(r, q, 2 * RE_LOAD_AGENTS / RE_LOAD_QUEUES);
    }
    for (int a = 0; a < RE_LOAD_AGENTS; a++) {
        snprintf(id, sizeof(id), "g%03d", a);
        re_state(r, id, RE_ADMIN, "{\"state\":\"available\"}");
    }
}

/* Sends the burst of route requests, then plays the agents until every request was assigned
 * and ended, or until nothing moved (no new assignment, nothing to end) for stall_ms; calls
 * fault() once a third are assigned. A deadline on progress, not on the whole run: on a loaded
 * machine the run takes several times as long, while a lost or stuck request still stops it. */
static void re_load_run(void (*fault)(void *), void *fault_ctx, int stall_ms,
                        struct re_load_stats *st)
{
    struct pending {
        int64_t due;
        int agent;
        char sub[96];
    } *pend = calloc(2 * RE_LOAD_CALLS, sizeof(*pend));
    int used[RE_LOAD_AGENTS] = {0};
    json_t *ids = json_object(), *holder = json_object(), *ended = json_object();
    size_t cursor = 0, head = 0, tail = 0;
    int64_t start = cc_time_mono_ms(), moved = start; /* last progress */
    int ended_n = 0;
    bool fired = false;
    char ix[128], what[32], data[256];

    cr_assert_not_null(pend, "expected memory");
    memset(st, 0, sizeof(*st));
    re_watch_decisions_only = true;
    for (int i = 0; i < RE_LOAD_CALLS; i++) {
        snprintf(what, sizeof(what), "L%05d", i);
        re_ix(ix, sizeof(ix), what);
        snprintf(data, sizeof(data), "{\"queue_id\":\"q%d\",\"channel\":\"chat\",\"priority\":0}",
                 i % RE_LOAD_QUEUES);
        re_send_nowait(CC_TOPIC_ROUTING_REQUESTS, "cc.routing.route", ix, data);
        if (i % 500 == 499)
            cc_producer_poll(re_producer, 0);
    }
    cr_assert_eq(cc_producer_flush(re_producer, 30000), 0, "expected the burst delivered");

    while (ended_n < RE_LOAD_CALLS && cc_time_mono_ms() - moved < stall_ms) {
        int64_t now;
        json_t *ev;

        cc_consumer_poll(re_watch.consumer, 20);
        for (; cursor < json_array_size(re_watch.events); cursor++) {
            const char *id, *sub, *agent, *type;
            json_t *prev;
            int a;

            ev = json_array_get(re_watch.events, cursor);
            type = json_string_value(json_object_get(ev, "type"));
            if (type && (strcmp(type, "cc.routing.rejected") == 0 ||
                         strcmp(type, "cc.routing.no_agent_timeout") == 0))
                st->rejected++;
            if (type && strcmp(type, "cc.routing.withdrawn") == 0)
                st->withdrawn++;
            if (!re_match(ev, "cc.routing.assigned", NULL, NULL, NULL))
                continue;
            id = json_string_value(json_object_get(ev, "id"));
            sub = json_string_value(json_object_get(ev, "subject"));
            agent = json_string_value(json_object_get(json_object_get(ev, "data"), "agent_id"));
            a = re_agent_index(agent);
            cr_assert(id && sub && a >= 0 && a < RE_LOAD_AGENTS,
                      "expected an assignment with id, subject and one of our agents: %s %s %s", id,
                      sub, agent);
            if (json_object_get(ids, id)) {
                st->duplicates++;
                continue;
            }
            json_object_set_new(ids, id, json_true());
            st->events++;
            moved = cc_time_mono_ms();
            if ((json_object_get(ended, sub) || json_object_get(holder, sub)) && !fired)
                st->early++;
            if (json_object_get(ended, sub)) {
                st->late++;
                continue;
            }
            prev = json_object_get(holder, sub);
            if (prev) { /* its earlier offer is gone (only after Redis lost it) */
                st->reassigned++;
                st->same_agent += json_integer_value(prev) == a;
                used[json_integer_value(prev)]--;
            } else {
                st->assigned++;
            }
            json_object_set_new(holder, sub, json_integer(a));
            if (++used[a] > st->max_used)
                st->max_used = used[a];
            st->at_cap += used[a] == RE_LOAD_CAP;
            st->over_cap += used[a] > RE_LOAD_CAP;
            snprintf(data, sizeof(data),
                     "{\"answered_by\":\"agent\",\"agent_id\":\"%s\",\"wait_ms\":1}", agent);
            re_send_nowait(CC_TOPIC_INTERACTIONS, "cc.interaction.answered", sub, data);
            pend[tail].due = cc_time_mono_ms() + RE_HOLD_MS;
            pend[tail].agent = a;
            snprintf(pend[tail].sub, sizeof(pend[tail].sub), "%s", sub);
            tail++;
            cr_assert(tail < 2 * RE_LOAD_CALLS, "expected fewer than %d assignments",
                      2 * RE_LOAD_CALLS);
            if (!fired && st->assigned >= RE_LOAD_CALLS / 3) {
                fired = true;
                st->fault_ms = cc_time_mono_ms() - start;
                fault(fault_ctx);
            }
        }
        now = cc_time_mono_ms();
        for (; head < tail && pend[head].due <= now; head++) {
            const char *sub = pend[head].sub;
            json_t *h = json_object_get(holder, sub);
            int a = pend[head].agent;

            /* re-offered elsewhere: that offer's own entry ends it. Re-offered to the same agent:
             * two entries name it, and the first one due ends it (once: the ledger holds it
             * once) */
            if (!h || json_integer_value(h) != a || json_object_get(ended, sub))
                continue;
            snprintf(data, sizeof(data),
                     "{\"ended_by\":\"agent\",\"talk_ms\":10,\"hold_ms\":0,\"agent_id\":\"g%03d\"}",
                     a);
            re_send_nowait(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", sub, data);
            json_object_set_new(ended, sub, json_true());
            used[a]--;
            ended_n++;
            moved = now;
        }
        cc_producer_poll(re_producer, 0);
    }
    cr_assert_eq(cc_producer_flush(re_producer, 10000), 0, "expected the facts delivered");
    st->total_ms = cc_time_mono_ms() - start;
    re_watch_decisions_only = false;
    fprintf(stderr,
            "router_engine load: %d requests, %d agents x %d chats, %d queues: %d assigned "
            "(%d assignment events, %d re-published duplicates dropped, %d re-assigned (%d to the "
            "same agent), %d after end, %d of them before the fault), %d withdrawn, %d ended, %d "
            "rejected; ledger max %d "
            "per agent, %d fills to capacity, %d over; "
            "fault at %.1f s, done in %.1f s (%.0f requests/s)\n",
            RE_LOAD_CALLS, RE_LOAD_AGENTS, RE_LOAD_CAP, RE_LOAD_QUEUES, st->assigned, st->events,
            st->duplicates, st->reassigned, st->same_agent, st->late, st->early, st->withdrawn,
            ended_n, st->rejected, st->max_used, st->at_cap, st->over_cap, st->fault_ms / 1000.0,
            st->total_ms / 1000.0,
            RE_LOAD_CALLS * 1000.0 / (double)(st->total_ms ? st->total_ms : 1));
    json_decref(ids);
    json_decref(holder);
    json_decref(ended);
    free(pend);
    cr_assert(fired, "expected the fault to strike (a third assigned)");
    cr_assert_eq(st->assigned, RE_LOAD_CALLS,
                 "expected all %d requests assigned, got %d (nothing moved for %d s)",
                 RE_LOAD_CALLS, st->assigned, stall_ms / 1000);
    cr_assert_eq(ended_n, RE_LOAD_CALLS, "expected all %d ended, got %d (nothing moved for %d s)",
                 RE_LOAD_CALLS, ended_n, stall_ms / 1000);
    cr_assert_eq(st->over_cap, 0, "expected no agent beyond %d chats (ledger max %d)", RE_LOAD_CAP,
                 st->max_used);
    cr_assert_eq(st->max_used, RE_LOAD_CAP, "expected agents filled to capacity at times");
    cr_assert_eq(st->rejected, 0, "expected no request rejected");
    cr_assert_eq(st->early, 0, "expected no second assignment of an interaction before the fault");
}

/* How many agents hold a chat plus how many queues have a waiting interaction. */
static int re_load_busy(const struct re_router *r)
{
    char id[16], path[64];
    int busy = 0;

    for (int a = 0; a < RE_LOAD_AGENTS; a++) {
        snprintf(id, sizeof(id), "g%03d", a);
        busy += re_agent_used(r, id, "chat", NULL) != 0;
    }
    for (int k = 0; k < RE_LOAD_QUEUES; k++) {
        json_t *v;

        snprintf(path, sizeof(path), "/v1/queues/q%d/live", k);
        v = re_http(r, "GET", path, RE_ADMIN, NULL, 200);
        busy += json_integer_value(json_object_get(v, "waiting")) != 0;
        json_decref(v);
    }
    return busy;
}

/* Waits until no agent holds a chat and no queue has a waiting interaction: every request
 * ended, nothing stuck or leaked in Redis. Waits as long as that count keeps falling (the
 * routers may still be working through the last facts on a loaded machine) and gives up after
 * 30 s without one fewer. Returns what was still busy then (0: drained). */
static int re_load_drained(const struct re_router *r)
{
    int64_t moved = cc_time_mono_ms();
    int busy, least = INT_MAX;

    while ((busy = re_load_busy(r)) != 0) {
        if (busy < least) {
            least = busy;
            moved = cc_time_mono_ms();
        }
        if (cc_time_mono_ms() - moved >= 30000)
            break;
        usleep(500 * 1000);
    }
    return busy;
}

static void re_fault_kill(void *ctx)
{
    re_router_stop(ctx, SIGKILL);
}

/* Two routers; one is SIGKILLed once a third of the 10,000 are assigned. The survivor takes its
 * partitions (after the session timeout) and the outbox lease and finishes: every request
 * exactly one assignment (a re-published one carries the same id and is dropped), none
 * re-assigned, none lost, no agent beyond capacity. */
Test(router_engine, under_load_finishes_the_work_of_a_router_killed_mid_way,
     .timeout = RE_LOAD_TIMEOUT_S)
{
    struct re_router r1, r2;
    struct re_load_stats st;
    char inst1[96], inst2[96];

    re_lock(LOCK_EX);
    re_router_start(&r1, itest_unique(inst1, sizeof(inst1), "rer1"));
    re_router_start(&r2, itest_unique(inst2, sizeof(inst2), "rer2"));
    re_load_setup(&r1);
    re_load_run(re_fault_kill, &r1, RE_STALL_MS, &st);
    cr_assert_eq(st.reassigned, 0, "expected no interaction assigned twice, got %d", st.reassigned);
    cr_assert_eq(st.late, 0, "expected no assignment after an interaction ended, got %d", st.late);
    cr_assert_eq(st.events, RE_LOAD_CALLS, "expected exactly %d distinct assignments, got %d",
                 RE_LOAD_CALLS, st.events);
    cr_assert_eq(re_load_drained(&r2), 0,
                 "expected every agent free and every queue empty after the load");
    re_router_stop(&r2, SIGTERM);
}

/* Two routers on a private Redis and database; Redis loses everything (FLUSHALL) once a third
 * of the 10,000 are assigned. The routers rebuild from PostgreSQL and finish: every request
 * assigned and ended, none forgotten, no agent beyond capacity. An offer that was not yet
 * answered when Redis lost it is offered again (counted as re-assigned; the ledger drops the
 * lost offer); nothing is assigned after it ended. */
Test(router_engine, under_load_rebuilds_and_finishes_after_redis_loses_everything,
     .timeout = RE_LOAD_TIMEOUT_S)
{
    struct re_router r1, r2;
    struct re_load_stats st;
    char inst1[96], inst2[96], url[sizeof(re_env_redis)];

    re_lock(LOCK_EX);
    re_private_redis(re_env_redis, sizeof(re_env_redis));
    re_private_db(re_env_pg, sizeof(re_env_pg));
    snprintf(re_env_tenants, sizeof(re_env_tenants), "%s", re_tenant);
    snprintf(url, sizeof(url), "%s", re_env_redis);
    re_router_start(&r1, itest_unique(inst1, sizeof(inst1), "rer1"));
    re_router_start(&r2, itest_unique(inst2, sizeof(inst2), "rer2"));
    re_load_setup(&r1);
    re_load_run(re_fault_flush, url, RE_STALL_MS, &st);
    cr_assert_eq(re_load_drained(&r1), 0,
                 "expected every agent free and every queue empty after the load: no offer "
                 "left behind by the rebuild");
    re_router_stop(&r1, SIGTERM);
    re_router_stop(&r2, SIGTERM);
    re_env_redis[0] = re_env_pg[0] = re_env_tenants[0] = '\0';
}

/* ---- attended transfer: the router follows the call to the consulted agent ---- */
/* GET /v1/agents/{agent}/live (new reference). */
static json_t *re_live(const struct re_router *r, const char *agent)
{
    char path[128];

    snprintf(path, sizeof(path), "/v1/agents/%s/live", agent);
    return re_http(r, "GET", path, RE_ADMIN, NULL, 200);
}

/* Asserts agent's live view: state, voice capacity in use, talk_ms, handled and whether ix is
 * among its interactions. */
static void re_expect_live(const struct re_router *r, const char *agent, const char *state,
                           long used, long talk_ms, long handled, const char *ix, bool holds)
{
    json_t *v = re_live(r, agent), *it;
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
static void re_attended(const char *ix, const char *from, const char *to, const char *consult)
{
    char data[512];

    snprintf(data, sizeof(data),
             "{\"transfer_type\":\"attended\",\"target_type\":\"agent\",\"target\":\"%s\","
             "\"from_agent_id\":\"%s\",\"from_queue_id\":\"q1\",\"consult_interaction_id\":"
             "\"%s\",\"talk_ms\":1500}",
             to, from, consult);
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.transferred", ix, data);
}

/* An attended transfer as sip-edge reports it: a1 (q1, wrap-up 30 s) answered the call and
 * consulted a2 (rung directly, outside routing), then REFER/Replaces bridged the customer with
 * a2. transferred {attended, agent a2} (delivered twice) moves the call: a1 to wrap-up with its
 * 1.5 s of talk, a2 busy holding it; the consultation's own ended is not the router's; the
 * call's ended naming a2 then ends it normally (a2 to wrap-up). A transfer to an agent the
 * router does not know releases the transferring agent all the same. */
Test(router_engine, an_attended_transfer_moves_the_call_to_the_consulted_agent_once)
{
    struct re_router r;
    char ix[128], ix2[128], consult[128], inst[96];
    json_t *ev;

    re_router_start(&r, itest_unique(inst, sizeof(inst), "rer"));
    re_agent(&r, "a1");
    re_agent(&r, "a2");
    re_agent(&r, "a3");
    re_voice_queue_of(&r, "q1", "\"wrapup_s\":30,\"ring_timeout_s\":30", "a1");
    re_voice_queue_of(&r, "q2", "\"ring_timeout_s\":30", "a3");
    re_ready(&r, "a1", RE_AGENT1);
    re_state(&r, "a2", RE_ADMIN, "{\"state\":\"available\"}"); /* no phone: rung outside routing */
    re_ready(&r, "a3", RE_ADMIN);

    re_ix(ix, sizeof(ix), "att");
    re_ix(consult, sizeof(consult), "att-consult");
    re_answered_call(ix, "q1", "a1");

    re_attended(ix, "a1", "a2", consult);
    re_attended(ix, "a1", "a2", consult); /* a redelivery */
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", consult,
            "{\"ended_by\":\"agent\",\"reason\":\"transferred\",\"talk_ms\":900,"
            "\"agent_id\":\"a2\"}");
    ev = re_wait("cc.agent.state_changed", "a1", "to_state", "wrap_up", 10000);
    if (!ev)
        re_dump();
    cr_assert_not_null(ev, "expected a1 released into q1's wrap-up by the transfer");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ev, "data"), "from_state")),
                     "busy", "expected a1 to leave busy");
    ev = re_wait("cc.agent.state_changed", "a2", "to_state", "busy", 10000);
    cr_assert_not_null(ev, "expected a2 busy with the transferred call");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(ev, "data"), "interaction_id")), ix,
        "expected a2's busy to name the call");
    cr_assert_eq(re_count("cc.agent.state_changed", "a1", 500), 4,
                 "expected a1: available, reserved, busy, wrap_up -- nothing for the redelivery");
    cr_assert_eq(re_count("cc.agent.state_changed", "a2", 0), 2,
                 "expected a2: available, busy -- nothing for the redelivery");
    re_expect_live(&r, "a1", "wrap_up", 0, 1500, 1, ix, false);
    re_expect_live(&r, "a2", "busy", 1, 0, 0, ix, true);

    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix,
            "{\"ended_by\":\"customer\",\"talk_ms\":2000,\"hold_ms\":0,\"agent_id\":\"a2\"}");
    ev = re_wait("cc.agent.state_changed", "a2", "to_state", "wrap_up", 10000);
    if (!ev)
        re_dump();
    cr_assert_not_null(ev, "expected a2 in q1's wrap-up after the call's ended");
    re_expect_live(&r, "a2", "wrap_up", 0, 2000, 1, ix, false);
    re_expect_live(&r, "a1", "wrap_up", 0, 1500, 1, ix, false);

    /* to an agent the router does not know: a3 is released, the call held by nobody here */
    re_ix(ix2, sizeof(ix2), "att-out");
    re_answered_call(ix2, "q2", "a3");
    re_attended(ix2, "a3", "ghost", consult);
    ev = re_wait_nth("cc.agent.state_changed", "a3", "to_state", "available", 2, 10000);
    if (!ev)
        re_dump();
    cr_assert_not_null(ev, "expected a3 available again (q2 has no wrap-up) after the transfer");
    re_send(CC_TOPIC_INTERACTIONS, "cc.interaction.ended", ix2,
            "{\"ended_by\":\"customer\",\"talk_ms\":700,\"hold_ms\":0,\"agent_id\":\"ghost\"}");
    cr_assert_eq(re_count("cc.agent.state_changed", "a3", 500), 4,
                 "expected a3: available, reserved, busy, available -- nothing for the ended");
    re_expect_live(&r, "a3", "available", 0, 1500, 1, ix2, false);
    re_router_stop(&r, SIGTERM);
}
