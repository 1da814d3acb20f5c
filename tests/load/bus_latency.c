/*
 * bus_latency: produce -> consume latency through the bus (cc_producer -> broker -> cc_consumer)
 * at a steady rate, for each fetch.wait.max.ms given, then the producer's burst throughput.
 *
 *   bus_latency [RATE_PER_S [SECONDS [FETCH_WAIT_MS...]]]      (defaults: 2000 5 1 10)
 *
 * Environment: CC_KAFKA_BROKERS (required), CC_DEVBROKER_CONTROL (dev broker: topic creation).
 * Producer and consumer live in this process (consumer on its own thread) so that both ends read
 * one monotonic clock; every message carries its send time. Prints "bench:" lines only.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cc_bus.h"
#include "cc_log.h"
#include "cc_time.h"

#define LAT_MAX_SAMPLES 1000000
#define BURST_MESSAGES  200000
#define BURST_BYTES     100

struct lat_run {
    cc_consumer *consumer;
    volatile sig_atomic_t stop;
    atomic_long warm;   /* warm-up messages received */
    atomic_long n;      /* measured samples */
    double *samples_ms; /* written by the consumer thread only; read after join */
};

static enum cc_bus_verdict lat_handle(void *ctx, const struct cc_bus_msg *m, char *reason,
                                      size_t reasonlen)
{
    struct lat_run *r = ctx;
    char buf[64];
    long long sent_us;
    long i;

    (void)reason, (void)reasonlen;
    snprintf(buf, sizeof(buf), "%.*s", (int)(m->len < 63 ? m->len : 63), (const char *)m->value);
    if (buf[0] == 'w') {
        atomic_fetch_add(&r->warm, 1);
        return CC_BUS_OK;
    }
    sent_us = atoll(buf + 2); /* "m <mono_us>" */
    i = atomic_load(&r->n);
    if (i < LAT_MAX_SAMPLES) {
        r->samples_ms[i] = (double)(cc_time_mono_us() - sent_us) / 1000.0;
        atomic_store(&r->n, i + 1);
    }
    return CC_BUS_OK;
}

static void *lat_consume(void *arg)
{
    struct lat_run *r = arg;

    if (cc_consumer_run(r->consumer, &r->stop) < 0)
        fprintf(stderr, "bus_latency: consumer failed\n");
    return NULL;
}

static int lat_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double lat_percentile(double *v, long n, double p)
{
    long i = (long)(p * (double)(n - 1) + 0.5);

    return n ? v[i] : 0.0;
}

static void lat_sleep_until_us(int64_t t_us)
{
    int64_t left = t_us - cc_time_mono_us();

    if (left > 0)
        usleep((useconds_t)left);
}

static struct cc_bus_config lat_config(const char *client, int fetch_wait_ms)
{
    struct cc_bus_config cfg;

    cc_bus_config_defaults(&cfg);
    cfg.brokers = getenv("CC_KAFKA_BROKERS");
    cfg.devbroker_control = getenv("CC_DEVBROKER_CONTROL");
    cfg.client_id = client;
    cfg.session_timeout_ms = 6000;
    cfg.heartbeat_interval_ms = 1000;
    cfg.fetch_wait_max_ms = fetch_wait_ms;
    cfg.linger_ms = 0; /* latency, not batching */
    return cfg;
}

/* One steady-rate latency measurement; prints p50/p99. Returns 0 or -1. */
static int lat_measure(int rate, int seconds, int fetch_wait_ms)
{
    struct cc_bus_config cfg = lat_config("bench-bus-latency", fetch_wait_ms);
    struct lat_run r = {0};
    char topic[96], group[128], msg[64];
    const char *topics[1] = {topic};
    long total = (long)rate * seconds, sent, n;
    int64_t start_us, deadline;
    pthread_t th;
    cc_producer *p;
    int rc = -1;

    snprintf(topic, sizeof(topic), "bench-bus-latency-%d-%d", (int)getpid(), fetch_wait_ms);
    snprintf(group, sizeof(group), "%s-group", topic);
    if (cc_bus_create_topic(&cfg, topic, 6, 10000) < 0)
        return -1;
    r.samples_ms = calloc(LAT_MAX_SAMPLES, sizeof(double));
    p = cc_producer_new(&cfg);
    if (!p || !r.samples_ms)
        goto free_samples;
    r.consumer = cc_consumer_new(&cfg, group, topics, 1, lat_handle, &r, p);
    if (!r.consumer)
        goto free_producer;
    if (pthread_create(&th, NULL, lat_consume, &r) != 0)
        goto free_consumer;

    /* warm-up: until the group has its assignment and fetches run */
    deadline = cc_time_mono_ms() + 30000;
    while (atomic_load(&r.warm) == 0 && cc_time_mono_ms() < deadline) {
        cc_producer_send(p, topic, "warm", "w", 1);
        cc_producer_flush(p, 1000);
        usleep(100000);
    }
    if (atomic_load(&r.warm) == 0) {
        fprintf(stderr, "bus_latency: consumer got no warm-up message in 30 s\n");
        goto stop_thread;
    }
    usleep(500000); /* let the remaining warm-up messages drain */

    start_us = cc_time_mono_us();
    for (sent = 0; sent < total; sent++) {
        lat_sleep_until_us(start_us + sent * 1000000 / rate);
        snprintf(msg, sizeof(msg), "m %lld", (long long)cc_time_mono_us());
        if (cc_producer_send(p, topic, NULL, msg, strlen(msg)) < 0)
            goto stop_thread;
        cc_producer_poll(p, 0);
    }
    cc_producer_flush(p, 10000);
    deadline = cc_time_mono_ms() + 10000;
    while (atomic_load(&r.n) < total && cc_time_mono_ms() < deadline)
        usleep(10000);
    rc = 0;
stop_thread:
    r.stop = 1;
    pthread_join(th, NULL);
    n = atomic_load(&r.n);
    if (rc == 0) {
        if (n < total)
            fprintf(stderr, "bus_latency: received %ld of %ld messages\n", n, total);
        qsort(r.samples_ms, (size_t)n, sizeof(double), lat_cmp);
        printf("bench: bus.latency_p50_ms %.2f ms fetch_wait_ms=%d rate=%d/s samples=%ld\n",
               lat_percentile(r.samples_ms, n, 0.50), fetch_wait_ms, rate, n);
        printf("bench: bus.latency_p99_ms %.2f ms fetch_wait_ms=%d rate=%d/s samples=%ld\n",
               lat_percentile(r.samples_ms, n, 0.99), fetch_wait_ms, rate, n);
        fflush(stdout);
        rc = n == total ? 0 : -1;
    }
free_consumer:
    cc_consumer_free(r.consumer);
free_producer:
    cc_producer_free(p);
free_samples:
    free(r.samples_ms);
    return rc;
}

/* Producer burst: BURST_MESSAGES as fast as they can be queued, until all are acknowledged. */
static int lat_burst(void)
{
    struct cc_bus_config cfg = lat_config("bench-bus-burst", 10);
    char topic[128], value[BURST_BYTES];
    int64_t t0, t1;
    cc_producer *p;
    int i, rc;

    cfg.linger_ms = CC_BUS_DEFAULT_LINGER_MS;
    snprintf(topic, sizeof(topic), "bench-bus-burst-%d", (int)getpid());
    if (cc_bus_create_topic(&cfg, topic, 6, 10000) < 0)
        return -1;
    p = cc_producer_new(&cfg);
    if (!p)
        return -1;
    memset(value, 'x', sizeof(value));
    t0 = cc_time_mono_us();
    for (i = 0; i < BURST_MESSAGES; i++) {
        char key[16];

        snprintf(key, sizeof(key), "k%d", i % 1000);
        if (cc_producer_send(p, topic, key, value, sizeof(value)) < 0)
            break;
    }
    rc = cc_producer_flush(p, 60000);
    t1 = cc_time_mono_us();
    cc_producer_free(p);
    if (rc < 0 || i < BURST_MESSAGES) {
        fprintf(stderr, "bus_latency: burst failed after %d messages: %s\n", i, strerror(-rc));
        return -1;
    }
    printf("bench: bus.produce_per_s %.0f 1/s messages=%d bytes=%d acks=all idempotent=true\n",
           (double)BURST_MESSAGES * 1e6 / (double)(t1 - t0), BURST_MESSAGES, BURST_BYTES);
    return 0;
}

int main(int argc, char **argv)
{
    int rate = argc > 1 ? atoi(argv[1]) : 2000;
    int seconds = argc > 2 ? atoi(argv[2]) : 5;
    int fail = 0, i;

    cc_log_init("bench-bus", CC_LOG_ERROR);
    if (!getenv("CC_KAFKA_BROKERS") || rate < 1 || seconds < 1) {
        fprintf(stderr,
                "usage: %s [RATE_PER_S [SECONDS [FETCH_WAIT_MS...]]] with "
                "CC_KAFKA_BROKERS set\n",
                argv[0]);
        return 2;
    }
    if (argc > 3) {
        for (i = 3; i < argc; i++)
            fail |= lat_measure(rate, seconds, atoi(argv[i])) < 0;
    } else {
        fail |= lat_measure(rate, seconds, 1) < 0;
        fail |= lat_measure(rate, seconds, 10) < 0;
    }
    fail |= lat_burst() < 0;
    return fail ? 1 : 0;
}
