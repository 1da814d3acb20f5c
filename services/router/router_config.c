/* router_config: the table of the router's CC_ROUTER_* variables. */
#include "router_config.h"

const struct cc_config_var router_config_vars[] = {
    {"CC_ROUTER_MIGRATIONS_DIR", CC_CFG_STRING, "services/router/migrations",
     "directory of the router's NNN_name.sql migrations, applied at start (relative paths are "
     "resolved against the working directory)",
     offsetof(struct router_config, migrations_dir)},
    {"CC_ROUTER_PG_POOL_SIZE", CC_CFG_INT, "4",
     "PostgreSQL connections shared by the REST handlers (keep >= CC_HTTP_THREADS)",
     offsetof(struct router_config, pg_pool_size), 1, 64},
    {"CC_ROUTER_PG_ACQUIRE_TIMEOUT_MS", CC_CFG_INT, "2000",
     "longest a request waits for a free PostgreSQL connection before answering 503",
     offsetof(struct router_config, pg_acquire_timeout_ms), 1, 60000},
    {"CC_ROUTER_CONSUMER_GROUP", CC_CFG_STRING, "router",
     "Kafka consumer group of the routing requests and facts (every instance joins it)",
     offsetof(struct router_config, consumer_group)},
    {"CC_ROUTER_CONSUMERS", CC_CFG_INT, "2",
     "consumer threads per instance (each its own Redis and PostgreSQL connection; partitions "
     "are shared among them)",
     offsetof(struct router_config, consumers), 1, 32},
    {"CC_ROUTER_BATCH_MAX", CC_CFG_INT, "256",
     "most messages a consumer thread applies together (what one poll has ready): one database "
     "statement and one Redis script call per group of route commands",
     offsetof(struct router_config, batch_max), 1, 1024},
    {"CC_ROUTER_TICK_MS", CC_CFG_INT, "50",
     "period of the timer thread (ring timeouts, wrap-up ends, max waits, tiers): the lateness "
     "of a timer is at most this",
     offsetof(struct router_config, tick_ms), 1, 60000},
    {"CC_ROUTER_OUTBOX_BATCH", CC_CFG_INT, "512",
     "events the outbox publisher moves to Kafka per batch (one delivery wait per batch)",
     offsetof(struct router_config, outbox_batch), 1, 10000},
    {"CC_ROUTER_OUTBOX_LEASE_MS", CC_CFG_INT, "5000",
     "lease of the single active outbox publisher: a standby takes over this long after the "
     "publisher died",
     offsetof(struct router_config, outbox_lease_ms), 300, 600000},
    {"CC_ROUTER_DRAIN_MS", CC_CFG_INT, "5000",
     "at shutdown, longest the publisher keeps moving pending events to Kafka",
     offsetof(struct router_config, drain_ms), 0, 600000},
    {"CC_ROUTER_CLOSED_KEEP_S", CC_CFG_INT, "86400",
     "closed interactions stay in router.interactions this long, so a redelivered route "
     "command for one is recognised (keep above the topics' redelivery horizon)",
     offsetof(struct router_config, closed_keep_s), 60, 31536000},
    {"CC_ROUTER_SYNC_TIMEOUT_MS", CC_CFG_INT, "120000",
     "longest the start-up sync of the configuration into Redis may take before the router "
     "gives up",
     offsetof(struct router_config, sync_timeout_ms), 1000, 3600000},
    {"CC_ROUTER_TENANTS", CC_CFG_STRING, "",
     "comma-separated tenants this instance routes (empty = all); a restricted instance needs "
     "its own consumer group, Redis and database (tenant sharding)",
     offsetof(struct router_config, tenants)},
};

const size_t router_config_nvars = sizeof(router_config_vars) / sizeof(router_config_vars[0]);
