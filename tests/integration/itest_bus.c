/* itest_bus: see itest_bus.h. */
#include "itest_bus.h"

#include <errno.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>

#include "cc_log.h"

#define ITEST_BUS_TIMEOUT_MS 10000

static int add_topic_ends(rd_kafka_t *rk, const char *topic, rd_kafka_topic_partition_list_t *list)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err;
    int rc = 0;

    if (!t)
        return -ENOMEM;
    err = rd_kafka_metadata(rk, 0, t, &md, ITEST_BUS_TIMEOUT_MS);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        CC_ERROR("itest: no metadata for topic \"%s\": %s", topic,
                 rd_kafka_err2str(err ? err : md->topics[0].err));
        rc = -EIO;
        goto out;
    }
    for (int p = 0; p < md->topics[0].partition_cnt; p++) {
        int32_t id = md->topics[0].partitions[p].id;
        int64_t lo = 0, hi = 0;

        err = rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi, ITEST_BUS_TIMEOUT_MS);
        if (err) {
            CC_ERROR("itest: no watermarks for \"%s\" [%d]: %s", topic, id, rd_kafka_err2str(err));
            rc = -EIO;
            goto out;
        }
        rd_kafka_topic_partition_list_add(list, topic, id)->offset = hi;
    }
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return rc;
}

int itest_group_at_end(const char *group, const char *const *topics, size_t n)
{
    const char *brokers = getenv("CC_KAFKA_BROKERS");
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    rd_kafka_t *rk;
    int rc = 0;

    if (!brokers || rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err))) {
        CC_ERROR("itest: bad consumer settings for group \"%s\"", group);
        rd_kafka_conf_destroy(conf);
        return -EINVAL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        CC_ERROR("itest: cannot make a consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        return -EIO;
    }
    list = rd_kafka_topic_partition_list_new((int)n * 12);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = add_topic_ends(rk, topics[i], list);
    if (rc == 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(rk, list, 0);
        if (e) {
            CC_ERROR("itest: commit of group \"%s\" failed: %s", group, rd_kafka_err2str(e));
            rc = -EIO;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
