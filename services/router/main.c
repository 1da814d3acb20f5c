/* cc-router: the ACD. Slice 1 serves its configuration (agents, queues, memberships, reasons). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_auth.h"
#include "cc_config.h"
#include "cc_http.h"
#include "cc_log.h"
#include "router_api.h"
#include "router_config.h"
#include "router_store.h"

/* Blocks SIGTERM/SIGINT in every thread (so the pool threads inherit the mask) and returns the
 * set to wait on. */
static sigset_t block_stop_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    return set;
}

int main(int argc, char **argv)
{
    struct router_config cfg = {0};
    cc_config_arena *arena = NULL;
    char err[256] = "";
    cc_auth *auth;
    router_store *store;
    router_api *api = NULL;
    cc_http *srv;
    sigset_t stop;
    int sig = 0, rc = EXIT_FAILURE;

    cc_config_main(argc, argv, ROUTER_SERVICE, router_config_vars, router_config_nvars, &cfg,
                   &cfg.common, ROUTER_DEFAULT_HTTP_PORT, &arena);
    stop = block_stop_signals();
    auth = cc_auth_new(cfg.common.auth_tokens, err, sizeof(err));
    if (!auth) {
        CC_ERROR("bad CC_AUTH_TOKENS: %s", err);
        goto out_config;
    }
    store =
        router_store_new(cfg.common.pg_dsn, (unsigned)cfg.pg_pool_size, cfg.pg_acquire_timeout_ms);
    if (!store)
        goto out_auth;
    if (router_store_migrate(store, cfg.migrations_dir) < 0) {
        CC_ERROR("cannot migrate schema 'router' from '%s'", cfg.migrations_dir);
        goto out_store;
    }
    srv = cc_http_new(&(struct cc_http_config){.service = ROUTER_SERVICE,
                                               .addr = cfg.common.http_addr,
                                               .port = (int)cfg.common.http_port,
                                               .threads = (unsigned)cfg.common.http_threads,
                                               .body_limit = (size_t)cfg.common.http_body_limit,
                                               .auth = auth});
    if (!srv)
        goto out_store;
    api = router_api_new(srv, store);
    if (!api || cc_http_start(srv) < 0) {
        CC_ERROR("cannot serve http on %s:%ld", cfg.common.http_addr, cfg.common.http_port);
        goto out_http;
    }
    CC_INFO("router listening on %s:%d (%zu token(s))", cfg.common.http_addr, cc_http_port(srv),
            cc_auth_count(auth));
    sigwait(&stop, &sig);
    CC_INFO("stopping on signal %s", strsignal(sig));
    rc = EXIT_SUCCESS;
out_http:
    cc_http_free(srv); /* waits for in-flight handlers */
    router_api_free(api);
out_store:
    router_store_free(store);
out_auth:
    cc_auth_free(auth);
out_config:
    cc_config_free(arena);
    return rc;
}
