/*
 * router_config: the router's CC_* variables (one const table) and the struct they load into.
 *
 * Loaded once by main() with cc_config_main(); read-only afterwards and shared freely.
 * `cc-router --help` prints every variable, the common ones too.
 */
#ifndef ROUTER_CONFIG_H
#define ROUTER_CONFIG_H

#include <stddef.h>

#include "cc_config.h"

#define ROUTER_SERVICE           "router"
#define ROUTER_DEFAULT_HTTP_PORT 8081

struct router_config {
    struct cc_common_config common;
    const char *migrations_dir; /* CC_ROUTER_MIGRATIONS_DIR, relative to the working directory */
    long pg_pool_size;          /* CC_ROUTER_PG_POOL_SIZE */
    long pg_acquire_timeout_ms; /* CC_ROUTER_PG_ACQUIRE_TIMEOUT_MS */
    const char *consumer_group; /* CC_ROUTER_CONSUMER_GROUP */
    long consumers;             /* CC_ROUTER_CONSUMERS: consumer threads of the group */
    long batch_max;             /* CC_ROUTER_BATCH_MAX: messages applied per batch */
    long tick_ms;               /* CC_ROUTER_TICK_MS: timer poll period */
    long outbox_batch;          /* CC_ROUTER_OUTBOX_BATCH: events per publish batch */
    long outbox_lease_ms;       /* CC_ROUTER_OUTBOX_LEASE_MS: publisher failover time */
    long drain_ms;              /* CC_ROUTER_DRAIN_MS: outbox drain at shutdown */
    long closed_keep_s;         /* CC_ROUTER_CLOSED_KEEP_S: closed interactions kept (dedupe) */
    long sync_timeout_ms;       /* CC_ROUTER_SYNC_TIMEOUT_MS: start-up config sync limit */
    const char *tenants;        /* CC_ROUTER_TENANTS: tenants served ("" = all) */
};

/* The router's own variables (the common ones come from cc_config). */
extern const struct cc_config_var router_config_vars[];
extern const size_t router_config_nvars;

#endif
