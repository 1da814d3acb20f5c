/*
 * Integration tests of sip-edge with real SIP: cc-sip-edge and cc-router as processes against
 * the stack's Redis, PostgreSQL and dev broker, sipp as the callers and as the agents' phones
 * (registering with digest authentication). Each test has its own tenant (so its own queue,
 * agents, SIP domain and DID), router consumer group and sip-edge instance on a free UDP port,
 * and watches cc.interactions / cc.agents keeping only its tenant's events.
 *
 * Scenarios: an answered call end to end (created, queued, offered, answered, ended in order);
 * an unknown DID (404); a wrong password (401, no binding); a caller abandoning while queued;
 * an agent not answering (no_answer, the next agent gets the call); a busy agent (486); the
 * agent hanging up first; over capacity (503 with Retry-After).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_bus.h"
#include "cc_event.h"
#include "cc_log.h"
#include "cc_time.h"
#include "itest.h"
#include "itest_http.h"
#include "itest_proc.h"

#define SC_ADMIN    "sc-admin-token"
#define SC_JSON     "Content-Type: application/json\r\n"
#define SC_PASSWORD "agent-secret-1"
#define SC_MAX_EV   4000
/* A new router group reads cc.agents / cc.routing.requests / cc.interactions from the start: after
 * the load tests of other suites that backlog takes it a while, hence the generous waits. */
#define SC_BUS_WAIT_MS 60000

struct sc_env {
    struct itest_proc router, edge;
    int router_port, edge_http_port, sip_port;
    char sip_target[64];
};

static char sc_tenant[80];
static struct sc_env sc;
static struct itest_proc sc_procs[6]; /* phones and callers still running after a failure */
static cc_consumer *sc_watch;
static cc_producer *sc_dl;
static json_t *sc_events;
static int sc_lock_fd = -1;

/* ---- processes -------------------------------------------------------------------------- */

static char *sc_tokens(void)
{
    static char spec[256];
    char h[65];

    cc_auth_hash_token(SC_ADMIN, h);
    snprintf(spec, sizeof(spec), "CC_AUTH_TOKENS=%s:%s:admin", h, sc_tenant);
    return spec;
}

/* Logs of the processes a test starts: BUILDROOT/tests/logs/<name>.log (kept for post-mortems). */
static void sc_log_path(char *out, size_t cap, const char *name)
{
    char dir[400];

    snprintf(dir, sizeof(dir), "%s/tests/logs", itest_env("CC_TEST_BIN_DIR"));
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "expected the log directory %s", dir);
    snprintf(out, cap, "%s/%s.log", dir, name);
}

static void sc_router_start(void)
{
    char bin[512], mig[600], inst[96], group[96], env_inst[128], env_group[160], env_mig[700],
        env_ten[128], log[512], line[1024];
    const char *env[] = {sc_tokens(),
                         "CC_HTTP_PORT=0",
                         "CC_HTTP_ADDR=127.0.0.1",
                         env_inst,
                         env_group,
                         env_mig,
                         env_ten,
                         "CC_ROUTER_TICK_MS=20",
                         "CC_ROUTER_CONSUMERS=1",
                         "CC_ROUTER_OUTBOX_LEASE_MS=1000",
                         "CC_LOG_LEVEL=info",
                         NULL};
    char *argv[] = {bin, NULL};
    const char *p;

    snprintf(bin, sizeof(bin), "%s/bin/cc-router", itest_env("CC_TEST_BIN_DIR"));
    snprintf(mig, sizeof(mig), "%s/services/router/migrations", itest_env("CC_TEST_TOP"));
    itest_unique(inst, sizeof(inst), "scr");
    itest_unique(group, sizeof(group), "scrouter");
    snprintf(env_inst, sizeof(env_inst), "CC_INSTANCE_ID=%s", inst);
    snprintf(env_group, sizeof(env_group), "CC_ROUTER_CONSUMER_GROUP=%s", group);
    snprintf(env_mig, sizeof(env_mig), "CC_ROUTER_MIGRATIONS_DIR=%s", mig);
    snprintf(env_ten, sizeof(env_ten), "CC_ROUTER_TENANTS=%s", sc_tenant);
    sc_log_path(log, sizeof(log), inst);
    cr_assert_eq(itest_proc_spawn(&sc.router, argv, env, log), 0, "expected cc-router to start");
    cr_assert(itest_proc_wait_line(&sc.router, "routing: http ", line, sizeof(line), 30000),
              "expected cc-router to be routing within 30 s (see %s)", log);
    p = strstr(line, "routing: http ");
    cr_assert(p && sscanf(p, "routing: http %*[^:]:%d", &sc.router_port) == 1,
              "expected the router's http port in '%s'", line);
}

static void sc_edge_start_try(int max_calls, int attempt)
{
    char bin[512], mig[600], inst[96], env_inst[128], env_url[96], env_mig[700], env_max[64],
        log[512], line[1024];
    const char *env[] = {sc_tokens(),
                         "CC_HTTP_PORT=0",
                         "CC_HTTP_ADDR=127.0.0.1",
                         env_inst,
                         env_url,
                         env_mig,
                         env_max,
                         "CC_SIPEDGE_NONCE_SECRET=sc-test-nonce-secret",
                         "CC_SIPEDGE_REG_MIN_EXPIRES=1",
                         "CC_LOG_LEVEL=info",
                         NULL};
    char *argv[] = {bin, NULL};
    const char *p;

    snprintf(bin, sizeof(bin), "%s/bin/cc-sip-edge", itest_env("CC_TEST_BIN_DIR"));
    snprintf(mig, sizeof(mig), "%s/services/sip-edge/migrations", itest_env("CC_TEST_TOP"));
    itest_unique(inst, sizeof(inst), "sce");
    sc.sip_port = itest_free_udp_port();
    cr_assert(sc.sip_port > 0, "expected a free udp port");
    snprintf(sc.sip_target, sizeof(sc.sip_target), "127.0.0.1:%d", sc.sip_port);
    snprintf(env_inst, sizeof(env_inst), "CC_INSTANCE_ID=%s", inst);
    snprintf(env_url, sizeof(env_url), "CC_SIPEDGE_SIP_URL=sip:127.0.0.1:%d", sc.sip_port);
    snprintf(env_mig, sizeof(env_mig), "CC_SIPEDGE_MIGRATIONS_DIR=%s", mig);
    snprintf(env_max, sizeof(env_max), "CC_SIPEDGE_MAX_CALLS=%d", max_calls);
    sc_log_path(log, sizeof(log), inst);
    cr_assert_eq(itest_proc_spawn(&sc.edge, argv, env, log), 0, "expected cc-sip-edge to start");
    if (!itest_proc_wait_line(&sc.edge, "serving: sip udp/tcp", line, sizeof(line), 30000) &&
        itest_proc_wait_line(&sc.edge, "cannot listen for sip", NULL, 0, 0) && attempt < 3) {
        itest_proc_kill(&sc.edge); /* the free port was taken meanwhile: another one */
        sc_edge_start_try(max_calls, attempt + 1);
        return;
    }
    cr_assert(itest_proc_wait_line(&sc.edge, "serving: sip udp/tcp", line, sizeof(line), 0),
              "expected cc-sip-edge to serve within 30 s (see %s)", log);
    p = strstr(line, ", http ");
    cr_assert(p && sscanf(p, ", http %*[^:]:%d", &sc.edge_http_port) == 1,
              "expected the http port in '%s'", line);
    /* decisions are consumed from the latest offset: calls must wait for the assignment */
    cr_assert(itest_proc_wait_line(&sc.edge, "partitions assigned", NULL, 0, 30000),
              "expected sip-edge's decisions consumer to get its partitions (see %s)", log);
}

static void sc_edge_start(int max_calls)
{
    sc_edge_start_try(max_calls, 1);
}

static void sc_stop_checked(struct itest_proc *p, const char *what)
{
    int rc;

    if (p->pid <= 0)
        return;
    rc = itest_proc_stop(p, 15000);
    cr_expect_eq(rc, 0, "expected %s to exit 0 on SIGTERM, got %d (see %s)", what, rc, p->log);
    cr_expect(!itest_proc_sanitizer_report(p), "expected no sanitizer report in %s", p->log);
}

/* ---- bus watch -------------------------------------------------------------------------- */

static enum cc_bus_verdict sc_watch_handler(void *ctx, const struct cc_bus_msg *m, char *reason,
                                            size_t reasonlen)
{
    json_t *doc = json_loadb(m->value, m->len, 0, NULL);
    const char *tenant = json_string_value(json_object_get(doc, "tenant"));

    (void)ctx;
    (void)reason;
    (void)reasonlen;
    if (doc && tenant && strcmp(tenant, sc_tenant) == 0 && json_array_size(sc_events) < SC_MAX_EV) {
        json_object_set_new(doc, "_topic", json_string(m->topic));
        json_array_append(sc_events, doc);
    }
    json_decref(doc);
    return CC_BUS_OK;
}

static bool sc_match(const json_t *ev, const char *type, const char *subject, const char *field,
                     const char *value);

/* Waits until the watch has its partitions: a marker event of our tenant, sent again every
 * 500 ms (one sent before the assignment is skipped by start_at_latest), comes back. */
static void sc_watch_barrier(void)
{
    int64_t until = cc_time_mono_ms() + 30000, next = 0;

    while (cc_time_mono_ms() < until) {
        size_t i;
        json_t *ev;

        if (cc_time_mono_ms() >= next) {
            json_t *env = cc_event_build("cc.test.marker", "/test/sipedge-calls", "marker",
                                         sc_tenant, json_object());
            cr_assert_not_null(env, "expected a marker envelope");
            cc_producer_send_event(sc_dl, CC_TOPIC_INTERACTIONS, "marker", env);
            json_decref(env);
            next = cc_time_mono_ms() + 500;
        }
        cc_consumer_poll(sc_watch, 50);
        json_array_foreach(sc_events, i, ev)
        {
            if (sc_match(ev, "cc.test.marker", "marker", NULL, NULL))
                return;
        }
    }
    cr_assert_fail("expected the watch consumer to get its partitions within 30 s");
}

static void sc_watch_start(void)
{
    static const char *const topics[] = {CC_TOPIC_INTERACTIONS, CC_TOPIC_AGENTS,
                                         CC_TOPIC_ROUTING_DECISIONS};
    struct cc_bus_config cfg;
    char group[96];

    cc_bus_config_defaults(&cfg);
    cfg.brokers = itest_env("CC_KAFKA_BROKERS");
    cfg.client_id = "test-sipedge-calls";
    cfg.session_timeout_ms = 6000;
    cfg.heartbeat_interval_ms = 1000;
    cfg.fetch_wait_max_ms = 10;
    cfg.start_at_latest = true; /* only this test's events matter: skip the topics' backlog */
    itest_unique(group, sizeof(group), "scwatch");
    sc_events = json_array();
    sc_dl = cc_producer_new(&cfg);
    sc_watch = cc_consumer_new(&cfg, group, topics, 3, sc_watch_handler, NULL, sc_dl);
    cr_assert_not_null(sc_watch, "expected a watch consumer");
    sc_watch_barrier();
}

static bool sc_match(const json_t *ev, const char *type, const char *subject, const char *field,
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

/* Polls until an event matching arrives; returns it (borrowed) and its index, or NULL. */
static json_t *sc_wait(const char *type, const char *subject, const char *field, const char *value,
                       int timeout_ms, size_t *index)
{
    int64_t until = cc_time_mono_ms() + timeout_ms;

    for (;;) {
        size_t i;
        json_t *ev;

        json_array_foreach(sc_events, i, ev)
        {
            if (sc_match(ev, type, subject, field, value)) {
                if (index)
                    *index = i;
                return ev;
            }
        }
        if (cc_time_mono_ms() > until)
            return NULL;
        cc_consumer_poll(sc_watch, 20);
    }
}

static size_t sc_count(const char *type, const char *subject, int settle_ms)
{
    int64_t until = cc_time_mono_ms() + settle_ms;
    size_t i, n = 0;
    json_t *ev;

    while (cc_time_mono_ms() < until)
        cc_consumer_poll(sc_watch, 20);
    json_array_foreach(sc_events, i, ev)
    {
        if (sc_match(ev, type, subject, NULL, NULL))
            n++;
    }
    return n;
}

static json_int_t sc_int(const json_t *ev, const char *field)
{
    return json_integer_value(json_object_get(json_object_get(ev, "data"), field));
}

static const char *sc_str(const json_t *ev, const char *field)
{
    const char *s = json_string_value(json_object_get(json_object_get(ev, "data"), field));
    return s ? s : "";
}

/* The interaction sip-edge created for a call to did. */
static const char *sc_interaction_of(const char *did)
{
    json_t *ev = sc_wait("cc.interaction.created", NULL, "to", did, SC_BUS_WAIT_MS, NULL);

    cr_assert_not_null(ev, "expected cc.interaction.created for a call to %s", did);
    return json_string_value(json_object_get(ev, "subject"));
}

/* ---- REST ------------------------------------------------------------------------------- */

static void sc_rest(int port, const char *method, const char *path, const char *body, int want)
{
    struct itest_http_reply rep;

    itest_http_fetch(port, method, path, SC_ADMIN, body ? SC_JSON : NULL, body, &rep);
    cr_assert_eq(rep.status, want, "expected %s %s -> %d, got %d: %.300s", method, path, want,
                 rep.status, rep.body);
}

static json_t *sc_get(int port, const char *path)
{
    struct itest_http_reply rep;

    itest_http_fetch(port, "GET", path, SC_ADMIN, NULL, NULL, &rep);
    cr_assert_eq(rep.status, 200, "expected GET %s -> 200, got %d", path, rep.status);
    return json_loadb(rep.body, rep.body_len, 0, NULL);
}

/* A queue with ring timeout and max_no_answer (0: the router's default). */
static void sc_queue(const char *q, int ring_timeout_s, int max_no_answer)
{
    char body[400];

    snprintf(body, sizeof(body),
             "{\"id\":\"%s\",\"name\":\"%s\",\"channels\":[\"voice\"],\"strategy\":"
             "\"longest_idle\",\"wrapup_s\":1,\"ring_timeout_s\":%d%s%d}",
             q, q, ring_timeout_s,
             max_no_answer ? ",\"max_no_answer\":" : ",\"priority\":", max_no_answer);
    sc_rest(sc.router_port, "POST", "/v1/queues", body, 201);
}

/* Agent `id` in queue q at position pos, with the SIP credential user@tenant. */
static void sc_agent(const char *id, const char *q, int pos, const char *user)
{
    char body[300], path[200];

    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"name\":\"Agent %s\"}", id, id);
    sc_rest(sc.router_port, "POST", "/v1/agents", body, 201);
    snprintf(path, sizeof(path), "/v1/queues/%s/members/%s", q, id);
    snprintf(body, sizeof(body), "{\"position\":%d}", pos);
    sc_rest(sc.router_port, "PUT", path, body, 201);
    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\",\"agent_id\":\"%s\"}",
             user, SC_PASSWORD, id);
    sc_rest(sc.edge_http_port, "POST", "/v1/sip/credentials", body, 201);
}

static void sc_wait_members(const char *q, int members)
{
    int64_t until = cc_time_mono_ms() + 10000;
    char path[160];
    long got = -1;

    snprintf(path, sizeof(path), "/v1/queues/%s/live", q);
    while (cc_time_mono_ms() < until) {
        json_t *v = sc_get(sc.router_port, path);
        got = (long)json_integer_value(json_object_get(v, "members"));
        json_decref(v);
        if (got == members)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("expected queue '%s' to show %d members, got %ld", q, members, got);
}

static void sc_available(const char *agent)
{
    char path[160];

    snprintf(path, sizeof(path), "/v1/agents/%s/state", agent);
    sc_rest(sc.router_port, "POST", path, "{\"state\":\"available\"}", 200);
}

/* A DID of this test ("+49" and 11 random digits) routed to queue q. */
static void sc_did(char *did, size_t cap, const char *q)
{
    unsigned long long r = 0;
    char body[200];

    cr_assert_eq(getrandom(&r, sizeof(r), 0), (ssize_t)sizeof(r), "expected random bytes");
    snprintf(did, cap, "+49%011llu", r % 100000000000ULL);
    snprintf(body, sizeof(body), "{\"number\":\"%s\",\"queue_id\":\"%s\"}", did, q);
    sc_rest(sc.edge_http_port, "POST", "/v1/sip/dids", body, 201);
}

/* ---- sipp ------------------------------------------------------------------------------- */

static struct itest_proc *sc_sipp_slot(void)
{
    for (size_t i = 0; i < sizeof(sc_procs) / sizeof(sc_procs[0]); i++)
        if (sc_procs[i].pid <= 0)
            return &sc_procs[i];
    cr_assert_fail("expected a free sipp slot");
    return NULL;
}

/* Starts sipp with scenario; remote NULL = a UAS on port. */
static struct itest_proc *sc_sipp(const char *scenario, const char *remote, int port,
                                  const char *const extra[])
{
    struct itest_proc *p = sc_sipp_slot();
    char name[96], log[512];

    itest_unique(name, sizeof(name), "scsipp");
    sc_log_path(log, sizeof(log), name);
    cr_assert_eq(itest_sipp_start(p, itest_env("CC_TEST_TOP"), scenario, remote, port, extra, log),
                 0, "expected sipp to start");
    return p;
}

static void sc_sipp_done(struct itest_proc *p, const char *what, int timeout_ms)
{
    int rc = itest_proc_wait(p, timeout_ms);

    if (rc == -ETIMEDOUT)
        itest_proc_kill(p);
    cr_assert_eq(rc, 0, "expected %s (sipp) to succeed, got %d (see %s and %s)", what, rc, p->log,
                 sc.edge.log);
}

/* Registers user's phone (its UAS on uas_port) with password; waits for sipp's verdict. */
static void sc_register_as(const char *user, const char *password, int uas_port,
                           const char *scenario)
{
    char port[16];
    const char *extra[] = {"-s",      user,   "-au",      user, "-ap",  password,  "-key", "domain",
                           sc_tenant, "-key", "uas_port", port, "-key", "expires", "300",  NULL};
    struct itest_proc *p;

    snprintf(port, sizeof(port), "%d", uas_port);
    p = sc_sipp(scenario, sc.sip_target, itest_free_udp_port(), extra);
    sc_sipp_done(p, scenario, 20000);
}

/* Registers the agent's phone and waits until the router rings agent there. */
static void sc_register(const char *agent, const char *user, int uas_port)
{
    int64_t until = cc_time_mono_ms() + SC_BUS_WAIT_MS;
    char path[160], want[64];

    sc_register_as(user, SC_PASSWORD, uas_port, "agent_register.xml");
    snprintf(path, sizeof(path), "/v1/agents/%s/live", agent);
    snprintf(want, sizeof(want), ":%d", uas_port);
    while (cc_time_mono_ms() < until) {
        json_t *v = sc_get(sc.router_port, path);
        const char *c = json_string_value(json_object_get(v, "contact"));
        bool ok = c && strstr(c, want);
        json_decref(v);
        if (ok)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("expected the router to learn agent '%s''s contact on port %d", agent, uas_port);
}

static struct itest_proc *sc_phone(const char *scenario, int uas_port)
{
    return sc_sipp(scenario, NULL, uas_port, NULL);
}

static struct itest_proc *sc_caller(const char *scenario, const char *did, const char *pause_ms)
{
    const char *extra[] = {"-s", did, "-d", pause_ms ? pause_ms : "0", NULL};

    return sc_sipp(scenario, sc.sip_target, itest_free_udp_port(), extra);
}

/* ---- fixture ---------------------------------------------------------------------------- */

/* Shares test_router_engine.c's suite lock: its load tests take it exclusively (they saturate
 * the machine), the small tests of both suites take it shared. */
static void sc_lock(void)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/router_engine.lock", itest_env("CC_TEST_BIN_DIR"));
    sc_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    cr_assert(sc_lock_fd >= 0 && flock(sc_lock_fd, LOCK_SH) == 0, "expected the suite lock");
}

static void sc_setup(void)
{
    cc_log_init("test-sipedge-calls", CC_LOG_WARN);
    sc_lock();
    memset(&sc, 0, sizeof(sc));
    itest_unique(sc_tenant, sizeof(sc_tenant), "sc");
    sc_watch_start();
}

static void sc_teardown(void)
{
    for (size_t i = 0; i < sizeof(sc_procs) / sizeof(sc_procs[0]); i++)
        itest_proc_kill(&sc_procs[i]);
    itest_proc_kill(&sc.edge);
    itest_proc_kill(&sc.router);
    cc_consumer_free(sc_watch);
    cc_producer_free(sc_dl);
    json_decref(sc_events);
    if (sc_lock_fd >= 0)
        close(sc_lock_fd); /* releases the lock */
    sc_lock_fd = -1;
    sc_watch = NULL;
    sc_dl = NULL;
    sc_events = NULL;
}

/* Both services up, one queue "q1", agents a1 (and a2 when two) registered and available, a1
 * idle longest. Phones' UAS ports in ports[]. */
static void sc_start_with_agents(int nagents, int ring_timeout_s, int max_no_answer, int max_calls,
                                 int ports[2])
{
    static const char *const ids[] = {"a1", "a2"}, *const users[] = {"1001", "1002"};

    sc_router_start();
    sc_edge_start(max_calls);
    sc_queue("q1", ring_timeout_s, max_no_answer);
    for (int i = 0; i < nagents; i++)
        sc_agent(ids[i], "q1", i + 1, users[i]);
    sc_wait_members("q1", nagents);
    for (int i = 0; i < nagents; i++) {
        ports[i] = itest_free_udp_port();
        sc_register(ids[i], users[i], ports[i]);
    }
    for (int i = 0; i < nagents; i++) {
        sc_available(ids[i]);
        usleep(30 * 1000);
    }
}

static void sc_stop_services(void)
{
    sc_stop_checked(&sc.edge, "cc-sip-edge");
    sc_stop_checked(&sc.router, "cc-router");
}

TestSuite(sipedge_calls, .init = sc_setup, .fini = sc_teardown, .timeout = 300);

/* (1) The spine: a caller reaches agent a1 through the DID; the phone rings, answers, the caller
 * talks for a second and hangs up. cc.interactions tells it in order. */
Test(sipedge_calls, answered_call_shows_created_queued_offered_answered_ended_in_order)
{
    static const char *const order[] = {"cc.interaction.created", "cc.interaction.queued",
                                        "cc.interaction.offered", "cc.interaction.answered",
                                        "cc.interaction.ended"};
    struct itest_proc *phone, *caller;
    char did[32];
    size_t idx[5];
    const char *ix;
    json_t *ev;
    int ports[2];

    sc_start_with_agents(1, 20, 0, 100, ports);
    sc_did(did, sizeof(did), "q1");
    phone = sc_phone("agent_answer.xml", ports[0]);
    caller = sc_caller("caller_answer.xml", did, "1000");
    sc_sipp_done(caller, "the caller", 90000);
    sc_sipp_done(phone, "a1's phone", 10000);

    ix = sc_interaction_of(did);
    for (size_t i = 0; i < 5; i++) {
        ev = sc_wait(order[i], ix, NULL, NULL, SC_BUS_WAIT_MS, &idx[i]);
        cr_assert_not_null(ev, "expected %s for %s", order[i], ix);
        cr_assert(i == 0 || idx[i] > idx[i - 1], "expected %s after %s", order[i], order[i - 1]);
    }
    ev = json_array_get(sc_events, idx[0]);
    cr_assert_str_eq(sc_str(ev, "queue_id"), "q1");
    cr_assert_str_eq(sc_str(ev, "channel"), "voice");
    cr_assert_str_eq(sc_str(ev, "from"), "+4917612345678", "expected the caller's number");
    cr_assert(strncmp(json_string_value(json_object_get(ev, "source")), "/sip-edge/", 10) == 0,
              "expected sip-edge as the source of created");
    ev = json_array_get(sc_events, idx[3]);
    cr_assert_str_eq(sc_str(ev, "agent_id"), "a1", "expected a1 to answer");
    cr_assert_str_eq(sc_str(ev, "answered_by"), "agent");
    cr_assert(sc_int(ev, "ring_ms") >= 150, "expected the phone's 200 ms of ringing in ring_ms");
    ev = json_array_get(sc_events, idx[4]);
    cr_assert_str_eq(sc_str(ev, "ended_by"), "customer", "expected the caller to hang up");
    cr_assert_str_eq(sc_str(ev, "reason"), "normal");
    cr_assert(sc_int(ev, "talk_ms") >= 900 && sc_int(ev, "talk_ms") < 5000,
              "expected about 1 s of talk, got %lld", (long long)sc_int(ev, "talk_ms"));
    cr_assert_eq(sc_count("cc.interaction.ended", ix, 300), 1, "expected exactly one ended");
    sc_stop_services();
}

/* (2) A number nobody configured: 404, and no interaction. */
Test(sipedge_calls, unknown_did_is_answered_404)
{
    struct itest_proc *caller;

    sc_router_start();
    sc_edge_start(100);
    caller = sc_caller("caller_404.xml", "+4900000000001", NULL);
    sc_sipp_done(caller, "the 404 caller", 20000);
    cr_assert(itest_proc_wait_line(&sc.edge, "unknown number '+4900000000001'", NULL, 0, 2000),
              "expected a log line about the unknown number");
    sc_stop_services();
}

/* (3) A phone with the wrong password is challenged again (401) and no binding exists. */
Test(sipedge_calls, register_with_a_wrong_password_gets_401_and_no_binding)
{
    json_t *v;

    sc_router_start();
    sc_edge_start(100);
    sc_rest(sc.edge_http_port, "POST", "/v1/sip/credentials",
            "{\"username\":\"1001\",\"password\":\"" SC_PASSWORD "\",\"agent_id\":\"a1\"}", 201);
    sc_register_as("1001", "not-the-password", itest_free_udp_port(), "agent_register_refused.xml");
    v = sc_get(sc.edge_http_port, "/v1/sip/registrations");
    cr_assert_eq(json_array_size(json_object_get(v, "items")), 0,
                 "expected no registration after a failed authentication");
    json_decref(v);
    cr_assert_eq(sc_count("cc.agent.registered", "a1", 500), 0,
                 "expected no cc.agent.registered for a refused phone");
    sc_stop_services();
}

/* (4) No agent is available: the caller waits 1.5 s, hangs up (CANCEL): abandoned with the
 * wait, then ended (reason abandoned). */
Test(sipedge_calls, caller_abandoning_while_queued_is_abandoned_with_its_wait)
{
    struct itest_proc *caller;
    char did[32];
    const char *ix;
    json_t *ev;

    sc_router_start();
    sc_edge_start(100);
    sc_queue("q1", 20, 0);
    sc_did(did, sizeof(did), "q1");
    caller = sc_caller("caller_cancel.xml", did, "1500");
    sc_sipp_done(caller, "the abandoning caller", 90000);
    ix = sc_interaction_of(did);
    cr_assert_not_null(sc_wait("cc.interaction.queued", ix, NULL, NULL, SC_BUS_WAIT_MS, NULL),
                       "expected the router to queue it");
    ev = sc_wait("cc.interaction.abandoned", ix, NULL, NULL, SC_BUS_WAIT_MS, NULL);
    cr_assert_not_null(ev, "expected cc.interaction.abandoned");
    cr_assert_str_eq(sc_str(ev, "queue_id"), "q1");
    cr_assert(sc_int(ev, "wait_ms") >= 1400 && sc_int(ev, "wait_ms") < 10000,
              "expected about 1.5 s of wait, got %lld", (long long)sc_int(ev, "wait_ms"));
    ev = sc_wait("cc.interaction.ended", ix, NULL, NULL, SC_BUS_WAIT_MS, NULL);
    cr_assert_not_null(ev, "expected cc.interaction.ended after the abandon");
    cr_assert_str_eq(sc_str(ev, "reason"), "abandoned");
    cr_assert_str_eq(sc_str(ev, "ended_by"), "customer");
    sc_stop_services();
}

/* (5) RONA: a1 (idle longest) rings for the queue's 2 s and never answers: no_answer (timeout)
 * for a1, and a2 gets the call and answers. */
Test(sipedge_calls, unanswered_offer_is_no_answer_and_the_next_agent_gets_the_call)
{
    struct itest_proc *p1, *p2, *caller;
    char did[32];
    const char *ix;
    json_t *ev;
    int ports[2];

    sc_start_with_agents(2, 2, 1, 100, ports);
    sc_did(did, sizeof(did), "q1");
    p1 = sc_phone("agent_ring.xml", ports[0]);
    p2 = sc_phone("agent_answer.xml", ports[1]);
    caller = sc_caller("caller_answer.xml", did, "500");
    sc_sipp_done(caller, "the caller", 90000);
    sc_sipp_done(p1, "a1's phone (rings, cancelled)", 10000);
    sc_sipp_done(p2, "a2's phone", 10000);
    ix = sc_interaction_of(did);
    ev = sc_wait("cc.interaction.no_answer", ix, "agent_id", "a1", SC_BUS_WAIT_MS, NULL);
    cr_assert_not_null(ev, "expected no_answer for a1");
    cr_assert_str_eq(sc_str(ev, "reason"), "timeout");
    cr_assert_eq(sc_int(ev, "sip_status"), 408);
    /* at most the 2 s: the router's ring timer starts at its offer, before the phone rings */
    cr_assert(sc_int(ev, "ring_ms") >= 200 && sc_int(ev, "ring_ms") <= 2500,
              "expected up to 2 s of ringing, got %lld", (long long)sc_int(ev, "ring_ms"));
    ev = sc_wait("cc.interaction.answered", ix, NULL, NULL, SC_BUS_WAIT_MS, NULL);
    cr_assert_not_null(ev, "expected the call answered");
    cr_assert_str_eq(sc_str(ev, "agent_id"), "a2", "expected the next agent a2 to answer");
    sc_stop_services();
}

/* (6) a1's phone is busy (486): no_answer (busy, 486) and a2 answers. */
Test(sipedge_calls, busy_agent_is_no_answer_busy_and_the_next_agent_answers)
{
    struct itest_proc *p1, *p2, *caller;
    char did[32];
    const char *ix;
    json_t *ev;
    int ports[2];

    sc_start_with_agents(2, 20, 1, 100, ports);
    sc_did(did, sizeof(did), "q1");
    p1 = sc_phone("agent_busy.xml", ports[0]);
    p2 = sc_phone("agent_answer.xml", ports[1]);
    caller = sc_caller("caller_answer.xml", did, "500");
    sc_sipp_done(caller, "the caller", 90000);
    sc_sipp_done(p1, "a1's busy phone", 10000);
    sc_sipp_done(p2, "a2's phone", 10000);
    ix = sc_interaction_of(did);
    ev = sc_wait("cc.interaction.no_answer", ix, "agent_id", "a1", SC_BUS_WAIT_MS, NULL);
    cr_assert_not_null(ev, "expected no_answer for a1");
    cr_assert_str_eq(sc_str(ev, "reason"), "busy");
    cr_assert_eq(sc_int(ev, "sip_status"), 486);
    ev = sc_wait("cc.interaction.answered", ix, NULL, NULL, SC_BUS_WAIT_MS, NULL);
    cr_assert_not_null(ev, "expected the call answered");
    cr_assert_str_eq(sc_str(ev, "agent_id"), "a2");
    sc_stop_services();
}

/* (7) The agent hangs up first: the caller gets the BYE, ended_by agent. */
Test(sipedge_calls, agent_hanging_up_first_releases_the_caller)
{
    struct itest_proc *phone, *caller;
    char did[32];
    const char *ix;
    json_t *ev;
    int ports[2];

    sc_start_with_agents(1, 20, 0, 100, ports);
    sc_did(did, sizeof(did), "q1");
    phone = sc_phone("agent_hangup.xml", ports[0]);
    caller = sc_caller("caller_agent_hangup.xml", did, NULL);
    sc_sipp_done(caller, "the caller (BYE'd by sip-edge)", 90000);
    sc_sipp_done(phone, "a1's phone (hangs up)", 10000);
    ix = sc_interaction_of(did);
    ev = sc_wait("cc.interaction.ended", ix, NULL, NULL, SC_BUS_WAIT_MS, NULL);
    cr_assert_not_null(ev, "expected ended");
    cr_assert_str_eq(sc_str(ev, "ended_by"), "agent");
    cr_assert_str_eq(sc_str(ev, "agent_id"), "a1");
    cr_assert(sc_int(ev, "talk_ms") >= 900, "expected about 1 s of talk, got %lld",
              (long long)sc_int(ev, "talk_ms"));
    sc_stop_services();
}

/* (8) CC_SIPEDGE_MAX_CALLS=1: while one caller waits in the queue, a second gets 503. */
Test(sipedge_calls, over_capacity_is_answered_503_with_retry_after)
{
    struct itest_proc *first, *second;
    char did[32];

    sc_router_start();
    sc_edge_start(1);
    sc_queue("q1", 20, 0);
    sc_did(did, sizeof(did), "q1");
    first = sc_caller("caller_cancel.xml", did, "5000");
    cr_assert(itest_proc_wait_line(&sc.edge, "queued in 'q1'", NULL, 0, 5000),
              "expected the first call to be up");
    second = sc_caller("caller_503.xml", did, NULL);
    sc_sipp_done(second, "the second caller (503)", 20000);
    sc_sipp_done(first, "the first caller", 20000);
    cr_assert(itest_proc_wait_line(&sc.edge, "over capacity", NULL, 0, 2000),
              "expected a log line about the refused call");
    sc_stop_services();
}
