/* Unit tests for common/cc_bus.c that need no broker: configuration, the deadletter envelope,
 * argument checks, and a producer whose broker is unreachable. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "cc_bus.h"
#include "cc_event.h"
#include "cc_log.h"

static void bus_unit_setup(void)
{
    /* librdkafka's connection errors would be noise here */
    cc_log_init("test-bus", CC_LOG_ERROR);
}

TestSuite(cc_bus, .init = bus_unit_setup);

static struct cc_bus_config bus_valid_config(void)
{
    struct cc_bus_config cfg;

    cc_bus_config_defaults(&cfg);
    cfg.brokers = "127.0.0.1:1";
    cfg.client_id = "unit-test";
    return cfg;
}

static enum cc_bus_verdict bus_ok_handler(void *ctx, const struct cc_bus_msg *m, char *reason,
                                          size_t reasonlen)
{
    (void)ctx, (void)m, (void)reason, (void)reasonlen;
    return CC_BUS_OK;
}

Test(cc_bus, defaults_are_valid_once_brokers_and_client_id_are_set)
{
    struct cc_bus_config cfg = bus_valid_config();
    char err[256] = "";

    cr_assert_eq(cc_bus_config_validate(&cfg, err, sizeof(err)), 0,
                 "expected the defaults to validate, got '%s'", err);
    cr_assert_eq(cfg.session_timeout_ms, CC_BUS_DEFAULT_SESSION_TIMEOUT_MS);
    cr_assert_eq(cfg.retry_backoff_max_ms, CC_BUS_DEFAULT_RETRY_BACKOFF_MAX_MS);
}

Test(cc_bus, a_services_kafka_settings_fill_the_bus_config)
{
    struct cc_common_config common = {.kafka_brokers = "k1:9092,k2:9092",
                                      .instance_id = "router-7",
                                      .kafka_session_timeout_ms = 6000,
                                      .kafka_heartbeat_interval_ms = 1000,
                                      .kafka_fetch_wait_max_ms = 10,
                                      .kafka_retry_backoff_max_ms = 700,
                                      .kafka_linger_ms = 20};
    struct cc_bus_config cfg;

    cc_bus_config_from_common(&cfg, &common);
    cr_assert_str_eq(cfg.brokers, "k1:9092,k2:9092");
    cr_assert_str_eq(cfg.client_id, "router-7");
    cr_assert_eq(cfg.session_timeout_ms, 6000);
    cr_assert_eq(cfg.heartbeat_interval_ms, 1000);
    cr_assert_eq(cfg.fetch_wait_max_ms, 10);
    cr_assert_eq(cfg.retry_backoff_max_ms, 700);
    cr_assert_eq(cfg.linger_ms, 20, "expected CC_KAFKA_LINGER_MS in linger_ms");
    cr_assert_eq(cfg.commit_interval_ms, CC_BUS_DEFAULT_COMMIT_INTERVAL_MS);
    cr_assert_eq(cc_bus_config_validate(&cfg, NULL, 0), 0, "expected a valid config");
}

Test(cc_bus, fails_without_brokers_and_names_the_field)
{
    struct cc_bus_config cfg = bus_valid_config();
    char err[256] = "";

    cfg.brokers = "";
    cr_assert_eq(cc_bus_config_validate(&cfg, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "brokers") != NULL, "expected the error to name brokers, got '%s'", err);
    cfg.brokers = NULL;
    cr_assert_eq(cc_bus_config_validate(&cfg, NULL, 0), -EINVAL,
                 "expected NULL brokers to be refused (and a NULL err buffer to be fine)");
}

Test(cc_bus, fails_without_client_id)
{
    struct cc_bus_config cfg = bus_valid_config();
    char err[256] = "";

    cfg.client_id = NULL;
    cr_assert_eq(cc_bus_config_validate(&cfg, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "client_id") != NULL, "expected the error to name client_id: '%s'", err);
}

struct bus_range_case {
    char field[32]; /* inline: parameters are copied into the test's process */
    int session, heartbeat, fetch_wait, retry_max, commit, linger;
};

ParameterizedTestParameters(cc_bus, fails_for_a_value_out_of_range)
{
    static struct bus_range_case cases[] = {
        {"session_timeout_ms", 0, 1000, 10, 5000, 1000, 5},
        {"heartbeat_interval_ms", 6000, 0, 10, 5000, 1000, 5},
        {"heartbeat_interval_ms", 6000, 6000, 10, 5000, 1000, 5}, /* not below the session */
        {"fetch_wait_max_ms", 6000, 1000, -1, 5000, 1000, 5},
        {"fetch_wait_max_ms", 6000, 1000, 300001, 5000, 1000, 5},
        {"retry_backoff_max_ms", 6000, 1000, 10, 99, 1000, 5}, /* below the first backoff */
        {"commit_interval_ms", 6000, 1000, 10, 5000, 0, 5},
        {"linger_ms", 6000, 1000, 10, 5000, 1000, -1},
    };
    return cr_make_param_array(struct bus_range_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bus_range_case *c, cc_bus, fails_for_a_value_out_of_range)
{
    struct cc_bus_config cfg = bus_valid_config();
    char err[256] = "";

    cfg.session_timeout_ms = c->session;
    cfg.heartbeat_interval_ms = c->heartbeat;
    cfg.fetch_wait_max_ms = c->fetch_wait;
    cfg.retry_backoff_max_ms = c->retry_max;
    cfg.commit_interval_ms = c->commit;
    cfg.linger_ms = c->linger;
    cr_assert_eq(cc_bus_config_validate(&cfg, err, sizeof(err)), -EINVAL,
                 "expected %s to be refused", c->field);
    cr_assert(strstr(err, c->field) != NULL, "expected the error to name %s, got '%s'", c->field,
              err);
}

Test(cc_bus, producer_is_not_created_from_an_invalid_config)
{
    struct cc_bus_config cfg = bus_valid_config();

    cfg.linger_ms = -5;
    cr_assert_null(cc_producer_new(&cfg), "expected NULL for linger_ms=-5");
}

Test(cc_bus, flush_times_out_when_no_broker_answers, .timeout = 20)
{
    struct cc_bus_config cfg = bus_valid_config();
    cc_producer *p = cc_producer_new(&cfg);

    cr_assert_not_null(p, "expected a producer even though the broker is unreachable");
    cr_assert_eq(cc_producer_send(p, "t", "k", "v", 1), 0, "expected the message to be queued");
    cr_assert_eq(cc_producer_flush(p, 300), -ETIMEDOUT,
                 "expected -ETIMEDOUT with nothing delivered after 300 ms");
    cc_producer_free(p); /* must purge what is left, without leaks */
}

Test(cc_bus, consumer_requires_a_deadletter_producer_and_topics)
{
    struct cc_bus_config cfg = bus_valid_config();
    const char *topics[] = {"cc.agents"};
    cc_producer *p = cc_producer_new(&cfg);

    cr_assert_not_null(p);
    cr_assert_null(cc_consumer_new(&cfg, "g", topics, 1, bus_ok_handler, NULL, NULL),
                   "expected NULL without a deadletter producer");
    cr_assert_null(cc_consumer_new(&cfg, "g", topics, 0, bus_ok_handler, NULL, p),
                   "expected NULL without topics");
    cr_assert_null(cc_consumer_new(&cfg, "", topics, 1, bus_ok_handler, NULL, p),
                   "expected NULL without a group");
    cc_producer_free(p);
}

static void bus_ok_batch(void *ctx, const struct cc_bus_msg *msgs, size_t n,
                         struct cc_bus_outcome *out)
{
    (void)ctx, (void)msgs, (void)n, (void)out;
}

Test(cc_bus, batch_consumer_refuses_a_batch_size_outside_its_range)
{
    struct cc_bus_config cfg = bus_valid_config();
    const char *topics[] = {"cc.agents"};
    cc_producer *p = cc_producer_new(&cfg);
    cc_consumer *c;

    cr_assert_not_null(p);
    cr_assert_null(cc_consumer_new_batch(&cfg, "g", topics, 1, bus_ok_batch, 0, NULL, p),
                   "expected NULL for a batch size of 0");
    cr_assert_null(
        cc_consumer_new_batch(&cfg, "g", topics, 1, bus_ok_batch, CC_BUS_BATCH_MAX + 1, NULL, p),
        "expected NULL above CC_BUS_BATCH_MAX");
    cr_assert_null(cc_consumer_new_batch(&cfg, "g", topics, 1, NULL, 16, NULL, p),
                   "expected NULL without a handler");
    c = cc_consumer_new_batch(&cfg, "g", topics, 1, bus_ok_batch, CC_BUS_BATCH_MAX, NULL, p);
    cr_assert_not_null(c, "expected a consumer at the largest batch size");
    cc_consumer_free(c);
    cc_producer_free(p);
}

Test(cc_bus, create_topic_refuses_zero_partitions)
{
    struct cc_bus_config cfg = bus_valid_config();

    cr_assert_eq(cc_bus_create_topic(&cfg, "t", 0, 1000), -EINVAL);
    cr_assert_eq(cc_bus_create_topic(&cfg, "", 6, 1000), -EINVAL);
}

/* ---- the deadletter envelope ---- */

static json_t *bus_dl_data(const json_t *env)
{
    char err[256] = "";

    cr_assert_not_null(env, "expected an envelope");
    cr_assert_eq(cc_event_validate(env, err, sizeof(err)), 0,
                 "expected a valid CloudEvents envelope, got '%s'", err);
    cr_assert_str_eq(json_string_value(json_object_get(env, "type")), CC_BUS_DEADLETTER_TYPE);
    return json_object_get(env, "data");
}

Test(cc_bus, deadletter_keeps_a_text_payload_and_the_original_tenant)
{
    const char *payload = "{\"tenant\":\"acme\",\"type\":42}";
    struct cc_bus_msg m = {.topic = "cc.agents",
                           .partition = 3,
                           .offset = 77,
                           .key = "agent-1",
                           .keylen = 7,
                           .value = payload,
                           .len = strlen(payload),
                           .timestamp_ms = 1700000000000};
    json_t *env = cc_bus_deadletter_envelope(&m, "router", "router/host-1", "bad type");
    json_t *data = bus_dl_data(env);

    cr_assert_str_eq(json_string_value(json_object_get(env, "tenant")), "acme");
    cr_assert_str_eq(json_string_value(json_object_get(env, "source")), "/router/host-1");
    cr_assert_str_eq(json_string_value(json_object_get(data, "topic")), "cc.agents");
    cr_assert_eq(json_integer_value(json_object_get(data, "partition")), 3);
    cr_assert_eq(json_integer_value(json_object_get(data, "offset")), 77);
    cr_assert_str_eq(json_string_value(json_object_get(data, "group")), "router");
    cr_assert_str_eq(json_string_value(json_object_get(data, "reason")), "bad type");
    cr_assert_str_eq(json_string_value(json_object_get(data, "key")), "agent-1");
    cr_assert_str_eq(json_string_value(json_object_get(data, "payload")), payload);
    cr_assert_str_eq(json_string_value(json_object_get(data, "payload_encoding")), "utf-8");
    json_decref(env);
}

Test(cc_bus, deadletter_encodes_binary_bytes_as_base64)
{
    const unsigned char bin[] = {0xff, 0xfe, 0x00, 'a'};
    struct cc_bus_msg m = {.topic = "t", .key = bin, .keylen = 2, .value = bin, .len = 4};
    json_t *env = cc_bus_deadletter_envelope(&m, "g", "src", "not json");
    json_t *data = bus_dl_data(env);

    cr_assert_str_eq(json_string_value(json_object_get(env, "tenant")), "unknown",
                     "expected tenant 'unknown' for an unparsable payload");
    cr_assert_str_eq(json_string_value(json_object_get(data, "payload")), "//4AYQ==");
    cr_assert_str_eq(json_string_value(json_object_get(data, "payload_encoding")), "base64");
    cr_assert_str_eq(json_string_value(json_object_get(data, "key")), "//4=");
    cr_assert_str_eq(json_string_value(json_object_get(data, "key_encoding")), "base64");
    json_decref(env);
}

Test(cc_bus, deadletter_uses_unknown_for_an_invalid_tenant_and_null_for_no_key)
{
    const char *payload = "{\"tenant\":\"not a tenant!\"}";
    struct cc_bus_msg m = {.topic = "t", .value = payload, .len = strlen(payload)};
    json_t *env = cc_bus_deadletter_envelope(&m, "g", "src", "why");
    json_t *data = bus_dl_data(env);

    cr_assert_str_eq(json_string_value(json_object_get(env, "tenant")), "unknown");
    cr_assert(json_is_null(json_object_get(data, "key")), "expected key null without a key");
    json_decref(env);
}

struct bus_dr_record {
    int calls;
    int err;
    uint64_t tag;
};

static void bus_dr_record_cb(void *ctx, uint64_t tag, int err)
{
    struct bus_dr_record *r = ctx;

    r->calls++;
    r->err = err;
    r->tag = tag;
}

Test(cc_bus, an_undelivered_message_reports_its_failure_once_to_its_callback, .timeout = 30)
{
    struct cc_bus_config cfg = bus_valid_config();
    struct bus_dr_record rec = {0};
    cc_producer *p = cc_producer_new(&cfg);
    json_t *env = cc_event_build("cc.test.sent", "/test/unit", "s1", "acme", json_object());

    cr_assert_not_null(p, "expected a producer even though the broker is unreachable");
    cr_assert_not_null(env, "expected an envelope");
    cr_assert_eq(cc_producer_send_event_cb(p, "t", "k", env, bus_dr_record_cb, &rec, 42), 0,
                 "expected the event to be queued");
    cr_assert_eq(rec.calls, 0, "expected no report before the producer is polled");
    cc_producer_free(p); /* purges: the report must come, with an error */
    json_decref(env);
    cr_assert_eq(rec.calls, 1, "expected exactly one delivery report, got %d", rec.calls);
    cr_assert_lt(rec.err, 0, "expected a negative error for an undelivered message");
    cr_assert_eq(rec.tag, 42, "expected the tag given at send time");
}

Test(cc_bus, send_ex_refuses_a_message_without_topic_and_never_calls_back)
{
    struct cc_bus_config cfg = bus_valid_config();
    struct bus_dr_record rec = {0};
    cc_producer *p = cc_producer_new(&cfg);

    cr_assert_not_null(p, "expected a producer");
    cr_assert_eq(cc_producer_send_ex(p, &(struct cc_bus_send){.value = "v",
                                                              .len = 1,
                                                              .on_delivery = bus_dr_record_cb,
                                                              .ctx = &rec}),
                 -EINVAL, "expected -EINVAL without a topic");
    cc_producer_free(p);
    cr_assert_eq(rec.calls, 0, "expected no delivery report for a message never queued");
}

Test(cc_bus, msg_header_is_null_for_a_message_without_headers)
{
    struct cc_bus_msg m = {.topic = "t", .value = "{}", .len = 2};
    size_t len = 7;

    cr_assert_null(cc_bus_msg_header(&m, CC_BUS_HEADER_SOURCE, &len),
                   "expected no ce_source on a message without headers");
    cr_assert_eq(len, 7, "expected len untouched when the header is absent");
    cr_assert_null(cc_bus_msg_header(NULL, "x", NULL), "expected NULL for no message");
}
