/*
 * cc-sip-edge: the SIP registrar of agent phones and the B2BUA between callers and agents.
 *
 * Start: config -> store (+ migrations) -> producer -> originations a previous process left
 * undialled reported failed -> the call journal (calls a previous process left reported ended)
 * -> HTTP + REST API -> SIP stack (its own callbacks restored) -> the journal's thread
 * (liveness, takeovers) -> call control routes -> HTTP listening -> decisions consumer (waits
 * for its partitions) -> dialer commands consumer -> the su_root loop on this thread until
 * SIGTERM/SIGINT (a signalfd in the root).
 * Stop: the loop ends every call and shuts NUA down -> consumers (commit, leave the groups) ->
 * HTTP (call control handlers get 503 from the stopped loop) -> the journal (written, the
 * instance retired) -> SIP stack -> producer (flushes) -> store.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cc_auth.h"
#include "cc_bus.h"
#include "cc_config.h"
#include "cc_http.h"
#include "cc_log.h"
#include "cc_metrics.h"
#include "cc_time.h"
#include "sipedge_api.h"
#include "sipedge_api_calls.h"
#include "sipedge_bus.h"
#include "sipedge_call.h"
#include "sipedge_config.h"
#include "sipedge_sip.h"
#include "sipedge_store.h"

#define SIP_ASSIGN_WAIT_MS 60000 /* longest wait for the decisions consumer's partitions */

/* "sip:127.0.0.1:5070;transport=udp" -> "127.0.0.1:5070" (for the start-up line). */
static void sip_hostport(const char *url, char *out, size_t cap)
{
    const char *p = strncmp(url, "sip:", 4) == 0 ? url + 4 : url;
    size_t n = strcspn(p, ";?");

    snprintf(out, cap, "%.*s", (int)n, p);
}

static int stop_signals_fd(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Waits until the decisions consumer has its partitions (or SIP_ASSIGN_WAIT_MS passed: then
 * goes on with a warning). -EINTR when SIGTERM/SIGINT arrived on sfd meanwhile. */
static int wait_assigned(const sipedge_bus_consumer *consumer, int sfd)
{
    int64_t until = cc_time_mono_ms() + SIP_ASSIGN_WAIT_MS;
    struct pollfd pfd = {.fd = sfd, .events = POLLIN};

    while (!sipedge_bus_consumer_assigned(consumer)) {
        if (cc_time_mono_ms() > until) {
            CC_WARN("no partitions of cc.routing.decisions after %d ms: serving sip anyway",
                    SIP_ASSIGN_WAIT_MS);
            return 0;
        }
        if (poll(&pfd, 1, 20) > 0)
            return -EINTR;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sipedge_config cfg = {0};
    cc_config_arena *arena = NULL;
    struct cc_bus_config bus;
    struct sipedge_pub pub;
    unsigned char secret[SIPEDGE_SECRET_MAX];
    char err[256] = "", source[160], group[160], hostport[160];
    sipedge_bus_consumer *consumer = NULL, *dialer = NULL;
    sipedge_api_calls *calls_api = NULL;
    sipedge_api *api = NULL;
    sipedge_journal *journal = NULL;
    sipedge_sip *sip = NULL;
    cc_producer *producer;
    sipedge_store *store;
    cc_metrics *metrics;
    cc_http *srv = NULL;
    cc_auth *auth;
    long secret_len;
    int sfd, rc = EXIT_FAILURE;

    cc_config_main(argc, argv, SIPEDGE_SERVICE, sipedge_config_vars, sipedge_config_nvars, &cfg,
                   &cfg.common, SIPEDGE_DEFAULT_HTTP_PORT, &arena);
    if (sipedge_calls_trunk_check(cfg.trunk_uri, err, sizeof(err)) < 0) {
        CC_ERROR("bad CC_SIPEDGE_TRUNK_URI '%s': %s", cfg.trunk_uri, err);
        goto out_config;
    }
    sfd = stop_signals_fd();
    if (sfd < 0) {
        CC_ERROR("cannot watch SIGTERM/SIGINT");
        goto out_config;
    }
    auth = cc_auth_new(cfg.common.auth_tokens, err, sizeof(err));
    if (!auth) {
        CC_ERROR("bad CC_AUTH_TOKENS: %s", err);
        goto out_signals;
    }
    metrics = cc_metrics_new();
    if (!metrics)
        goto out_auth;
    store = sipedge_store_new_cached(cfg.common.pg_dsn, (unsigned)cfg.pg_pool_size,
                                     cfg.pg_acquire_timeout_ms, cfg.cache_ttl_ms);
    if (!store)
        goto out_metrics;
    if (sipedge_store_migrate(store, cfg.migrations_dir) < 0) {
        CC_ERROR("cannot migrate schema 'sipedge' from '%s'", cfg.migrations_dir);
        goto out_store;
    }
    if (cc_bus_config_load(&bus, &cfg.common) < 0)
        goto out_store;
    producer = cc_producer_new(&bus);
    if (!producer)
        goto out_store;
    snprintf(source, sizeof(source), "/sip-edge/%s", cfg.common.instance_id);
    pub = (struct sipedge_pub){.producer = producer, .source = source};
    /* before the dialer consumer: attempts a previous process recorded and never dialled */
    rc = sipedge_calls_recover_originations(store, &pub, cfg.common.instance_id,
                                            cfg.originate_max_age_s);
    if (rc < 0)
        CC_ERROR("cannot report originations left undialled: %s (tried again at the next start)",
                 strerror(-rc));
    else if (rc > 0)
        CC_WARN("reported %d origination(s) left undialled as failed (not_dialled)", rc);
    rc = EXIT_FAILURE;
    /* before the SIP loop: the calls a previous process of this instance left are reported */
    journal = sipedge_journal_new(
        &(struct sipedge_journal_config){.redis_url = cfg.common.redis_url,
                                         .instance = cfg.common.instance_id,
                                         .group = cfg.takeover_group,
                                         .dead_after_ms = cfg.instance_dead_s * 1000,
                                         .originate_max_age_s = cfg.originate_max_age_s,
                                         .store = store,
                                         .pub = &pub,
                                         .metrics = metrics});
    if (!journal)
        goto out_producer;
    if (sipedge_journal_recover_own(journal) > 0)
        CC_WARN("reported the calls a previous process of this instance left (instance_lost)");

    srv = cc_http_new_common(SIPEDGE_SERVICE, &cfg.common, auth, metrics);
    api = srv ? sipedge_api_new(srv, store) : NULL;
    if (!api)
        goto out_http;

    secret_len = sipedge_config_nonce_secret(&cfg, secret, sizeof(secret));
    if (secret_len <= 0) {
        CC_ERROR("cannot make a nonce secret");
        goto out_http;
    }
    sip = sipedge_sip_new(&(struct sipedge_sip_config){.cfg = &cfg,
                                                       .store = store,
                                                       .pub = &pub,
                                                       .secret = secret,
                                                       .secret_len = (size_t)secret_len,
                                                       .journal = journal});
    if (!sip)
        goto out_http;
    if (sipedge_journal_start(journal, sipedge_sip_restore_fn, sip) < 0)
        goto out_sip;
    calls_api = sipedge_api_calls_new(srv, sip);
    if (!calls_api || cc_http_start(srv) < 0) {
        CC_ERROR("cannot serve http on %s:%ld", cfg.common.http_addr, cfg.common.http_port);
        goto out_sip;
    }
    if (cfg.consumer_group && *cfg.consumer_group)
        snprintf(group, sizeof(group), "%s", cfg.consumer_group);
    else
        snprintf(group, sizeof(group), "sip-edge-%s", cfg.common.instance_id);
    consumer = sipedge_bus_consumer_start(&bus, group, producer, sipedge_sip_post_fn, sip);
    if (!consumer)
        goto out_sip;

    /* the SIP loop runs only once decisions reach us: a call taken earlier could miss its
     * decision (a new group starts at the end of the topic); meanwhile requests wait in the
     * socket buffers and SIP retransmits */
    if (wait_assigned(consumer, sfd) < 0) {
        rc = EXIT_SUCCESS;
        sipedge_bus_consumer_stop(consumer);
        goto out_sip;
    }
    /* originate commands queue up for the SIP thread until its loop runs */
    dialer =
        sipedge_bus_dialer_start(&bus, cfg.dialer_group, producer, sipedge_sip_originate_fn, sip);
    if (!dialer) {
        sipedge_bus_consumer_stop(consumer);
        goto out_sip;
    }
    if (!*cfg.trunk_uri)
        CC_WARN("no CC_SIPEDGE_TRUNK_URI: originate commands from cc.dialer.commands will fail");
    sip_hostport(cfg.sip_url, hostport, sizeof(hostport));
    CC_INFO("sip-edge '%s' serving: sip udp/tcp %s, http %s:%d, decisions in group '%s'",
            cfg.common.instance_id, hostport, cfg.common.http_addr, cc_http_port(srv), group);
    if (sipedge_sip_run(sip, sfd) == 0)
        rc = EXIT_SUCCESS;
    CC_INFO("stopped serving sip");

    sipedge_bus_consumer_stop(dialer);
    sipedge_bus_consumer_stop(consumer);
out_sip:
    cc_http_free(srv); /* waits for in-flight handlers, which may wait for the sip thread */
    srv = NULL;
    sipedge_api_calls_free(calls_api);
    /* after the calls ended: their entries are written, then this instance is retired */
    sipedge_journal_free(journal, true);
    journal = NULL;
    sipedge_sip_free(sip);
out_http:
    cc_http_free(srv);
    sipedge_api_free(api);
    sipedge_journal_free(journal, true);
out_producer:
    cc_producer_free(producer);
out_store:
    sipedge_store_free(store);
out_metrics:
    cc_metrics_free(metrics);
out_auth:
    cc_auth_free(auth);
out_signals:
    close(sfd);
out_config:
    cc_config_free(arena);
    return rc;
}
