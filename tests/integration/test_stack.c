/* Integration: the local stack is up, and the dev broker serves the whole topic catalog. */
#include "itest.h"

#include <hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#define STACK_MIN_PARTITIONS 6

TestSuite(stack, .timeout = 30);

/* A producer handle on the dev broker; fails the test on error. */
static rd_kafka_t *stack_kafka_new(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", itest_env("CC_KAFKA_BROKERS"), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        cr_assert_fail("expected a valid bootstrap list: %s", errstr);
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        cr_assert_fail("expected a kafka handle: %s", errstr);
    }
    return rk;
}

/* Partition count of topic in md, or -1 when md does not list it. */
static int stack_partitions(const struct rd_kafka_metadata *md, const char *topic)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) == 0)
            return md->topics[i].err ? -1 : md->topics[i].partition_cnt;
    }
    return -1;
}

Test(stack, exports_the_stack_environment)
{
    cr_expect(strncmp(itest_env("CC_REDIS_URL"), "unix:///", 8) == 0,
              "expected CC_REDIS_URL to be unix:///<abs path>, got '%s'", getenv("CC_REDIS_URL"));
    cr_expect(strstr(itest_env("CC_PG_DSN"), "host=/") && strstr(getenv("CC_PG_DSN"), "dbname=cc"),
              "expected CC_PG_DSN with a socket host and dbname=cc, got '%s'", getenv("CC_PG_DSN"));
    cr_expect(strchr(itest_env("CC_KAFKA_BROKERS"), ':'),
              "expected CC_KAFKA_BROKERS as host:port[,...], got '%s'", getenv("CC_KAFKA_BROKERS"));
    itest_env("CC_DEVBROKER_CONTROL");
    itest_env("CC_TEST_BIN_DIR");
    itest_env("CC_TEST_TOP");
}

Test(stack, redis_and_postgresql_answer_on_their_sockets)
{
    const char *sock = itest_env("CC_REDIS_URL") + strlen("unix://");
    redisContext *rc = redisConnectUnix(sock);
    redisReply *reply;
    PGconn *pg;
    PGresult *res;

    cr_assert(rc && !rc->err, "expected redis on '%s': %s", sock, rc ? rc->errstr : "no memory");
    reply = redisCommand(rc, "PING");
    cr_expect(reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0,
              "expected PONG from redis");
    freeReplyObject(reply);
    redisFree(rc);

    pg = PQconnectdb(itest_env("CC_PG_DSN"));
    cr_assert(PQstatus(pg) == CONNECTION_OK, "expected postgresql to accept: %s",
              PQerrorMessage(pg));
    res = PQexec(pg, "SELECT current_database()");
    cr_expect(PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "cc") == 0,
              "expected to be connected to database 'cc'");
    PQclear(res);
    PQfinish(pg);
}

Test(stack, dev_broker_creates_every_catalog_topic_with_at_least_six_partitions)
{
    char path[4096];
    json_error_t jerr;
    json_t *catalog, *topics, *t;
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err;
    rd_kafka_t *rk;
    size_t i;

    snprintf(path, sizeof(path), "%s/proto/topics.json", itest_env("CC_TEST_TOP"));
    catalog = json_load_file(path, 0, &jerr);
    cr_assert(catalog, "expected a readable catalog '%s': %s", path, jerr.text);
    topics = json_object_get(catalog, "topics");
    cr_assert(json_array_size(topics) > 0, "expected topics in '%s'", path);

    rk = stack_kafka_new();
    err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    cr_assert(err == RD_KAFKA_RESP_ERR_NO_ERROR, "expected cluster metadata: %s",
              rd_kafka_err2str(err));
    cr_expect_eq(md->broker_cnt, 3, "expected 3 mock brokers, got %d", md->broker_cnt);

    json_array_foreach(topics, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        json_int_t want = json_integer_value(json_object_get(t, "partitions"));
        int got = stack_partitions(md, name);

        if (want < STACK_MIN_PARTITIONS)
            want = STACK_MIN_PARTITIONS;
        cr_expect_eq(got, (int)want, "expected topic '%s' with %d partitions, got %d", name,
                     (int)want, got);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    json_decref(catalog);
}

Test(stack, dev_broker_creates_a_topic_with_the_partitions_a_test_asks_for)
{
    char topic[96];
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t err;
    rd_kafka_t *rk;

    itest_unique(topic, sizeof(topic), "stack");
    itest_topic_create(topic, 9);

    rk = stack_kafka_new();
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    cr_assert(rkt, "expected a topic handle for '%s'", topic);
    err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    cr_assert(err == RD_KAFKA_RESP_ERR_NO_ERROR, "expected metadata for '%s': %s", topic,
              rd_kafka_err2str(err));
    cr_expect_eq(stack_partitions(md, topic), 9, "expected '%s' with 9 partitions, got %d", topic,
                 stack_partitions(md, topic));
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}
