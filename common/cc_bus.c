/*
 * cc_bus: the Kafka bus over librdkafka (see cc_bus.h for the contract).
 */
#include "cc_bus.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cc_event.h"
#include "cc_log.h"
#include "cc_time.h"

#define BUS_QUEUE_FULL_WAIT_MS 5000  /* cc_producer_send: longest wait for queue space */
#define BUS_FREE_FLUSH_MS      10000 /* cc_producer_free: longest flush */
#define BUS_DEADLETTER_WAIT_MS 30000 /* longest wait for a deadletter's delivery report */
#define BUS_RUN_POLL_MS        100   /* cc_consumer_run: poll slice, bounds the stop latency */

struct cc_producer {
    rd_kafka_t *rk;
    int wake[2];        /* cc_producer_wake_fd's pipe, -1 until asked for */
    atomic_long failed; /* delivery failures since the last flush */
    atomic_bool fatal;
};

/* Delivery tracker of one message whose sender waits for it (the deadletter). Two references:
 * the waiter's and the delivery report's; the last one to let go frees it. */
struct bus_ack {
    atomic_int refs;
    atomic_bool done;
    atomic_int err;
};

struct cc_consumer {
    rd_kafka_t *rk;
    char *group;
    char *source;
    cc_bus_handler handler; /* single-message handler (called by bus_single_batch), or NULL */
    cc_bus_batch_handler batch;
    void *ctx;
    cc_producer *deadletter;
    atomic_bool fatal;
    atomic_bool assigned; /* a first assignment arrived (read by other threads) */
    int retry_backoff_max_ms;
    volatile sig_atomic_t *stop; /* set by cc_consumer_run; NULL when polled by hand */
    size_t batch_max;            /* messages per handler call; 1 for a single-message handler */
    rd_kafka_message_t **msgs;   /* [batch_max]: the batch being handled (owned while handled) */
    struct cc_bus_msg *bms;      /* [batch_max]: their borrowed views */
    struct cc_bus_outcome *outs; /* [batch_max]: the handler's verdicts */
    int64_t *polled_us;          /* [batch_max]: when each of msgs was polled (wall clock) */
    /* the messages being retried (owned; per partition in offset order), their backoff and when
     * to call the handler again */
    rd_kafka_message_t **held; /* [batch_max] */
    size_t nheld;
    int backoff_ms;
    int64_t retry_at_ms;
    unsigned attempts;
};

/* ---- configuration */

void cc_bus_config_defaults(struct cc_bus_config *cfg)
{
    *cfg = (struct cc_bus_config){
        .session_timeout_ms = CC_BUS_DEFAULT_SESSION_TIMEOUT_MS,
        .heartbeat_interval_ms = CC_BUS_DEFAULT_HEARTBEAT_INTERVAL_MS,
        .fetch_wait_max_ms = CC_BUS_DEFAULT_FETCH_WAIT_MAX_MS,
        .retry_backoff_max_ms = CC_BUS_DEFAULT_RETRY_BACKOFF_MAX_MS,
        .commit_interval_ms = CC_BUS_DEFAULT_COMMIT_INTERVAL_MS,
        .linger_ms = CC_BUS_DEFAULT_LINGER_MS,
    };
}

void cc_bus_config_from_common(struct cc_bus_config *cfg, const struct cc_common_config *common)
{
    cc_bus_config_defaults(cfg);
    cfg->brokers = common->kafka_brokers;
    cfg->client_id = common->instance_id;
    cfg->session_timeout_ms = (int)common->kafka_session_timeout_ms;
    cfg->heartbeat_interval_ms = (int)common->kafka_heartbeat_interval_ms;
    cfg->fetch_wait_max_ms = (int)common->kafka_fetch_wait_max_ms;
    cfg->linger_ms = (int)common->kafka_linger_ms;
    cfg->retry_backoff_max_ms = (int)common->kafka_retry_backoff_max_ms;
}

static int bus_range_check(const char *name, int v, int lo, int hi, char *err, size_t errlen)
{
    if (v >= lo && v <= hi)
        return 0;
    if (err)
        snprintf(err, errlen, "invalid bus setting: %s=%d is outside [%d, %d]", name, v, lo, hi);
    return -EINVAL;
}

int cc_bus_config_validate(const struct cc_bus_config *cfg, char *err, size_t errlen)
{
    if (!cfg->brokers || !cfg->brokers[0]) {
        if (err)
            snprintf(err, errlen, "invalid bus setting: brokers is empty");
        return -EINVAL;
    }
    if (!cfg->client_id || !cfg->client_id[0]) {
        if (err)
            snprintf(err, errlen, "invalid bus setting: client_id is empty");
        return -EINVAL;
    }
    /* ranges are librdkafka's own, so that a value accepted here is accepted there */
    if (bus_range_check("session_timeout_ms", cfg->session_timeout_ms, 1, 3600000, err, errlen) ||
        bus_range_check("heartbeat_interval_ms", cfg->heartbeat_interval_ms, 1, 3600000, err,
                        errlen) ||
        bus_range_check("fetch_wait_max_ms", cfg->fetch_wait_max_ms, 0, 300000, err, errlen) ||
        bus_range_check("retry_backoff_max_ms", cfg->retry_backoff_max_ms,
                        CC_BUS_RETRY_BACKOFF_MIN_MS, 3600000, err, errlen) ||
        bus_range_check("commit_interval_ms", cfg->commit_interval_ms, 1, 86400000, err, errlen) ||
        bus_range_check("linger_ms", cfg->linger_ms, 0, 900000, err, errlen))
        return -EINVAL;
    if (cfg->heartbeat_interval_ms >= cfg->session_timeout_ms) {
        if (err)
            snprintf(err, errlen,
                     "invalid bus setting: heartbeat_interval_ms=%d must be below "
                     "session_timeout_ms=%d",
                     cfg->heartbeat_interval_ms, cfg->session_timeout_ms);
        return -EINVAL;
    }
    return 0;
}

int cc_bus_config_load(struct cc_bus_config *cfg, const struct cc_common_config *common)
{
    char err[256] = "";

    cc_bus_config_from_common(cfg, common);
    if (cc_bus_config_validate(cfg, err, sizeof(err)) < 0) {
        CC_ERROR("bad kafka settings: %s", err);
        return -EINVAL;
    }
    return 0;
}

/* ---- librdkafka plumbing shared by producers, consumers and the admin client */

static void bus_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels: 0..3 error, 4 warning, 5..6 notice/info, 7 debug */
    enum cc_log_level l = level <= 3   ? CC_LOG_ERROR
                          : level == 4 ? CC_LOG_WARN
                          : level <= 6 ? CC_LOG_INFO
                                       : CC_LOG_DEBUG;

    CC_LOG_AT(l, NULL, "rdkafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static int bus_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
        return 0;
    CC_ERROR("invalid kafka setting \"%s\"=\"%s\": %s", name, value, errstr);
    return -EINVAL;
}

static int bus_conf_set_int(rd_kafka_conf_t *conf, const char *name, int value)
{
    char buf[16];

    snprintf(buf, sizeof(buf), "%d", value);
    return bus_conf_set(conf, name, buf);
}

/* A conf with what every client shares; NULL (logged) on failure. */
static rd_kafka_conf_t *bus_conf_new(const struct cc_bus_config *cfg)
{
    char err[256];
    rd_kafka_conf_t *conf;

    if (cc_bus_config_validate(cfg, err, sizeof(err)) < 0) {
        CC_ERROR("%s", err);
        return NULL;
    }
    conf = rd_kafka_conf_new();
    /* Nagle would hold small produce and fetch requests back behind delayed ACKs */
    if (bus_conf_set(conf, "bootstrap.servers", cfg->brokers) ||
        bus_conf_set(conf, "client.id", cfg->client_id) ||
        bus_conf_set(conf, "socket.nagle.disable", "true")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, bus_log_cb);
    return conf;
}

static int bus_errno(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return 0;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return -ENOBUFS;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return -ENOENT;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return -EMSGSIZE;
    case RD_KAFKA_RESP_ERR__FATAL:
        return -ENOTRECOVERABLE;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
        return -ETIMEDOUT;
    default:
        return -EIO;
    }
}

/* ---- producer */

static void bus_ack_release(struct bus_ack *ack)
{
    if (atomic_fetch_sub(&ack->refs, 1) == 1)
        free(ack);
}

/* Delivery callback of a tracked message: records the outcome, drops the report's reference. */
static void bus_ack_delivered(void *ctx, uint64_t tag, int err)
{
    struct bus_ack *ack = ctx;

    (void)tag;
    atomic_store(&ack->err, err);
    atomic_store(&ack->done, true);
    bus_ack_release(ack);
}

/* What a message sent with a delivery callback carries to its delivery report (owned by it). */
struct bus_dr {
    cc_bus_delivery_cb cb;
    void *ctx;
    uint64_t tag;
};

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    cc_producer *p = opaque;
    struct bus_dr *dr = m->_private;

    (void)rk;
    if (m->err) {
        atomic_fetch_add(&p->failed, 1);
        CC_WARN("delivery failed: %s: topic \"%s\" partition %d", rd_kafka_err2str(m->err),
                rd_kafka_topic_name(m->rkt), (int)m->partition);
    }
    if (dr) {
        dr->cb(dr->ctx, dr->tag, bus_errno(m->err));
        free(dr);
    }
}

/* Logs a client error; returns true when it is fatal (the client must be recreated). */
static bool bus_error_log(rd_kafka_t *rk, int err, const char *reason)
{
    char fatal[512];

    if (err != RD_KAFKA_RESP_ERR__FATAL) {
        /* transport and broker errors are retried by librdkafka itself */
        CC_WARN("kafka client error: %s: %s (%s)", rd_kafka_err2name(err), reason,
                rd_kafka_name(rk));
        return false;
    }
    rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    CC_ERROR("fatal kafka error: %s (%s)", fatal, rd_kafka_name(rk));
    return true;
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    cc_producer *p = opaque;

    if (bus_error_log(rk, err, reason))
        atomic_store(&p->fatal, true);
}

cc_producer *cc_producer_new(const struct cc_bus_config *cfg)
{
    char errstr[512];
    rd_kafka_conf_t *conf;
    cc_producer *p;

    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->wake[0] = p->wake[1] = -1;
    conf = bus_conf_new(cfg);
    if (!conf)
        goto free_p;
    /* One produce request in flight per broker connection: what is produced meanwhile joins
     * the next request's batch. With librdkafka's default (5 for an idempotent producer) one
     * of cc-router's broker threads at times spun at 50-90 % of a core for seconds under load
     * (the dev broker answering in 100-200 ms); measured under make bench-sip (A B A B, 800-1,000
     * calls/s): cc-router 44-60 % of a core -> 28-35 %, the burst of make bench-router unchanged
     * (6,049 decisions/s) with the decision acknowledged sooner (p50 3.2 ms at 500/s). */
    if (bus_conf_set(conf, "enable.idempotence", "true") || bus_conf_set(conf, "acks", "all") ||
        bus_conf_set(conf, "compression.type", "lz4") ||
        bus_conf_set_int(conf, "linger.ms", cfg->linger_ms) ||
        bus_conf_set(conf, "max.in.flight.requests.per.connection", "1"))
        goto destroy_conf;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p->rk) {
        CC_ERROR("kafka producer not created: %s", errstr);
        goto destroy_conf;
    }
    /* conf is owned by p->rk from here on */
    return p;

destroy_conf:
    rd_kafka_conf_destroy(conf);
free_p:
    free(p);
    return NULL;
}

/* Builds the librdkafka header list of hdrs; NULL when there are none (or on allocation
 * failure, reported through *rc). */
static rd_kafka_headers_t *bus_headers_new(const struct cc_bus_header *hdrs, size_t n, int *rc)
{
    rd_kafka_headers_t *h;

    *rc = 0;
    if (!hdrs || n == 0)
        return NULL;
    h = rd_kafka_headers_new(n);
    if (!h) {
        *rc = -ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_header_add(h, hdrs[i].name, -1, hdrs[i].value, (ssize_t)hdrs[i].len)) {
            rd_kafka_headers_destroy(h);
            *rc = -EINVAL;
            return NULL;
        }
    return h;
}

/* Queues one message, waiting for queue space up to BUS_QUEUE_FULL_WAIT_MS; dr (may be NULL) is
 * handed to the delivery report on success (it stays the caller's on failure). */
static int producer_send_raw(cc_producer *p, const struct cc_bus_send *s, struct bus_dr *dr)
{
    int64_t deadline = cc_time_mono_ms() + BUS_QUEUE_FULL_WAIT_MS;
    rd_kafka_headers_t *hdrs;
    rd_kafka_resp_err_t err;
    int rc;

    if (!s->topic || !s->topic[0])
        return -EINVAL;
    if (atomic_load(&p->fatal))
        return -ENOTRECOVERABLE;
    hdrs = bus_headers_new(s->headers, s->nheaders, &rc);
    if (rc < 0)
        return rc;
    for (;;) {
        /* the header list becomes librdkafka's only when the message is queued */
        err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(s->topic), RD_KAFKA_V_KEY(s->key, s->key ? s->keylen : 0),
            RD_KAFKA_V_VALUE((void *)s->value, s->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(dr), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || cc_time_mono_ms() >= deadline)
            break;
        /* serving delivery reports is what frees queue space */
        rd_kafka_poll(p->rk, 100);
    }
    if (err) {
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        CC_WARN("message not queued: %s: topic \"%s\"", rd_kafka_err2str(err), s->topic);
    }
    return bus_errno(err);
}

int cc_producer_send_ex(cc_producer *p, const struct cc_bus_send *s)
{
    struct bus_dr *dr = NULL;
    int rc;

    if (s->on_delivery) {
        dr = malloc(sizeof(*dr));
        if (!dr)
            return -ENOMEM;
        *dr = (struct bus_dr){.cb = s->on_delivery, .ctx = s->ctx, .tag = s->tag};
    }
    rc = producer_send_raw(p, s, dr);
    if (rc < 0)
        free(dr); /* never queued: no delivery report will come */
    return rc;
}

int cc_producer_send(cc_producer *p, const char *topic, const char *key, const void *value,
                     size_t len)
{
    return cc_producer_send_ex(p, &(struct cc_bus_send){.topic = topic,
                                                        .key = key,
                                                        .keylen = key ? strlen(key) : 0,
                                                        .value = value,
                                                        .len = len});
}

/* Adds header name = the envelope's string member field, when there is one. */
static void bus_event_header(const json_t *envelope, const char *field, const char *name,
                             struct cc_bus_header *hdrs, size_t *n)
{
    const json_t *v = json_object_get(envelope, field);

    if (!json_is_string(v))
        return;
    hdrs[*n] = (struct cc_bus_header){
        .name = name, .value = json_string_value(v), .len = json_string_length(v)};
    (*n)++;
}

int cc_producer_send_event_cb(cc_producer *p, const char *topic, const char *key,
                              const json_t *envelope, cc_bus_delivery_cb on_delivery, void *ctx,
                              uint64_t tag)
{
    struct cc_bus_header hdrs[3];
    size_t nhdrs = 0;
    char *text;
    int rc;

    text = json_dumps(envelope, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    bus_event_header(envelope, "source", CC_BUS_HEADER_SOURCE, hdrs, &nhdrs);
    bus_event_header(envelope, "type", CC_BUS_HEADER_TYPE, hdrs, &nhdrs);
    bus_event_header(envelope, "id", CC_BUS_HEADER_ID, hdrs, &nhdrs);
    rc = cc_producer_send_ex(p, &(struct cc_bus_send){.topic = topic,
                                                      .key = key,
                                                      .keylen = key ? strlen(key) : 0,
                                                      .value = text,
                                                      .len = strlen(text),
                                                      .headers = hdrs,
                                                      .nheaders = nhdrs,
                                                      .on_delivery = on_delivery,
                                                      .ctx = ctx,
                                                      .tag = tag});
    free(text);
    return rc;
}

int cc_producer_send_event(cc_producer *p, const char *topic, const char *key,
                           const json_t *envelope)
{
    return cc_producer_send_event_cb(p, topic, key, envelope, NULL, NULL, 0);
}

void cc_producer_poll(cc_producer *p, int timeout_ms)
{
    char buf[64];

    /* emptied first: a report queued from here on writes to it again */
    while (p->wake[0] >= 0 && read(p->wake[0], buf, sizeof(buf)) > 0)
        ;
    rd_kafka_poll(p->rk, timeout_ms);
}

int cc_producer_wake_fd(cc_producer *p)
{
    rd_kafka_queue_t *q;

    if (p->wake[0] >= 0)
        return p->wake[0];
    if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        CC_ERROR("producer wake pipe: %s", strerror(errno));
        p->wake[0] = p->wake[1] = -1;
        return -1;
    }
    q = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(q, p->wake[1], "1", 1);
    rd_kafka_queue_destroy(q);
    return p->wake[0];
}

int cc_producer_flush(cc_producer *p, int timeout_ms)
{
    rd_kafka_resp_err_t err;

    err = rd_kafka_flush(p->rk, timeout_ms);
    if (atomic_load(&p->fatal))
        return -ENOTRECOVERABLE;
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT)
        return -ETIMEDOUT;
    if (atomic_exchange(&p->failed, 0) > 0)
        return -EIO;
    return 0;
}

void cc_producer_free(cc_producer *p)
{
    int left;

    if (!p)
        return;
    if (rd_kafka_flush(p->rk, BUS_FREE_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        left = rd_kafka_outq_len(p->rk);
        CC_ERROR("messages lost at shutdown: %d still queued after %d ms (%s)", left,
                 BUS_FREE_FLUSH_MS, rd_kafka_name(p->rk));
        /* purged messages get failed delivery reports, which release their trackers */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(p->rk, 1000);
    }
    rd_kafka_destroy(p->rk);
    if (p->wake[0] >= 0) {
        close(p->wake[0]);
        close(p->wake[1]);
    }
    free(p);
}

/* ---- deadletter */

/* Sets field (and field_encoding) of data to bytes as a string when valid UTF-8, else base64;
 * NULL bytes give a JSON null. Returns 0 or -ENOMEM. */
static int bus_set_bytes(json_t *data, const char *field, const void *bytes, size_t len)
{
    char encname[64];
    unsigned char *b64;
    json_t *s;

    snprintf(encname, sizeof(encname), "%s_encoding", field);
    if (!bytes)
        return json_object_set_new(data, field, json_null()) ? -ENOMEM : 0;
    s = json_stringn(bytes, len); /* NULL when not valid UTF-8 */
    if (s) {
        if (json_object_set_new(data, field, s) ||
            json_object_set_new(data, encname, json_string("utf-8")))
            return -ENOMEM;
        return 0;
    }
    b64 = malloc(4 * ((len + 2) / 3) + 1);
    if (!b64)
        return -ENOMEM;
    EVP_EncodeBlock(b64, bytes, (int)len);
    if (json_object_set_new(data, field, json_string((const char *)b64)) ||
        json_object_set_new(data, encname, json_string("base64"))) {
        free(b64);
        return -ENOMEM;
    }
    free(b64);
    return 0;
}

/* The tenant of the original message when it is a JSON object with a string "tenant". */
static json_t *bus_original_tenant(const struct cc_bus_msg *m)
{
    json_t *root, *tenant, *out = NULL;

    if (!m->value)
        return json_string("unknown");
    root = json_loadb(m->value, m->len, 0, NULL);
    tenant = json_object_get(root, "tenant");
    if (json_is_string(tenant) && json_string_length(tenant) > 0)
        out = json_copy(tenant);
    json_decref(root);
    return out ? out : json_string("unknown");
}

json_t *cc_bus_deadletter_envelope(const struct cc_bus_msg *m, const char *group,
                                   const char *source, const char *reason)
{
    json_t *data, *env = NULL, *tenant;
    char src[256];

    snprintf(src, sizeof(src), "/%s", source);
    data = json_pack("{s:s, s:i, s:I, s:I, s:s, s:s}", "topic", m->topic, "partition",
                     (int)m->partition, "offset", (json_int_t)m->offset, "timestamp_ms",
                     (json_int_t)m->timestamp_ms, "group", group, "reason", reason);
    if (!data)
        return NULL;
    if (bus_set_bytes(data, "key", m->key, m->keylen) ||
        bus_set_bytes(data, "payload", m->value, m->len))
        goto put_data;
    tenant = bus_original_tenant(m);
    if (!tenant)
        goto put_data;
    /* cc_event_build steals data: lend it a reference per attempt */
    env = cc_event_build(CC_BUS_DEADLETTER_TYPE, src, NULL, json_string_value(tenant),
                         json_incref(data));
    if (!env) /* the original tenant is not a valid tenant id */
        env = cc_event_build(CC_BUS_DEADLETTER_TYPE, src, NULL, "unknown", json_incref(data));
    json_decref(tenant);
put_data:
    json_decref(data);
    return env;
}

/* ---- consumer */

/* Wall clock in microseconds since the epoch (comparable across processes of one host). */
static int64_t bus_wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The batch handler of a consumer created with a single-message handler: ctx is the consumer. */
static void bus_single_batch(void *ctx, const struct cc_bus_msg *msgs, size_t n,
                             struct cc_bus_outcome *out)
{
    cc_consumer *c = ctx;

    for (size_t i = 0; i < n; i++)
        out[i].verdict = c->handler(c->ctx, &msgs[i], out[i].reason, sizeof(out[i].reason));
}

static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    cc_consumer *c = opaque;

    if (bus_error_log(rk, err, reason))
        atomic_store(&c->fatal, true);
}

/* Pauses or resumes every assigned partition: a retry stops the whole consumer, so that no
 * message overtakes the one being retried and nothing is prefetched meanwhile. */
static void consumer_pause_all(cc_consumer *c, bool pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
        return;
    if (pause)
        rd_kafka_pause_partitions(c->rk, parts);
    else
        rd_kafka_resume_partitions(c->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Forgets the messages being retried that belong to parts (NULL: all of them) without storing
 * their offsets: they are delivered again, to this member or to the partition's next owner.
 * Returns true when some were dropped. */
static bool consumer_drop_held(cc_consumer *c, const rd_kafka_topic_partition_list_t *parts,
                               const char *why)
{
    size_t kept = 0, n = c->nheld;

    for (size_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = c->held[i];
        if (parts &&
            !rd_kafka_topic_partition_list_find(parts, rd_kafka_topic_name(m->rkt), m->partition)) {
            c->held[kept++] = m;
            continue;
        }
        CC_WARN("retry abandoned: %s: topic \"%s\" partition %d offset %lld is left for "
                "redelivery",
                why, rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset);
        rd_kafka_message_destroy(m);
    }
    c->nheld = kept;
    if (kept == 0)
        c->attempts = 0;
    return kept != n;
}

static void consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    cc_consumer *c = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        CC_INFO("partitions assigned: %d in group \"%s\"", parts->cnt, c->group);
        if (coop)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
        if (c->nheld) /* still retrying: new partitions wait too */
            rd_kafka_pause_partitions(rk, parts);
        atomic_store(&c->assigned, true);
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        CC_INFO("partitions %s: %d in group \"%s\"",
                rd_kafka_assignment_lost(rk) ? "lost" : "revoked", parts->cnt, c->group);
        if (consumer_drop_held(c, parts, "partition revoked") && c->nheld == 0)
            consumer_pause_all(c, false);
        /* a partition must not come back paused the next time it is assigned */
        rd_kafka_resume_partitions(rk, parts);
        if (coop)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, NULL);
        break;
    default:
        CC_ERROR("rebalance failed: %s in group \"%s\"", rd_kafka_err2str(err), c->group);
        consumer_drop_held(c, NULL, "rebalance failed");
        aerr = rd_kafka_assign(rk, NULL);
        break;
    }
    if (error) {
        CC_ERROR("incremental assignment failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    if (aerr)
        CC_ERROR("assignment failed: %s", rd_kafka_err2str(aerr));
}

bool cc_consumer_assigned(const cc_consumer *c)
{
    return c && atomic_load(&c->assigned);
}

/* Waits for the delivery report of a deadletter; bounded so that a dead bus turns into a retry
 * (and so that max.poll.interval.ms, 300 s, is never reached). */
static int consumer_wait_ack(const cc_consumer *c, struct bus_ack *ack)
{
    int64_t deadline = cc_time_mono_ms() + BUS_DEADLETTER_WAIT_MS;
    int err;

    while (!atomic_load(&ack->done)) {
        if (cc_time_mono_ms() >= deadline)
            return -ETIMEDOUT;
        if (c->stop && *c->stop)
            return -ECANCELED;
        rd_kafka_poll(c->deadletter->rk, 10);
    }
    err = atomic_load(&ack->err);
    return err < 0 ? err : 0;
}

/* Produces m's deadletter and waits for its delivery. Returns 0 once delivered. */
static int consumer_deadletter(cc_consumer *c, const struct cc_bus_msg *m, const char *reason)
{
    struct bus_ack *ack;
    json_t *env;
    size_t len;
    char *text;
    int rc = -ENOMEM;

    env = cc_bus_deadletter_envelope(m, c->group, c->source, reason);
    if (!env)
        return -ENOMEM;
    text = cc_event_dump(env, &len);
    if (!text)
        goto put_env;
    ack = calloc(1, sizeof(*ack));
    if (!ack)
        goto free_text;
    atomic_init(&ack->refs, 2); /* ours and the delivery report's */
    rc = cc_producer_send_ex(c->deadletter, &(struct cc_bus_send){.topic = CC_TOPIC_DEADLETTER,
                                                                  .key = m->key,
                                                                  .keylen = m->keylen,
                                                                  .value = text,
                                                                  .len = len,
                                                                  .on_delivery = bus_ack_delivered,
                                                                  .ctx = ack});
    if (rc < 0) {
        free(ack); /* never queued: no delivery report will release it */
        goto free_text;
    }
    rc = consumer_wait_ack(c, ack);
    bus_ack_release(ack);
free_text:
    free(text);
put_env:
    json_decref(env);
    return rc;
}

/* Marks m handled: its offset + 1 is committed by the next auto-commit. */
static void consumer_store(const rd_kafka_message_t *m)
{
    rd_kafka_resp_err_t err;

    /* rd_kafka_offset_store() stores its argument + 1: pass the handled message's own offset */
    err = rd_kafka_offset_store(m->rkt, m->partition, m->offset);
    if (err) /* revoked meanwhile: the partition's new owner will handle it again */
        CC_WARN("offset not stored: %s: topic \"%s\" partition %d offset %lld",
                rd_kafka_err2str(err), rd_kafka_topic_name(m->rkt), (int)m->partition,
                (long long)m->offset);
}

/* True when an earlier message of m's partition is held for a retry: m must wait behind it. */
static bool consumer_partition_held(const cc_consumer *c, const rd_kafka_message_t *m)
{
    for (size_t i = 0; i < c->nheld; i++) {
        if (c->held[i]->partition == m->partition &&
            (c->held[i]->rkt == m->rkt ||
             strcmp(rd_kafka_topic_name(c->held[i]->rkt), rd_kafka_topic_name(m->rkt)) == 0))
            return true;
    }
    return false;
}

/* After a handler call: starts, continues or ends the retry of what is held. */
static void consumer_retry_schedule(cc_consumer *c, bool was_retrying, const char *reason)
{
    const rd_kafka_message_t *m;

    if (c->nheld == 0) {
        if (was_retrying) {
            c->attempts = 0;
            consumer_pause_all(c, false);
        }
        return;
    }
    if (!was_retrying) {
        c->attempts = 1;
        c->backoff_ms = CC_BUS_RETRY_BACKOFF_MIN_MS;
        consumer_pause_all(c, true);
    } else {
        c->attempts++;
        c->backoff_ms = c->backoff_ms > c->retry_backoff_max_ms / 2 ? c->retry_backoff_max_ms
                                                                    : c->backoff_ms * 2;
    }
    c->retry_at_ms = cc_time_mono_ms() + c->backoff_ms;
    m = c->held[0];
    CC_WARN("message handling failed, retry in %d ms: %s: topic \"%s\" partition %d offset %lld "
            "(attempt %u, %zu message(s) held)",
            c->backoff_ms, reason, rd_kafka_topic_name(m->rkt), (int)m->partition,
            (long long)m->offset, c->attempts, c->nheld);
}

/* The view of m the handler gets. */
static void consumer_view(const rd_kafka_message_t *m, int64_t polled_us, struct cc_bus_msg *bm)
{
    rd_kafka_timestamp_type_t tstype;
    rd_kafka_headers_t *hdrs = NULL;

    *bm = (struct cc_bus_msg){
        .topic = rd_kafka_topic_name(m->rkt),
        .partition = m->partition,
        .offset = m->offset,
        .key = m->key,
        .keylen = m->key_len,
        .value = m->payload,
        .len = m->len,
        .timestamp_ms = rd_kafka_message_timestamp(m, &tstype),
        .consumed_us = polled_us,
    };
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        bm->hdrs = hdrs;
}

/* Turns a REJECT into OK once its deadletter is delivered, or into a RETRY. */
static enum cc_bus_verdict consumer_reject(cc_consumer *c, const struct cc_bus_msg *bm,
                                           struct cc_bus_outcome *o)
{
    int rc = consumer_deadletter(c, bm, o->reason);

    if (rc == 0) {
        CC_WARN("message rejected: %s: topic \"%s\" partition %d offset %lld sent to \"%s\"",
                o->reason, bm->topic, (int)bm->partition, (long long)bm->offset,
                CC_TOPIC_DEADLETTER);
        return CC_BUS_OK;
    }
    snprintf(o->reason, sizeof(o->reason), "deadletter not delivered: %s", strerror(-rc));
    return CC_BUS_RETRY;
}

/* Runs the handler on c->msgs[0..n) (owned: each is stored and destroyed, or held for a retry
 * with everything after it on its partition). Returns how many were handled. */
static int consumer_dispatch(cc_consumer *c, size_t n, bool was_retrying)
{
    const char *retry_reason = NULL;
    int handled = 0;

    for (size_t i = 0; i < n; i++) {
        consumer_view(c->msgs[i], c->polled_us[i], &c->bms[i]);
        c->outs[i].verdict = CC_BUS_OK;
        c->outs[i].reason[0] = '\0';
    }
    c->batch(c->batch == bus_single_batch ? (void *)c : c->ctx, c->bms, n, c->outs);
    for (size_t i = 0; i < n; i++) {
        struct cc_bus_outcome *o = &c->outs[i];
        enum cc_bus_verdict v = o->verdict;

        if (consumer_partition_held(c, c->msgs[i])) { /* behind a retried one: redelivered */
            c->held[c->nheld++] = c->msgs[i];
            continue;
        }
        if (v != CC_BUS_OK && !o->reason[0])
            snprintf(o->reason, sizeof(o->reason), "handler gave no reason");
        if (v != CC_BUS_OK && v != CC_BUS_RETRY && v != CC_BUS_REJECT) {
            snprintf(o->reason, sizeof(o->reason), "handler returned unknown verdict %d", (int)v);
            v = CC_BUS_REJECT;
        }
        if (v == CC_BUS_REJECT)
            v = consumer_reject(c, &c->bms[i], o);
        if (v == CC_BUS_RETRY) {
            if (!retry_reason)
                retry_reason = o->reason;
            c->held[c->nheld++] = c->msgs[i];
            continue;
        }
        consumer_store(c->msgs[i]);
        rd_kafka_message_destroy(c->msgs[i]);
        handled++;
    }
    consumer_retry_schedule(c, was_retrying, retry_reason ? retry_reason : "behind a retry");
    return handled;
}

/* Hands what is held to the handler again (in the same order). Returns how many were handled. */
static int consumer_retry_held(cc_consumer *c)
{
    size_t n = c->nheld;
    int64_t now = bus_wall_us();

    memcpy(c->msgs, c->held, n * sizeof(*c->msgs));
    for (size_t i = 0; i < n; i++)
        c->polled_us[i] = now; /* handed over again now */
    c->nheld = 0;
    return consumer_dispatch(c, n, true);
}

const char *cc_bus_msg_header(const struct cc_bus_msg *m, const char *name, size_t *len)
{
    const void *value = NULL;
    size_t size = 0;

    if (!m || !m->hdrs || !name ||
        rd_kafka_header_get_last(m->hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !value)
        return NULL;
    if (len)
        *len = size;
    return value;
}

/* A message that arrived while another is being retried (only after an unusual rebalance): put
 * it back so that it is fetched again after the retry, and stop its partition meanwhile. */
static void consumer_push_back(cc_consumer *c, const rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_error_t *error;

    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset;
    rd_kafka_pause_partitions(c->rk, l);
    error = rd_kafka_seek_partitions(c->rk, l, 1000);
    if (error) {
        CC_WARN("seek failed: %s: topic \"%s\" partition %d", rd_kafka_error_string(error),
                rd_kafka_topic_name(m->rkt), (int)m->partition);
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static int consumer_on_error(cc_consumer *c, const rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return 0;
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        bus_error_log(c->rk, m->err, rd_kafka_message_errstr(m));
        atomic_store(&c->fatal, true);
        return -ENOTRECOVERABLE;
    }
    CC_WARN("consume error: %s: topic \"%s\" (group \"%s\")", rd_kafka_message_errstr(m),
            m->rkt ? rd_kafka_topic_name(m->rkt) : "-", c->group);
    return 0;
}

/* Takes m (owned) into the batch being collected, or destroys it. Returns 0, or negative on a
 * fatal error. */
static int consumer_take(cc_consumer *c, rd_kafka_message_t *m, size_t *n)
{
    int rc = 0;

    if (m->err) {
        rc = consumer_on_error(c, m);
        rd_kafka_message_destroy(m);
    } else if (c->nheld) {
        consumer_push_back(c, m);
        rd_kafka_message_destroy(m);
    } else {
        c->polled_us[*n] = bus_wall_us();
        c->msgs[(*n)++] = m;
    }
    return rc;
}

int cc_consumer_poll(cc_consumer *c, int timeout_ms)
{
    rd_kafka_message_t *m;
    int64_t left;
    size_t n = 0;
    int rc;

    if (atomic_load(&c->fatal))
        return -ENOTRECOVERABLE;
    if (c->nheld) {
        left = c->retry_at_ms - cc_time_mono_ms();
        if (left <= 0)
            return consumer_retry_held(c);
        if (left < timeout_ms)
            timeout_ms = (int)left;
    }
    /* while messages are held the assignment is paused: this serves rebalances and heartbeats */
    m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!m)
        return atomic_load(&c->fatal) ? -ENOTRECOVERABLE : 0;
    rc = consumer_take(c, m, &n);
    /* then whatever is already fetched, without waiting, up to a batch */
    while (rc == 0 && n > 0 && n < c->batch_max && (m = rd_kafka_consumer_poll(c->rk, 0)))
        rc = consumer_take(c, m, &n);
    if (rc < 0) { /* fatal: nothing more is handled; what was taken is redelivered later */
        for (size_t i = 0; i < n; i++)
            rd_kafka_message_destroy(c->msgs[i]);
        return rc;
    }
    return n ? consumer_dispatch(c, n, false) : 0;
}

int cc_consumer_run(cc_consumer *c, volatile sig_atomic_t *stop)
{
    int rc = 0;

    c->stop = stop;
    while (!*stop) {
        rc = cc_consumer_poll(c, BUS_RUN_POLL_MS);
        if (rc < 0)
            break;
        rc = 0;
        cc_producer_poll(c->deadletter, 0);
    }
    c->stop = NULL;
    return rc;
}

static int consumer_configure(rd_kafka_conf_t *conf, const struct cc_bus_config *cfg,
                              const char *group)
{
    if (bus_conf_set(conf, "group.id", group) ||
        bus_conf_set(conf, "enable.auto.offset.store", "false") ||
        bus_conf_set(conf, "enable.auto.commit", "true") ||
        bus_conf_set_int(conf, "auto.commit.interval.ms", cfg->commit_interval_ms) ||
        bus_conf_set(conf, "auto.offset.reset", cfg->start_at_latest ? "latest" : "earliest") ||
        bus_conf_set(conf, "enable.partition.eof", "false") ||
        bus_conf_set_int(conf, "session.timeout.ms", cfg->session_timeout_ms) ||
        bus_conf_set_int(conf, "heartbeat.interval.ms", cfg->heartbeat_interval_ms) ||
        bus_conf_set_int(conf, "fetch.wait.max.ms", cfg->fetch_wait_max_ms))
        return -EINVAL;
    return 0;
}

static int consumer_subscribe(cc_consumer *c, const char *const *topics, size_t ntopics)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t err;
    size_t i;

    l = rd_kafka_topic_partition_list_new((int)ntopics);
    for (i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(l, topics[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        CC_ERROR("subscription failed: %s (group \"%s\")", rd_kafka_err2str(err), c->group);
        return -EINVAL;
    }
    return 0;
}

static void consumer_free_buffers(cc_consumer *c)
{
    free(c->polled_us);
    free(c->msgs);
    free(c->bms);
    free(c->outs);
    free(c->held);
    free(c->source);
    free(c->group);
}

/* The consumer behind both constructors: exactly one of handler and batch is set. */
static cc_consumer *consumer_new(const struct cc_bus_config *cfg, const char *group,
                                 const char *const *topics, size_t ntopics, cc_bus_handler handler,
                                 cc_bus_batch_handler batch, size_t batch_max, void *ctx,
                                 cc_producer *deadletter)
{
    char errstr[512];
    rd_kafka_conf_t *conf;
    cc_consumer *c;

    if (!group || !group[0] || !topics || ntopics == 0 || (!handler && !batch) || !deadletter) {
        CC_ERROR("consumer not created: group, topics, handler and deadletter are required");
        return NULL;
    }
    if (batch_max < 1 || batch_max > CC_BUS_BATCH_MAX) {
        CC_ERROR("consumer not created: batch size %zu is outside [1, %d]", batch_max,
                 CC_BUS_BATCH_MAX);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->group = strdup(group);
    c->source = cfg->client_id ? strdup(cfg->client_id) : NULL;
    c->msgs = calloc(batch_max, sizeof(*c->msgs));
    c->bms = calloc(batch_max, sizeof(*c->bms));
    c->outs = calloc(batch_max, sizeof(*c->outs));
    c->held = calloc(batch_max, sizeof(*c->held));
    c->polled_us = calloc(batch_max, sizeof(*c->polled_us));
    if (!c->group || !c->source || !c->msgs || !c->bms || !c->outs || !c->held || !c->polled_us)
        goto free_c;
    c->handler = handler;
    c->batch = handler ? bus_single_batch : batch;
    c->batch_max = batch_max;
    c->ctx = ctx;
    c->deadletter = deadletter;
    c->retry_backoff_max_ms = cfg->retry_backoff_max_ms;
    conf = bus_conf_new(cfg);
    if (!conf)
        goto free_c;
    if (consumer_configure(conf, cfg, group) < 0)
        goto destroy_conf;
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!c->rk) {
        CC_ERROR("kafka consumer not created: %s (group \"%s\")", errstr, group);
        goto destroy_conf;
    }
    /* conf is owned by c->rk from here on; callbacks and errors come through consumer_poll */
    rd_kafka_poll_set_consumer(c->rk);
    if (consumer_subscribe(c, topics, ntopics) < 0)
        goto destroy_rk;
    return c;

destroy_rk:
    rd_kafka_destroy(c->rk);
    goto free_c;
destroy_conf:
    rd_kafka_conf_destroy(conf);
free_c:
    consumer_free_buffers(c);
    free(c);
    return NULL;
}

cc_consumer *cc_consumer_new(const struct cc_bus_config *cfg, const char *group,
                             const char *const *topics, size_t ntopics, cc_bus_handler handler,
                             void *ctx, cc_producer *deadletter)
{
    if (!handler) {
        CC_ERROR("consumer not created: group, topics, handler and deadletter are required");
        return NULL;
    }
    return consumer_new(cfg, group, topics, ntopics, handler, NULL, 1, ctx, deadletter);
}

cc_consumer *cc_consumer_new_batch(const struct cc_bus_config *cfg, const char *group,
                                   const char *const *topics, size_t ntopics,
                                   cc_bus_batch_handler handler, size_t batch_max, void *ctx,
                                   cc_producer *deadletter)
{
    if (!handler) {
        CC_ERROR("consumer not created: group, topics, handler and deadletter are required");
        return NULL;
    }
    return consumer_new(cfg, group, topics, ntopics, NULL, handler, batch_max, ctx, deadletter);
}

void cc_consumer_free(cc_consumer *c)
{
    rd_kafka_resp_err_t err;

    if (!c)
        return;
    consumer_drop_held(c, NULL, "consumer closing");
    err = rd_kafka_consumer_close(c->rk);
    if (err) /* handlers are idempotent: the uncommitted tail is handled again after restart */
        CC_WARN("consumer close failed: %s: the last offsets of group \"%s\" may be redelivered",
                rd_kafka_err2str(err), c->group);
    rd_kafka_destroy(c->rk);
    consumer_free_buffers(c);
    free(c);
}

/* ---- admin */

/* Reads one reply line (without its newline) from fd until the deadline. Returns 0 or negative. */
static int bus_read_line(int fd, char *buf, size_t cap, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    size_t got = 0;
    int64_t left;
    ssize_t r;
    char *nl;

    while (!(nl = memchr(buf, '\n', got))) {
        left = deadline - cc_time_mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        if (got == cap - 1)
            return -EMSGSIZE;
        if (poll(&pfd, 1, (int)left) <= 0)
            continue; /* timeout or EINTR: the deadline decides */
        r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0)
            return r == 0 ? -ECONNRESET : -errno;
        got += (size_t)r;
    }
    *nl = '\0';
    return 0;
}

/* Creates topic through the dev broker's control socket ("create <topic> <n>" -> "ok"/"exists"). */
static int bus_devbroker_create(const char *path, const char *topic, int partitions, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int64_t deadline = cc_time_mono_ms() + timeout_ms;
    char req[512], resp[512] = "";
    int fd, n, rc;

    n = snprintf(req, sizeof(req), "create %s %d\n", topic, partitions);
    if (strlen(path) >= sizeof(sa.sun_path) || n < 0 || (size_t)n >= sizeof(req))
        return -EINVAL;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -EIO;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        CC_ERROR("topic not created: dev broker control socket \"%s\": %s", path, strerror(errno));
        rc = -EIO;
        goto close_fd;
    }
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        rc = -EIO;
        goto close_fd;
    }
    rc = bus_read_line(fd, resp, sizeof(resp), deadline);
    if (rc == 0 && strcmp(resp, "ok") != 0 && strcmp(resp, "exists") != 0)
        rc = -EIO;
    if (rc < 0) {
        CC_ERROR("topic not created: dev broker answered \"%s\" (%s): \"%s\"", resp, strerror(-rc),
                 topic);
        rc = rc == -ETIMEDOUT ? rc : -EIO;
    }
close_fd:
    close(fd);
    return rc;
}

int cc_bus_create_topic(const struct cc_bus_config *cfg, const char *topic, int partitions,
                        int timeout_ms)
{
    char errstr[512];
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **results;
    rd_kafka_AdminOptions_t *opts;
    rd_kafka_NewTopic_t *nt;
    rd_kafka_conf_t *conf;
    rd_kafka_event_t *ev;
    rd_kafka_queue_t *q;
    rd_kafka_resp_err_t err;
    rd_kafka_t *rk;
    size_t n;
    int rc = -EINVAL;

    if (!topic || !topic[0] || partitions < 1 || timeout_ms < 1)
        return -EINVAL;
    if (cfg->devbroker_control && cfg->devbroker_control[0])
        return bus_devbroker_create(cfg->devbroker_control, topic, partitions, timeout_ms);
    conf = bus_conf_new(cfg);
    if (!conf)
        return -EINVAL;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        CC_ERROR("kafka admin client not created: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -EINVAL;
    }
    /* conf is owned by rk from here on */
    nt = rd_kafka_NewTopic_new(topic, partitions, -1, errstr, sizeof(errstr));
    if (!nt) {
        CC_ERROR("invalid topic \"%s\": %s", topic, errstr);
        goto destroy_rk;
    }
    q = rd_kafka_queue_new(rk);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (!ev) {
        CC_ERROR("topic not created: timed out after %d ms: \"%s\"", timeout_ms, topic);
        rc = -ETIMEDOUT;
        goto destroy_opts;
    }
    err = rd_kafka_event_error(ev);
    if (!err) {
        res = rd_kafka_event_CreateTopics_result(ev);
        results = rd_kafka_CreateTopics_result_topics(res, &n);
        err = n == 1 ? rd_kafka_topic_result_error(results[0]) : RD_KAFKA_RESP_ERR__FAIL;
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        rc = 0;
    } else {
        CC_ERROR("topic not created: %s: \"%s\"", rd_kafka_err2str(err), topic);
        rc = err == RD_KAFKA_RESP_ERR__TIMED_OUT ? -ETIMEDOUT : -EIO;
    }
    rd_kafka_event_destroy(ev);
destroy_opts:
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
destroy_rk:
    rd_kafka_destroy(rk);
    return rc;
}
