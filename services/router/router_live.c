/* router_live: persistence of live state, rebuild, config sync and its listener (see header). */
#include "router_live.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cc_buf.h"
#include "cc_log.h"
#include "cc_pg.h"
#include "cc_time.h"

#define LIVE_PAGE        500
#define LIVE_CHANNEL     "router_config"
#define LIVE_LOCK_TTL_MS 30000

struct router_live {
    cc_pg *pg;
};

struct router_live_listener {
    pthread_t thread;
    atomic_int stop;
    atomic_int synced; /* the full sync after the last (re)connect is done */
    char *dsn, *owner;
    router_store *store;
    router_state *rs;
    router_live *lv;
};

router_live *router_live_new(const char *dsn)
{
    router_live *lv = calloc(1, sizeof(*lv));

    if (!lv)
        return NULL;
    lv->pg = cc_pg_new(dsn);
    if (!lv->pg) {
        free(lv);
        return NULL;
    }
    /* every statement on this session: commit without waiting for the WAL flush (header) */
    if (cc_pg_exec(lv->pg, "SET synchronous_commit = off", 0, NULL) < 0)
        CC_WARN("cannot set synchronous_commit=off: persisting stays synchronous");
    return lv;
}

void router_live_free(router_live *lv)
{
    if (!lv)
        return;
    cc_pg_free(lv->pg);
    free(lv);
}

/* The statements on one interaction's row, prepared (named after their function) on this
 * session. Each reaches its rows through the primary key alone, whatever the table's
 * statistics (router_live.h): the batch reads the state back with a correlated subquery that
 * names no state -- written as a join on state = 'ended', the planner hashed every closed row
 * of the day for each batch (through interactions_closed while the table was young, a
 * sequential scan once analysed) -- and "state <> 'ended'" in the updates does not imply
 * interactions_open's predicate (003_open_index.sql). */
enum live_row_stmt {
    LIVE_ROUTE_BATCH,
    LIVE_ASSIGNED,
    LIVE_WAITING,
    LIVE_MOVED,
    LIVE_REQUEUE,
    LIVE_CALLBACK,
    LIVE_CLOSED,
    LIVE_ROW_STMTS
};

static const struct router_live_statement live_row_stmts[LIVE_ROW_STMTS] = {
    [LIVE_ROUTE_BATCH] =
        {"router_live_route_batch",
         /* insert the new ones (in key order, so that two instances inserting overlapping
          * batches lock rows in the same order), and name the rows that were already there and
          * ended -- the outer SELECT sees the table as it was before the insert */
         "WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(t text, i text, q text, "
         "c text, p int, e bigint, s jsonb, cb text, r text)), "
         "ins AS (INSERT INTO router.interactions (tenant, id, queue_id, channel, priority, "
         "skills, callback_number, request_id, enqueued_ms) "
         "SELECT t, i, q, c, p, s, cb, r, e FROM v ORDER BY t, i "
         "ON CONFLICT (tenant, id) DO NOTHING) "
         "SELECT v.t, v.i FROM v WHERE (SELECT x.state FROM router.interactions x "
         "WHERE x.tenant = v.t AND x.id = v.i) = 'ended'",
         1},
    [LIVE_ASSIGNED] = {"router_live_assigned",
                       "UPDATE router.interactions SET state = 'assigned', agent_id = $3, "
                       "updated_at = now() WHERE tenant = $1 AND id = $2 AND state <> 'ended'",
                       3},
    [LIVE_WAITING] = {"router_live_waiting",
                      "UPDATE router.interactions SET state = 'waiting', agent_id = NULL, "
                      "updated_at = now() WHERE tenant = $1 AND id = $2 AND state <> 'ended'",
                      2},
    [LIVE_MOVED] = {"router_live_moved",
                    "UPDATE router.interactions SET queue_id = $3, updated_at = now() "
                    "WHERE tenant = $1 AND id = $2 AND state <> 'ended'",
                    3},
    [LIVE_REQUEUE] = {"router_live_requeue",
                      "UPDATE router.interactions SET queue_id = coalesce($3, queue_id), "
                      "priority = CASE WHEN $4::int < 0 THEN priority ELSE $4::int END, "
                      "skills = coalesce($5::jsonb, skills), state = 'waiting', agent_id = NULL, "
                      "order_ms = $6::bigint, excluded = CASE WHEN jsonb_array_length($7::jsonb) "
                      "= 0 THEN excluded ELSE (SELECT jsonb_agg(DISTINCT e) FROM "
                      "jsonb_array_elements(excluded || $7::jsonb) AS e) END, "
                      "updated_at = now() WHERE tenant = $1 AND id = $2 AND state <> 'ended'",
                      7},
    [LIVE_CALLBACK] = {"router_live_callback",
                       "UPDATE router.interactions SET callback_number = $3, callback_at_ms = "
                       "$4::bigint, updated_at = now() WHERE tenant = $1 AND id = $2 AND state "
                       "<> 'ended'",
                       4},
    [LIVE_CLOSED] = {"router_live_closed",
                     "UPDATE router.interactions SET state = 'ended', updated_at = now() "
                     "WHERE tenant = $1 AND id = $2 AND state <> 'ended'",
                     2},
};

const struct router_live_statement *router_live_row_statements(size_t *n)
{
    *n = LIVE_ROW_STMTS;
    return live_row_stmts;
}

/* The hot-path statements are prepared (named after their function) on this connection. */
static int live_exec(router_live *lv, const char *name, const char *sql, int n,
                     const char *const *params)
{
    return cc_pg_exec_prepared(lv->pg, name, sql, n, params) < 0 ? -EIO : 0;
}

static int live_exec_row(router_live *lv, enum live_row_stmt which, const char *const *params)
{
    const struct router_live_statement *st = &live_row_stmts[which];

    return live_exec(lv, st->name, st->sql, st->nparams, params);
}

static void live_put_json_str(struct cc_buf *b, const char *s)
{
    char esc[8];

    if (!s) {
        cc_buf_puts(b, "null");
        return;
    }
    cc_buf_puts(b, "\"");
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            cc_buf_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            cc_buf_put(b, esc, 6);
        } else {
            cc_buf_put(b, (const char *)p, 1);
        }
    }
    cc_buf_puts(b, "\"");
}

int router_live_route_batch(router_live *lv, const struct router_enqueue *reqs,
                            const char *const *skills_json, size_t n, bool *ended)
{
    struct cc_buf b = {0};
    char num[64];
    PGresult *res;
    int rc = 0;

    if (n == 0)
        return 0;
    cc_buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        const struct router_enqueue *r = &reqs[i];
        ended[i] = false;
        cc_buf_puts(&b, i ? ",{\"t\":" : "{\"t\":");
        live_put_json_str(&b, r->tenant);
        cc_buf_puts(&b, ",\"i\":");
        live_put_json_str(&b, r->interaction_id);
        cc_buf_puts(&b, ",\"q\":");
        live_put_json_str(&b, r->queue_id);
        cc_buf_puts(&b, ",\"c\":");
        live_put_json_str(&b, router_channel_name(r->channel));
        snprintf(num, sizeof(num), ",\"p\":%d,\"e\":%lld,\"s\":", r->priority,
                 (long long)(r->enqueued_ms > 0 ? r->enqueued_ms : r->now_ms));
        cc_buf_puts(&b, num);
        cc_buf_puts(&b, skills_json && skills_json[i] ? skills_json[i] : "[]");
        cc_buf_puts(&b, ",\"cb\":");
        live_put_json_str(&b, r->callback_number);
        cc_buf_puts(&b, ",\"r\":");
        live_put_json_str(&b, r->request_id);
        cc_buf_puts(&b, "}");
    }
    cc_buf_puts(&b, "]");
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    res = cc_pg_query_prepared(lv->pg, live_row_stmts[LIVE_ROUTE_BATCH].name,
                               live_row_stmts[LIVE_ROUTE_BATCH].sql, 1, (const char *const[]){b.p});
    free(b.p);
    if (!res)
        return -EIO;
    for (int row = 0; row < PQntuples(res); row++) {
        const char *t = PQgetvalue(res, row, 0), *id = PQgetvalue(res, row, 1);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(reqs[i].interaction_id, id) == 0 && strcmp(reqs[i].tenant, t) == 0)
                ended[i] = true;
        }
    }
    PQclear(res);
    return rc;
}

int router_live_assigned(router_live *lv, const char *tenant, const char *ix, const char *agent_id)
{
    return live_exec_row(lv, LIVE_ASSIGNED, (const char *const[]){tenant, ix, agent_id});
}

int router_live_waiting(router_live *lv, const char *tenant, const char *ix)
{
    return live_exec_row(lv, LIVE_WAITING, (const char *const[]){tenant, ix});
}

int router_live_moved(router_live *lv, const char *tenant, const char *ix, const char *queue_id)
{
    return live_exec_row(lv, LIVE_MOVED, (const char *const[]){tenant, ix, queue_id});
}

int router_live_requeue(router_live *lv, const char *tenant, const char *ix, const char *queue_id,
                        int priority, const char *skills_json, int64_t order_ms,
                        const char *excluded_json)
{
    char prio[16], order[24];

    snprintf(prio, sizeof(prio), "%d", priority);
    snprintf(order, sizeof(order), "%lld", (long long)order_ms);
    return live_exec_row(lv, LIVE_REQUEUE,
                         (const char *const[]){tenant, ix, queue_id, prio, skills_json,
                                               order_ms > 0 ? order : NULL,
                                               excluded_json ? excluded_json : "[]"});
}

int router_live_callback(router_live *lv, const char *tenant, const char *ix, const char *number,
                         int64_t at_ms)
{
    char at[24];

    snprintf(at, sizeof(at), "%lld", (long long)at_ms);
    return live_exec_row(lv, LIVE_CALLBACK,
                         (const char *const[]){tenant, ix, number, at_ms > 0 ? at : NULL});
}

int router_live_closed(router_live *lv, const char *tenant, const char *ix)
{
    return live_exec_row(lv, LIVE_CLOSED, (const char *const[]){tenant, ix});
}

_Static_assert(ROUTER_LIVE_ROWS_MAX <= CC_PG_PIPELINE_MAX, "one transaction per call");

/* Key order (tenant, id), so that overlapping batches lock their rows in the same order. */
static int live_row_cmp(const void *a, const void *b)
{
    const struct router_live_row *x = *(const struct router_live_row *const *)a;
    const struct router_live_row *y = *(const struct router_live_row *const *)b;
    int c = strcmp(x->tenant, y->tenant);

    return c ? c : strcmp(x->ix, y->ix);
}

/* True when a failure of the last statement on pg came from the connection, not a statement. */
static bool live_connection_failed(router_live *lv)
{
    return PQstatus(cc_pg_conn(lv->pg)) != CONNECTION_OK ||
           strncmp(cc_pg_last_sqlstate(lv->pg), "08", 2) == 0;
}

int router_live_rows(router_live *lv, const struct router_live_row *rows, size_t n, int *rcs)
{
    const struct router_live_row *sorted[ROUTER_LIVE_ROWS_MAX];
    struct cc_pg_call calls[ROUTER_LIVE_ROWS_MAX];
    const char *params[ROUTER_LIVE_ROWS_MAX][3];
    bool alone;
    int rc = 0;

    if (n > ROUTER_LIVE_ROWS_MAX) {
        for (size_t i = 0; i < n; i++)
            rcs[i] = -EIO;
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = &rows[i];
    qsort(sorted, n, sizeof(*sorted), live_row_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct router_live_row *r = sorted[i];
        const struct router_live_statement *st =
            &live_row_stmts[r->closed ? LIVE_CLOSED : LIVE_ASSIGNED];

        params[i][0] = r->tenant;
        params[i][1] = r->ix;
        params[i][2] = r->agent_id;
        calls[i] = (struct cc_pg_call){st->name, st->sql, st->nparams, params[i]};
        rcs[i] = 0;
    }
    if (cc_pg_exec_prepared_all(lv->pg, calls, n) == 0)
        return 0;
    /* one failed statement rolled the others back: unless the connection is the cause (or
     * there was only one), each runs again alone, so that only the rows that cannot be
     * written fail */
    alone = n > 1 && !live_connection_failed(lv);
    for (size_t i = 0; i < n; i++) {
        if (!alone || cc_pg_exec_prepared(lv->pg, calls[i].name, calls[i].sql, calls[i].nparams,
                                          calls[i].params) < 0)
            rcs[sorted[i] - rows] = rc = -EIO;
    }
    return rc;
}

int router_live_presence(router_live *lv, const char *tenant, const char *agent_id,
                         enum router_agent_state presence, const char *reason, int64_t since_ms)
{
    char since[24];

    if (presence != ROUTER_AGENT_LOGGED_OUT && presence != ROUTER_AGENT_AVAILABLE &&
        presence != ROUTER_AGENT_NOT_READY)
        return -EINVAL;
    snprintf(since, sizeof(since), "%lld", (long long)since_ms);
    return live_exec(lv, "router_live_presence",
                     "INSERT INTO router.agent_state (tenant, agent_id, presence, reason, "
                     "since_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, agent_id) DO "
                     "UPDATE SET presence = $3, reason = $4, since_ms = $5, updated_at = now()",
                     5,
                     (const char *const[]){tenant, agent_id, router_agent_state_name(presence),
                                           presence == ROUTER_AGENT_NOT_READY ? reason : NULL,
                                           since});
}

int router_live_purge(router_live *lv, long older_s)
{
    char s[24];

    snprintf(s, sizeof(s), "%ld", older_s);
    return live_exec(lv, "router_live_purge",
                     "DELETE FROM router.interactions WHERE state = 'ended' "
                     "AND updated_at < now() - make_interval(secs => $1::int)",
                     1, (const char *const[]){s});
}

/* ---- configuration sync ----------------------------------------------------------------- */

static int live_map_store_rc(int rc)
{
    return rc == -EAGAIN ? -EAGAIN : -EIO;
}

int router_live_sync_agent(router_live *lv, router_state *rs, router_store *st, const char *tenant,
                           const char *agent_id, int64_t now_ms)
{
    struct router_agent a = {0};
    int rc;

    (void)lv;
    rc = router_store_agent_get(st, tenant, agent_id, &a);
    if (rc == -ENOENT) {
        rc = router_state_remove_agent(rs, tenant, agent_id, now_ms);
        return rc == -ENOENT ? 0 : rc;
    }
    if (rc < 0)
        return live_map_store_rc(rc);
    rc = router_state_sync_agent(rs, tenant, &a, now_ms);
    router_agent_clear(&a);
    if (rc == 0)
        rc = router_state_dispatch_agent(rs, tenant, agent_id, now_ms, (uint64_t)now_ms, NULL);
    return rc == -ENOENT ? 0 : rc;
}

/* Syncs every member of queue_id (paged). */
static int live_sync_members(router_state *rs, router_store *st, const char *tenant,
                             const char *queue_id, int64_t now_ms)
{
    char after[ROUTER_ID_MAX + 1] = "";
    struct router_member *m;
    size_t n;
    int rc;

    do {
        rc = router_store_member_list(st, tenant, queue_id, after[0] ? after : NULL, LIVE_PAGE, &m,
                                      &n);
        if (rc < 0)
            return rc == -ENOENT ? 0 : live_map_store_rc(rc);
        for (size_t i = 0; i < n && rc >= 0; i++) {
            rc = router_state_sync_member(rs, tenant, &m[i], now_ms);
            if (rc == -ENOENT) /* its agent is not synced yet: the agent sync brings it */
                rc = 0;
        }
        if (n)
            snprintf(after, sizeof(after), "%s", m[n - 1].agent_id);
        free(m);
    } while (rc >= 0 && n == LIVE_PAGE);
    return rc;
}

int router_live_sync_queue(router_live *lv, router_state *rs, router_store *st, const char *tenant,
                           const char *queue_id, int64_t now_ms)
{
    struct router_queue q = {0};
    int rc;

    (void)lv;
    rc = router_store_queue_get(st, tenant, queue_id, &q);
    if (rc == -ENOENT) {
        rc = router_state_remove_queue(rs, tenant, queue_id, now_ms);
        return rc == -ENOENT ? 0 : rc;
    }
    if (rc < 0)
        return live_map_store_rc(rc);
    rc = router_state_sync_queue(rs, tenant, &q, now_ms);
    router_queue_clear(&q);
    if (rc == 0)
        rc = live_sync_members(rs, st, tenant, queue_id, now_ms);
    if (rc == 0)
        rc = router_state_dispatch_queue(rs, tenant, queue_id, now_ms, (uint64_t)now_ms, NULL);
    return rc == -ENOENT ? 0 : rc;
}

int router_live_sync_member(router_live *lv, router_state *rs, router_store *st, const char *tenant,
                            const char *queue_id, const char *agent_id, int64_t now_ms)
{
    struct router_member m = {0};
    PGresult *res;
    int rc;

    res = cc_pg_query_prepared(lv->pg, "router_live_member",
                               "SELECT level, position, penalty FROM router.memberships "
                               "WHERE tenant = $1 AND queue_id = $2 AND agent_id = $3",
                               3, (const char *const[]){tenant, queue_id, agent_id});
    if (!res)
        return -EIO;
    if (PQntuples(res) == 0) {
        PQclear(res);
        rc = router_state_remove_member(rs, tenant, queue_id, agent_id, now_ms);
        return rc == -ENOENT ? 0 : rc;
    }
    snprintf(m.queue_id, sizeof(m.queue_id), "%s", queue_id);
    snprintf(m.agent_id, sizeof(m.agent_id), "%s", agent_id);
    m.level = atoi(PQgetvalue(res, 0, 0));
    m.position = atoi(PQgetvalue(res, 0, 1));
    m.penalty = atoi(PQgetvalue(res, 0, 2));
    PQclear(res);
    rc = router_state_sync_member(rs, tenant, &m, now_ms);
    if (rc == -ENOENT) { /* agent or queue not in Redis yet: bring both, then the member */
        rc = router_live_sync_agent(lv, rs, st, tenant, agent_id, now_ms);
        if (rc == 0)
            rc = router_live_sync_queue(lv, rs, st, tenant, queue_id, now_ms);
        return rc;
    }
    if (rc == 0)
        rc = router_state_dispatch_agent(rs, tenant, agent_id, now_ms, (uint64_t)now_ms, NULL);
    return rc == -ENOENT ? 0 : rc;
}

static int live_sync_tenant(router_state *rs, router_store *st, const char *tenant, int64_t now_ms)
{
    char after[ROUTER_ID_MAX + 1] = "";
    struct router_agent *agents;
    struct router_queue *queues;
    size_t n;
    int rc;

    do {
        rc = router_store_agent_list(st, tenant, after[0] ? after : NULL, LIVE_PAGE, &agents, &n);
        if (rc < 0)
            return live_map_store_rc(rc);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = router_state_sync_agent(rs, tenant, &agents[i], now_ms);
        if (n)
            snprintf(after, sizeof(after), "%s", agents[n - 1].id);
        router_store_agents_free(agents, n);
    } while (rc == 0 && n == LIVE_PAGE);
    after[0] = '\0';
    while (rc == 0) {
        rc = router_store_queue_list(st, tenant, after[0] ? after : NULL, LIVE_PAGE, &queues, &n);
        if (rc < 0)
            return live_map_store_rc(rc);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = router_state_sync_queue(rs, tenant, &queues[i], now_ms);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = live_sync_members(rs, st, tenant, queues[i].id, now_ms);
        if (n)
            snprintf(after, sizeof(after), "%s", queues[n - 1].id);
        router_store_queues_free(queues, n);
        if (n < LIVE_PAGE)
            break;
    }
    return rc;
}

/* Tenants that have any configuration. */
static PGresult *live_tenants(router_live *lv)
{
    return cc_pg_query(
        lv->pg, "SELECT tenant FROM router.agents UNION SELECT tenant FROM router.queues", 0, NULL);
}

int router_live_sync_all(router_live *lv, router_state *rs, router_store *st, int64_t now_ms)
{
    PGresult *res = live_tenants(lv);
    int rc = 0;

    if (!res)
        return -EIO;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++)
        rc = live_sync_tenant(rs, st, PQgetvalue(res, i, 0), now_ms);
    PQclear(res);
    return rc;
}

/* ---- rebuild ---------------------------------------------------------------------------- */

static int live_restore_agents(router_live *lv, router_state *rs)
{
    PGresult *res = cc_pg_query(lv->pg,
                                "SELECT tenant, agent_id, presence, reason, since_ms "
                                "FROM router.agent_state WHERE presence <> 'logged_out'",
                                0, NULL);
    int rc = 0, restored = 0;

    if (!res)
        return -EIO;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        enum router_agent_state p;
        if (router_agent_state_parse(PQgetvalue(res, i, 2), &p) < 0)
            continue;
        rc = router_state_restore_agent(rs, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), p,
                                        PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3),
                                        strtoll(PQgetvalue(res, i, 4), NULL, 10));
        if (rc == -ENOENT) /* the agent was deleted from the configuration */
            rc = 0;
        else if (rc == 0)
            restored++;
    }
    PQclear(res);
    CC_INFO("rebuild restored %d agent presence(s)", restored);
    return rc;
}

#define LIVE_TOMBSTONE_PAGE 2000

/* Writes the tombstones of one page (rows of several tenants), one tenant's rows at a time. */
static int live_tombstone_page(router_state *rs, PGresult *res, int64_t now_ms, size_t *restored)
{
    int n = PQntuples(res), rc;
    const char **ids, **queues;
    int64_t *ended;
    bool *done;

    if (n == 0)
        return 0;
    ids = calloc((size_t)n, sizeof(*ids));
    queues = calloc((size_t)n, sizeof(*queues));
    ended = calloc((size_t)n, sizeof(*ended));
    done = calloc((size_t)n, sizeof(*done));
    rc = ids && queues && ended && done ? 0 : -ENOMEM;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *tenant = PQgetvalue(res, i, 0);
        size_t k = 0, written = 0;

        if (done[i])
            continue;
        for (int j = i; j < n; j++) { /* the page's rows of this tenant */
            if (done[j] || strcmp(PQgetvalue(res, j, 0), tenant) != 0)
                continue;
            done[j] = true;
            ids[k] = PQgetvalue(res, j, 1);
            queues[k] = PQgetvalue(res, j, 2);
            ended[k++] = strtoll(PQgetvalue(res, j, 3), NULL, 10);
        }
        rc = router_state_restore_tombstones(rs, tenant, k, ids, queues, ended, now_ms, &written);
        *restored += written;
    }
    free(ids);
    free(queues);
    free(ended);
    free(done);
    return rc;
}

/* Restores the interactions that ended within the day Redis remembers them (the scripts'
 * TTL_S), so that a route redelivered after the rebuild is still recognised in Redis alone: the
 * engine routes first and persists after. Paged by (updated_at, tenant, id). */
static int live_restore_tombstones(router_live *lv, router_state *rs, int64_t now_ms)
{
    char at[64] = "-infinity", tenant[ROUTER_TENANT_MAX + 1] = "", id[ROUTER_STATE_IX_MAX + 1] = "";
    char page[16];
    size_t restored = 0;
    int rc = 0, n;

    snprintf(page, sizeof(page), "%d", LIVE_TOMBSTONE_PAGE);
    do {
        PGresult *res = cc_pg_query_prepared(
            lv->pg, "router_live_tombstones",
            "SELECT tenant, id, queue_id, (extract(epoch FROM updated_at) * 1000)::bigint, "
            "updated_at::text FROM router.interactions WHERE state = 'ended' "
            "AND updated_at > now() - interval '1 day' "
            "AND (updated_at, tenant, id) > ($1::timestamptz, $2, $3) "
            "ORDER BY updated_at, tenant, id LIMIT $4::int",
            4, (const char *const[]){at, tenant, id, page});
        if (!res)
            return -EIO;
        n = PQntuples(res);
        rc = live_tombstone_page(rs, res, now_ms, &restored);
        if (n > 0) {
            snprintf(at, sizeof(at), "%s", PQgetvalue(res, n - 1, 4));
            snprintf(tenant, sizeof(tenant), "%s", PQgetvalue(res, n - 1, 0));
            snprintf(id, sizeof(id), "%s", PQgetvalue(res, n - 1, 1));
        }
        PQclear(res);
    } while (rc == 0 && n == LIVE_TOMBSTONE_PAGE);
    CC_INFO("rebuild restored %zu finished interaction(s) of the last day", restored);
    return rc;
}

/* Parses the stored skills JSON into out[]; returns the count (0 on anything odd). */
static size_t live_skills(const char *text, struct router_skill *out, size_t cap)
{
    json_t *arr = json_loads(text, 0, NULL), *v;
    size_t i, n = 0;

    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(json_object_get(v, "skill"));
        json_int_t lvl = json_integer_value(json_object_get(v, "min_proficiency"));
        if (!s || n >= cap)
            continue;
        snprintf(out[n].skill, sizeof(out[n].skill), "%s", s);
        out[n].level = (int)lvl;
        n++;
    }
    json_decref(arr);
    return n;
}

/* The agent ids of a JSON array (router.interactions.excluded) into ids[0..*n), at most max
 * (the rest are dropped, and logged); the strings live in the returned array (json_decref it;
 * NULL when the text is not an array: none). */
static json_t *live_ids(const char *text, const char **ids, size_t max, size_t *n)
{
    json_t *a = json_loads(text, 0, NULL), *v;
    size_t i;

    *n = 0;
    if (!json_is_array(a)) {
        json_decref(a);
        return NULL;
    }
    json_array_foreach(a, i, v)
    {
        if (*n == max) {
            CC_WARN("rebuild keeps %zu of the %zu excluded agents of an interaction", max,
                    json_array_size(a));
            break;
        }
        if (json_is_string(v) && router_id_valid(json_string_value(v)))
            ids[(*n)++] = json_string_value(v);
    }
    return a;
}

/* A restored callback whose time is ahead leaves its queue again until then (no event). */
static int live_restore_schedule(router_state *rs, const struct router_enqueue *req, int64_t at_ms)
{
    struct router_state_result r;
    int rc = router_state_set_callback(rs, req->tenant, req->interaction_id, req->callback_number,
                                       at_ms, req->now_ms, &r);

    return rc < 0 ? rc : 0;
}

static int live_restore_interactions(router_live *lv, router_state *rs, int64_t now_ms)
{
    PGresult *res = cc_pg_query(lv->pg,
                                "SELECT tenant, id, queue_id, channel, priority, skills::text, "
                                "callback_number, request_id, enqueued_ms, state, agent_id, "
                                "coalesce(order_ms, 0), excluded::text, "
                                "coalesce(callback_at_ms, 0) "
                                "FROM router.interactions WHERE state IN ('waiting', 'assigned') "
                                "ORDER BY enqueued_ms",
                                0, NULL);
    struct router_skill skills[ROUTER_SKILLS_MAX];
    const char *ids[ROUTER_STATE_EXCLUDE_MAX];
    int rc = 0, restored = 0;

    if (!res)
        return -EIO;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        struct router_enqueue req = {0};
        json_t *excluded;
        bool assigned = strcmp(PQgetvalue(res, i, 9), "assigned") == 0;
        int64_t at_ms;

        if (router_channel_parse(PQgetvalue(res, i, 3), &req.channel) < 0)
            continue;
        req.tenant = PQgetvalue(res, i, 0);
        req.interaction_id = PQgetvalue(res, i, 1);
        req.queue_id = PQgetvalue(res, i, 2);
        req.priority = atoi(PQgetvalue(res, i, 4));
        req.nskills = live_skills(PQgetvalue(res, i, 5), skills, ROUTER_SKILLS_MAX);
        req.skills = skills;
        req.callback_number = PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6);
        req.request_id = PQgetisnull(res, i, 7) ? NULL : PQgetvalue(res, i, 7);
        req.enqueued_ms = strtoll(PQgetvalue(res, i, 8), NULL, 10);
        req.order_ms = strtoll(PQgetvalue(res, i, 11), NULL, 10);
        at_ms = strtoll(PQgetvalue(res, i, 13), NULL, 10);
        if (at_ms > 0 && !req.order_ms) /* a scheduled callback: ordered from its time */
            req.order_ms = at_ms;
        excluded = live_ids(PQgetvalue(res, i, 12), ids, ROUTER_STATE_EXCLUDE_MAX, &req.nexclude);
        req.exclude = ids;
        req.now_ms = now_ms;
        req.seed = (uint64_t)now_ms + (uint64_t)i;
        rc = router_state_restore_interaction(
            rs, &req, assigned && !PQgetisnull(res, i, 10) ? PQgetvalue(res, i, 10) : NULL);
        json_decref(excluded);
        if (rc == 0 && !assigned && at_ms > now_ms && req.callback_number) /* parked till then */
            rc = live_restore_schedule(rs, &req, at_ms);
        if (rc == -ENOENT) {
            CC_WARN_CTX(&(struct cc_log_ctx){.interaction_id = req.interaction_id},
                        "rebuild cannot restore interaction: queue '%s' or its agent is gone",
                        req.queue_id);
            rc = 0;
        } else if (rc == 0) {
            restored++;
        }
    }
    PQclear(res);
    CC_INFO("rebuild restored %d open interaction(s)", restored);
    return rc;
}

/* Dispatches every queue of every tenant after a rebuild. */
static void live_dispatch_all(router_live *lv, router_state *rs, router_store *st, int64_t now_ms)
{
    PGresult *res = live_tenants(lv);

    for (int t = 0; res && t < PQntuples(res); t++) {
        const char *tenant = PQgetvalue(res, t, 0);
        char after[ROUTER_ID_MAX + 1] = "";
        struct router_queue *queues;
        size_t n;

        do {
            if (router_store_queue_list(st, tenant, after[0] ? after : NULL, LIVE_PAGE, &queues,
                                        &n) < 0)
                break;
            for (size_t i = 0; i < n; i++)
                router_state_dispatch_queue(rs, tenant, queues[i].id, now_ms, (uint64_t)now_ms + i,
                                            NULL);
            if (n)
                snprintf(after, sizeof(after), "%s", queues[n - 1].id);
            router_store_queues_free(queues, n);
        } while (n == LIVE_PAGE);
    }
    PQclear(res);
}

int router_live_rebuild(router_live *lv, router_state *rs, router_store *st, const char *owner,
                        int64_t now_ms)
{
    long long epoch;
    int64_t t0 = cc_time_mono_ms();
    int rc;

    rc = router_state_rebuild_lock(rs, owner, LIVE_LOCK_TTL_MS);
    if (rc == -EBUSY)
        return -EAGAIN;
    if (rc < 0)
        return rc;
    if (router_state_epoch_get(rs, &epoch) == 0) { /* another instance finished meanwhile */
        rc = 0;
        goto out_unlock;
    }
    CC_WARN("redis has no router state (epoch missing): rebuilding from postgresql");
    rc = router_live_sync_all(lv, rs, st, now_ms);
    if (rc == 0)
        rc = live_restore_agents(lv, rs);
    if (rc == 0)
        rc = live_restore_tombstones(lv, rs, now_ms);
    if (rc == 0)
        rc = live_restore_interactions(lv, rs, now_ms);
    if (rc == 0)
        rc = router_state_set_epoch(rs, now_ms);
    if (rc == 0) {
        live_dispatch_all(lv, rs, st, now_ms);
        CC_INFO("rebuild of the router state done in %lld ms", (long long)(cc_time_mono_ms() - t0));
    } else {
        CC_ERROR("rebuild of the router state failed: %s", strerror(-rc));
    }
out_unlock:
    router_state_rebuild_unlock(rs, owner);
    return rc;
}

/* ---- configuration listener ------------------------------------------------------------- */

/* Handles one "kind|tenant|id[|id2]" payload. */
static int live_on_notify(router_live_listener *l, char *payload)
{
    char *save = NULL, *kind = strtok_r(payload, "|", &save);
    char *tenant = strtok_r(NULL, "|", &save), *id = strtok_r(NULL, "|", &save);
    char *id2 = strtok_r(NULL, "|", &save);
    int64_t now = cc_time_now_ms();

    if (!kind || !tenant || !id)
        return 0;
    if (strcmp(kind, "agent") == 0)
        return router_live_sync_agent(l->lv, l->rs, l->store, tenant, id, now);
    if (strcmp(kind, "queue") == 0) {
        router_store_queue_changed(l->store, tenant, id); /* engines re-read its schedule */
        return router_live_sync_queue(l->lv, l->rs, l->store, tenant, id, now);
    }
    if (strcmp(kind, "member") == 0 && id2)
        return router_live_sync_member(l->lv, l->rs, l->store, tenant, id, id2, now);
    return 0;
}

/* A full sync (after (re)connecting), rebuilding first when Redis lost its state. */
static int live_full_sync(router_live_listener *l)
{
    int64_t now = cc_time_now_ms();
    long long epoch;
    int rc = router_state_epoch_get(l->rs, &epoch);

    router_store_queue_changed(l->store, NULL, NULL); /* changes may have gone unnoticed */
    if (rc == -ENOENT)
        return router_live_rebuild(l->lv, l->rs, l->store, l->owner, now);
    if (rc < 0)
        return rc;
    rc = router_live_sync_all(l->lv, l->rs, l->store, now);
    if (rc == -ESTALE) /* flushed meanwhile */
        rc = router_live_rebuild(l->lv, l->rs, l->store, l->owner, now);
    return rc;
}

static PGconn *live_listen_connect(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    PGresult *r;

    if (PQstatus(c) != CONNECTION_OK) {
        CC_WARN("config listener cannot connect to postgresql: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    r = PQexec(c, "LISTEN " LIVE_CHANNEL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        CC_WARN("config listener cannot LISTEN: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    return c;
}

static void *live_listen_main(void *arg)
{
    router_live_listener *l = arg;
    PGconn *conn = NULL;

    while (!atomic_load(&l->stop)) {
        struct pollfd pfd;
        PGnotify *nf;

        if (!conn) {
            conn = live_listen_connect(l->dsn);
            if (!conn) {
                usleep(500 * 1000);
                continue;
            }
            atomic_store(&l->synced, 0);
        }
        if (!atomic_load(&l->synced)) { /* whatever changed while we were not listening */
            int rc = live_full_sync(l);
            if (rc < 0) {
                CC_WARN("configuration sync into redis failed (%s), retrying", strerror(-rc));
                usleep(500 * 1000);
                continue;
            }
            atomic_store(&l->synced, 1);
        }
        pfd = (struct pollfd){.fd = PQsocket(conn), .events = POLLIN};
        if (poll(&pfd, 1, 200) < 0 && errno != EINTR)
            break;
        if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK) {
            CC_WARN("config listener lost postgresql: %s", PQerrorMessage(conn));
            PQfinish(conn);
            conn = NULL;
            continue;
        }
        while ((nf = PQnotifies(conn)) != NULL) {
            int rc = live_on_notify(l, nf->extra);
            if (rc == -ESTALE)
                router_live_rebuild(l->lv, l->rs, l->store, l->owner, cc_time_now_ms());
            else if (rc < 0)
                CC_WARN("cannot sync configuration change '%s' into redis: %s", nf->extra,
                        strerror(-rc));
            PQfreemem(nf);
        }
    }
    PQfinish(conn);
    return NULL;
}

router_live_listener *router_live_listen_start(const char *dsn, const char *redis_url,
                                               router_store *store, const char *owner)
{
    router_live_listener *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    l->dsn = strdup(dsn);
    l->owner = strdup(owner);
    l->store = store;
    if (!l->dsn || !l->owner)
        goto out_free;
    l->rs = router_state_new(redis_url);
    if (!l->rs)
        goto out_free;
    l->lv = router_live_new(dsn);
    if (!l->lv)
        goto out_state;
    if (pthread_create(&l->thread, NULL, live_listen_main, l) != 0)
        goto out_live;
    return l;

out_live:
    router_live_free(l->lv);
out_state:
    router_state_free(l->rs);
out_free:
    free(l->dsn);
    free(l->owner);
    free(l);
    CC_ERROR("cannot start the configuration listener");
    return NULL;
}

bool router_live_listen_synced(router_live_listener *l)
{
    return l && atomic_load(&l->synced);
}

void router_live_listen_stop(router_live_listener *l)
{
    if (!l)
        return;
    atomic_store(&l->stop, 1);
    pthread_join(l->thread, NULL);
    router_live_free(l->lv);
    router_state_free(l->rs);
    free(l->dsn);
    free(l->owner);
    free(l);
}
