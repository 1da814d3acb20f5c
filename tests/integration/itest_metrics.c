/* itest_metrics: the fixture of the metrics-aggregator's integration tests (see itest_metrics.h).
 */
#include "itest_metrics.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cc_auth.h"
#include "cc_time.h"
#include "itest.h"
#include "itest_bus.h"

#define IM_BUCKET_MS (15 * 60 * 1000LL)
#define IM_KAFKA_MS  10000

static const char *const im_topics[] = {CC_TOPIC_INTERACTIONS, CC_TOPIC_AGENTS};

void itest_metrics_setup(struct itest_metrics *t, const char *prefix)
{
    struct cc_bus_config bus;
    char uniq[96];
    int64_t now = cc_time_now_ms();
    int utc_hour = (int)((now / 3600000) % 24), h = 12 - utc_hour;

    memset(t, 0, sizeof(*t));
    itest_unique(t->tenant, sizeof(t->tenant), prefix);
    itest_unique(uniq, sizeof(uniq), "m");
    /* ids allow no '_': the tag is the random hex of a unique name */
    snprintf(t->tag, sizeof(t->tag), "%s", strrchr(uniq, '_') + 1);
    itest_unique(t->group, sizeof(t->group), "mig");
    t->base_ms = (now - 3 * 3600 * 1000LL) / IM_BUCKET_MS * IM_BUCKET_MS;
    if (h == 0)
        snprintf(t->tz, sizeof(t->tz), "Etc/GMT");
    else /* POSIX sign: Etc/GMT-3 is UTC+3 */
        snprintf(t->tz, sizeof(t->tz), "Etc/GMT%+d", -h);
    cc_bus_config_defaults(&bus);
    bus.brokers = itest_env("CC_KAFKA_BROKERS");
    bus.client_id = "itest-metrics";
    bus.linger_ms = 1;
    t->producer = cc_producer_new(&bus);
    cr_assert_not_null(t->producer, "expected a producer on the dev broker");
    t->pg = cc_pg_new(itest_env("CC_PG_DSN"));
    cr_assert_not_null(t->pg, "expected a connection to CC_PG_DSN");
}

void itest_metrics_teardown(struct itest_metrics *t)
{
    itest_proc_kill(&t->svc);
    cc_producer_free(t->producer);
    cc_pg_free(t->pg);
    t->producer = NULL;
    t->pg = NULL;
}

void itest_metrics_start(struct itest_metrics *t, const char *const *extra_env)
{
    char bin[512], mig[600], dir[560], log[640], line[1024], h[65], tokens[256], env_group[160],
        env_mig[700], env_tz[64], env_inst[128];
    const char *env[24] = {tokens, "CC_HTTP_PORT=0", "CC_HTTP_ADDR=127.0.0.1", env_group, env_mig,
                           env_tz, env_inst,         "CC_LOG_LEVEL=info"};
    size_t n = 8;
    char *argv[] = {bin, NULL};
    static int starts;
    const char *p;

    for (size_t i = 0; extra_env && extra_env[i] && n + 1 < sizeof(env) / sizeof(env[0]); i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    cc_auth_hash_token(ITEST_METRICS_TOKEN, h);
    snprintf(tokens, sizeof(tokens), "CC_AUTH_TOKENS=%s:%s:analyst", h, t->tenant);
    snprintf(bin, sizeof(bin), "%s/bin/cc-metrics-aggregator", itest_env("CC_TEST_BIN_DIR"));
    snprintf(mig, sizeof(mig), "%s/services/metrics-aggregator/migrations",
             itest_env("CC_TEST_TOP"));
    snprintf(env_group, sizeof(env_group), "CC_METRICS_GROUP=%s", t->group);
    snprintf(env_mig, sizeof(env_mig), "CC_METRICS_MIGRATIONS_DIR=%s", mig);
    snprintf(env_tz, sizeof(env_tz), "CC_METRICS_TZ=%s", t->tz);
    snprintf(env_inst, sizeof(env_inst), "CC_INSTANCE_ID=%s-%d", t->tag, ++starts);
    if (t->produced == 0 && starts == 1) /* a new group reads only what comes after this */
        cr_assert_eq(itest_group_at_end(t->group, im_topics, 2), 0,
                     "expected group '%s' positioned at the end of the topics", t->group);
    snprintf(dir, sizeof(dir), "%s/tests/logs", itest_env("CC_TEST_BIN_DIR"));
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "expected the log directory %s", dir);
    snprintf(log, sizeof(log), "%s/metrics-%s-%d.log", dir, t->tag, starts);
    cr_assert_eq(itest_proc_spawn(&t->svc, argv, env, log), 0,
                 "expected cc-metrics-aggregator to start");
    cr_assert(itest_proc_wait_line(&t->svc, "consuming: http ", line, sizeof(line), 60000),
              "expected cc-metrics-aggregator to consume within 60 s (see %s)", log);
    p = strstr(line, "consuming: http ");
    cr_assert(p && sscanf(p, "consuming: http %*[^:]:%d", &t->port) == 1,
              "expected the http port in '%s'", line);
}

void itest_metrics_stop(struct itest_metrics *t)
{
    int rc = itest_proc_stop(&t->svc, 20000);

    cr_expect_eq(rc, 0, "expected cc-metrics-aggregator to exit 0 on SIGTERM, got %d (see %s)", rc,
                 t->svc.log);
    cr_expect(!itest_proc_sanitizer_report(&t->svc), "expected no sanitizer report in %s",
              t->svc.log);
}

void itest_metrics_kill(struct itest_metrics *t)
{
    itest_proc_kill(&t->svc);
}

/* "<tag>-<name>" for interaction subjects ("S1"); agent subjects ("a1") stay as they are. */
static void im_subject(const struct itest_metrics *t, const char *subject, char *out, size_t cap)
{
    if (subject[0] >= 'A' && subject[0] <= 'Z')
        snprintf(out, cap, "%s-%s", t->tag, subject);
    else
        snprintf(out, cap, "%s", subject);
}

void itest_metrics_send(struct itest_metrics *t, const char *topic, const char *type,
                        const char *subject, int64_t at_ms, const char *data_json, int seq)
{
    char id[64], subj[96], when[CC_TIME_ISO8601_LEN], *text = strdup(data_json);
    json_error_t jerr;
    json_t *data, *env;

    cr_assert_not_null(text);
    for (char *c = text; *c; c++)
        if (*c == '\'')
            *c = '"';
    data = json_loads(text, 0, &jerr);
    cr_assert_not_null(data, "expected valid test data '%s': %s", text, jerr.text);
    free(text);
    snprintf(id, sizeof(id), "%s-%04d", t->tag, seq);
    im_subject(t, subject, subj, sizeof(subj));
    cr_assert_eq(cc_time_format_iso8601(t->base_ms + at_ms, when), 0);
    env = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", id,
                    "source", "/itest/metrics", "type", type, "time", when, "datacontenttype",
                    "application/json", "subject", subj, "tenant", t->tenant, "data", data);
    cr_assert_not_null(env);
    cr_assert_eq(cc_producer_send_event(t->producer, topic, subj, env), 0,
                 "expected event %s to be queued", id);
    json_decref(env);
    t->produced++;
}

void itest_metrics_send_raw(struct itest_metrics *t, const char *topic, const char *key,
                            const char *value)
{
    cr_assert_eq(cc_producer_send(t->producer, topic, key, value, strlen(value)), 0,
                 "expected a raw message to be queued");
}

/* Appends every partition of topic with its high watermark to list. */
static void im_ends(rd_kafka_t *rk, const char *topic, rd_kafka_topic_partition_list_t *list)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *tp = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, tp, &md, IM_KAFKA_MS);

    cr_assert(!err && md->topic_cnt == 1 && !md->topics[0].err, "expected metadata of %s", topic);
    for (int p = 0; p < md->topics[0].partition_cnt; p++) {
        int64_t lo = 0, hi = 0;
        int32_t id = md->topics[0].partitions[p].id;

        err = rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi, IM_KAFKA_MS);
        cr_assert(!err, "expected watermarks of %s [%d]", topic, id);
        rd_kafka_topic_partition_list_add(list, topic, id)->offset = hi;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(tp);
}

void itest_metrics_wait_caught_up(struct itest_metrics *t)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *ends, *got;
    int64_t until = cc_time_mono_ms() + ITEST_METRICS_WAIT_MS;
    char err[256];
    rd_kafka_t *rk;
    bool done = false;

    cr_assert_eq(cc_producer_flush(t->producer, 10000), 0, "expected every event delivered");
    cr_assert(rd_kafka_conf_set(conf, "bootstrap.servers", itest_env("CC_KAFKA_BROKERS"), err,
                                sizeof(err)) == RD_KAFKA_CONF_OK &&
              rd_kafka_conf_set(conf, "group.id", t->group, err, sizeof(err)) == RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    cr_assert_not_null(rk, "expected a kafka handle: %s", err);
    ends = rd_kafka_topic_partition_list_new(32);
    for (size_t i = 0; i < 2; i++)
        im_ends(rk, im_topics[i], ends);
    while (!done && cc_time_mono_ms() < until) {
        got = rd_kafka_topic_partition_list_copy(ends);
        done = rd_kafka_committed(rk, got, IM_KAFKA_MS) == RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; done && i < got->cnt; i++)
            done = got->elems[i].offset >= ends->elems[i].offset || ends->elems[i].offset == 0;
        rd_kafka_topic_partition_list_destroy(got);
        if (!done)
            cc_time_sleep_ms(100);
    }
    rd_kafka_topic_partition_list_destroy(ends);
    rd_kafka_destroy(rk);
    cr_assert(done, "expected group '%s' to commit the end of its topics within %d ms (see %s)",
              t->group, ITEST_METRICS_WAIT_MS, t->svc.log);
}

long long itest_metrics_sql_int(struct itest_metrics *t, const char *sql, int nparams,
                                const char *const *params)
{
    PGresult *res = cc_pg_query(t->pg, sql, nparams, params);
    long long v;

    cr_assert_not_null(res, "expected '%s' to run", sql);
    cr_assert_eq(PQntuples(res), 1, "expected one row from '%s'", sql);
    v = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

long itest_metrics_applied(struct itest_metrics *t)
{
    char like[40];
    const char *p[] = {like};

    snprintf(like, sizeof(like), "%s-%%", t->tag);
    return (long)itest_metrics_sql_int(
        t, "SELECT count(*) FROM metrics.events_seen WHERE id LIKE $1", 1, p);
}
