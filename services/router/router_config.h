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
};

/* The router's own variables (the common ones come from cc_config). */
extern const struct cc_config_var router_config_vars[];
extern const size_t router_config_nvars;

#endif
