/*
 * bus_consumer: a consumer group member for the bus integration tests, run as its own process so
 * that tests can run several of them and kill them.
 *
 *   bus_consumer TOPIC GROUP OUTFILE [PG_TABLE [DELAY_US]]
 *
 * Environment: CC_KAFKA_BROKERS (required), CC_PG_DSN (with PG_TABLE), CC_KAFKA_SESSION_TIMEOUT_MS,
 * CC_KAFKA_HEARTBEAT_INTERVAL_MS, CC_KAFKA_FETCH_WAIT_MAX_MS (dev defaults 6000/1000/10).
 *
 * Every message must be a valid CloudEvents envelope (else: rejected to cc.deadletter). With
 * PG_TABLE, the handler is idempotent: INSERT the event id ON CONFLICT DO NOTHING (a database
 * error is a CC_BUS_RETRY). After a message is handled, one line "PARTITION OFFSET KEY ID" is
 * appended to OUTFILE with one write(2), so the file survives a SIGKILL and counts handler calls.
 * SIGTERM/SIGINT: stop, commit, leave the group, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc_bus.h"
#include "cc_event.h"
#include "cc_log.h"
#include "cc_pg.h"

struct helper {
    int out_fd;
    cc_pg *pg;
    const char *insert_sql;
    useconds_t delay_us;
};

static volatile sig_atomic_t helper_stop;

static void helper_on_signal(int sig)
{
    (void)sig;
    helper_stop = 1;
}

static enum cc_bus_verdict helper_handle(void *ctx, const struct cc_bus_msg *m, char *reason,
                                         size_t reasonlen)
{
    struct helper *h = ctx;
    cc_event ev = {0};
    char line[256];
    int n;

    if (cc_event_parse(m->value, m->len, &ev, reason, reasonlen) < 0)
        return CC_BUS_REJECT;
    if (h->pg && cc_pg_exec(h->pg, h->insert_sql, 1, &ev.id) < 0) {
        snprintf(reason, reasonlen, "insert failed: sqlstate %s", cc_pg_last_sqlstate(h->pg));
        cc_event_clear(&ev);
        return CC_BUS_RETRY;
    }
    n = snprintf(line, sizeof(line), "%d %lld %.*s %s\n", (int)m->partition, (long long)m->offset,
                 (int)m->keylen, m->key ? (const char *)m->key : "-", ev.id);
    cc_event_clear(&ev);
    if (n > 0 && write(h->out_fd, line, (size_t)n) != n) {
        snprintf(reason, reasonlen, "write failed: %s", strerror(errno));
        return CC_BUS_RETRY;
    }
    if (h->delay_us)
        usleep(h->delay_us);
    return CC_BUS_OK;
}

static int helper_env_int(const char *name, int def)
{
    const char *v = getenv(name);

    return v && *v ? atoi(v) : def;
}

int main(int argc, char **argv)
{
    struct helper h = {.out_fd = -1};
    struct cc_bus_config cfg;
    char sql[256], client_id[64];
    struct sigaction sa = {.sa_handler = helper_on_signal};
    cc_producer *dl;
    cc_consumer *c;
    int rc = 1;

    if (argc < 4) {
        fprintf(stderr, "usage: %s TOPIC GROUP OUTFILE [PG_TABLE [DELAY_US]]\n", argv[0]);
        return 2;
    }
    cc_log_init("bus-consumer", CC_LOG_WARN);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    cc_bus_config_defaults(&cfg);
    snprintf(client_id, sizeof(client_id), "bus-consumer-%d", (int)getpid());
    cfg.brokers = getenv("CC_KAFKA_BROKERS");
    cfg.client_id = client_id;
    cfg.session_timeout_ms = helper_env_int("CC_KAFKA_SESSION_TIMEOUT_MS", 6000);
    cfg.heartbeat_interval_ms = helper_env_int("CC_KAFKA_HEARTBEAT_INTERVAL_MS", 1000);
    cfg.fetch_wait_max_ms = helper_env_int("CC_KAFKA_FETCH_WAIT_MAX_MS", 10);

    h.out_fd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (h.out_fd < 0) {
        fprintf(stderr, "bus_consumer: cannot open %s: %s\n", argv[3], strerror(errno));
        return 1;
    }
    if (argc > 4) {
        h.pg = cc_pg_new(getenv("CC_PG_DSN"));
        if (!h.pg)
            goto close_out;
        snprintf(sql, sizeof(sql), "INSERT INTO %s (id) VALUES ($1) ON CONFLICT DO NOTHING",
                 argv[4]);
        h.insert_sql = sql;
        h.delay_us = argc > 5 ? (useconds_t)atoi(argv[5]) : 0;
    }
    dl = cc_producer_new(&cfg);
    if (!dl)
        goto free_pg;
    c = cc_consumer_new(&cfg, argv[2], (const char *const[]){argv[1]}, 1, helper_handle, &h, dl);
    if (!c)
        goto free_dl;
    rc = cc_consumer_run(c, &helper_stop) < 0 ? 1 : 0;
    cc_consumer_free(c);
free_dl:
    cc_producer_free(dl);
free_pg:
    cc_pg_free(h.pg);
close_out:
    close(h.out_fd);
    return rc;
}
