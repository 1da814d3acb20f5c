/*
 * http_bench: a cc_http server for the HTTP benchmark, with the layer's whole path in play
 * (routing, problem+json, metrics per request, and on /v1/bench/tenant the bearer-token check).
 *   GET /v1/bench/ping            public, 200 {"pong":true}
 *   GET /v1/bench/tenant          needs a token, 200 {"tenant":"<caller's tenant>"}
 * The token is CC_BENCH_TOKEN (default "bench-token", tenant "bench", role service).
 *
 * Usage: http_bench [port]   (0 or none = any free port). Prints "port <n>" on stdout once
 * listening; stops on SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cc_auth.h"
#include "cc_http.h"
#include "cc_log.h"

static int ping(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    (void)req;
    (void)ctx;
    return cc_http_json(resp, 200, json_pack("{s:b}", "pong", 1));
}

static int tenant(struct cc_http_req *req, struct cc_http_resp *resp, void *ctx)
{
    (void)ctx;
    return cc_http_json(resp, 200, json_pack("{s:s}", "tenant", cc_http_principal(req)->tenant));
}

int main(int argc, char **argv)
{
    const char *token = getenv("CC_BENCH_TOKEN") ? getenv("CC_BENCH_TOKEN") : "bench-token";
    int port = argc > 1 ? atoi(argv[1]) : 0;
    char spec[128], hash[65], err[256];
    cc_auth *auth = NULL;
    cc_http *srv = NULL;
    sigset_t stop;
    int sig, rc = 1;

    cc_log_init("http-bench", CC_LOG_WARN);
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (cc_auth_hash_token(token, hash) < 0)
        goto out;
    snprintf(spec, sizeof(spec), "%s:bench:service", hash);
    auth = cc_auth_new(spec, err, sizeof(err));
    if (!auth) {
        CC_ERROR("bad bench token spec: %s", err);
        goto out;
    }
    srv = cc_http_new(&(struct cc_http_config){
        .service = "http-bench", .addr = "127.0.0.1", .port = port, .auth = auth});
    if (!srv || cc_http_route(srv, "GET", "/v1/bench/ping", ping, NULL, CC_HTTP_PUBLIC) < 0 ||
        cc_http_route(srv, "GET", "/v1/bench/tenant", tenant, NULL, 0) < 0 ||
        cc_http_start(srv) < 0)
        goto out_srv;
    printf("port %d\n", cc_http_port(srv));
    fflush(stdout);
    sigwait(&stop, &sig);
    rc = 0;
out_srv:
    cc_http_free(srv);
out:
    cc_auth_free(auth);
    return rc;
}
