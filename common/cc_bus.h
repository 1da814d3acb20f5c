/*
 * cc_bus: the Kafka bus -- an idempotent producer and an at-least-once consumer group consumer.
 *
 * Producer: enable.idempotence=true, acks=all, lz4; every delivery report is checked; failures
 * are counted, logged and reported by the next cc_producer_flush(). All producer functions but
 * cc_producer_free() are thread-safe (librdkafka's producer is; our counters are atomic).
 *
 * Consumer: a consumer group member that stores a message's offset only after the handler
 * returned CC_BUS_OK, or after a rejected message was delivered to cc.deadletter; stored offsets
 * are auto-committed every commit_interval_ms and on close/rebalance. Auto-commit of *stored*
 * offsets (rather than one synchronous commit per message) keeps at-least-once -- nothing is
 * committed before its handler succeeded -- without a broker round-trip per message; a crash
 * redelivers at most commit_interval_ms worth of messages, which idempotent handlers absorb.
 * A CC_BUS_RETRY verdict pauses the whole assignment and retries the same message with
 * exponential backoff (100 ms doubling up to retry_backoff_max_ms) while still polling, so the
 * member stays in the group (max.poll.interval.ms never expires) and nothing is skipped.
 * A rejected message is stored only once its deadletter is acknowledged (waited for up to 30 s;
 * otherwise, or on a delivery failure, the verdict becomes a retry).
 * A batch consumer (cc_consumer_new_batch) hands the handler every message one poll has ready,
 * up to its batch size, and gets one verdict per message; offsets are stored per message as
 * above, in order. A RETRY holds that message and every later message of its partition in the
 * batch (already handled or not: they are handed over again, in order, with the retried one);
 * messages of other partitions keep their own verdicts.
 * A consumer is single-threaded: call every cc_consumer_* function from one thread; the handler
 * runs on that thread. librdkafka's own logs go through cc_log.
 */
#ifndef CC_BUS_H
#define CC_BUS_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cc_config.h"

/* One constant per topic of proto/topics.json. */
#define CC_TOPIC_INTERACTIONS      "cc.interactions"
#define CC_TOPIC_AGENTS            "cc.agents"
#define CC_TOPIC_ROUTING_REQUESTS  "cc.routing.requests"
#define CC_TOPIC_ROUTING_DECISIONS "cc.routing.decisions"
#define CC_TOPIC_DIALER_COMMANDS   "cc.dialer.commands"
#define CC_TOPIC_OUTBOUND_MESSAGES "cc.outbound.messages"
#define CC_TOPIC_RECORDINGS        "cc.recordings"
#define CC_TOPIC_QA                "cc.qa"
#define CC_TOPIC_METRICS           "cc.metrics"
#define CC_TOPIC_DEADLETTER        "cc.deadletter"

/* CloudEvents type of the envelope written to cc.deadletter. */
#define CC_BUS_DEADLETTER_TYPE "cc.deadletter.rejected"

/* Defaults for a real Kafka cluster (the same as cc_config's CC_KAFKA_*). The dev broker
 * (librdkafka's mock cluster) wants session 6000, heartbeat 1000 and fetch wait 10 ms: it waits a
 * whole session timeout before giving an abandoned group to a new member and never answers a
 * waiting fetch early. */
#define CC_BUS_DEFAULT_SESSION_TIMEOUT_MS    45000
#define CC_BUS_DEFAULT_HEARTBEAT_INTERVAL_MS 3000
#define CC_BUS_DEFAULT_FETCH_WAIT_MAX_MS     100
#define CC_BUS_DEFAULT_RETRY_BACKOFF_MAX_MS  5000
#define CC_BUS_DEFAULT_COMMIT_INTERVAL_MS    1000
#define CC_BUS_DEFAULT_LINGER_MS             5
#define CC_BUS_BATCH_MAX                     8192 /* largest batch a batch consumer accepts */
#define CC_BUS_REASON_LEN                    256  /* a verdict's reason, NUL included */
/* First delay of a CC_BUS_RETRY verdict; doubles up to retry_backoff_max_ms. */
#define CC_BUS_RETRY_BACKOFF_MIN_MS 100

struct cc_bus_config {
    const char *brokers;       /* bootstrap list "host:port,..."; required */
    const char *client_id;     /* client.id; also the CloudEvents source of deadletters */
    int session_timeout_ms;    /* consumer group session timeout */
    int heartbeat_interval_ms; /* group heartbeat; must be below session_timeout_ms */
    int fetch_wait_max_ms;     /* longest a fetch waits at the broker (the mock's latency) */
    int retry_backoff_max_ms;  /* cap of the CC_BUS_RETRY backoff */
    int commit_interval_ms;    /* auto-commit period of stored offsets */
    int linger_ms;             /* producer batching delay */
    /* A new consumer group (no committed offset) starts at the end of its partitions instead
     * of the beginning: for consumers whose messages are worthless once old (sip-edge's
     * decisions belong to calls that died with the previous process). Default false. */
    bool start_at_latest;
    /* Dev broker only (CC_DEVBROKER_CONTROL): its control socket, through which
     * cc_bus_create_topic() creates topics, since the mock cluster has no CreateTopics request.
     * NULL or "" for a real Kafka cluster (the admin API is used). */
    const char *devbroker_control;
};

typedef struct cc_producer cc_producer;
typedef struct cc_consumer cc_consumer;

enum cc_bus_verdict {
    CC_BUS_OK = 0, /* handled (effects durable): the offset may be committed */
    CC_BUS_RETRY,  /* transient failure (e.g. database down): retry this message later */
    CC_BUS_REJECT, /* permanent failure (malformed, invalid): send to cc.deadletter */
};

/* A consumed message; every pointer is borrowed and valid only during the handler call. */
struct cc_bus_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key; /* NULL when the message has no key */
    size_t keylen;
    const void *value; /* NULL for a tombstone */
    size_t len;
    int64_t timestamp_ms; /* -1 when the broker gave none */
    const void *hdrs;     /* internal (the message's Kafka headers): read with cc_bus_msg_header */
    int64_t consumed_us;  /* wall clock (us since the epoch) when this member polled it */
};

/* CloudEvents Kafka header names (binary-mode names) that cc_producer_send_event attaches beside
 * the structured JSON value, so that consumers can filter without parsing the value. */
#define CC_BUS_HEADER_SOURCE "ce_source"
#define CC_BUS_HEADER_TYPE   "ce_type"
#define CC_BUS_HEADER_ID     "ce_id"

/* One Kafka header to attach to a produced message: name is a C string, value len bytes. */
struct cc_bus_header {
    const char *name;
    const void *value;
    size_t len;
};

/* Delivery report of one message sent with a callback: err is 0 (delivered) or a negative code
 * (as cc_producer_send returns). Runs on the thread that calls cc_producer_poll, _flush, _free
 * (or a cc_producer_send* that waits for queue space), once per queued message; tag is the
 * value given at send time. Must not call back into the producer. */
typedef void (*cc_bus_delivery_cb)(void *ctx, uint64_t tag, int err);

/* Options of cc_producer_send_ex; zero the fields you do not use. */
struct cc_bus_send {
    const char *topic; /* required */
    const void *key;   /* NULL: no key */
    size_t keylen;
    const void *value;
    size_t len;
    const struct cc_bus_header *headers; /* nheaders entries, copied; may be NULL */
    size_t nheaders;
    cc_bus_delivery_cb on_delivery; /* NULL: only the producer's own failure count */
    void *ctx;
    uint64_t tag;
};

/* Handles one message. On CC_BUS_RETRY / CC_BUS_REJECT, writes a short reason (NUL-terminated,
 * reasonlen bytes at most) into reason; it is logged and, for a reject, put in the deadletter. */
typedef enum cc_bus_verdict (*cc_bus_handler)(void *ctx, const struct cc_bus_msg *m, char *reason,
                                              size_t reasonlen);

/* A batch handler's answer for one message: verdict, and why when it is not CC_BUS_OK. */
struct cc_bus_outcome {
    enum cc_bus_verdict verdict;
    char reason[CC_BUS_REASON_LEN];
};

/* Handles msgs[0..n) (n >= 1, in consumption order: per partition, in offset order) and fills
 * out[i] for each (preset to CC_BUS_OK with an empty reason). Once a message gets CC_BUS_RETRY,
 * later messages of its partition are redelivered whatever their verdict, so a handler that must
 * keep per-key order should not apply them (give them CC_BUS_RETRY too). Every pointer in msgs
 * is borrowed and valid only during the call. */
typedef void (*cc_bus_batch_handler)(void *ctx, const struct cc_bus_msg *msgs, size_t n,
                                     struct cc_bus_outcome *out);

/* Fills cfg with the CC_BUS_DEFAULT_* values; brokers and client_id become NULL. */
void cc_bus_config_defaults(struct cc_bus_config *cfg);

/* Fills cfg from a service's loaded CC_KAFKA_* settings (brokers, instance id as client id,
 * session, heartbeat, fetch wait, retry cap, linger) over the defaults. Strings are borrowed from
 * common, which must outlive cfg. */
void cc_bus_config_from_common(struct cc_bus_config *cfg, const struct cc_common_config *common);

/* Checks every field (required strings, ranges, heartbeat below session timeout). Returns 0, or
 * -EINVAL with a one-line explanation naming the field in err (when err is non-NULL). */
int cc_bus_config_validate(const struct cc_bus_config *cfg, char *err, size_t errlen);

/* cc_bus_config_from_common() then cc_bus_config_validate(), logging the reason as an error:
 * the start-up step every service takes. 0 or -EINVAL. */
int cc_bus_config_load(struct cc_bus_config *cfg, const struct cc_common_config *common);

/* Creates an idempotent producer (acks=all, lz4). Does not wait for the brokers: an unreachable
 * bootstrap shows up later as failed deliveries. Returns NULL (logged) on an invalid config. */
cc_producer *cc_producer_new(const struct cc_bus_config *cfg);

/* Queues one message; topic, key and value are copied. key may be NULL (no key). When the local
 * queue is full, serves delivery reports for up to 5 s before giving up. Returns 0, -ENOBUFS
 * (still full), -ENOENT (topic known not to exist), -EMSGSIZE, -ENOTRECOVERABLE (the producer hit
 * a fatal error and must be recreated) or -EIO. Delivery failures are counted and logged from the
 * delivery report callback, and reported by cc_producer_flush(). */
int cc_producer_send(cc_producer *p, const char *topic, const char *key, const void *value,
                     size_t len);

/* Queues one message as described by s (everything copied), with its headers; when
 * s->on_delivery is set it is called exactly once for the message if (and only if) this returns
 * 0. Same returns as cc_producer_send(); -EINVAL without a topic. Thread-safe. */
int cc_producer_send_ex(cc_producer *p, const struct cc_bus_send *s);

/* Serialises a CloudEvents envelope (compact JSON) and sends it keyed by key (may be NULL), with
 * the Kafka headers ce_source, ce_type and ce_id copied from the envelope's source, type and id
 * (each only when a string). The envelope stays owned by the caller. Same returns as
 * cc_producer_send(), -ENOMEM if it cannot be serialised. */
int cc_producer_send_event(cc_producer *p, const char *topic, const char *key,
                           const json_t *envelope);

/* cc_producer_send_event with a delivery callback: on_delivery(ctx, tag, err) is called exactly
 * once if this returns 0 (see cc_bus_delivery_cb), never otherwise. on_delivery may be NULL. */
int cc_producer_send_event_cb(cc_producer *p, const char *topic, const char *key,
                              const json_t *envelope, cc_bus_delivery_cb on_delivery, void *ctx,
                              uint64_t tag);

/* Serves delivery reports, waiting up to timeout_ms for one. Call regularly (the consumer loop
 * does it for its deadletter producer). */
void cc_producer_poll(cc_producer *p, int timeout_ms);

/* A descriptor that becomes readable when delivery reports wait to be served, for a thread
 * that waits on them and on other sources in one poll(2) (the router's outbox publisher).
 * Made on the first call (a pipe librdkafka writes to when its queue becomes non-empty);
 * cc_producer_poll() empties it before serving. -1 (logged) when the pipe cannot be made.
 * Call it from one thread only. */
int cc_producer_wake_fd(cc_producer *p);

/* Waits until everything queued is delivered or failed. Returns 0 if all were delivered, -EIO if
 * any delivery failed since the previous flush (the count is reset), -ETIMEDOUT if messages are
 * still queued after timeout_ms, -ENOTRECOVERABLE after a fatal producer error. */
int cc_producer_flush(cc_producer *p, int timeout_ms);

/* Flushes for up to 10 s, logs and purges what is left (rd_kafka_outq_len), destroys. NULL ok. */
void cc_producer_free(cc_producer *p);

/* Creates a consumer of group for topics (copied; at least one), calling handler(ctx, ...) for
 * every message. Rejected messages are produced to cc.deadletter through deadletter, which is
 * required, borrowed, and must outlive the consumer. Returns NULL (logged) on an invalid config
 * or failed subscription. */
cc_consumer *cc_consumer_new(const struct cc_bus_config *cfg, const char *group,
                             const char *const *topics, size_t ntopics, cc_bus_handler handler,
                             void *ctx, cc_producer *deadletter);

/* As cc_consumer_new(), but handler gets up to batch_max (1..CC_BUS_BATCH_MAX) messages per call:
 * everything one poll has ready, without waiting for more. NULL (logged) on invalid arguments. */
cc_consumer *cc_consumer_new_batch(const struct cc_bus_config *cfg, const char *group,
                                   const char *const *topics, size_t ntopics,
                                   cc_bus_batch_handler handler, size_t batch_max, void *ctx,
                                   cc_producer *deadletter);

/* Polls and handles messages until *stop becomes non-zero (checked at least every 100 ms, also
 * while a message is being retried), then returns 0; returns a negative code on a fatal error
 * (-ENOTRECOVERABLE). Stored offsets are committed by cc_consumer_free(). */
int cc_consumer_run(cc_consumer *c, volatile sig_atomic_t *stop);

/* One poll step for tests and custom loops: hands at most one batch (one message for a
 * single-message consumer) to the handler. Returns how many messages were handled (OK or
 * deadlettered), 0 if none arrived within timeout_ms or the held ones are waiting for their
 * retry, negative on a fatal error. */
int cc_consumer_poll(cc_consumer *c, int timeout_ms);

/* Drops a message held for retry (it is redelivered later), commits the stored offsets and leaves
 * the group (rd_kafka_consumer_close), then destroys. NULL ok. */
void cc_consumer_free(cc_consumer *c);
/* True once the group has given this consumer its first assignment (possibly empty: more
 * members than partitions), i.e. its partitions are being read from their committed offsets --
 * or, for a new group with start_at_latest, from their end as of a few milliseconds after this
 * turns true. What a service waits for before it tells the world it is ready. Any thread. */
bool cc_consumer_assigned(const cc_consumer *c);

/* The value of the last Kafka header called name on m (borrowed, valid during the handler call,
 * NUL-terminated for convenience; its length in *len when len is non-NULL), or NULL when m has
 * no such header (or the header has a null value). Cheap: no parsing of m's value. */
const char *cc_bus_msg_header(const struct cc_bus_msg *m, const char *name, size_t *len);

/* Builds the cc.deadletter envelope for m rejected by group with reason: type
 * CC_BUS_DEADLETTER_TYPE, source "/<source>", tenant taken from m's value when it is a JSON object
 * with a valid "tenant" (else "unknown"), data {topic, partition, offset, timestamp_ms, group,
 * reason, key, key_encoding, payload, payload_encoding} where key and payload are the original
 * bytes as a string when valid UTF-8 ("utf-8") or base64 ("base64"). Returns a new reference, or
 * NULL on allocation failure. */
json_t *cc_bus_deadletter_envelope(const struct cc_bus_msg *m, const char *group,
                                   const char *source, const char *reason);

/* Creates topic with the given number of partitions (replication: the broker's default) unless it
 * exists, through the Kafka admin API, or through cfg->devbroker_control when set. Waits at most
 * timeout_ms. Returns 0 (created or already there), -EINVAL, -ETIMEDOUT or -EIO (logged). */
int cc_bus_create_topic(const struct cc_bus_config *cfg, const char *topic, int partitions,
                        int timeout_ms);

#endif
