/*
 * router_bench: the router benchmark's driver (run by tests/load/router.sh around a real
 * cc-router).
 *
 *   router_bench seed MIGRATIONS_DIR      configuration into PostgreSQL through router_store
 *   router_bench run HTTP_PORT TOKEN      agents logged in over REST, then the measured phases
 *
 * seed: one tenant (CC_BENCH_ROUTER_TENANT, default "bench"), CC_BENCH_ROUTER_AGENTS agents
 * (default 10000) with 1-3 of 20 skills at proficiency 1-5 and chat capacity 100, and
 * CC_BENCH_ROUTER_QUEUES chat queues (default 500): 70% longest_idle, the rest round_robin,
 * best_skill, linear, least_talk_time, fewest_interactions, random, weighted_random (ring_all and
 * ring_progressive offer several agents per interaction and are left out); every fourth queue
 * requires one skill; one queue in five has a tier rule (level 2 after 30 s). Every agent joins
 * 3-5 queues (its first one requires one of its skills), 20% of memberships at level 2. The
 * generator is seeded: every run builds the same configuration.
 *
 * run: POST /v1/agents/{id}/state {"state":"available"} for every agent (keep-alive HTTP), then
 *   1. warm-up: one route per queue, every decision awaited (the consumer groups are joined and
 *      every queue is routable);
 *   2. burst: CC_BENCH_ROUTER_COUNT route requests (default 50000) produced as fast as the
 *      producer takes them, until every decision arrived: decisions/s = decisions / (first
 *      request sent -> last decision consumed); the router's own histogram
 *      router_command_duration_seconds (apply: persist + script) is scraped before and after;
 *      Redis INFO commandstats and the CPU time of the processes named in CC_BENCH_ROUTER_PIDS
 *      ("name:pid,...": a pid and its direct children) are taken over the same window;
 *   3. steady: CC_BENCH_ROUTER_RATE requests/s (default 500) for CC_BENCH_ROUTER_SECONDS
 *      (default 10): end-to-end latency request produced -> decision consumed.
 * "Inside the router" (router.decision_latency_*) = the router's histogram
 * router_decision_latency_seconds{kind="route",stage="produced"}: request polled by the consumer
 * -> its events handed to the Kafka producer by the outbox publisher; beside it
 * router.decision_delivered_latency_* (stage="delivered": -> the first one acknowledged by the
 * broker, which adds the producer's linger and the broker's round trip). Scraped before and
 * after each phase, quantiles interpolated inside sub-millisecond buckets. The coarser
 * router.decision_ts_latency_* = the decision's Kafka timestamp (CreateTime) - its CloudEvents
 * time (when the engine began to apply the request), 1 ms resolution.
 * Every expected decision must arrive as cc.routing.assigned, else exit 1. Prints "bench:" lines
 * on stdout, progress and the profile on stderr.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <hiredis/hiredis.h>

#include "cc_bus.h"
#include "cc_event.h"
#include "cc_id.h"
#include "cc_log.h"
#include "cc_time.h"
#include "router_model.h"
#include "router_store.h"

#define RB_SKILLS        20
#define RB_SEED_THREADS  4
#define RB_HTTP_THREADS  2
#define RB_HIST_MAX      32
#define RB_PIDS_MAX      8
#define RB_WAIT_MIN_MS   60000
#define RB_PROBES        300 /* settle probes between burst and steady */
#define RB_SETTLED_MS    150
#define RB_ID_PREFIX_LEN 24 /* "xxxxxxxx-xxxx-xxxx-xxxx-": the rest is the request index */

/* ---- parameters ------------------------------------------------------------------------- */

struct rb_params {
    const char *tenant;
    long agents, queues, count, rate, seconds;
};

static long rb_env_long(const char *name, long def, long min, long max)
{
    const char *v = getenv(name);
    char *end;
    long x;

    if (!v || !*v)
        return def;
    x = strtol(v, &end, 10);
    if (*end || x < min || x > max) {
        fprintf(stderr, "router_bench: %s must be an integer %ld..%ld, not '%s'\n", name, min, max,
                v);
        exit(2);
    }
    return x;
}

static void rb_params_load(struct rb_params *p)
{
    p->tenant = getenv("CC_BENCH_ROUTER_TENANT");
    if (!p->tenant || !*p->tenant)
        p->tenant = "bench";
    p->agents = rb_env_long("CC_BENCH_ROUTER_AGENTS", 10000, 10, 1000000);
    p->queues = rb_env_long("CC_BENCH_ROUTER_QUEUES", 500, 10, 100000);
    p->count = rb_env_long("CC_BENCH_ROUTER_COUNT", 50000, 100, 10000000);
    p->rate = rb_env_long("CC_BENCH_ROUTER_RATE", 500, 1, 1000000);
    p->seconds = rb_env_long("CC_BENCH_ROUTER_SECONDS", 10, 1, 3600);
}

/* splitmix64: the seeded generator of the configuration and of the request mix */
static uint64_t rb_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static long rb_below(uint64_t *s, long n)
{
    return (long)(rb_next(s) % (uint64_t)n);
}

/* ---- the configuration model (deterministic) --------------------------------------------- */

/* Queue i: which skill it requires (-1 none) and at which minimum. */
static int rb_queue_skill(long i, int *min)
{
    if (i % 4 != 0)
        return -1;
    *min = 1 + (int)((i / 80) % 2);
    return (int)((i / 4) % RB_SKILLS);
}

static enum router_strategy rb_queue_strategy(long i)
{
    static const enum router_strategy other[] = {ROUTER_STRAT_LINEAR, ROUTER_STRAT_LEAST_TALK_TIME,
                                                 ROUTER_STRAT_FEWEST_INTERACTIONS,
                                                 ROUTER_STRAT_RANDOM, ROUTER_STRAT_WEIGHTED_RANDOM};

    switch (i % 10) {
    case 7:
        return ROUTER_STRAT_ROUND_ROBIN;
    case 8:
        return ROUTER_STRAT_BEST_SKILL;
    case 9:
        return other[(i / 10) % 5];
    default:
        return ROUTER_STRAT_LONGEST_IDLE;
    }
}

/* Agent a's skills (levels[s] = proficiency, 0 = none), from its own seed. */
static void rb_agent_skills(long a, int levels[RB_SKILLS])
{
    uint64_t s = 0x5eed0000ULL + (uint64_t)a;
    int n = 1 + (int)rb_below(&s, 3);

    memset(levels, 0, sizeof(int) * RB_SKILLS);
    while (n > 0) {
        int k = (int)rb_below(&s, RB_SKILLS);
        if (levels[k])
            continue;
        levels[k] = 1 + (int)rb_below(&s, 5);
        n--;
    }
}

/* Agent a's queues (3..5, distinct, the first requiring one of its skills). Returns how many. */
static int rb_agent_queues(long a, long nqueues, const int levels[RB_SKILLS], long out[5])
{
    uint64_t s = 0xabcd0000ULL + (uint64_t)a;
    int want = 3 + (int)rb_below(&s, 3), n = 0, tries = 0;

    /* first: a skill queue the agent qualifies for */
    while (n == 0 && tries++ < 200) {
        long q = 4 * rb_below(&s, (nqueues + 3) / 4);
        int min, k = q < nqueues ? rb_queue_skill(q, &min) : -1;
        if (k >= 0 && levels[k] >= min)
            out[n++] = q;
    }
    tries = 0;
    while (n < want && tries++ < 200) {
        long q = rb_below(&s, nqueues);
        int min, k = rb_queue_skill(q, &min);
        bool dup = false;

        if (k >= 0 && levels[k] < min)
            continue;
        for (int j = 0; j < n; j++)
            dup |= out[j] == q;
        if (!dup)
            out[n++] = q;
    }
    return n;
}

/* ---- seed ------------------------------------------------------------------------------- */

struct rb_seed_job {
    router_store *st;
    const struct rb_params *p;
    int part;
    int members; /* 0: create agents, 1: put memberships */
    long done;
    int rc;
};

static int rb_seed_agent(router_store *st, const char *tenant, long a)
{
    struct router_skill skills[RB_SKILLS] = {0};
    struct router_agent ag = {0};
    int levels[RB_SKILLS];

    rb_agent_skills(a, levels);
    snprintf(ag.id, sizeof(ag.id), "a%05ld", a);
    snprintf(ag.name, sizeof(ag.name), "Agent %ld", a);
    ag.capacity[ROUTER_CH_VOICE] = 0;
    ag.capacity[ROUTER_CH_CHAT] = ROUTER_CAP_OTHER_MAX;
    ag.enabled = true;
    for (int k = 0; k < RB_SKILLS; k++) /* ascending names: s00 < s01 < ... */
        if (levels[k]) {
            snprintf(skills[ag.nskills].skill, sizeof(skills[0].skill), "s%02d", k);
            skills[ag.nskills++].level = levels[k];
        }
    ag.skills = skills;
    return router_store_agent_create(st, tenant, &ag);
}

static int rb_seed_members(router_store *st, const struct rb_params *p, long a)
{
    int levels[RB_SKILLS], n;
    long qs[5];

    rb_agent_skills(a, levels);
    n = rb_agent_queues(a, p->queues, levels, qs);
    for (int j = 0; j < n; j++) {
        struct router_member m = {0};
        bool created;
        int rc;

        snprintf(m.queue_id, sizeof(m.queue_id), "q%04ld", qs[j]);
        snprintf(m.agent_id, sizeof(m.agent_id), "a%05ld", a);
        m.level = (a + j) % 5 == 0 ? 2 : 1;
        m.position = 1 + (int)(a % 1000);
        m.penalty = (int)(a % 7);
        rc = router_store_member_put(st, p->tenant, &m, &created);
        if (rc < 0)
            return rc;
    }
    return n;
}

static void *rb_seed_thread(void *arg)
{
    struct rb_seed_job *j = arg;

    for (long a = j->part; a < j->p->agents; a += RB_SEED_THREADS) {
        int rc =
            j->members ? rb_seed_members(j->st, j->p, a) : rb_seed_agent(j->st, j->p->tenant, a);
        if (rc < 0) {
            fprintf(stderr, "router_bench: seeding agent %ld failed: %s\n", a, strerror(-rc));
            j->rc = rc;
            return NULL;
        }
        j->done += j->members ? rc : 1;
    }
    return NULL;
}

static int rb_seed_queue(router_store *st, const char *tenant, long i)
{
    struct router_tier_rule tier = {.level = 2, .after_s = 30};
    struct router_queue q = {0};
    struct router_skill skill;
    int min, k = rb_queue_skill(i, &min);

    snprintf(q.id, sizeof(q.id), "q%04ld", i);
    snprintf(q.name, sizeof(q.name), "Queue %ld", i);
    q.channels = 1u << ROUTER_CH_CHAT;
    q.strategy = rb_queue_strategy(i);
    q.priority = (int)(i % 3);
    q.sl_threshold_s = 20;
    q.ring_timeout_s = 600; /* no RONA while the benchmark runs */
    q.ring_progressive_interval_s = 5;
    q.no_agent_action = ROUTER_NOAGENT_JOIN;
    q.closed_action = ROUTER_CLOSED_REJECT;
    snprintf(q.closed_reason, sizeof(q.closed_reason), "closed");
    if (k >= 0) {
        snprintf(skill.skill, sizeof(skill.skill), "s%02d", k);
        skill.level = min;
        q.skills = &skill;
        q.nskills = 1;
    }
    if (i % 5 == 1) {
        q.tiers = &tier;
        q.ntiers = 1;
    }
    return router_store_queue_create(st, tenant, &q);
}

/* Runs one seeding pass on RB_SEED_THREADS threads; returns the items done or negative. */
static long rb_seed_pass(router_store *st, const struct rb_params *p, int members)
{
    struct rb_seed_job jobs[RB_SEED_THREADS];
    pthread_t th[RB_SEED_THREADS];
    long done = 0;
    int rc = 0, i;

    for (i = 0; i < RB_SEED_THREADS; i++) {
        jobs[i] = (struct rb_seed_job){.st = st, .p = p, .part = i, .members = members};
        if (pthread_create(&th[i], NULL, rb_seed_thread, &jobs[i]) != 0)
            break;
    }
    for (int k = 0; k < i; k++) {
        pthread_join(th[k], NULL);
        done += jobs[k].done;
        if (jobs[k].rc < 0)
            rc = jobs[k].rc;
    }
    if (i < RB_SEED_THREADS)
        rc = -EAGAIN;
    return rc < 0 ? rc : done;
}

static int rb_seed(const char *migrations)
{
    struct rb_params p;
    const char *dsn = getenv("CC_PG_DSN");
    int64_t t0 = cc_time_mono_ms();
    long members;
    router_store *st;
    int rc = -1;

    rb_params_load(&p);
    if (!dsn) {
        fprintf(stderr, "router_bench: CC_PG_DSN is not set\n");
        return 1;
    }
    st = router_store_new(dsn, RB_SEED_THREADS, 30000);
    if (!st)
        return 1;
    if (router_store_migrate(st, migrations) < 0)
        goto free_store;
    for (long i = 0; i < p.queues; i++)
        if ((rc = rb_seed_queue(st, p.tenant, i)) < 0) {
            fprintf(stderr, "router_bench: creating queue %ld failed: %s\n", i, strerror(-rc));
            goto free_store;
        }
    if (rb_seed_pass(st, &p, 0) < 0 || (members = rb_seed_pass(st, &p, 1)) < 0) {
        rc = -1;
        goto free_store;
    }
    fprintf(stderr,
            "router_bench: seeded tenant '%s': %ld agents, %ld queues, %ld memberships "
            "(%.1f per queue) in %.1f s\n",
            p.tenant, p.agents, p.queues, members, (double)members / (double)p.queues,
            (double)(cc_time_mono_ms() - t0) / 1000.0);
    printf("members %ld\n", members);
    rc = 0;
free_store:
    router_store_free(st);
    return rc == 0 ? 0 : 1;
}

/* ---- a minimal keep-alive HTTP/1.1 client (responses with Content-Length) ---------------- */

struct rb_http {
    int fd;
    char *buf; /* response: headers + body */
    size_t cap;
};

static int rb_http_connect(struct rb_http *h, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0)
        return -errno;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(h->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = -errno;
        close(h->fd);
        h->fd = -1;
        return rc;
    }
    return 0;
}

static void rb_http_close(struct rb_http *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    free(h->buf);
    h->buf = NULL;
    h->cap = 0;
}

static int rb_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends one request; returns the status (>= 100) with *body pointing into h->buf (NUL-terminated)
 * or a negative code. */
static int rb_http_do(struct rb_http *h, const char *method, const char *path, const char *token,
                      const char *body, const char **resp)
{
    char head[1024];
    size_t len = 0, need = 0, blen = body ? strlen(body) : 0;
    char *eoh = NULL;
    int n, status;

    n = snprintf(head, sizeof(head),
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 method, path, token ? "Authorization: Bearer " : "", token ? token : "",
                 token ? "\r\n" : "", blen);
    if (n <= 0 || (size_t)n >= sizeof(head) || rb_write_all(h->fd, head, (size_t)n) < 0 ||
        (blen && rb_write_all(h->fd, body, blen) < 0))
        return -EIO;
    for (;;) {
        ssize_t r;

        if (len + 4096 + 1 > h->cap) {
            size_t cap = h->cap ? h->cap * 2 : 65536;
            char *nb = realloc(h->buf, cap);
            if (!nb)
                return -ENOMEM;
            h->buf = nb;
            h->cap = cap;
        }
        r = read(h->fd, h->buf + len, h->cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -EIO;
        len += (size_t)r;
        h->buf[len] = '\0';
        if (!eoh && (eoh = strstr(h->buf, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(h->buf, "\r\nContent-Length:");
            if (!cl || cl > eoh)
                return -EPROTO; /* chunked: not needed by this benchmark */
            need = (size_t)(eoh + 4 - h->buf) + strtoul(cl + 17, NULL, 10);
        }
        if (eoh && len >= need)
            break;
    }
    if (sscanf(h->buf, "HTTP/1.%*d %d", &status) != 1)
        return -EPROTO;
    h->buf[need] = '\0';
    *resp = eoh + 4;
    return status;
}

struct rb_login_job {
    int port, part;
    const char *token;
    const struct rb_params *p;
    int rc;
};

static void *rb_login_thread(void *arg)
{
    struct rb_login_job *j = arg;
    struct rb_http h = {.fd = -1};

    j->rc = rb_http_connect(&h, j->port);
    for (long a = j->part; j->rc == 0 && a < j->p->agents; a += RB_HTTP_THREADS) {
        const char *resp;
        char path[96];
        int st;

        snprintf(path, sizeof(path), "/v1/agents/a%05ld/state", a);
        st = rb_http_do(&h, "POST", path, j->token, "{\"state\":\"available\"}", &resp);
        if (st != 200) {
            fprintf(stderr, "router_bench: logging in agent a%05ld: %s %.300s\n", a,
                    st < 0 ? strerror(-st) : "status", st < 0 ? "" : h.buf);
            j->rc = -EIO;
        }
    }
    rb_http_close(&h);
    return NULL;
}

/* ---- the router's histogram ------------------------------------------------------------- */

struct rb_hist {
    size_t n;
    double le[RB_HIST_MAX]; /* bounds; the last may be +Inf */
    double cum[RB_HIST_MAX];
    double count, sum, routes;
};

/* Adds a bucket line's bound and count to h. */
static void rb_hist_line(struct rb_hist *h, const char *v)
{
    const char *sp = strchr(v, ' ');

    if (h->n >= RB_HIST_MAX)
        return;
    h->le[h->n] = strncmp(v, "+Inf", 4) == 0 ? 1e300 : strtod(v, NULL);
    h->cum[h->n++] = sp ? strtod(sp + 1, NULL) : 0;
}

/* Scrapes /metrics: the apply histogram into out, the route decision latency into dl. */
/* Scrapes the router's /metrics: the apply histogram into out, the decision latency of stage
 * produced into dl[0] and of stage delivered into dl[1]. */
static int rb_scrape(int port, struct rb_hist *out, struct rb_hist dl[2])
{
    static const char bucket[] = "router_command_duration_seconds_bucket{le=\"";
    static const char *const dl_bucket[2] = {
        "router_decision_latency_seconds_bucket{kind=\"route\",stage=\"produced\",le=\"",
        "router_decision_latency_seconds_bucket{kind=\"route\",stage=\"delivered\",le=\""};
    static const char *const dl_count[2] = {
        "router_decision_latency_seconds_count{kind=\"route\",stage=\"produced\"} ",
        "router_decision_latency_seconds_count{kind=\"route\",stage=\"delivered\"} "};
    struct rb_http h = {.fd = -1};
    const char *text, *line;
    int st;

    memset(out, 0, sizeof(*out));
    memset(dl, 0, 2 * sizeof(*dl));
    if (rb_http_connect(&h, port) < 0)
        return -EIO;
    st = rb_http_do(&h, "GET", "/metrics", NULL, NULL, &text);
    if (st != 200) {
        rb_http_close(&h);
        return -EIO;
    }
    for (line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        for (int k = 0; k < 2; k++) {
            if (strncmp(line, dl_bucket[k], strlen(dl_bucket[k])) == 0)
                rb_hist_line(&dl[k], line + strlen(dl_bucket[k]));
            else if (strncmp(line, dl_count[k], strlen(dl_count[k])) == 0)
                dl[k].count = strtod(line + strlen(dl_count[k]), NULL);
        }
        if (strncmp(line, bucket, sizeof(bucket) - 1) == 0) {
            rb_hist_line(out, line + sizeof(bucket) - 1);
        } else if (strncmp(line, "router_command_duration_seconds_count ", 38) == 0) {
            out->count = strtod(line + 38, NULL);
        } else if (strncmp(line, "router_command_duration_seconds_sum ", 36) == 0) {
            out->sum = strtod(line + 36, NULL);
        } else if (strncmp(line, "router_commands_total{kind=\"route\"} ", 36) == 0) {
            out->routes = strtod(line + 36, NULL);
        }
    }
    rb_http_close(&h);
    return out->n > 0 ? 0 : -ENOENT;
}

/* Quantile q of (b - a), linear inside the bucket; *over set when it lies in the +Inf bucket. */
static double rb_hist_quantile(const struct rb_hist *a, const struct rb_hist *b, double q,
                               bool *over)
{
    double total = b->count - a->count, rank = q * total, prev_cum = 0, prev_le = 0;

    *over = false;
    for (size_t i = 0; i < b->n && i < a->n; i++) {
        double cum = b->cum[i] - a->cum[i];
        if (cum >= rank && cum > 0) {
            if (b->le[i] > 1e299) {
                *over = true;
                return prev_le;
            }
            return prev_le + (b->le[i] - prev_le) * (rank - prev_cum) / (cum - prev_cum);
        }
        prev_cum = cum;
        prev_le = b->le[i];
    }
    return 0;
}

/* ---- CPU time of the stack's processes -------------------------------------------------- */

struct rb_proc {
    char name[32];
    int pid;
    double cpu_s[2]; /* before, after */
};

/* utime + stime (seconds) of pid and, when children, of every process whose parent is pid. */
static double rb_cpu_of(int pid, bool children)
{
    long tick = sysconf(_SC_CLK_TCK);
    double total = 0;
    struct dirent *de;
    DIR *d = opendir("/proc");

    while (d && (de = readdir(d)) != NULL) {
        char path[300], buf[1024];
        unsigned long ut, stime;
        int ppid, self;
        const char *rp;
        FILE *f;
        size_t n;

        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        self = atoi(de->d_name);
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        rp = strrchr(buf, ')');
        /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
         */
        if (!rp || sscanf(rp + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ppid, &ut,
                          &stime) != 3)
            continue;
        if (self == pid || (children && ppid == pid))
            total += (double)(ut + stime) / (double)tick;
    }
    if (d)
        closedir(d);
    return total;
}

static size_t rb_procs_parse(struct rb_proc *out)
{
    const char *spec = getenv("CC_BENCH_ROUTER_PIDS");
    size_t n = 0;

    snprintf(out[n].name, sizeof(out[n].name), "router_bench");
    out[n++].pid = (int)getpid();
    while (spec && *spec && n < RB_PIDS_MAX) {
        const char *colon = strchr(spec, ':'), *comma;
        if (!colon)
            break;
        snprintf(out[n].name, sizeof(out[n].name), "%.*s", (int)(colon - spec), spec);
        out[n].pid = atoi(colon + 1);
        n++;
        comma = strchr(colon, ',');
        spec = comma ? comma + 1 : NULL;
    }
    return n;
}

/* The CPU of every process on the decision's path, added up per decision, against what the goal
 * leaves per decision on this machine's cores: at 20,000 decisions/s two cores give 0.1 ms. The
 * decisions/s the cores could carry at these costs if no process ever waited (cores / total) is
 * printed beside it as a key: the ceiling no scheduling or batching could pass. */
static void rb_report_cpu_budget(const struct rb_proc *procs, size_t n, long decisions,
                                 const char *keys)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double total_ms = 0;

    for (size_t i = 0; i < n; i++)
        total_ms += (procs[i].cpu_s[1] - procs[i].cpu_s[0]) * 1000.0 / (double)decisions;
    if (total_ms <= 0 || cores < 1)
        return;
    printf("bench: router.cpu_ms_per_decision_all %.3f ms processes=%zu cores=%ld "
           "cores_bound_per_s=%.0f goal_per_s=20000 goal_ms=%.3f %s\n",
           total_ms, n, cores, (double)cores * 1000.0 / total_ms, (double)cores * 1000.0 / 20000.0,
           keys);
}

static void rb_procs_sample(struct rb_proc *p, size_t n, int which)
{
    for (size_t i = 0; i < n; i++)
        p[i].cpu_s[which] = rb_cpu_of(p[i].pid, strcmp(p[i].name, "postgres") == 0);
}

/* ---- Redis command statistics ----------------------------------------------------------- */

static redisContext *rb_redis_connect(void)
{
    const char *url = getenv("CC_REDIS_URL");
    char path[512];

    if (!url || strncmp(url, "unix://", 7) != 0)
        return NULL; /* the stack uses a unix socket; others: no Redis statistics */
    snprintf(path, sizeof(path), "%s", url + 7);
    path[strcspn(path, "?")] = '\0';
    return redisConnectUnix(path);
}

static void rb_redis_cmd(redisContext *r, const char *cmd)
{
    redisReply *rep = r ? redisCommand(r, cmd) : NULL;

    if (rep)
        freeReplyObject(rep);
}

struct rb_cmdstat {
    char name[48];
    double calls, usec;
};

static int rb_cmdstat_cmp(const void *a, const void *b)
{
    double x = ((const struct rb_cmdstat *)a)->usec, y = ((const struct rb_cmdstat *)b)->usec;

    return (x < y) - (x > y);
}

/* Commands the router sends itself (the rest of commandstats runs inside its scripts). */
static bool rb_cmd_top_level(const char *name)
{
    static const char *const top[] = {"fcall",  "evalsha", "eval",   "xreadgroup", "xautoclaim",
                                      "xgroup", "info",    "config", "ping",       "function",
                                      "script", "client",  "hello",  "select",     "auth"};

    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
        if (strcmp(name, top[i]) == 0)
            return true;
    return false;
}

/* Reads INFO commandstats; prints the top commands by time (stderr) and the FCALL bench lines:
 * FCALL time and calls per decision, and the commands run inside scripts (every command but
 * the ones the router sends itself: FCALL, the outbox's EVALSHA / XREADGROUP, ...) per decision
 * -- figures that a loaded machine changes little, unlike decisions/s. */
static void rb_redis_report(redisContext *r, long decisions, double wall_s, const char *keys)
{
    struct rb_cmdstat st[64];
    redisReply *rep = r ? redisCommand(r, "INFO commandstats") : NULL;
    double total_usec = 0, inner_calls = 0, inner_usec = 0;
    size_t n = 0;

    if (!rep || rep->type != REDIS_REPLY_STRING) {
        if (rep)
            freeReplyObject(rep);
        fprintf(stderr, "router_bench: no redis command statistics\n");
        return;
    }
    for (char *line = rep->str; line && *line && n < 64;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (sscanf(line, "cmdstat_%47[^:]:calls=%lf,usec=%lf", st[n].name, &st[n].calls,
                   &st[n].usec) == 3) {
            total_usec += st[n].usec;
            if (!rb_cmd_top_level(st[n].name)) {
                inner_calls += st[n].calls;
                inner_usec += st[n].usec;
            }
            n++;
        }
        line = next;
    }
    freeReplyObject(rep);
    qsort(st, n, sizeof(st[0]), rb_cmdstat_cmp);
    fprintf(stderr, "router_bench: redis commandstats over the burst (top by time; commands run "
                    "inside FCALL are also counted on their own):\n");
    for (size_t i = 0; i < n && i < 10; i++)
        fprintf(stderr, "  %-18s calls=%-9.0f usec=%-10.0f us/call=%.2f per_decision=%.2f\n",
                st[i].name, st[i].calls, st[i].usec, st[i].calls ? st[i].usec / st[i].calls : 0,
                decisions ? st[i].calls / (double)decisions : 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(st[i].name, "fcall") == 0 && st[i].calls > 0) {
            printf("bench: router.redis_fcall_us_per_call %.1f us %s\n", st[i].usec / st[i].calls,
                   keys);
            printf("bench: router.redis_fcalls_per_decision %.2f 1 %s\n",
                   st[i].calls / (double)decisions, keys);
            printf("bench: router.redis_fcall_busy_share %.2f ratio %s\n",
                   st[i].usec / 1e6 / wall_s, keys);
            printf("bench: router.redis_fcall_us_per_decision %.1f us %s\n",
                   st[i].usec / (double)decisions, keys);
        }
    if (decisions > 0) {
        printf("bench: router.redis_inner_calls_per_decision %.2f 1 source=commandstats %s\n",
               inner_calls / (double)decisions, keys);
        printf("bench: router.redis_inner_us_per_decision %.1f us source=commandstats %s\n",
               inner_usec / (double)decisions, keys);
    }
}

/* ---- requests and decisions ------------------------------------------------------------- */

struct rb_run {
    const struct rb_params *p;
    char base[40];        /* the run's UUID; ids are base[0..23] + 12 hex digits of the index */
    long total;           /* indices: warm-up, burst, steady */
    int64_t *sent_us;     /* mono time a request was queued to the producer */
    int64_t *recv_us;     /* mono time its decision was consumed (0 = not yet) */
    int32_t *router_ms;   /* decision CreateTime - decision CloudEvents time */
    atomic_long got;      /* decisions (cc.routing.assigned) consumed, first one per index */
    atomic_long bad;      /* other decisions about our requests (rejected, timed out, ...) */
    atomic_llong last_us; /* mono time of the latest decision */
    cc_consumer *consumer;
    volatile sig_atomic_t stop;
};

static enum cc_bus_verdict rb_on_decision(void *ctx, const struct cc_bus_msg *m, char *reason,
                                          size_t reasonlen)
{
    struct rb_run *r = ctx;
    int64_t now = cc_time_mono_us();
    char err[128];
    cc_event ev;
    long idx;

    (void)reason, (void)reasonlen;
    if (cc_event_parse(m->value, m->len, &ev, err, sizeof(err)) < 0)
        return CC_BUS_OK; /* not ours to judge */
    if (!ev.subject || strncmp(ev.subject, r->base, RB_ID_PREFIX_LEN) != 0 ||
        strlen(ev.subject) != 36)
        goto done;
    idx = strtol(ev.subject + RB_ID_PREFIX_LEN, NULL, 16);
    if (idx < 0 || idx >= r->total)
        goto done;
    if (strcmp(ev.type, "cc.routing.assigned") == 0) {
        if (r->recv_us[idx] == 0) {
            r->recv_us[idx] = now;
            r->router_ms[idx] = (int32_t)(m->timestamp_ms >= 0 ? m->timestamp_ms - ev.time_ms : -1);
            atomic_store(&r->last_us, now);
            atomic_fetch_add(&r->got, 1);
        }
    } else if (strcmp(ev.type, "cc.routing.withdrawn") != 0) {
        if (atomic_fetch_add(&r->bad, 1) < 5)
            fprintf(stderr, "router_bench: unexpected decision %s for %s: %.300s\n", ev.type,
                    ev.subject, (const char *)m->value);
    }
done:
    cc_event_clear(&ev);
    return CC_BUS_OK;
}

static void *rb_consume(void *arg)
{
    struct rb_run *r = arg;

    if (cc_consumer_run(r->consumer, &r->stop) < 0)
        fprintf(stderr, "router_bench: decision consumer failed\n");
    return NULL;
}

static struct cc_bus_config rb_bus_config(const char *client, int linger_ms)
{
    struct cc_bus_config cfg;
    long fw = rb_env_long("CC_KAFKA_FETCH_WAIT_MAX_MS", 10, 0, 300000);

    cc_bus_config_defaults(&cfg);
    cfg.brokers = getenv("CC_KAFKA_BROKERS");
    cfg.devbroker_control = getenv("CC_DEVBROKER_CONTROL");
    cfg.client_id = client;
    cfg.session_timeout_ms = (int)rb_env_long("CC_KAFKA_SESSION_TIMEOUT_MS", 6000, 1, 3600000);
    cfg.heartbeat_interval_ms =
        (int)rb_env_long("CC_KAFKA_HEARTBEAT_INTERVAL_MS", 1000, 1, 3600000);
    cfg.fetch_wait_max_ms = (int)fw;
    cfg.linger_ms = linger_ms;
    return cfg;
}

/* Produces route request idx to queue q (< 0: drawn from rng, as the priority). 0 or negative. */
static int rb_send_route(struct rb_run *r, cc_producer *prod, long idx, uint64_t *rng, long q)
{
    char id[48], evid[37], stamp[CC_TIME_ISO8601_LEN], msg[768];
    int n;

    if (q < 0)
        q = rb_below(rng, r->p->queues);
    snprintf(id, sizeof(id), "%.*s%012lx", RB_ID_PREFIX_LEN, r->base, (unsigned long)idx);
    if (cc_uuid_v7(evid) < 0 || cc_time_format_iso8601(cc_time_now_ms(), stamp) < 0)
        return -EIO;
    n = snprintf(msg, sizeof(msg),
                 "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"/bench/router_bench\","
                 "\"type\":\"cc.routing.route\",\"time\":\"%s\","
                 "\"datacontenttype\":\"application/json\",\"subject\":\"%s\",\"tenant\":\"%s\","
                 "\"data\":{\"queue_id\":\"q%04ld\",\"channel\":\"chat\",\"priority\":%ld}}",
                 evid, stamp, id, r->p->tenant, q, rb_below(rng, 11));
    if (n <= 0 || (size_t)n >= sizeof(msg))
        return -EMSGSIZE;
    r->sent_us[idx] = cc_time_mono_us();
    return cc_producer_send(prod, CC_TOPIC_ROUTING_REQUESTS, id, msg, (size_t)n);
}

/* Waits until got reaches want (or timeout); 0 or -ETIMEDOUT. */
static int rb_wait(struct rb_run *r, long want, long timeout_ms, cc_producer *prod)
{
    int64_t deadline = cc_time_mono_ms() + timeout_ms;

    while (atomic_load(&r->got) < want) {
        if (cc_time_mono_ms() > deadline || atomic_load(&r->bad) > 0)
            return -ETIMEDOUT;
        cc_producer_poll(prod, 1);
    }
    return 0;
}

static int rb_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Percentiles p50/p99 of v[0..n) (sorted in place). */
static void rb_pcts(int64_t *v, long n, int64_t *p50, int64_t *p99)
{
    qsort(v, (size_t)n, sizeof(*v), rb_cmp_i64);
    *p50 = n ? v[(long)(0.50 * (double)(n - 1) + 0.5)] : 0;
    *p99 = n ? v[(long)(0.99 * (double)(n - 1) + 0.5)] : 0;
}

/* Prints the inside-the-router (ms) percentiles of indices [from, to). */
static void rb_report_router_ms(const struct rb_run *r, long from, long to, const char *phase,
                                const char *keys)
{
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(to - from)), p50, p99;
    long n = 0;

    if (!v)
        return;
    for (long i = from; i < to; i++)
        if (r->recv_us[i] && r->router_ms[i] >= 0)
            v[n++] = r->router_ms[i];
    rb_pcts(v, n, &p50, &p99);
    printf("bench: router.decision_ts_latency_p50_ms %lld ms phase=%s from=apply_start "
           "to=decision_kafka_timestamp resolution=1ms samples=%ld %s\n",
           (long long)p50, phase, n, keys);
    printf("bench: router.decision_ts_latency_p99_ms %lld ms phase=%s from=apply_start "
           "to=decision_kafka_timestamp resolution=1ms samples=%ld %s\n",
           (long long)p99, phase, n, keys);
    free(v);
}

/* Prints router.decision_latency_p50/p99_ms (consumed -> handed to the producer) and
 * router.decision_delivered_latency_p50/p99_ms (-> acknowledged by the broker) of one phase
 * from two scrapes (a, b: two stages each) of the router's histogram. */
static void rb_report_decision_latency(const struct rb_hist a[2], const struct rb_hist b[2],
                                       const char *phase, const char *keys)
{
    static const char *const metric[2] = {"decision_latency", "decision_delivered_latency"};
    static const char *const to[2] = {"decision_produced", "decision_acknowledged_by_broker"};

    for (int k = 0; k < 2; k++) {
        bool o50, o99;
        double p50 = rb_hist_quantile(&a[k], &b[k], 0.50, &o50) * 1000.0;
        double p99 = rb_hist_quantile(&a[k], &b[k], 0.99, &o99) * 1000.0;

        printf("bench: router.%s_p50_ms %s%.3f ms phase=%s from=request_consumed to=%s "
               "source=router_decision_latency_seconds interpolated=buckets samples=%.0f %s\n",
               metric[k], o50 ? ">" : "", p50, phase, to[k], b[k].count - a[k].count, keys);
        printf("bench: router.%s_p99_ms %s%.3f ms phase=%s from=request_consumed to=%s "
               "source=router_decision_latency_seconds interpolated=buckets samples=%.0f %s\n",
               metric[k], o99 ? ">" : "", p99, phase, to[k], b[k].count - a[k].count, keys);
    }
    /* the goal read directly: the share of decisions produced within 2 ms (a bucket bound) */
    for (size_t i = 0; i < b[0].n && i < a[0].n; i++) {
        double total = b[0].count - a[0].count;
        if (b[0].le[i] < 0.0019999 || b[0].le[i] > 0.0020001 || total <= 0)
            continue;
        printf("bench: router.decision_latency_within_2ms_share %.4f ratio phase=%s "
               "from=request_consumed to=decision_produced goal=0.99 samples=%.0f %s\n",
               (b[0].cum[i] - a[0].cum[i]) / total, phase, total, keys);
    }
}

/* Diagnostics on stderr: end-to-end p50/max of each second of the steady phase. */
static void rb_report_seconds(const int64_t *v, long n, long rate)
{
    int64_t *sec = malloc(sizeof(int64_t) * (size_t)rate), p50, p99;

    if (!sec)
        return;
    fprintf(stderr, "router_bench: steady e2e by second (p50/p99/max ms):");
    for (long s0 = 0; s0 + rate <= n; s0 += rate) {
        memcpy(sec, v + s0, sizeof(int64_t) * (size_t)rate);
        rb_pcts(sec, rate, &p50, &p99);
        qsort(sec, (size_t)rate, sizeof(*sec), rb_cmp_i64);
        fprintf(stderr, " %.0f/%.0f/%.0f", (double)p50 / 1000.0, (double)p99 / 1000.0,
                (double)sec[rate - 1] / 1000.0);
    }
    fprintf(stderr, "\n");
    free(sec);
}

static int rb_run_phases(struct rb_run *r, int port, const char *keys)
{
    struct cc_bus_config cfg = rb_bus_config("bench-router", CC_BUS_DEFAULT_LINGER_MS);
    struct cc_bus_config lcfg = rb_bus_config("bench-router-steady", 0);
    const struct rb_params *p = r->p;
    long warm = p->queues, burst_end = warm + p->count, steady = p->rate * p->seconds;
    const char *topics[1] = {CC_TOPIC_ROUTING_DECISIONS};
    struct rb_proc procs[RB_PIDS_MAX];
    size_t nprocs = rb_procs_parse(procs);
    uint64_t rng = 0x7e57ULL;
    struct rb_hist h0, h1, d0[2], d1[2];
    cc_producer *prod = NULL, *lprod = NULL;
    redisContext *redis = rb_redis_connect();
    char group[96];
    int64_t t0, t1, *v, p50, p99;
    pthread_t th;
    bool over50, over99, started = false;
    long n, probes = 0;
    int rc = -1;

    snprintf(group, sizeof(group), "bench-router-%d", (int)getpid());
    prod = cc_producer_new(&cfg);
    lprod = cc_producer_new(&lcfg);
    if (!prod || !lprod)
        goto out;
    r->consumer = cc_consumer_new(&cfg, group, topics, 1, rb_on_decision, r, prod);
    if (!r->consumer || pthread_create(&th, NULL, rb_consume, r) != 0)
        goto out;
    started = true;

    /* 1. warm-up: one request per queue */
    t0 = cc_time_mono_us();
    for (long q = 0; q < warm; q++)
        if (rb_send_route(r, prod, q, &rng, q) < 0)
            goto out;
    if (rb_wait(r, warm, RB_WAIT_MIN_MS, prod) < 0) {
        fprintf(stderr, "router_bench: warm-up: %ld of %ld decisions (%ld unexpected) in %d s\n",
                atomic_load(&r->got), warm, atomic_load(&r->bad), RB_WAIT_MIN_MS / 1000);
        goto out;
    }
    fprintf(stderr, "router_bench: warm-up: %ld decisions (one per queue) in %.1f s\n", warm,
            (double)(cc_time_mono_us() - t0) / 1e6);
    usleep(500000);

    /* 2. burst */
    if (rb_scrape(port, &h0, d0) < 0) {
        fprintf(stderr, "router_bench: no router_command_duration_seconds in /metrics\n");
        goto out;
    }
    rb_redis_cmd(redis, "CONFIG RESETSTAT");
    rb_procs_sample(procs, nprocs, 0);
    t0 = cc_time_mono_us();
    for (long i = warm; i < burst_end; i++)
        if (rb_send_route(r, prod, i, &rng, -1) < 0) {
            fprintf(stderr, "router_bench: producing request %ld failed\n", i);
            goto out;
        }
    fprintf(stderr, "router_bench: burst: %ld requests queued in %.2f s\n", p->count,
            (double)(cc_time_mono_us() - t0) / 1e6);
    if (rb_wait(r, burst_end, RB_WAIT_MIN_MS + p->count / 50, prod) < 0) {
        fprintf(stderr, "router_bench: burst: %ld of %ld decisions (%ld unexpected)\n",
                atomic_load(&r->got) - warm, p->count, atomic_load(&r->bad));
        goto out;
    }
    t1 = atomic_load(&r->last_us);
    rb_procs_sample(procs, nprocs, 1);
    if (rb_scrape(port, &h1, d1) < 0)
        goto out;
    printf("bench: router.decisions_per_s %.0f 1/s phase=burst decisions=%ld %s\n",
           (double)p->count * 1e6 / (double)(t1 - t0), p->count, keys);
    rb_report_decision_latency(d0, d1, "burst", keys);
    rb_report_router_ms(r, warm, burst_end, "burst", keys);
    v = malloc(sizeof(int64_t) * (size_t)(p->count > steady ? p->count : steady));
    if (!v)
        goto out;
    for (long i = warm; i < burst_end; i++)
        v[i - warm] = r->recv_us[i] - r->sent_us[i];
    rb_pcts(v, p->count, &p50, &p99);
    printf("bench: router.burst_e2e_latency_p50_ms %.2f ms phase=burst queueing=included %s\n",
           (double)p50 / 1000.0, keys);
    printf("bench: router.burst_e2e_latency_p99_ms %.2f ms phase=burst queueing=included %s\n",
           (double)p99 / 1000.0, keys);
    {
        double a50 = rb_hist_quantile(&h0, &h1, 0.50, &over50) * 1000.0;
        double a99 = rb_hist_quantile(&h0, &h1, 0.99, &over99) * 1000.0;
        double cnt = h1.count - h0.count;
        printf("bench: router.apply_latency_p50_ms %s%.3f ms phase=burst "
               "source=router_command_duration_seconds interpolated=buckets commands=%.0f %s\n",
               over50 ? ">" : "", a50, cnt, keys);
        printf("bench: router.apply_latency_p99_ms %s%.3f ms phase=burst "
               "source=router_command_duration_seconds interpolated=buckets commands=%.0f %s\n",
               over99 ? ">" : "", a99, cnt, keys);
        printf("bench: router.apply_latency_mean_ms %.3f ms phase=burst "
               "source=router_command_duration_seconds commands=%.0f %s\n",
               cnt > 0 ? (h1.sum - h0.sum) / cnt * 1000.0 : 0, cnt, keys);
        if (h1.routes - h0.routes < (double)p->count)
            fprintf(stderr, "router_bench: router counted %.0f route commands for %ld requests\n",
                    h1.routes - h0.routes, p->count);
    }
    for (size_t i = 0; i < nprocs; i++)
        printf("bench: router.cpu_ms_per_decision %.3f ms process=%s cpu_share=%.2f %s\n",
               (procs[i].cpu_s[1] - procs[i].cpu_s[0]) * 1000.0 / (double)p->count, procs[i].name,
               (procs[i].cpu_s[1] - procs[i].cpu_s[0]) / ((double)(t1 - t0) / 1e6), keys);
    rb_report_cpu_budget(procs, nprocs, p->count, keys);
    rb_redis_report(redis, p->count, (double)(t1 - t0) / 1e6, keys);
    fflush(stdout);

    /* 3. steady rate: end-to-end latency, once the router has worked off the backlog the burst
     * left (it consumes its own cc.interactions / cc.agents events too): probes one at a time
     * until three in a row come back within RB_SETTLED_MS */
    for (long i = 0, calm = 0; calm < 3; i++) {
        long idx = burst_end + steady + i, want = atomic_load(&r->got) + 1;
        if (i >= RB_PROBES || rb_send_route(r, lprod, idx, &rng, -1) < 0 ||
            rb_wait(r, want, RB_WAIT_MIN_MS, lprod) < 0) {
            fprintf(stderr, "router_bench: the router did not settle after the burst\n");
            free(v);
            goto out;
        }
        calm = r->recv_us[idx] - r->sent_us[idx] < RB_SETTLED_MS * 1000 ? calm + 1 : 0;
        probes = i + 1;
        if (calm == 3)
            fprintf(stderr, "router_bench: settled after %ld probes\n", probes);
        usleep(100000);
    }
    if (rb_scrape(port, &h0, d0) < 0) {
        free(v);
        goto out;
    }
    rb_procs_sample(procs, nprocs, 0);
    t0 = cc_time_mono_us();
    for (long i = 0; i < steady; i++) {
        int64_t due = t0 + i * 1000000 / p->rate, left = due - cc_time_mono_us();
        if (left > 0)
            usleep((useconds_t)left);
        if (rb_send_route(r, lprod, burst_end + i, &rng, -1) < 0) {
            fprintf(stderr, "router_bench: producing request %ld failed\n", burst_end + i);
            free(v);
            goto out;
        }
        cc_producer_poll(lprod, 0);
    }
    if (rb_wait(r, burst_end + probes + steady, RB_WAIT_MIN_MS, lprod) < 0) {
        fprintf(stderr, "router_bench: steady: %ld of %ld decisions (%ld unexpected)\n",
                atomic_load(&r->got) - burst_end, steady, atomic_load(&r->bad));
        free(v);
        goto out;
    }
    t1 = cc_time_mono_us();
    rb_procs_sample(procs, nprocs, 1);
    /* the steady phase's CPU: what a rate far below the ceiling costs (idle loops show here) */
    for (size_t i = 0; i < nprocs; i++)
        printf("bench: router.steady_cpu_share %.3f cores process=%s rate=%ld/s "
               "ms_per_decision=%.3f %s\n",
               (procs[i].cpu_s[1] - procs[i].cpu_s[0]) / ((double)(t1 - t0) / 1e6), procs[i].name,
               p->rate, (procs[i].cpu_s[1] - procs[i].cpu_s[0]) * 1000.0 / (double)steady, keys);
    for (n = 0; n < steady; n++)
        v[n] = r->recv_us[burst_end + n] - r->sent_us[burst_end + n];
    rb_report_seconds(v, steady, p->rate);
    rb_pcts(v, n, &p50, &p99);
    free(v);
    printf("bench: router.e2e_latency_p50_ms %.2f ms phase=steady rate=%ld/s seconds=%ld "
           "path=request_produced->decision_consumed broker=dev %s\n",
           (double)p50 / 1000.0, p->rate, p->seconds, keys);
    printf("bench: router.e2e_latency_p99_ms %.2f ms phase=steady rate=%ld/s seconds=%ld "
           "path=request_produced->decision_consumed broker=dev %s\n",
           (double)p99 / 1000.0, p->rate, p->seconds, keys);
    if (rb_scrape(port, &h1, d1) == 0)
        rb_report_decision_latency(d0, d1, "steady", keys);
    rb_report_router_ms(r, burst_end, burst_end + steady, "steady", keys);
    rc = 0;
out:
    if (started) {
        r->stop = 1;
        pthread_join(th, NULL);
    }
    cc_consumer_free(r->consumer);
    cc_producer_free(lprod);
    cc_producer_free(prod);
    if (redis)
        redisFree(redis);
    fflush(stdout);
    return rc;
}

static int rb_run(int port, const char *token)
{
    struct rb_login_job jobs[RB_HTTP_THREADS];
    pthread_t th[RB_HTTP_THREADS];
    struct rb_params p;
    struct rb_run r = {0};
    char keys[256];
    int64_t t0 = cc_time_mono_ms();
    int rc = 0, i;

    rb_params_load(&p);
    if (!getenv("CC_KAFKA_BROKERS")) {
        fprintf(stderr, "router_bench: CC_KAFKA_BROKERS is not set\n");
        return 2;
    }
    for (i = 0; i < RB_HTTP_THREADS; i++) {
        jobs[i] = (struct rb_login_job){.port = port, .part = i, .token = token, .p = &p};
        if (pthread_create(&th[i], NULL, rb_login_thread, &jobs[i]) != 0)
            return 1;
    }
    for (i = 0; i < RB_HTTP_THREADS; i++) {
        pthread_join(th[i], NULL);
        rc |= jobs[i].rc;
    }
    if (rc)
        return 1;
    fprintf(stderr, "router_bench: %ld agents available over REST in %.1f s\n", p.agents,
            (double)(cc_time_mono_ms() - t0) / 1000.0);

    r.p = &p;
    r.total = p.queues + p.count + p.rate * p.seconds + RB_PROBES;
    r.sent_us = calloc((size_t)r.total, sizeof(*r.sent_us));
    r.recv_us = calloc((size_t)r.total, sizeof(*r.recv_us));
    r.router_ms = calloc((size_t)r.total, sizeof(*r.router_ms));
    if (!r.sent_us || !r.recv_us || !r.router_ms || cc_uuid_v7(r.base) < 0) {
        rc = 1;
        goto out;
    }
    const char *consumers = getenv("CC_ROUTER_CONSUMERS");
    const char *fetch_wait = getenv("CC_BENCH_ROUTER_FETCH_WAIT_MS");

    snprintf(keys, sizeof(keys),
             "agents=%ld queues=%ld skills=on channel=chat instances=1 consumers=%.16s "
             "fetch_wait_ms=%.16s",
             p.agents, p.queues, consumers ? consumers : "2", fetch_wait ? fetch_wait : "?");
    rc = rb_run_phases(&r, port, keys) < 0 ? 1 : 0;
out:
    free(r.sent_us);
    free(r.recv_us);
    free(r.router_ms);
    return rc;
}

int main(int argc, char **argv)
{
    cc_log_init("bench-router", CC_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "seed") == 0)
        return rb_seed(argv[2]);
    if (argc == 4 && strcmp(argv[1], "run") == 0)
        return rb_run(atoi(argv[2]), argv[3]);
    fprintf(stderr, "usage: %s seed MIGRATIONS_DIR | run HTTP_PORT TOKEN\n", argv[0]);
    return 2;
}
