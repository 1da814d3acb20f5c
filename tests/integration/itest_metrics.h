/*
 * itest_metrics: the fixture of the metrics-aggregator's integration tests -- cc-metrics-aggregator
 * as a process on the stack (its own consumer group, started at the end of the topics), a
 * tenant and an event-id tag of the test's own, a producer for hand-made events, and a
 * PostgreSQL connection to read what the service wrote.
 *
 * Every function asserts (Criterion): test code only. One struct per test, set up in the suite's
 * .init and torn down in its .fini (which kills whatever a failed test left running).
 */
#ifndef ITEST_METRICS_H
#define ITEST_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc_bus.h"
#include "cc_pg.h"
#include "itest_proc.h"

#define ITEST_METRICS_TOKEN   "mi-analyst-token" /* analyst token of the tenant */
#define ITEST_METRICS_WAIT_MS 60000

struct itest_metrics {
    char tenant[80];
    char tag[24];    /* event and interaction ids start with it: unique per test */
    char group[96];  /* the service's consumer group */
    char tz[24];     /* CC_METRICS_TZ: a zone where local now is around noon */
    int64_t base_ms; /* a 15-minute bucket start about 3 h ago: the scenario's time 0 */
    struct itest_proc svc;
    int port; /* the service's HTTP port once started */
    cc_producer *producer;
    cc_pg *pg;
    size_t produced; /* events sent by itest_metrics_send */
};

/* A unique tenant/tag/group (prefix: short, lowercase), the base time, the producer and pg. */
void itest_metrics_setup(struct itest_metrics *t, const char *prefix);
/* Kills the service if running, frees the producer and the connection. */
void itest_metrics_teardown(struct itest_metrics *t);

/* Starts cc-metrics-aggregator (extra "NAME=value" entries may be NULL) and waits until it
 * consumes; the first start positions the group at the end of the topics. */
void itest_metrics_start(struct itest_metrics *t, const char *const *extra_env);
/* SIGTERM, expecting exit 0 and no sanitizer report. */
void itest_metrics_stop(struct itest_metrics *t);
/* SIGKILL (nothing is flushed or committed). */
void itest_metrics_kill(struct itest_metrics *t);

/* Sends one event: id "<tag>-<seq>", time base_ms + at_ms, subject (also the key) as given,
 * data parsed from data_json (single quotes stand for double quotes). */
void itest_metrics_send(struct itest_metrics *t, const char *topic, const char *type,
                        const char *subject, int64_t at_ms, const char *data_json, int seq);
/* Sends raw bytes (for malformed input) keyed by key. */
void itest_metrics_send_raw(struct itest_metrics *t, const char *topic, const char *key,
                            const char *value);
/* Flushes the producer, then waits until the service's group has committed the end of every
 * partition of cc.interactions and cc.agents as they were after the flush. */
void itest_metrics_wait_caught_up(struct itest_metrics *t);
/* How many events with the test's tag the service has applied (metrics.events_seen). */
long itest_metrics_applied(struct itest_metrics *t);

/* One SQL query with text params returning one row; the value of column col as an integer
 * (0 for NULL). */
long long itest_metrics_sql_int(struct itest_metrics *t, const char *sql, int nparams,
                                const char *const *params);

#endif
