/* Integration tests for common/cc_bus.c against the dev broker of the local stack (and PostgreSQL
 * for the idempotent handler): group work sharing across processes, crash recovery without loss,
 * deadlettering, and retries. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cc_bus.h"
#include "cc_event.h"
#include "cc_log.h"
#include "cc_pg.h"
#include "cc_time.h"
#include "itest.h"

extern char **environ;

#define BUS_A_MAX       20000 /* most events test (a) may produce */
#define BUS_B_EVENTS    10000
#define BUS_TMP_PATHLEN 512

static void bus_it_setup(void)
{
    cc_log_init("test-bus", CC_LOG_WARN);
}

TestSuite(bus, .init = bus_it_setup);

/* The dev broker's settings: see ARCHITECTURE.md (the mock cluster's limits). */
static struct cc_bus_config bus_cfg(void)
{
    struct cc_bus_config cfg;

    cc_bus_config_defaults(&cfg);
    cfg.brokers = itest_env("CC_KAFKA_BROKERS");
    cfg.client_id = "test-bus";
    cfg.session_timeout_ms = 6000;
    cfg.heartbeat_interval_ms = 1000;
    cfg.fetch_wait_max_ms = 10;
    cfg.devbroker_control = getenv("CC_DEVBROKER_CONTROL"); /* unset against real Kafka */
    return cfg;
}

static void bus_new_topic(const struct cc_bus_config *cfg, char *topic, size_t n,
                          const char *prefix, int partitions)
{
    itest_unique(topic, n, prefix);
    cr_assert_eq(cc_bus_create_topic(cfg, topic, partitions, 10000), 0,
                 "expected topic %s with %d partitions to be created", topic, partitions);
}

/* Sends a valid test event keyed by key; copies its id into id (37 bytes) when non-NULL. */
static void bus_send_event(cc_producer *p, const char *topic, const char *key, char *id)
{
    json_t *env =
        cc_event_build("cc.test.sent", "/test/bus", key, "acme", json_pack("{s:s}", "key", key));

    cr_assert_not_null(env, "expected an event envelope");
    if (id)
        snprintf(id, 37, "%s", json_string_value(json_object_get(env, "id")));
    cr_assert_eq(cc_producer_send_event(p, topic, key, env), 0, "expected %s to be queued", key);
    json_decref(env);
}

static void bus_tmp_path(char *path, const char *name)
{
    char u[128];

    itest_unique(u, sizeof(u), name);
    snprintf(path, BUS_TMP_PATHLEN, "/tmp/%s.out", u);
}

static pid_t bus_spawn_consumer(const char *topic, const char *group, const char *out,
                                const char *table, const char *delay_us)
{
    char path[BUS_TMP_PATHLEN];
    char *argv[] = {path,          (char *)topic,    (char *)group, (char *)out,
                    (char *)table, (char *)delay_us, NULL};
    pid_t pid;
    int rc;

    snprintf(path, sizeof(path), "%s/tests/helpers/bus_consumer", itest_env("CC_TEST_BIN_DIR"));
    rc = posix_spawn(&pid, path, NULL, NULL, argv, environ);
    cr_assert_eq(rc, 0, "expected %s to start: %s", path, strerror(rc));
    return pid;
}

/* Sends sig and waits up to timeout_ms; returns the wait status, or -1 (child killed) on timeout.
 */
static int bus_stop_child(pid_t pid, int sig, int timeout_ms)
{
    int64_t deadline = cc_time_mono_ms() + timeout_ms;
    int status;

    kill(pid, sig);
    while (cc_time_mono_ms() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Reads a helper's output ("PARTITION OFFSET KEY ID" lines); counts key numbers "<x>-N" into
 * seen[N] when seen is non-NULL. Returns the number of lines. */
static long bus_read_output(const char *path, int *seen, int nseen)
{
    char key[128], id[64];
    long lines = 0, off;
    int part, n;
    FILE *f = fopen(path, "r");

    if (!f)
        return 0;
    while (fscanf(f, "%d %ld %127s %63s", &part, &off, key, id) == 4) {
        const char *dash = strrchr(key, '-');

        lines++;
        n = dash ? atoi(dash + 1) : -1;
        if (seen && n >= 0 && n < nseen)
            seen[n]++;
    }
    fclose(f);
    return lines;
}

Test(bus, two_consumer_processes_of_one_group_split_the_partitions, .timeout = 120)
{
    struct cc_bus_config cfg = bus_cfg();
    char topic[128], group[128], out1[BUS_TMP_PATHLEN], out2[BUS_TMP_PATHLEN], key[64];
    int *seen1 = calloc(BUS_A_MAX, sizeof(int)), *seen2 = calloc(BUS_A_MAX, sizeof(int));
    long lines1 = 0, lines2 = 0, missing = -1, dups = 0;
    int produced = 0, i;
    int64_t deadline;
    cc_producer *p;
    pid_t c1, c2;

    bus_new_topic(&cfg, topic, sizeof(topic), "bus-a", 6);
    itest_unique(group, sizeof(group), "bus-a-group");
    bus_tmp_path(out1, "bus-a-c1");
    bus_tmp_path(out2, "bus-a-c2");
    c1 = bus_spawn_consumer(topic, group, out1, NULL, NULL);
    c2 = bus_spawn_consumer(topic, group, out2, NULL, NULL);
    p = cc_producer_new(&cfg);
    cr_assert_not_null(p);

    /* a steady stream until both members have a share (the group settles in a few seconds) */
    deadline = cc_time_mono_ms() + 60000;
    while (cc_time_mono_ms() < deadline && produced + 50 <= BUS_A_MAX) {
        for (i = 0; i < 50; i++, produced++) {
            snprintf(key, sizeof(key), "a-%d", produced);
            bus_send_event(p, topic, key, NULL);
        }
        cr_assert_eq(cc_producer_flush(p, 10000), 0, "expected every event delivered");
        usleep(300000);
        if (bus_read_output(out1, NULL, 0) > 0 && bus_read_output(out2, NULL, 0) > 0)
            break;
    }
    /* then wait until everything produced was handled by one or the other */
    deadline = cc_time_mono_ms() + 30000;
    while (missing != 0 && cc_time_mono_ms() < deadline) {
        usleep(200000);
        memset(seen1, 0, BUS_A_MAX * sizeof(int));
        memset(seen2, 0, BUS_A_MAX * sizeof(int));
        lines1 = bus_read_output(out1, seen1, BUS_A_MAX);
        lines2 = bus_read_output(out2, seen2, BUS_A_MAX);
        for (missing = 0, dups = 0, i = 0; i < produced; i++) {
            missing += seen1[i] + seen2[i] == 0;
            dups += seen1[i] + seen2[i] > 1;
        }
    }
    cr_assert_eq(WEXITSTATUS(bus_stop_child(c1, SIGTERM, 20000)), 0, "expected a clean exit");
    cr_assert_eq(WEXITSTATUS(bus_stop_child(c2, SIGTERM, 20000)), 0, "expected a clean exit");
    cr_log_info("bus (a): %d produced, consumer 1 handled %ld, consumer 2 handled %ld, %ld "
                "redelivered during rebalances",
                produced, lines1, lines2, dups);
    cr_assert(lines1 > 0 && lines2 > 0, "expected both members to get a share (%ld / %ld)", lines1,
              lines2);
    cr_assert_eq(missing, 0, "expected every one of %d events handled, %ld missing", produced,
                 missing);
    cc_producer_free(p);
    unlink(out1);
    unlink(out2);
    free(seen1);
    free(seen2);
}

static long bus_pg_count(cc_pg *pg, const char *table)
{
    char sql[256];
    PGresult *r;
    long n;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    r = cc_pg_query(pg, sql, 0, NULL);
    cr_assert_not_null(r, "expected the count query to work");
    n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

static int bus_cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Waits until table holds at least want rows; returns the last count. */
static long bus_pg_wait_count(cc_pg *pg, const char *table, long want, int timeout_ms)
{
    int64_t deadline = cc_time_mono_ms() + timeout_ms;
    long n = bus_pg_count(pg, table);

    while (n < want && cc_time_mono_ms() < deadline) {
        usleep(20000);
        n = bus_pg_count(pg, table);
    }
    return n;
}

Test(bus, a_consumer_killed_mid_stream_loses_nothing_after_restart, .timeout = 240)
{
    struct cc_bus_config cfg = bus_cfg();
    char topic[128], group[128], table[128], sql[256], key[64];
    char out1[BUS_TMP_PATHLEN], out2[BUS_TMP_PATHLEN];
    char(*ids)[37] = calloc(BUS_B_EVENTS, sizeof(*ids));
    long at_kill, after_kill, calls, n;
    cc_producer *p;
    PGresult *r;
    cc_pg *pg;
    pid_t c;
    int i;

    pg = cc_pg_new(itest_env("CC_PG_DSN"));
    cr_assert_not_null(pg, "expected PostgreSQL to be reachable");
    itest_unique(table, sizeof(table), "bus_b");
    for (i = 0; table[i]; i++) /* a plain SQL identifier */
        table[i] = isalnum((unsigned char)table[i]) ? (char)tolower(table[i]) : '_';
    snprintf(sql, sizeof(sql), "CREATE TABLE %s (id text PRIMARY KEY)", table);
    cr_assert_eq(cc_pg_exec(pg, sql, 0, NULL), 0, "expected table %s to be created", table);

    bus_new_topic(&cfg, topic, sizeof(topic), "bus-b", 6);
    itest_unique(group, sizeof(group), "bus-b-group");
    bus_tmp_path(out1, "bus-b-c1");
    bus_tmp_path(out2, "bus-b-c2");
    p = cc_producer_new(&cfg);
    cr_assert_not_null(p);
    for (i = 0; i < BUS_B_EVENTS; i++) {
        snprintf(key, sizeof(key), "b-%d", i);
        bus_send_event(p, topic, key, ids[i]);
    }
    cr_assert_eq(cc_producer_flush(p, 30000), 0, "expected all %d events delivered", BUS_B_EVENTS);

    /* 300 us per message: long enough a stream to kill it in the middle */
    c = bus_spawn_consumer(topic, group, out1, table, "300");
    at_kill = bus_pg_wait_count(pg, table, 2500, 60000);
    bus_stop_child(c, SIGKILL, 5000);
    after_kill = bus_pg_count(pg, table);
    cr_assert(at_kill >= 2500 && after_kill < BUS_B_EVENTS,
              "expected the kill to land mid-stream, %ld handled", after_kill);

    c = bus_spawn_consumer(topic, group, out2, table, "0");
    n = bus_pg_wait_count(pg, table, BUS_B_EVENTS, 120000);
    cr_assert_eq(WEXITSTATUS(bus_stop_child(c, SIGTERM, 20000)), 0, "expected a clean exit");
    calls = bus_read_output(out1, NULL, 0) + bus_read_output(out2, NULL, 0);
    cr_log_info("bus (b): killed after %ld of %d handled; after restart %ld rows, %ld handler "
                "calls, %ld duplicates absorbed by the idempotent handler",
                after_kill, BUS_B_EVENTS, n, calls, calls - n);
    cr_assert_eq(n, BUS_B_EVENTS, "expected all %d events in the table, got %ld", BUS_B_EVENTS, n);
    cr_assert_geq(calls, BUS_B_EVENTS, "expected at least one handler call per event");

    /* and exactly the events produced: every row's id is one of ours */
    qsort(ids, BUS_B_EVENTS, sizeof(*ids), bus_cmp_id);
    snprintf(sql, sizeof(sql), "SELECT id FROM %s", table);
    r = cc_pg_query(pg, sql, 0, NULL);
    cr_assert_not_null(r);
    for (i = 0; i < PQntuples(r); i++)
        cr_assert_not_null(
            bsearch(PQgetvalue(r, i, 0), ids, BUS_B_EVENTS, sizeof(*ids), bus_cmp_id),
            "expected row %s to be a produced event id", PQgetvalue(r, i, 0));
    PQclear(r);
    snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
    cc_pg_exec(pg, sql, 0, NULL);
    cc_pg_free(pg);
    cc_producer_free(p);
    unlink(out1);
    unlink(out2);
    free(ids);
}

/* ---- in-process consumers ---- */

#define BUS_REC_MAX 64

struct bus_record {
    int n;
    int64_t offsets[BUS_REC_MAX];
    int calls[BUS_REC_MAX]; /* handler calls per offset */
    int retries_for;        /* offset that gets CC_BUS_RETRY ... */
    int retries_left;       /* ... this many times */
    int64_t first_call_ms, ok_ms;
    const char *dl_topic; /* deadletter reader: keep envelopes about this topic */
    json_t *dl[BUS_REC_MAX];
};

/* Accepts valid envelopes, rejects the rest; retries as configured. */
static enum cc_bus_verdict bus_record_handler(void *ctx, const struct cc_bus_msg *m, char *reason,
                                              size_t reasonlen)
{
    struct bus_record *rec = ctx;
    cc_event ev = {0};

    if (m->offset < BUS_REC_MAX)
        rec->calls[m->offset]++;
    if (cc_event_parse(m->value, m->len, &ev, reason, reasonlen) < 0)
        return CC_BUS_REJECT;
    cc_event_clear(&ev);
    if (m->offset == rec->retries_for) {
        if (!rec->first_call_ms)
            rec->first_call_ms = cc_time_mono_ms();
        if (rec->retries_left-- > 0) {
            snprintf(reason, reasonlen, "simulated outage");
            return CC_BUS_RETRY;
        }
        rec->ok_ms = cc_time_mono_ms();
    }
    if (rec->n < BUS_REC_MAX)
        rec->offsets[rec->n++] = m->offset;
    return CC_BUS_OK;
}

/* Keeps the deadletters whose data.topic is rec->dl_topic. */
static enum cc_bus_verdict bus_dl_handler(void *ctx, const struct cc_bus_msg *m, char *reason,
                                          size_t reasonlen)
{
    struct bus_record *rec = ctx;
    json_t *env = json_loadb(m->value, m->len, 0, NULL);
    const char *t = json_string_value(json_object_get(json_object_get(env, "data"), "topic"));

    (void)reason, (void)reasonlen;
    if (t && strcmp(t, rec->dl_topic) == 0 && rec->n < BUS_REC_MAX) {
        rec->dl[rec->n++] = env;
        return CC_BUS_OK;
    }
    json_decref(env);
    return CC_BUS_OK;
}

/* Polls c until rec->n reaches want or timeout_ms passes. */
static void bus_poll_until(cc_consumer *c, const struct bus_record *rec, int want, int timeout_ms)
{
    int64_t deadline = cc_time_mono_ms() + timeout_ms;

    while (rec->n < want && cc_time_mono_ms() < deadline)
        cr_assert_geq(cc_consumer_poll(c, 100), 0, "expected no fatal consumer error");
}

static cc_consumer *bus_consumer(const struct cc_bus_config *cfg, const char *topic,
                                 const char *group_prefix, cc_bus_handler h, struct bus_record *rec,
                                 cc_producer *dl)
{
    char group[128];
    cc_consumer *c;

    itest_unique(group, sizeof(group), group_prefix);
    c = cc_consumer_new(cfg, group, (const char *const[]){topic}, 1, h, rec, dl);
    cr_assert_not_null(c, "expected a consumer of %s", topic);
    return c;
}

Test(bus, malformed_messages_go_to_the_deadletter_and_the_consumer_carries_on, .timeout = 120)
{
    struct cc_bus_config cfg = bus_cfg();
    struct bus_record rec = {.retries_for = -1}, dl = {.retries_for = -1};
    char topic[128];
    json_t *bad, *data;
    cc_producer *p;
    cc_consumer *c;
    int i;

    bus_new_topic(&cfg, topic, sizeof(topic), "bus-c", 1);
    cr_assert_eq(cc_bus_create_topic(&cfg, CC_TOPIC_DEADLETTER, 6, 10000), 0);
    p = cc_producer_new(&cfg);
    cr_assert_not_null(p);
    bus_send_event(p, topic, "c-0", NULL);
    cr_assert_eq(cc_producer_send(p, topic, "c-1", "not json {", 10), 0);
    bad = cc_event_build("cc.test.sent", "/test/bus", NULL, "acme", NULL);
    json_object_del(bad, "tenant");
    cr_assert_eq(cc_producer_send_event(p, topic, "c-2", bad), 0);
    json_decref(bad);
    bus_send_event(p, topic, "c-3", NULL);
    bus_send_event(p, topic, "c-4", NULL);
    cr_assert_eq(cc_producer_flush(p, 10000), 0);

    c = bus_consumer(&cfg, topic, "bus-c-group", bus_record_handler, &rec, p);
    bus_poll_until(c, &rec, 3, 60000);
    cc_consumer_free(c);
    cr_assert_eq(rec.n, 3, "expected the 3 valid messages handled, got %d", rec.n);
    cr_assert(rec.offsets[0] == 0 && rec.offsets[1] == 3 && rec.offsets[2] == 4,
              "expected offsets 0, 3, 4 handled in order");

    dl.dl_topic = topic;
    c = bus_consumer(&cfg, CC_TOPIC_DEADLETTER, "bus-c-dl", bus_dl_handler, &dl, p);
    bus_poll_until(c, &dl, 2, 60000);
    cc_consumer_free(c);
    cr_assert_eq(dl.n, 2, "expected 2 deadletters about %s, got %d", topic, dl.n);
    for (i = 0; i < 2; i++) {
        data = json_object_get(dl.dl[i], "data");
        int64_t off = json_integer_value(json_object_get(data, "offset"));
        const char *reason = json_string_value(json_object_get(data, "reason"));

        cr_assert_str_eq(json_string_value(json_object_get(dl.dl[i], "type")),
                         CC_BUS_DEADLETTER_TYPE);
        cr_assert_str_eq(json_string_value(json_object_get(dl.dl[i], "tenant")), "unknown");
        cr_assert(off == 1 || off == 2, "expected offset 1 or 2, got %lld", (long long)off);
        cr_assert(reason && reason[0], "expected a reason");
        cr_log_info("bus (c): deadletter for offset %lld: %s", (long long)off, reason);
        if (off == 1) {
            cr_assert_str_eq(json_string_value(json_object_get(data, "payload")), "not json {");
            cr_assert_str_eq(json_string_value(json_object_get(data, "key")), "c-1");
        } else {
            cr_assert(strstr(reason, "tenant") != NULL, "expected the reason to name tenant: %s",
                      reason);
            cr_assert_str_eq(json_string_value(json_object_get(data, "key")), "c-2");
        }
        cr_assert(json_string_length(json_object_get(data, "group")) > 0, "expected the group");
        json_decref(dl.dl[i]);
    }
    cc_producer_free(p);
}

Test(bus, a_retry_verdict_redelivers_the_same_message_until_ok, .timeout = 120)
{
    struct cc_bus_config cfg = bus_cfg();
    struct bus_record rec = {.retries_for = 1, .retries_left = 3};
    char topic[128], key[16];
    cc_producer *p;
    cc_consumer *c;
    int i;

    bus_new_topic(&cfg, topic, sizeof(topic), "bus-r", 1);
    p = cc_producer_new(&cfg);
    cr_assert_not_null(p);
    for (i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "r-%d", i);
        bus_send_event(p, topic, key, NULL);
    }
    cr_assert_eq(cc_producer_flush(p, 10000), 0);

    c = bus_consumer(&cfg, topic, "bus-r-group", bus_record_handler, &rec, p);
    bus_poll_until(c, &rec, 5, 60000);
    cc_consumer_free(c);
    cr_assert_eq(rec.n, 5, "expected all 5 messages handled, got %d", rec.n);
    for (i = 0; i < 5; i++)
        cr_assert_eq(rec.offsets[i], i, "expected offset %d in position %d, got %lld", i, i,
                     (long long)rec.offsets[i]);
    cr_assert_eq(rec.calls[1], 4, "expected 3 retries then success, got %d calls", rec.calls[1]);
    cr_assert(rec.calls[0] == 1 && rec.calls[2] == 1 && rec.calls[4] == 1,
              "expected one call for the other messages");
    cr_assert_geq(rec.ok_ms - rec.first_call_ms, 100 + 200 + 400,
                  "expected backoff 100+200+400 ms, waited %lld ms",
                  (long long)(rec.ok_ms - rec.first_call_ms));
    cc_producer_free(p);
}

Test(bus, a_message_still_retrying_at_close_is_redelivered_to_the_next_member, .timeout = 120)
{
    struct cc_bus_config cfg = bus_cfg();
    struct bus_record first = {.retries_for = 0, .retries_left = 1000000};
    struct bus_record second = {.retries_for = -1};
    char topic[128], group[128];
    int64_t until;
    cc_producer *p;
    cc_consumer *c;

    bus_new_topic(&cfg, topic, sizeof(topic), "bus-s", 1);
    itest_unique(group, sizeof(group), "bus-s-group");
    p = cc_producer_new(&cfg);
    cr_assert_not_null(p);
    bus_send_event(p, topic, "s-0", NULL);
    bus_send_event(p, topic, "s-1", NULL);
    cr_assert_eq(cc_producer_flush(p, 10000), 0);

    c = cc_consumer_new(&cfg, group, (const char *const[]){topic}, 1, bus_record_handler, &first,
                        p);
    cr_assert_not_null(c);
    until = cc_time_mono_ms() + 30000;
    while (first.calls[0] < 2 && cc_time_mono_ms() < until)
        cc_consumer_poll(c, 100);
    cc_consumer_free(c); /* stops mid-retry: offset 0 must not be committed */
    cr_assert_geq(first.calls[0], 2, "expected offset 0 to be retried");
    cr_assert_eq(first.n, 0, "expected nothing handled while offset 0 kept failing");

    c = cc_consumer_new(&cfg, group, (const char *const[]){topic}, 1, bus_record_handler, &second,
                        p);
    cr_assert_not_null(c);
    bus_poll_until(c, &second, 2, 60000);
    cc_consumer_free(c);
    cr_assert_eq(second.n, 2, "expected both messages handled by the next member");
    cr_assert_eq(second.offsets[0], 0, "expected the retried message first");
    cc_producer_free(p);
}

/* Keeps the Kafka headers the handler saw on the first message. */
struct bus_hdr_seen {
    int n;
    char source[128], type[128], id[64], extra[64];
    size_t extra_len;
};

static void bus_copy_header(const struct cc_bus_msg *m, const char *name, char *out, size_t n)
{
    size_t len = 0;
    const char *v = cc_bus_msg_header(m, name, &len);

    snprintf(out, n, "%.*s", v ? (int)len : 0, v ? v : "");
}

static enum cc_bus_verdict bus_hdr_handler(void *ctx, const struct cc_bus_msg *m, char *reason,
                                           size_t reasonlen)
{
    struct bus_hdr_seen *s = ctx;
    const char *extra;

    (void)reason, (void)reasonlen;
    if (s->n++ > 0)
        return CC_BUS_OK;
    bus_copy_header(m, CC_BUS_HEADER_SOURCE, s->source, sizeof(s->source));
    bus_copy_header(m, CC_BUS_HEADER_TYPE, s->type, sizeof(s->type));
    bus_copy_header(m, CC_BUS_HEADER_ID, s->id, sizeof(s->id));
    extra = cc_bus_msg_header(m, "x-extra", &s->extra_len);
    snprintf(s->extra, sizeof(s->extra), "%s", extra ? extra : "(none)");
    return CC_BUS_OK;
}

static void bus_count_delivered(void *ctx, uint64_t tag, int err)
{
    int *ok = ctx;

    if (err == 0 && tag == 7)
        (*ok)++;
}

/* The wake descriptor: readable once a delivery report waits, emptied by cc_producer_poll, so
 * that a poll(2) loop sleeps until then instead of polling the producer. */
Test(bus, the_wake_fd_signals_waiting_delivery_reports_to_a_poll_loop, .timeout = 60)
{
    struct cc_bus_config cfg = bus_cfg();
    char topic[128];
    cc_producer *p = cc_producer_new(&cfg);
    struct pollfd pfd = {.events = POLLIN};
    int delivered = 0;

    cr_assert_not_null(p);
    bus_new_topic(&cfg, topic, sizeof(topic), "itest-wake", 1);
    pfd.fd = cc_producer_wake_fd(p);
    cr_assert_geq(pfd.fd, 0, "expected a wake descriptor");
    cr_assert_eq(cc_producer_wake_fd(p), pfd.fd, "expected the same descriptor when asked again");
    for (int round = 0; round < 3; round++) {
        int64_t deadline = cc_time_mono_ms() + 20000;

        cr_assert_eq(
            cc_producer_send_ex(p, &(struct cc_bus_send){.topic = topic,
                                                         .value = "x",
                                                         .len = 1,
                                                         .on_delivery = bus_count_delivered,
                                                         .ctx = &delivered,
                                                         .tag = 7}),
            0);
        /* only the descriptor is waited on: the report must wake it */
        while (delivered == round && cc_time_mono_ms() < deadline) {
            if (poll(&pfd, 1, 5000) == 1)
                cc_producer_poll(p, 0);
        }
        cr_assert_eq(delivered, round + 1, "expected report %d through the wake descriptor",
                     round + 1);
        cr_assert_eq(poll(&pfd, 1, 0), 0, "expected the descriptor emptied by cc_producer_poll");
    }
    cc_producer_free(p);
}

Test(bus, events_carry_their_cloudevents_source_type_and_id_as_kafka_headers, .timeout = 120)
{
    struct cc_bus_config cfg = bus_cfg();
    struct bus_hdr_seen seen = {0};
    char topic[128], group[128], id[37];
    cc_producer *p = cc_producer_new(&cfg);
    cc_consumer *c;
    int64_t deadline;
    int delivered = 0;
    json_t *env;

    cr_assert_not_null(p, "expected a producer");
    bus_new_topic(&cfg, topic, sizeof(topic), "bus-hdr", 1);
    env = cc_event_build("cc.test.headers", "/test/headers", "s1", "acme", json_object());
    cr_assert_not_null(env, "expected an envelope");
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(env, "id")));
    cr_assert_eq(cc_producer_send_event_cb(p, topic, "k1", env, bus_count_delivered, &delivered, 7),
                 0, "expected the event to be queued");
    json_decref(env);
    cr_assert_eq(cc_producer_send(p, topic, "k2", "{}", 2), 0, "expected a plain message queued");
    cr_assert_eq(cc_producer_flush(p, 10000), 0, "expected both messages delivered");
    cr_assert_eq(delivered, 1, "expected the delivery callback once with success, got %d",
                 delivered);
    itest_unique(group, sizeof(group), "bus-hdr-g");
    c = cc_consumer_new(&cfg, group, (const char *const[]){topic}, 1, bus_hdr_handler, &seen, p);
    cr_assert_not_null(c, "expected a consumer");
    deadline = cc_time_mono_ms() + 60000;
    while (seen.n < 2 && cc_time_mono_ms() < deadline)
        cr_assert_geq(cc_consumer_poll(c, 100), 0, "expected no fatal consumer error");
    cc_consumer_free(c);
    cc_producer_free(p);
    cr_assert_eq(seen.n, 2, "expected both messages consumed, got %d", seen.n);
    cr_assert_str_eq(seen.source, "/test/headers", "expected ce_source = the envelope's source");
    cr_assert_str_eq(seen.type, "cc.test.headers", "expected ce_type = the envelope's type");
    cr_assert_str_eq(seen.id, id, "expected ce_id = the envelope's id");
    cr_assert_str_eq(seen.extra, "(none)", "expected no x-extra on the event");
}

static enum cc_bus_verdict bus_extra_handler(void *ctx, const struct cc_bus_msg *m, char *reason,
                                             size_t reasonlen)
{
    struct bus_hdr_seen *s = ctx;
    size_t len = 0;
    const char *v = cc_bus_msg_header(m, "x-extra", &len);

    (void)reason, (void)reasonlen;
    s->n++;
    if (v && len < sizeof(s->extra)) {
        memcpy(s->extra, v, len);
        s->extra_len = len;
    }
    if (cc_bus_msg_header(m, CC_BUS_HEADER_SOURCE, NULL))
        snprintf(s->source, sizeof(s->source), "unexpected");
    return CC_BUS_OK;
}

Test(bus, raw_messages_carry_exactly_the_headers_given, .timeout = 120)
{
    struct cc_bus_config cfg = bus_cfg();
    struct bus_hdr_seen seen = {0};
    char topic[128], group[128];
    cc_producer *p = cc_producer_new(&cfg);
    cc_consumer *c;
    int64_t deadline;

    cr_assert_not_null(p, "expected a producer");
    bus_new_topic(&cfg, topic, sizeof(topic), "bus-hdr-raw", 1);
    cr_assert_eq(
        cc_producer_send_ex(
            p, &(struct cc_bus_send){.topic = topic,
                                     .key = "k",
                                     .keylen = 1,
                                     .value = "{}",
                                     .len = 2,
                                     .headers =
                                         (const struct cc_bus_header[]){
                                             {.name = "x-extra", .value = "v\0w", .len = 3}},
                                     .nheaders = 1}),
        0, "expected the message to be queued");
    cr_assert_eq(cc_producer_flush(p, 10000), 0, "expected the message delivered");
    itest_unique(group, sizeof(group), "bus-hdr-raw-g");
    c = cc_consumer_new(&cfg, group, (const char *const[]){topic}, 1, bus_extra_handler, &seen, p);
    cr_assert_not_null(c, "expected a consumer");
    deadline = cc_time_mono_ms() + 60000;
    while (seen.n < 1 && cc_time_mono_ms() < deadline)
        cr_assert_geq(cc_consumer_poll(c, 100), 0, "expected no fatal consumer error");
    cc_consumer_free(c);
    cc_producer_free(p);
    cr_assert_eq(seen.n, 1, "expected the message consumed");
    cr_assert_eq(seen.extra_len, 3, "expected the 3-byte header value, got %zu", seen.extra_len);
    cr_assert(memcmp(seen.extra, "v\0w", 3) == 0, "expected the header's bytes unchanged");
    cr_assert_str_eq(seen.source, "", "expected no ce_source on a raw message");
}

/* What a batch handler saw: the calls, their sizes, every OK in order, the calls per offset. */
struct bus_batch_rec {
    int64_t retry_offset; /* answer RETRY for this offset ... */
    int retries_left;     /* ... this many times */
    int64_t reject_offset;
    int calls, largest;
    int n;
    int64_t ok[BUS_REC_MAX];
    int seen[BUS_REC_MAX];
};

static void bus_batch_handler(void *ctx, const struct cc_bus_msg *msgs, size_t n,
                              struct cc_bus_outcome *out)
{
    struct bus_batch_rec *rec = ctx;
    bool retrying = false;

    rec->calls++;
    if ((int)n > rec->largest)
        rec->largest = (int)n;
    for (size_t i = 0; i < n; i++) {
        int64_t off = msgs[i].offset;
        if (off >= 0 && off < BUS_REC_MAX)
            rec->seen[off]++;
        if (retrying) { /* keep per-partition order: nothing after a retry is applied */
            out[i].verdict = CC_BUS_RETRY;
            snprintf(out[i].reason, sizeof(out[i].reason), "behind a retry");
            continue;
        }
        if (off == rec->retry_offset && rec->retries_left > 0) {
            rec->retries_left--;
            retrying = true;
            out[i].verdict = CC_BUS_RETRY;
            snprintf(out[i].reason, sizeof(out[i].reason), "simulated outage");
            continue;
        }
        if (off == rec->reject_offset) {
            out[i].verdict = CC_BUS_REJECT;
            snprintf(out[i].reason, sizeof(out[i].reason), "simulated bad message");
            continue;
        }
        if (rec->n < BUS_REC_MAX)
            rec->ok[rec->n++] = off;
    }
}

static void bus_batch_poll_until(cc_consumer *c, const struct bus_batch_rec *rec, int want,
                                 int timeout_ms)
{
    int64_t deadline = cc_time_mono_ms() + timeout_ms;

    while (rec->n < want && cc_time_mono_ms() < deadline)
        cr_assert_geq(cc_consumer_poll(c, 100), 0, "expected no fatal consumer error");
}

/* Sends n events to a new one-partition topic and starts a batch consumer of it. */
static cc_consumer *bus_batch_setup(const struct cc_bus_config *cfg, char *topic, size_t topiclen,
                                    const char *prefix, int n, size_t batch_max,
                                    struct bus_batch_rec *rec, cc_producer **p)
{
    char key[32], group[128];
    cc_consumer *c;

    bus_new_topic(cfg, topic, topiclen, prefix, 1);
    *p = cc_producer_new(cfg);
    cr_assert_not_null(*p);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "b-%d", i);
        bus_send_event(*p, topic, key, NULL);
    }
    cr_assert_eq(cc_producer_flush(*p, 10000), 0, "expected %d events delivered", n);
    itest_unique(group, sizeof(group), prefix);
    c = cc_consumer_new_batch(cfg, group, (const char *const[]){topic}, 1, bus_batch_handler,
                              batch_max, rec, *p);
    cr_assert_not_null(c, "expected a batch consumer of %s", topic);
    return c;
}

Test(bus, a_batch_consumer_hands_over_several_messages_per_call_and_stores_each, .timeout = 120)
{
    struct cc_bus_config cfg = bus_cfg();
    struct bus_batch_rec rec = {.retry_offset = -1, .reject_offset = 7};
    char topic[128];
    cc_producer *p;
    cc_consumer *c = bus_batch_setup(&cfg, topic, sizeof(topic), "bus-bb", 40, 16, &rec, &p);

    bus_batch_poll_until(c, &rec, 39, 60000);
    cc_consumer_free(c);
    cr_assert_eq(rec.n, 39, "expected 39 messages handled (one rejected), got %d", rec.n);
    cr_assert_gt(rec.largest, 1, "expected more than one message in some call, largest %d",
                 rec.largest);
    cr_assert_leq(rec.largest, 16, "expected at most the batch size per call, got %d", rec.largest);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(rec.seen[i], 1, "expected offset %d handed over once, got %d", i, rec.seen[i]);
    for (int i = 1; i < rec.n; i++)
        cr_assert_gt(rec.ok[i], rec.ok[i - 1], "expected offsets in order");
    cc_producer_free(p);
}

Test(bus, a_retry_in_the_middle_of_a_batch_redelivers_it_and_everything_after_it, .timeout = 120)
{
    struct cc_bus_config cfg = bus_cfg();
    struct bus_batch_rec rec = {.retry_offset = 5, .retries_left = 2, .reject_offset = -1};
    char topic[128];
    cc_producer *p;
    cc_consumer *c;
    int64_t t0;

    c = bus_batch_setup(&cfg, topic, sizeof(topic), "bus-br", 20, 64, &rec, &p);
    t0 = cc_time_mono_ms();
    bus_batch_poll_until(c, &rec, 20, 60000);
    cc_consumer_free(c);
    cr_assert_eq(rec.n, 20, "expected every message handled once, got %d", rec.n);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(rec.ok[i], i, "expected offset %d in position %d, got %lld", i, i,
                     (long long)rec.ok[i]);
    cr_assert_eq(rec.seen[5], 3, "expected offset 5 handed over 3 times, got %d", rec.seen[5]);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(rec.seen[i], 1, "expected offset %d (before the retry) handed over once", i);
    cr_assert_geq(cc_time_mono_ms() - t0, 100 + 200, "expected the retry backoff to be waited");
    cc_producer_free(p);
}

Test(bus, a_batch_still_retrying_at_close_is_redelivered_from_the_retried_message, .timeout = 120)
{
    struct cc_bus_config cfg = bus_cfg();
    struct bus_batch_rec first = {.retry_offset = 3, .retries_left = 1000000, .reject_offset = -1};
    struct bus_batch_rec second = {.retry_offset = -1, .reject_offset = -1};
    char topic[128], group[128];
    int64_t until;
    cc_producer *p;
    cc_consumer *c;

    bus_new_topic(&cfg, topic, sizeof(topic), "bus-bc", 1);
    itest_unique(group, sizeof(group), "bus-bc-group");
    p = cc_producer_new(&cfg);
    cr_assert_not_null(p);
    for (int i = 0; i < 8; i++) {
        char key[16];
        snprintf(key, sizeof(key), "c-%d", i);
        bus_send_event(p, topic, key, NULL);
    }
    cr_assert_eq(cc_producer_flush(p, 10000), 0);
    c = cc_consumer_new_batch(&cfg, group, (const char *const[]){topic}, 1, bus_batch_handler, 64,
                              &first, p);
    cr_assert_not_null(c);
    until = cc_time_mono_ms() + 30000;
    while (first.seen[3] < 2 && cc_time_mono_ms() < until)
        cr_assert_geq(cc_consumer_poll(c, 100), 0);
    cc_consumer_free(c); /* stops mid-retry: offsets 0..2 are committed, 3.. are not */
    cr_assert_geq(first.seen[3], 2, "expected offset 3 to be retried");
    cr_assert_eq(first.n, 3, "expected offsets 0..2 handled before the retry, got %d", first.n);

    c = cc_consumer_new_batch(&cfg, group, (const char *const[]){topic}, 1, bus_batch_handler, 64,
                              &second, p);
    cr_assert_not_null(c);
    bus_batch_poll_until(c, &second, 5, 60000);
    cc_consumer_free(c);
    cr_assert_eq(second.n, 5, "expected offsets 3..7 redelivered, got %d", second.n);
    cr_assert_eq(second.ok[0], 3, "expected redelivery from offset 3, got %lld",
                 (long long)second.ok[0]);
    cr_assert_eq(second.seen[0] + second.seen[1] + second.seen[2], 0,
                 "expected the committed offsets 0..2 not to be redelivered");
    cc_producer_free(p);
}

/* The offset committed after handled messages is the next one to handle: a member that closes
 * while retrying offset 3 leaves exactly 3..7 to the next one (regression: it once skipped 3). */
Test(bus, the_next_member_resumes_at_the_message_being_retried_not_after_it, .timeout = 120)
{
    struct cc_bus_config cfg = bus_cfg();
    struct bus_record first = {.retries_for = 3, .retries_left = 1000000};
    struct bus_record second = {.retries_for = -1};
    char topic[128], group[128], key[16];
    int64_t until;
    cc_producer *p;
    cc_consumer *c;

    bus_new_topic(&cfg, topic, sizeof(topic), "bus-n", 1);
    itest_unique(group, sizeof(group), "bus-n-group");
    p = cc_producer_new(&cfg);
    cr_assert_not_null(p);
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof(key), "n-%d", i);
        bus_send_event(p, topic, key, NULL);
    }
    cr_assert_eq(cc_producer_flush(p, 10000), 0);
    c = cc_consumer_new(&cfg, group, (const char *const[]){topic}, 1, bus_record_handler, &first,
                        p);
    cr_assert_not_null(c);
    until = cc_time_mono_ms() + 30000;
    while (first.calls[3] < 2 && cc_time_mono_ms() < until)
        cr_assert_geq(cc_consumer_poll(c, 100), 0);
    cc_consumer_free(c);
    cr_assert_eq(first.n, 3, "expected offsets 0..2 handled before the retry, got %d", first.n);

    c = cc_consumer_new(&cfg, group, (const char *const[]){topic}, 1, bus_record_handler, &second,
                        p);
    cr_assert_not_null(c);
    bus_poll_until(c, &second, 5, 60000);
    cc_consumer_free(c);
    cr_assert_eq(second.n, 5, "expected offsets 3..7 for the next member, got %d", second.n);
    cr_assert_eq(second.offsets[0], 3, "expected the next member to start at offset 3, got %lld",
                 (long long)second.offsets[0]);
    cc_producer_free(p);
}
