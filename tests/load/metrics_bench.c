/*
 * metrics_bench: the metrics-aggregator's end-to-end throughput (driven by tests/load/metrics.sh).
 *
 *   metrics_bench produce N     N events of a realistic contact-center mix onto cc.interactions and
 *                               cc.agents (tenant "bench"); prints "produced <n> <seconds>"
 *   metrics_bench consume N     the reference: a plain cc_bus batch consumer (new group, from the
 *                               start) reading N messages; prints the bus.consume_per_s line
 *   metrics_bench wait N        polls metrics.events_seen until N events are committed; prints
 *                               "applied <n> <seconds from the first applied batch> <total s>"
 *
 * The mix, per inbound interaction (40 queues, 400 agents, over the last 10 hours, 1 in 10
 * abandoned): created, queued, answered, ended, wrapup_completed on cc.interactions and the agent's
 * state_changed available -> busy -> wrap_up -> available on cc.agents (8 events); an abandoned one
 * is created, queued, abandoned, ended (4). Every event has its own id and its own time.
 * Environment: CC_KAFKA_BROKERS, CC_PG_DSN (wait). Prints "bench:" lines and plain results.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_bus.h"
#include "cc_log.h"
#include "cc_pg.h"
#include "cc_time.h"

#define MB_QUEUES  40
#define MB_AGENTS  400
#define MB_SPAN_MS (10 * 3600 * 1000LL)
#define MB_TENANT  "bench"

struct mb_producer {
    cc_producer *p;
    long sent, seq;
    char run[24];
};

static void mb_send(struct mb_producer *mp, const char *topic, const char *type,
                    const char *subject, int64_t t_ms, const char *data)
{
    char when[CC_TIME_ISO8601_LEN], buf[1024];
    int n;

    cc_time_format_iso8601(t_ms, when);
    n = snprintf(buf, sizeof(buf),
                 "{\"specversion\":\"1.0\",\"id\":\"%s-%ld\",\"source\":\"/bench/metrics\","
                 "\"type\":\"%s\",\"time\":\"%s\",\"datacontenttype\":\"application/json\","
                 "\"subject\":\"%s\",\"tenant\":\"" MB_TENANT "\",\"data\":%s}",
                 mp->run, mp->seq++, type, when, subject, data);
    while (cc_producer_send(mp->p, topic, subject, buf, (size_t)n) == -ENOBUFS)
        cc_producer_poll(mp->p, 10);
    mp->sent++;
}

static void mb_agent_state(struct mb_producer *mp, const char *agent, int64_t t, const char *from,
                           const char *to, int64_t ms)
{
    char data[256];

    snprintf(data, sizeof(data),
             "{\"from_state\":\"%s\",\"to_state\":\"%s\",\"duration_ms\":%" PRId64
             ",\"changed_by\":\"system\"}",
             from, to, ms);
    mb_send(mp, CC_TOPIC_AGENTS, "cc.agent.state_changed", agent, t, data);
}

/* One interaction (and its agent's states): 8 events, or 4 when abandoned. */
static void mb_interaction(struct mb_producer *mp, long i, int64_t t0)
{
    char id[64], agent[16], queue[16], data[512];
    int64_t wait = 2000 + (i * 7919) % 60000, talk = 60000 + (i * 104729) % 600000,
            wrap = 5000 + (i * 31) % 60000;
    const char *channel = i % 5 == 0 ? "chat" : i % 11 == 0 ? "email" : "voice";

    snprintf(id, sizeof(id), "%s-ix-%ld", mp->run, i);
    snprintf(agent, sizeof(agent), "ag%ld", i % MB_AGENTS);
    snprintf(queue, sizeof(queue), "q%ld", i % MB_QUEUES);
    snprintf(data, sizeof(data),
             "{\"channel\":\"%s\",\"direction\":\"inbound\",\"queue_id\":\"%s\",\"from\":"
             "\"+4930%07ld\",\"to\":\"+4930999\",\"priority\":0,\"customer_id\":\"c%ld\"}",
             channel, queue, i % 10000000, i % 50000);
    mb_send(mp, CC_TOPIC_INTERACTIONS, "cc.interaction.created", id, t0, data);
    snprintf(data, sizeof(data), "{\"queue_id\":\"%s\",\"priority\":0,\"sl_threshold_s\":20}",
             queue);
    mb_send(mp, CC_TOPIC_INTERACTIONS, "cc.interaction.queued", id, t0 + 5, data);
    if (i % 10 == 9) {
        snprintf(data, sizeof(data), "{\"queue_id\":\"%s\",\"wait_ms\":%" PRId64 "}", queue, wait);
        mb_send(mp, CC_TOPIC_INTERACTIONS, "cc.interaction.abandoned", id, t0 + wait, data);
        snprintf(data, sizeof(data),
                 "{\"ended_by\":\"customer\",\"talk_ms\":0,\"hold_ms\":0,\"duration_ms\":%" PRId64
                 ",\"queue_id\":\"%s\",\"reason\":\"abandoned\"}",
                 wait, queue);
        mb_send(mp, CC_TOPIC_INTERACTIONS, "cc.interaction.ended", id, t0 + wait, data);
        return;
    }
    snprintf(
        data, sizeof(data),
        "{\"answered_by\":\"agent\",\"agent_id\":\"%s\",\"queue_id\":\"%s\",\"wait_ms\":%" PRId64
        "}",
        agent, queue, wait);
    mb_send(mp, CC_TOPIC_INTERACTIONS, "cc.interaction.answered", id, t0 + wait, data);
    mb_agent_state(mp, agent, t0 + wait, "available", "busy", 30000 + i % 90000);
    snprintf(data, sizeof(data),
             "{\"ended_by\":\"customer\",\"talk_ms\":%" PRId64
             ",\"hold_ms\":%d,\"duration_ms\":%" PRId64 ",\"agent_id\":\"%s\",\"queue_id\":\"%s\"}",
             talk, (int)(i % 3) * 5000, talk + wait, agent, queue);
    mb_send(mp, CC_TOPIC_INTERACTIONS, "cc.interaction.ended", id, t0 + wait + talk, data);
    mb_agent_state(mp, agent, t0 + wait + talk, "busy", "wrap_up", talk);
    snprintf(data, sizeof(data), "{\"agent_id\":\"%s\",\"wrapup_ms\":%" PRId64 "}", agent, wrap);
    mb_send(mp, CC_TOPIC_INTERACTIONS, "cc.interaction.wrapup_completed", id,
            t0 + wait + talk + wrap, data);
    mb_agent_state(mp, agent, t0 + wait + talk + wrap, "wrap_up", "available", wrap);
}

static void mb_bus_config(struct cc_bus_config *bus, const char *client)
{
    cc_bus_config_defaults(bus);
    bus->brokers = getenv("CC_KAFKA_BROKERS");
    bus->client_id = client;
    bus->session_timeout_ms = 6000;
    bus->heartbeat_interval_ms = 1000;
    bus->fetch_wait_max_ms = 10;
    bus->linger_ms = 20;
}

static int mb_produce(long n)
{
    struct cc_bus_config bus;
    struct mb_producer mp = {0};
    int64_t now = cc_time_now_ms(), t0 = cc_time_mono_us();
    long i = 0;

    mb_bus_config(&bus, "metrics-bench-producer");
    mp.p = cc_producer_new(&bus);
    if (!mp.p)
        return 1;
    snprintf(mp.run, sizeof(mp.run), "%" PRIx64, (uint64_t)now);
    while (mp.sent < n) {
        /* start times spread over the span, the latest ending before now */
        int64_t start = now - MB_SPAN_MS + (int64_t)((double)i / ((double)n / 7.5) * MB_SPAN_MS);

        mb_interaction(&mp, i++, start);
    }
    if (cc_producer_flush(mp.p, 60000) < 0) {
        fprintf(stderr, "metrics_bench: not every event was delivered\n");
        cc_producer_free(mp.p);
        return 1;
    }
    printf("produced %ld %.3f interactions=%ld\n", mp.sent, (double)(cc_time_mono_us() - t0) / 1e6,
           i);
    cc_producer_free(mp.p);
    return 0;
}

struct mb_count {
    long n, want;
    int64_t first_us, last_us;
};

static void mb_count_batch(void *ctx, const struct cc_bus_msg *msgs, size_t n,
                           struct cc_bus_outcome *out)
{
    struct mb_count *c = ctx;

    (void)msgs;
    (void)out;
    if (c->n == 0)
        c->first_us = cc_time_mono_us();
    c->n += (long)n;
    c->last_us = cc_time_mono_us();
}

static int mb_consume(long n)
{
    static const char *const topics[] = {CC_TOPIC_INTERACTIONS, CC_TOPIC_AGENTS};
    struct cc_bus_config bus;
    struct mb_count c = {.want = n};
    char group[64];
    cc_producer *dl;
    cc_consumer *co;
    int64_t t0 = cc_time_mono_us(), until = cc_time_mono_ms() + 300000;

    mb_bus_config(&bus, "metrics-bench-reference");
    snprintf(group, sizeof(group), "metrics-bench-ref-%" PRId64, cc_time_now_ms());
    dl = cc_producer_new(&bus);
    co =
        dl ? cc_consumer_new_batch(&bus, group, topics, 2, mb_count_batch, CC_BUS_BATCH_MAX, &c, dl)
           : NULL;
    if (!co)
        return 1;
    while (c.n < n && cc_time_mono_ms() < until)
        if (cc_consumer_poll(co, 100) < 0)
            break;
    cc_consumer_free(co);
    cc_producer_free(dl);
    if (c.n < n) {
        fprintf(stderr, "metrics_bench: the reference consumer read %ld of %ld messages\n", c.n, n);
        return 1;
    }
    printf("bench: bus.consume_per_s %.0f 1/s events=%ld batch=%d consumers=1 first_after_s=%.2f\n",
           (double)c.n / ((double)(c.last_us - c.first_us) / 1e6), c.n, CC_BUS_BATCH_MAX,
           (double)(c.first_us - t0) / 1e6);
    return 0;
}

static long mb_applied(cc_pg *pg)
{
    PGresult *res =
        cc_pg_query(pg, "SELECT to_regclass('metrics.events_seen') IS NOT NULL", 0, NULL);
    bool there = res && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    long v;

    PQclear(res);
    if (!there) /* the service has not migrated its schema yet */
        return res ? 0 : -1;
    res = cc_pg_query(pg, "SELECT count(*) FROM metrics.events_seen", 0, NULL);
    v = res ? atol(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return v;
}

/* The next poll of mb_wait: a count(*) of events_seen costs PostgreSQL tens of ms once the table
 * is large, CPU the service under test would otherwise have, so it sleeps for a third of the time
 * the current rate needs to finish (20..500 ms): a handful of counts per run, and the last one
 * within 20 ms or 1/3 of the remaining time of the end. */
static int mb_wait_next_ms(long got, long n, int64_t first_us)
{
    double rate, left_ms;

    if (got <= 0)
        return 50;
    rate = (double)got / ((double)(cc_time_mono_us() - first_us) / 1000.0 + 1.0); /* per ms */
    left_ms = (double)(n - got) / rate;
    return left_ms / 3 < 20 ? 20 : left_ms / 3 > 500 ? 500 : (int)(left_ms / 3);
}

static int mb_wait(long n)
{
    cc_pg *pg = cc_pg_new(getenv("CC_PG_DSN"));
    int64_t t0 = cc_time_mono_us(), first = 0, until = cc_time_mono_ms() + 600000;
    long got = 0;

    if (!pg)
        return 1;
    while (cc_time_mono_ms() < until) {
        got = mb_applied(pg);
        if (got > 0 && !first)
            first = cc_time_mono_us();
        if (got >= n || got < 0)
            break;
        cc_time_sleep_ms(mb_wait_next_ms(got, n, first));
    }
    cc_pg_free(pg);
    if (got < n) {
        fprintf(stderr, "metrics_bench: %ld of %ld events applied in time\n", got, n);
        return 1;
    }
    printf("applied %ld %.3f %.3f\n", got, (double)(cc_time_mono_us() - first) / 1e6,
           (double)(cc_time_mono_us() - t0) / 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 0;

    cc_log_init("metrics-bench", CC_LOG_WARN);
    if (argc != 3 || n <= 0 || !getenv("CC_KAFKA_BROKERS")) {
        fprintf(stderr, "usage: metrics_bench produce|consume|wait N (with CC_KAFKA_BROKERS)\n");
        return 2;
    }
    if (strcmp(argv[1], "produce") == 0)
        return mb_produce(n);
    if (strcmp(argv[1], "consume") == 0)
        return mb_consume(n);
    if (strcmp(argv[1], "wait") == 0)
        return mb_wait(n);
    fprintf(stderr, "metrics_bench: unknown mode '%s'\n", argv[1]);
    return 2;
}
