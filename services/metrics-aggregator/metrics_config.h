/*
 * metrics_config: the metrics-aggregator's CC_METRICS_* variables (one const table), the struct
 * they load into, and the checks the table's ranges cannot express (time zone, thresholds).
 *
 * Loaded once by main() with cc_config_main() then metrics_config_validate(); read-only
 * afterwards and shared freely by every thread (ingest, REST, stream).
 */
#ifndef METRICS_CONFIG_H
#define METRICS_CONFIG_H

#include <stddef.h>

#include "cc_config.h"

#define METRICS_SERVICE           "metrics-aggregator"
#define METRICS_DEFAULT_HTTP_PORT 8083
#define METRICS_TZ_MAX            64 /* longest time-zone name accepted */

/* Channels with their own short-abandon threshold (index of short_abandon_s). */
enum metrics_channel {
    METRICS_CH_VOICE = 0,
    METRICS_CH_CHAT,
    METRICS_CH_SMS,
    METRICS_CH_EMAIL,
    METRICS_CH_COUNT,
};

struct metrics_config {
    struct cc_common_config common;
    const char *consumer_group;             /* CC_METRICS_GROUP */
    const char *migrations_dir;             /* CC_METRICS_MIGRATIONS_DIR */
    long batch_max;                         /* CC_METRICS_BATCH_MAX: events per transaction */
    long consumers;                         /* CC_METRICS_CONSUMERS: ingest threads */
    long pg_pool_size;                      /* CC_METRICS_PG_POOL: REST/stream connections */
    long pg_acquire_timeout_ms;             /* CC_METRICS_PG_ACQUIRE_TIMEOUT_MS */
    long sl_default_s;                      /* CC_METRICS_SL_DEFAULT_S */
    long short_abandon_s[METRICS_CH_COUNT]; /* CC_METRICS_SHORT_ABANDON_{VOICE,CHAT,SMS,EMAIL}_S */
    long fcr_days;                          /* CC_METRICS_FCR_DAYS */
    long snapshot_interval_s;               /* CC_METRICS_SNAPSHOT_S (0 = no snapshots) */
    long stream_interval_ms;                /* CC_METRICS_STREAM_INTERVAL_MS */
    const char *timezone;                   /* CC_METRICS_TZ: the day of the live "today" */
    bool store_timing;                      /* CC_METRICS_STORE_TIMING: log statement times */
    long dedupe_days;  /* CC_METRICS_DEDUPE_DAYS: applied event ids kept (redelivery window) */
    long pending_days; /* CC_METRICS_PENDING_DAYS: facts kept waiting for their created event */
};

/* The service's own variables (the common ones come from cc_config). */
extern const struct cc_config_var metrics_config_vars[];
extern const size_t metrics_config_nvars;

/* Checks what the table's ranges do not: the time zone is "UTC" or a name of the system's
 * zoneinfo database (an IANA name such as "Europe/Berlin" or "Etc/GMT+3"; no "..", no leading
 * '/'); the consumer group and migrations directory are not empty. Returns 0, or -EINVAL with
 * "CC_METRICS_TZ: 'Mars/Base' is not a known time zone" (the variable named) in err. Pure but
 * for reading the zoneinfo directory; thread-safe. */
int metrics_config_validate(const struct metrics_config *cfg, char *err, size_t errlen);

#endif
