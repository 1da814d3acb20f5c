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
};

const size_t router_config_nvars = sizeof(router_config_vars) / sizeof(router_config_vars[0]);
