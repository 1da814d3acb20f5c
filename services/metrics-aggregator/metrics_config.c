/* metrics_config: the table of the metrics-aggregator's CC_METRICS_* variables. */
#include "metrics_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cc_bus.h"

const struct cc_config_var metrics_config_vars[] = {
    {"CC_METRICS_GROUP", CC_CFG_STRING, "metrics-aggregator",
     "Kafka consumer group of cc.interactions and cc.agents (every instance joins it)",
     offsetof(struct metrics_config, consumer_group)},
    {"CC_METRICS_MIGRATIONS_DIR", CC_CFG_STRING, "services/metrics-aggregator/migrations",
     "directory of the service's NNN_name.sql migrations, applied at start (relative paths are "
     "resolved against the working directory)",
     offsetof(struct metrics_config, migrations_dir)},
    {"CC_METRICS_BATCH_MAX", CC_CFG_INT, "4096",
     "most events applied in one PostgreSQL transaction (what one poll has ready)",
     offsetof(struct metrics_config, batch_max), 1, CC_BUS_BATCH_MAX},
    {"CC_METRICS_CONSUMERS", CC_CFG_INT, "2",
     "ingest threads per instance, each a member of the group with its own PostgreSQL "
     "connection (partitions are shared among them; their batches commit in parallel)",
     offsetof(struct metrics_config, consumers), 1, 16},
    {"CC_METRICS_PG_POOL", CC_CFG_INT, "4",
     "PostgreSQL connections of the REST handlers and the live stream (keep >= CC_HTTP_THREADS "
     "+ 1); the ingest has its own",
     offsetof(struct metrics_config, pg_pool_size), 1, 64},
    {"CC_METRICS_PG_ACQUIRE_TIMEOUT_MS", CC_CFG_INT, "2000",
     "longest a request waits for a free PostgreSQL connection before answering 503",
     offsetof(struct metrics_config, pg_acquire_timeout_ms), 1, 60000},
    {"CC_METRICS_SL_DEFAULT_S", CC_CFG_INT, "20",
     "service-level threshold T of a queue whose queued events never carried sl_threshold_s "
     "(answered or abandoned within T seconds counts as in service level)",
     offsetof(struct metrics_config, sl_default_s), 1, 86400},
    {"CC_METRICS_SHORT_ABANDON_VOICE_S", CC_CFG_INT, "10",
     "a voice abandon after waiting less than this is short: counted apart, not in abandonment "
     "rate nor service level (0: none is short)",
     offsetof(struct metrics_config, short_abandon_s[METRICS_CH_VOICE]), 0, 3600},
    {"CC_METRICS_SHORT_ABANDON_CHAT_S", CC_CFG_INT, "5", "short-abandon threshold of chat",
     offsetof(struct metrics_config, short_abandon_s[METRICS_CH_CHAT]), 0, 3600},
    {"CC_METRICS_SHORT_ABANDON_SMS_S", CC_CFG_INT, "5", "short-abandon threshold of SMS",
     offsetof(struct metrics_config, short_abandon_s[METRICS_CH_SMS]), 0, 3600},
    {"CC_METRICS_SHORT_ABANDON_EMAIL_S", CC_CFG_INT, "5", "short-abandon threshold of e-mail",
     offsetof(struct metrics_config, short_abandon_s[METRICS_CH_EMAIL]), 0, 3600},
    {"CC_METRICS_FCR_DAYS", CC_CFG_INT, "7",
     "first contact resolution window: a contact is resolved first time when the same customer "
     "does not contact again within this many days",
     offsetof(struct metrics_config, fcr_days), 1, 90},
    {"CC_METRICS_SNAPSHOT_S", CC_CFG_INT, "10",
     "period of the KPI snapshots published on cc.metrics (0: none)",
     offsetof(struct metrics_config, snapshot_interval_s), 0, 86400},
    {"CC_METRICS_STREAM_INTERVAL_MS", CC_CFG_INT, "1000",
     "period of the live snapshots sent to Server-Sent Events clients",
     offsetof(struct metrics_config, stream_interval_ms), 100, 60000},
    {"CC_METRICS_TZ", CC_CFG_STRING, "UTC",
     "IANA time zone whose calendar day is the live \"today\" (e.g. Europe/Berlin)",
     offsetof(struct metrics_config, timezone)},
    {"CC_METRICS_STORE_TIMING", CC_CFG_BOOL, "false",
     "profiling: log the time of every statement of every applied batch (info level)",
     offsetof(struct metrics_config, store_timing)},
    {"CC_METRICS_DEDUPE_DAYS", CC_CFG_INT, "8",
     "days an applied event id is remembered (from when it was applied) so that a redelivery "
     "changes nothing; keep it above the topics' retention (Kafka's default: 7 days), the "
     "oldest message a consumer can be handed again",
     offsetof(struct metrics_config, dedupe_days), 1, 3650},
    {"CC_METRICS_PENDING_DAYS", CC_CFG_INT, "8",
     "days a fact waits for its interaction's created event before it is dropped (logged)",
     offsetof(struct metrics_config, pending_days), 1, 3650},
};

const size_t metrics_config_nvars = sizeof(metrics_config_vars) / sizeof(metrics_config_vars[0]);

/* True when tz names a zone file of the system's zoneinfo database. */
static bool tz_known(const char *tz)
{
    char path[160];
    struct stat st;

    if (strcmp(tz, "UTC") == 0)
        return true;
    if (!*tz || tz[0] == '/' || strlen(tz) > METRICS_TZ_MAX || strstr(tz, ".."))
        return false;
    for (const char *p = tz; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("/_+-", *p)))
            return false;
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int metrics_config_validate(const struct metrics_config *cfg, char *err, size_t errlen)
{
    if (!cfg->consumer_group || !*cfg->consumer_group) {
        snprintf(err, errlen, "CC_METRICS_GROUP: must not be empty");
        return -EINVAL;
    }
    if (!cfg->migrations_dir || !*cfg->migrations_dir) {
        snprintf(err, errlen, "CC_METRICS_MIGRATIONS_DIR: must not be empty");
        return -EINVAL;
    }
    if (!cfg->timezone || !tz_known(cfg->timezone)) {
        snprintf(err, errlen,
                 "CC_METRICS_TZ: '%s' is not a known time zone (an IANA name such "
                 "as Europe/Berlin, or UTC)",
                 cfg->timezone ? cfg->timezone : "");
        return -EINVAL;
    }
    return 0;
}
