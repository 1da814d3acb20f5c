/* itest_sipedge: the fixture of sip-edge's SIP integration tests (see itest_sipedge.h). */
#include "itest_sipedge.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_event.h"
#include "cc_time.h"
#include "itest.h"
#include "itest_bus.h"
#include "itest_http.h"

#define ISE_MAX_EVENTS 4000

/* ---- processes -------------------------------------------------------------------------- */

static void ise_tokens(const struct itest_sipedge *t, char *out, size_t cap)
{
    char h[65];

    cc_auth_hash_token(ITEST_SIPEDGE_ADMIN, h);
    snprintf(out, cap, "CC_AUTH_TOKENS=%s:%s:admin%s%s", h, t->tenant, t->extra_tokens ? "," : "",
             t->extra_tokens ? t->extra_tokens : "");
}

/* BUILDROOT/tests/logs/<name>.log (kept for post-mortems). */
static void ise_log_path(char *out, size_t cap, const char *name)
{
    char dir[400];

    snprintf(dir, sizeof(dir), "%s/tests/logs", itest_env("CC_TEST_BIN_DIR"));
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "expected the log directory %s", dir);
    snprintf(out, cap, "%s/%s.log", dir, name);
}

void itest_sipedge_router_start(struct itest_sipedge *t)
{
    static const char *const topics[] = {CC_TOPIC_ROUTING_REQUESTS, CC_TOPIC_INTERACTIONS,
                                         CC_TOPIC_AGENTS};
    char bin[512], mig[600], inst[96], group[96], env_inst[128], env_group[160], env_mig[700],
        env_ten[128], tokens[1024], log[512], line[1024];
    const char *env[] = {tokens,
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

    ise_tokens(t, tokens, sizeof(tokens));
    snprintf(bin, sizeof(bin), "%s/bin/cc-router", itest_env("CC_TEST_BIN_DIR"));
    snprintf(mig, sizeof(mig), "%s/services/router/migrations", itest_env("CC_TEST_TOP"));
    itest_unique(inst, sizeof(inst), "iser");
    itest_unique(group, sizeof(group), "iserouter");
    snprintf(env_inst, sizeof(env_inst), "CC_INSTANCE_ID=%s", inst);
    snprintf(env_group, sizeof(env_group), "CC_ROUTER_CONSUMER_GROUP=%s", group);
    snprintf(env_mig, sizeof(env_mig), "CC_ROUTER_MIGRATIONS_DIR=%s", mig);
    snprintf(env_ten, sizeof(env_ten), "CC_ROUTER_TENANTS=%s", t->tenant);
    /* the router reads only what comes after this point, not the shared topics' history */
    cr_assert_eq(itest_group_at_end(group, topics, 3), 0,
                 "expected group '%s' positioned at the end of the router's topics", group);
    ise_log_path(log, sizeof(log), inst);
    cr_assert_eq(itest_proc_spawn(&t->router, argv, env, log), 0, "expected cc-router to start");
    cr_assert(itest_proc_wait_line(&t->router, "routing: http ", line, sizeof(line), 30000),
              "expected cc-router to be routing within 30 s (see %s)", log);
    p = strstr(line, "routing: http ");
    cr_assert(p && sscanf(p, "routing: http %*[^:]:%d", &t->router_port) == 1,
              "expected the router's http port in '%s'", line);
}

static void ise_edge_start_try(struct itest_sipedge *t, int max_calls, int attempt)
{
    static const char *const dialer_topics[] = {CC_TOPIC_DIALER_COMMANDS};
    char bin[512], mig[600], inst[96], env_inst[128], env_url[96], env_mig[700], env_max[64],
        tokens[1024], log[512], line[1024], env_trunk[200], env_dgroup[160], env_dten[160],
        logname[96], env_tgroup[128];
    const char *env[] = {tokens,
                         env_trunk,
                         env_dgroup,
                         env_dten,
                         "CC_SIPEDGE_TRUNK_USER=trunkuser",
                         "CC_SIPEDGE_TRUNK_PASSWORD=trunk-secret",
                         "CC_HTTP_PORT=0",
                         "CC_HTTP_ADDR=127.0.0.1",
                         env_inst,
                         env_url,
                         env_mig,
                         env_max,
                         "CC_SIPEDGE_NONCE_SECRET=sc-test-nonce-secret",
                         "CC_SIPEDGE_REG_MIN_EXPIRES=1",
                         "CC_LOG_LEVEL=info",
                         env_tgroup,
                         t->edge_env,
                         NULL};
    char *argv[] = {bin, NULL};
    const char *p;

    ise_tokens(t, tokens, sizeof(tokens));
    snprintf(bin, sizeof(bin), "%s/bin/cc-sip-edge", itest_env("CC_TEST_BIN_DIR"));
    snprintf(mig, sizeof(mig), "%s/services/sip-edge/migrations", itest_env("CC_TEST_TOP"));
    if (t->instance[0])
        snprintf(inst, sizeof(inst), "%s", t->instance);
    else
        itest_unique(inst, sizeof(inst), "isee");
    t->sip_port = itest_free_udp_port();
    cr_assert(t->sip_port > 0, "expected a free udp port");
    snprintf(t->sip_target, sizeof(t->sip_target), "127.0.0.1:%d", t->sip_port);
    snprintf(env_inst, sizeof(env_inst), "CC_INSTANCE_ID=%s", inst);
    snprintf(env_url, sizeof(env_url), "CC_SIPEDGE_SIP_URL=sip:127.0.0.1:%d", t->sip_port);
    snprintf(env_mig, sizeof(env_mig), "CC_SIPEDGE_MIGRATIONS_DIR=%s", mig);
    snprintf(env_max, sizeof(env_max), "CC_SIPEDGE_MAX_CALLS=%d", max_calls);
    /* the test's instances take each other over, not other tests' (they run side by side) */
    snprintf(env_tgroup, sizeof(env_tgroup), "CC_SIPEDGE_TAKEOVER_GROUP=%s", t->takeover_group);
    snprintf(env_trunk, sizeof(env_trunk), "CC_SIPEDGE_TRUNK_URI=%s", t->trunk_uri);
    itest_unique(t->dialer_group, sizeof(t->dialer_group), "isedialer");
    snprintf(env_dgroup, sizeof(env_dgroup), "CC_SIPEDGE_DIALER_GROUP=%s", t->dialer_group);
    snprintf(env_dten, sizeof(env_dten), "CC_SIPEDGE_DIALER_TENANTS=%s", t->tenant);
    /* only the commands this test produces from now on */
    cr_assert_eq(itest_group_at_end(t->dialer_group, dialer_topics, 1), 0,
                 "expected group '%s' positioned at the end of cc.dialer.commands",
                 t->dialer_group);
    itest_unique(logname, sizeof(logname), "isee"); /* one log per start, even of one instance */
    ise_log_path(log, sizeof(log), logname);
    cr_assert_eq(itest_proc_spawn(&t->edge, argv, env, log), 0, "expected cc-sip-edge to start");
    if (!itest_proc_wait_line(&t->edge, "serving: sip udp/tcp", line, sizeof(line), 30000) &&
        itest_proc_wait_line(&t->edge, "cannot listen for sip", NULL, 0, 0) && attempt < 3) {
        itest_proc_kill(&t->edge); /* the free port was taken meanwhile: another one */
        ise_edge_start_try(t, max_calls, attempt + 1);
        return;
    }
    cr_assert(itest_proc_wait_line(&t->edge, "serving: sip udp/tcp", line, sizeof(line), 0),
              "expected cc-sip-edge to serve within 30 s (see %s)", log);
    p = strstr(line, ", http ");
    cr_assert(p && sscanf(p, ", http %*[^:]:%d", &t->edge_http_port) == 1,
              "expected the http port in '%s'", line);
    /* decisions are consumed from the latest offset: calls must wait for the assignment */
    cr_assert(itest_proc_wait_line(&t->edge, "partitions assigned", NULL, 0, 30000),
              "expected sip-edge's decisions consumer to get its partitions (see %s)", log);
}

void itest_sipedge_edge_start(struct itest_sipedge *t, int max_calls)
{
    ise_edge_start_try(t, max_calls, 1);
}

static void ise_stop_checked(struct itest_proc *p, const char *what)
{
    int rc;

    if (p->pid <= 0)
        return;
    rc = itest_proc_stop(p, 15000);
    cr_expect_eq(rc, 0, "expected %s to exit 0 on SIGTERM, got %d (see %s)", what, rc, p->log);
    cr_expect(!itest_proc_sanitizer_report(p), "expected no sanitizer report in %s", p->log);
}

void itest_sipedge_stop_services(struct itest_sipedge *t)
{
    ise_stop_checked(&t->edge, "cc-sip-edge");
    ise_stop_checked(&t->router, "cc-router");
}

/* ---- bus watch -------------------------------------------------------------------------- */

static enum cc_bus_verdict ise_watch_handler(void *ctx, const struct cc_bus_msg *m, char *reason,
                                             size_t reasonlen)
{
    struct itest_sipedge *t = ctx;
    json_t *doc = json_loadb(m->value, m->len, 0, NULL);
    const char *tenant = json_string_value(json_object_get(doc, "tenant"));

    (void)reason;
    (void)reasonlen;
    if (doc && tenant && strcmp(tenant, t->tenant) == 0 &&
        json_array_size(t->events) < ISE_MAX_EVENTS) {
        json_object_set_new(doc, "_topic", json_string(m->topic));
        json_array_append(t->events, doc);
    }
    json_decref(doc);
    return CC_BUS_OK;
}

static bool ise_match(const json_t *ev, const char *type, const char *subject, const char *field,
                      const char *value)
{
    const char *ty = json_string_value(json_object_get(ev, "type"));
    const char *s = json_string_value(json_object_get(ev, "subject"));
    const char *v;

    if (!ty || strcmp(ty, type) != 0 || (subject && (!s || strcmp(s, subject) != 0)))
        return false;
    if (!field)
        return true;
    v = json_string_value(json_object_get(json_object_get(ev, "data"), field));
    return v && strcmp(v, value) == 0;
}

json_t *itest_sipedge_wait(struct itest_sipedge *t, const char *type, const char *subject,
                           const char *field, const char *value, int timeout_ms, size_t *index)
{
    int64_t until = cc_time_mono_ms() + timeout_ms;

    for (;;) {
        size_t i;
        json_t *ev;

        json_array_foreach(t->events, i, ev)
        {
            if (ise_match(ev, type, subject, field, value)) {
                if (index)
                    *index = i;
                return ev;
            }
        }
        if (cc_time_mono_ms() > until)
            return NULL;
        cc_consumer_poll(t->watch, 20);
    }
}

/* Waits until the watch has its partitions: a marker event of the tenant, sent again every
 * 500 ms (one sent before the assignment is skipped by start_at_latest), comes back. */
static void ise_watch_barrier(struct itest_sipedge *t)
{
    int64_t until = cc_time_mono_ms() + 30000, next = 0;

    while (cc_time_mono_ms() < until) {
        if (cc_time_mono_ms() >= next) {
            json_t *env = cc_event_build("cc.test.marker", "/test/sipedge", "marker", t->tenant,
                                         json_object());
            cr_assert_not_null(env, "expected a marker envelope");
            cc_producer_send_event(t->producer, CC_TOPIC_INTERACTIONS, "marker", env);
            json_decref(env);
            next = cc_time_mono_ms() + 500;
        }
        if (itest_sipedge_wait(t, "cc.test.marker", "marker", NULL, NULL, 50, NULL))
            return;
    }
    cr_assert_fail("expected the watch consumer to get its partitions within 30 s");
}

size_t itest_sipedge_count(struct itest_sipedge *t, const char *type, const char *subject,
                           int settle_ms)
{
    int64_t until = cc_time_mono_ms() + settle_ms;
    size_t i, n = 0;
    json_t *ev;

    while (cc_time_mono_ms() < until)
        cc_consumer_poll(t->watch, 20);
    json_array_foreach(t->events, i, ev)
    {
        if (ise_match(ev, type, subject, NULL, NULL))
            n++;
    }
    return n;
}

size_t itest_sipedge_count_from(struct itest_sipedge *t, const char *type, const char *subject,
                                const char *source_prefix)
{
    size_t i, n = 0;
    json_t *ev;

    json_array_foreach(t->events, i, ev)
    {
        const char *src = json_string_value(json_object_get(ev, "source"));

        if (ise_match(ev, type, subject, NULL, NULL) && src &&
            strncmp(src, source_prefix, strlen(source_prefix)) == 0)
            n++;
    }
    return n;
}

json_int_t itest_sipedge_int(const json_t *ev, const char *field)
{
    return json_integer_value(json_object_get(json_object_get(ev, "data"), field));
}

const char *itest_sipedge_str(const json_t *ev, const char *field)
{
    const char *s = json_string_value(json_object_get(json_object_get(ev, "data"), field));
    return s ? s : "";
}

const char *itest_sipedge_interaction_of(struct itest_sipedge *t, const char *did)
{
    json_t *ev = itest_sipedge_wait(t, "cc.interaction.created", NULL, "to", did,
                                    ITEST_SIPEDGE_WAIT_MS, NULL);

    cr_assert_not_null(ev, "expected cc.interaction.created for a call to %s", did);
    return json_string_value(json_object_get(ev, "subject"));
}

/* ---- REST ------------------------------------------------------------------------------- */

json_t *itest_sipedge_rest(int port, const char *method, const char *path, const char *token,
                           const char *body, int want)
{
    struct itest_http_reply rep;

    itest_http_fetch(port, method, path, token ? token : ITEST_SIPEDGE_ADMIN,
                     body ? "Content-Type: application/json\r\n" : NULL, body, &rep);
    cr_assert_eq(rep.status, want, "expected %s %s -> %d, got %d: %.300s", method, path, want,
                 rep.status, rep.body);
    return json_loadb(rep.body, rep.body_len, 0, NULL);
}

static void ise_rest(int port, const char *method, const char *path, const char *body, int want)
{
    json_decref(itest_sipedge_rest(port, method, path, NULL, body, want));
}

void itest_sipedge_queue(struct itest_sipedge *t, const char *q, int ring_timeout_s,
                         int max_no_answer)
{
    char body[400];

    snprintf(body, sizeof(body),
             "{\"id\":\"%s\",\"name\":\"%s\",\"channels\":[\"voice\"],\"strategy\":"
             "\"longest_idle\",\"wrapup_s\":1,\"ring_timeout_s\":%d%s%d}",
             q, q, ring_timeout_s,
             max_no_answer ? ",\"max_no_answer\":" : ",\"priority\":", max_no_answer);
    ise_rest(t->router_port, "POST", "/v1/queues", body, 201);
}

void itest_sipedge_agent(struct itest_sipedge *t, const char *id, const char *q, int pos,
                         const char *user)
{
    char body[300], path[200];

    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"name\":\"Agent %s\"}", id, id);
    ise_rest(t->router_port, "POST", "/v1/agents", body, 201);
    snprintf(path, sizeof(path), "/v1/queues/%s/members/%s", q, id);
    snprintf(body, sizeof(body), "{\"position\":%d}", pos);
    ise_rest(t->router_port, "PUT", path, body, 201);
    snprintf(body, sizeof(body),
             "{\"username\":\"%s\",\"password\":\"agent-secret-1\","
             "\"agent_id\":\"%s\"}",
             user, id);
    ise_rest(t->edge_http_port, "POST", "/v1/sip/credentials", body, 201);
}

void itest_sipedge_wait_members(struct itest_sipedge *t, const char *q, int members)
{
    int64_t until = cc_time_mono_ms() + 10000;
    char path[160];
    long got = -1;

    snprintf(path, sizeof(path), "/v1/queues/%s/live", q);
    while (cc_time_mono_ms() < until) {
        json_t *v = itest_sipedge_rest(t->router_port, "GET", path, NULL, NULL, 200);
        got = (long)json_integer_value(json_object_get(v, "members"));
        json_decref(v);
        if (got == members)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("expected queue '%s' to show %d members, got %ld", q, members, got);
}

void itest_sipedge_did(struct itest_sipedge *t, char *did, size_t cap, const char *q)
{
    unsigned long long r = 0;
    char body[200];

    cr_assert_eq(getrandom(&r, sizeof(r), 0), (ssize_t)sizeof(r), "expected random bytes");
    snprintf(did, cap, "+49%011llu", r % 100000000000ULL);
    snprintf(body, sizeof(body), "{\"number\":\"%s\",\"queue_id\":\"%s\"}", did, q);
    ise_rest(t->edge_http_port, "POST", "/v1/sip/dids", body, 201);
}

/* ---- sipp ------------------------------------------------------------------------------- */

struct itest_proc *itest_sipedge_sipp(struct itest_sipedge *t, const char *scenario,
                                      const char *remote, int port, const char *const extra[])
{
    struct itest_proc *p = NULL;
    char name[96], log[512];

    for (size_t i = 0; i < ITEST_SIPEDGE_SIPP && !p; i++)
        if (t->sipp[i].pid <= 0)
            p = &t->sipp[i];
    cr_assert_not_null(p, "expected a free sipp slot");
    itest_unique(name, sizeof(name), "isesipp");
    ise_log_path(log, sizeof(log), name);
    cr_assert_eq(itest_sipp_start(p, itest_env("CC_TEST_TOP"), scenario, remote, port, extra, log),
                 0, "expected sipp to start");
    return p;
}

void itest_sipedge_sipp_done(struct itest_sipedge *t, struct itest_proc *p, const char *what,
                             int timeout_ms)
{
    int rc = itest_proc_wait(p, timeout_ms);

    if (rc == -ETIMEDOUT)
        itest_proc_kill(p);
    cr_assert_eq(rc, 0, "expected %s (sipp) to succeed, got %d (see %s and %s)", what, rc, p->log,
                 t->edge.log);
}

struct itest_proc *itest_sipedge_caller(struct itest_sipedge *t, const char *scenario,
                                        const char *did, const char *pause_ms)
{
    const char *extra[] = {"-s", did, "-d", pause_ms ? pause_ms : "0", NULL};

    return itest_sipedge_sipp(t, scenario, t->sip_target, itest_free_udp_port(), extra);
}

void itest_sipedge_wait_contact(struct itest_sipedge *t, const char *agent, int uas_port)
{
    int64_t until = cc_time_mono_ms() + ITEST_SIPEDGE_WAIT_MS;
    char path[160], want[64];

    snprintf(path, sizeof(path), "/v1/agents/%s/live", agent);
    snprintf(want, sizeof(want), ":%d", uas_port);
    while (cc_time_mono_ms() < until) {
        json_t *v = itest_sipedge_rest(t->router_port, "GET", path, NULL, NULL, 200);
        const char *c = json_string_value(json_object_get(v, "contact"));
        bool ok = c && strstr(c, want);
        json_decref(v);
        if (ok)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("expected the router to learn agent '%s''s contact on port %d", agent, uas_port);
}

void itest_sipedge_register(struct itest_sipedge *t, const char *agent, const char *user,
                            int uas_port)
{
    char port[16];
    const char *extra[] = {"-s",   user,      "-au",     user,   "-ap",      "agent-secret-1",
                           "-key", "domain",  t->tenant, "-key", "uas_port", port,
                           "-key", "expires", "300",     NULL};

    snprintf(port, sizeof(port), "%d", uas_port);
    itest_sipedge_sipp_done(
        t, itest_sipedge_sipp(t, "agent_register.xml", t->sip_target, itest_free_udp_port(), extra),
        "agent_register.xml", 20000);
    itest_sipedge_wait_contact(t, agent, uas_port);
}

void itest_sipedge_available(struct itest_sipedge *t, const char *agent)
{
    char path[160];

    snprintf(path, sizeof(path), "/v1/agents/%s/state", agent);
    ise_rest(t->router_port, "POST", path, "{\"state\":\"available\"}", 200);
}

void itest_sipedge_start_agents_unregistered(struct itest_sipedge *t, int nagents,
                                             int ring_timeout_s, int max_no_answer, int max_calls)
{
    static const char *const ids[] = {"a1", "a2"}, *const users[] = {"1001", "1002"};

    itest_sipedge_router_start(t);
    itest_sipedge_edge_start(t, max_calls);
    itest_sipedge_queue(t, "q1", ring_timeout_s, max_no_answer);
    for (int i = 0; i < nagents; i++)
        itest_sipedge_agent(t, ids[i], "q1", i + 1, users[i]);
    itest_sipedge_wait_members(t, "q1", nagents);
}

void itest_sipedge_start_with_agents(struct itest_sipedge *t, int nagents, int ring_timeout_s,
                                     int max_no_answer, int max_calls, int ports[2])
{
    static const char *const ids[] = {"a1", "a2"}, *const users[] = {"1001", "1002"};

    itest_sipedge_start_agents_unregistered(t, nagents, ring_timeout_s, max_no_answer, max_calls);
    for (int i = 0; i < nagents; i++) {
        ports[i] = itest_free_udp_port();
        itest_sipedge_register(t, ids[i], users[i], ports[i]);
    }
    for (int i = 0; i < nagents; i++) {
        itest_sipedge_available(t, ids[i]);
        usleep(30 * 1000);
    }
}

/* ---- sip_phone -------------------------------------------------------------------------- */

/* Forks the phone with a pipe as its stdin and log as its stdout and stderr. */
static int ise_phone_spawn(struct itest_phone *ph, const char *bin, const char *url,
                           const char *log)
{
    int fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -errno;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);

        dup2(fds[0], 0);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, url, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    ph->in_fd = fds[1];
    ph->proc.pid = pid;
    snprintf(ph->proc.log, sizeof(ph->proc.log), "%s", log);
    return 0;
}

struct itest_phone *itest_sipedge_phone(struct itest_sipedge *t)
{
    struct itest_phone *ph = NULL;
    char bin[512], name[96], log[512], url[96];

    for (size_t i = 0; i < ITEST_SIPEDGE_PHONES && !ph; i++)
        if (t->phones[i].proc.pid <= 0)
            ph = &t->phones[i];
    cr_assert_not_null(ph, "expected a free phone slot");
    memset(ph, 0, sizeof(*ph));
    ph->in_fd = -1;
    ph->port = itest_free_udp_port();
    cr_assert(ph->port > 0, "expected a free port for the phone");
    snprintf(bin, sizeof(bin), "%s/tests/helpers/sip_phone", itest_env("CC_TEST_BIN_DIR"));
    snprintf(url, sizeof(url), "sip:127.0.0.1:%d", ph->port);
    itest_unique(name, sizeof(name), "isephone");
    ise_log_path(log, sizeof(log), name);
    cr_assert_eq(ise_phone_spawn(ph, bin, url, log), 0, "expected %s to start", bin);
    itest_phone_expect(ph, "ready ", NULL, 0, 10000);
    return ph;
}

void itest_phone_send(struct itest_phone *ph, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof(line) - 1, "expected a phone command that fits");
    line[n++] = '\n';
    cr_assert_eq(write(ph->in_fd, line, (size_t)n), n, "expected the phone to take '%.*s'", n - 1,
                 line);
}

/* One pass over the phone's log: the first unused line with needle, marked used. */
static bool ise_phone_scan(struct itest_phone *ph, const char *needle, char *line, size_t cap)
{
    FILE *f = fopen(ph->proc.log, "r");
    char buf[4096];
    size_t i = 0;
    bool found = false;

    while (f && !found && fgets(buf, sizeof(buf), f)) {
        if (i < ITEST_PHONE_LINES && !ph->used[i] && strstr(buf, needle)) {
            ph->used[i] = 1;
            found = true;
            if (line && cap) {
                buf[strcspn(buf, "\n")] = '\0';
                snprintf(line, cap, "%s", buf);
            }
        }
        i++;
    }
    if (f)
        fclose(f);
    return found;
}

void itest_phone_expect(struct itest_phone *ph, const char *needle, char *line, size_t cap,
                        int timeout_ms)
{
    int64_t until = cc_time_mono_ms() + timeout_ms;

    while (!ise_phone_scan(ph, needle, line, cap)) {
        cr_assert(cc_time_mono_ms() < until,
                  "expected the phone to print '%s' within %d ms (see %s)", needle, timeout_ms,
                  ph->proc.log);
        usleep(20 * 1000);
    }
}

void itest_sipedge_phone_register(struct itest_sipedge *t, struct itest_phone *ph,
                                  const char *agent, const char *user)
{
    itest_phone_send(ph, "register sip:%s@%s %s agent-secret-1 sip:%s 300", user, t->tenant, user,
                     t->sip_target);
    itest_phone_expect(ph, "event registered status=200", NULL, 0, 20000);
    itest_sipedge_wait_contact(t, agent, ph->port);
}

void itest_phone_stop(struct itest_phone *ph)
{
    int rc;

    if (ph->proc.pid <= 0)
        return;
    itest_phone_send(ph, "quit");
    rc = itest_proc_wait(&ph->proc, 10000);
    if (rc == -ETIMEDOUT)
        itest_proc_kill(&ph->proc);
    close(ph->in_fd);
    ph->in_fd = -1;
    cr_expect_eq(rc, 0, "expected the phone to exit 0 on quit, got %d (see %s)", rc, ph->proc.log);
    cr_expect(!itest_proc_sanitizer_report(&ph->proc), "expected no sanitizer report in %s",
              ph->proc.log);
}

/* ---- fixture ---------------------------------------------------------------------------- */

void itest_sipedge_setup(struct itest_sipedge *t, const char *prefix)
{
    static const char *const topics[] = {CC_TOPIC_INTERACTIONS, CC_TOPIC_AGENTS,
                                         CC_TOPIC_ROUTING_DECISIONS, CC_TOPIC_ROUTING_REQUESTS};
    struct cc_bus_config cfg;
    char path[512], group[96];

    memset(t, 0, sizeof(*t));
    /* test_router_engine.c's load tests take this lock exclusively; SIP tests share it */
    snprintf(path, sizeof(path), "%s/router_engine.lock", itest_env("CC_TEST_BIN_DIR"));
    t->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    cr_assert(t->lock_fd >= 0 && flock(t->lock_fd, LOCK_SH) == 0, "expected the suite lock");
    itest_unique(t->tenant, sizeof(t->tenant), prefix);
    itest_unique(t->takeover_group, sizeof(t->takeover_group), "tg");
    cc_bus_config_defaults(&cfg);
    cfg.brokers = itest_env("CC_KAFKA_BROKERS");
    cfg.client_id = "test-sipedge";
    cfg.session_timeout_ms = 6000;
    cfg.heartbeat_interval_ms = 1000;
    cfg.fetch_wait_max_ms = 10;
    cfg.start_at_latest = true; /* only this test's events matter: skip the topics' backlog */
    itest_unique(group, sizeof(group), "isewatch");
    t->events = json_array();
    t->producer = cc_producer_new(&cfg);
    cr_assert_not_null(t->producer, "expected a producer");
    t->watch = cc_consumer_new(&cfg, group, topics, 4, ise_watch_handler, t, t->producer);
    cr_assert_not_null(t->watch, "expected a watch consumer");
    ise_watch_barrier(t);
}

void itest_sipedge_teardown(struct itest_sipedge *t)
{
    for (size_t i = 0; i < ITEST_SIPEDGE_SIPP; i++)
        itest_proc_kill(&t->sipp[i]);
    for (size_t i = 0; i < ITEST_SIPEDGE_PHONES; i++) {
        itest_proc_kill(&t->phones[i].proc);
        if (t->phones[i].in_fd > 0)
            close(t->phones[i].in_fd);
        t->phones[i].in_fd = -1;
    }
    itest_proc_kill(&t->edge);
    itest_proc_kill(&t->router);
    cc_consumer_free(t->watch);
    cc_producer_free(t->producer);
    json_decref(t->events);
    if (t->lock_fd > 0)
        close(t->lock_fd); /* releases the lock */
    t->watch = NULL;
    t->producer = NULL;
    t->events = NULL;
    t->lock_fd = -1;
}
