/* router_store: configuration persistence in PostgreSQL over a connection pool (see the header). */
#include "router_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc_log.h"
#include "cc_pg.h"
#include "cc_pg_pool.h"

#define STORE_FEED_LEN 256 /* queue changes remembered; a reader further behind drops all */
#define MS(col)        "(extract(epoch FROM " col ") * 1000)::bigint"

struct router_store {
    cc_pg_pool *pool;
    char **tz; /* sorted time-zone names */
    size_t ntz;
    /* queue change feed: entry g (1-based) sits at feed[g % STORE_FEED_LEN]; an entry with an
     * empty tenant means "every queue" */
    pthread_mutex_t feed_lock;
    _Atomic uint64_t feed_gen; /* generation of the newest entry; 0 = none yet */
    struct {
        char tenant[ROUTER_TENANT_MAX + 2];
        char queue_id[ROUTER_ID_MAX + 1];
    } feed[STORE_FEED_LEN];
};

/* ---- pool (common/cc_pg_pool) --------------------------------------------------------------- */

static cc_pg *acquire(router_store *st)
{
    return cc_pg_pool_acquire(st->pool);
}

static void release(router_store *st, cc_pg *pg)
{
    cc_pg_pool_release(st->pool, pg);
}

/* Maps the last failure of pg to the header's codes. */
static int pg_failure(cc_pg *pg)
{
    return cc_pg_pool_errno(pg);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_timezones(router_store *st)
{
    cc_pg *pg = acquire(st);
    PGresult *res = pg ? cc_pg_query(pg, "SELECT name FROM pg_timezone_names", 0, NULL) : NULL;
    int rows;

    release(st, pg);
    if (!res)
        return -EIO;
    rows = PQntuples(res);
    st->tz = calloc((size_t)rows + 1, sizeof(*st->tz));
    for (int i = 0; st->tz && i < rows; i++) {
        st->tz[i] = strdup(PQgetvalue(res, i, 0));
        if (!st->tz[i])
            break;
        st->ntz++;
    }
    PQclear(res);
    if (!st->tz || st->ntz != (size_t)rows)
        return -ENOMEM;
    qsort(st->tz, st->ntz, sizeof(*st->tz), cmp_str);
    return 0;
}

router_store *router_store_new(const char *dsn, unsigned pool_size, long acquire_timeout_ms)
{
    router_store *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    pthread_mutex_init(&st->feed_lock, NULL);
    st->pool = cc_pg_pool_new(dsn, pool_size, acquire_timeout_ms);
    if (!st->pool) {
        CC_ERROR("router store: cannot open the connection pool");
        goto err_store;
    }
    if (load_timezones(st) < 0) {
        CC_ERROR("router store: cannot load pg_timezone_names");
        goto err_store;
    }
    return st;
err_store:
    router_store_free(st);
    return NULL;
}

void router_store_free(router_store *st)
{
    if (!st)
        return;
    cc_pg_pool_free(st->pool);
    for (size_t i = 0; i < st->ntz; i++)
        free(st->tz[i]);
    free(st->tz);
    pthread_mutex_destroy(&st->feed_lock);
    free(st);
}

/* ---- queue change feed ---------------------------------------------------------------------- */

void router_store_queue_changed(router_store *st, const char *tenant, const char *queue_id)
{
    uint64_t g;
    bool all = !tenant || !queue_id || strlen(tenant) >= sizeof(st->feed[0].tenant) ||
               strlen(queue_id) >= sizeof(st->feed[0].queue_id);

    pthread_mutex_lock(&st->feed_lock);
    g = atomic_load(&st->feed_gen) + 1;
    snprintf(st->feed[g % STORE_FEED_LEN].tenant, sizeof(st->feed[0].tenant), "%s",
             all ? "" : tenant);
    snprintf(st->feed[g % STORE_FEED_LEN].queue_id, sizeof(st->feed[0].queue_id), "%s",
             all ? "" : queue_id);
    atomic_store(&st->feed_gen, g);
    pthread_mutex_unlock(&st->feed_lock);
}

uint64_t router_store_queue_generation(router_store *st)
{
    return atomic_load_explicit(&st->feed_gen, memory_order_acquire);
}

uint64_t router_store_queue_changes(router_store *st, uint64_t since, router_store_change_fn fn,
                                    void *arg)
{
    uint64_t g;

    pthread_mutex_lock(&st->feed_lock);
    g = atomic_load(&st->feed_gen);
    if (g - since > STORE_FEED_LEN) { /* overwritten since: everything may have changed */
        fn(arg, NULL, NULL);
    } else {
        for (uint64_t i = since + 1; i <= g; i++) {
            const char *t = st->feed[i % STORE_FEED_LEN].tenant;
            fn(arg, t[0] ? t : NULL, t[0] ? st->feed[i % STORE_FEED_LEN].queue_id : NULL);
        }
    }
    pthread_mutex_unlock(&st->feed_lock);
    return g;
}

int router_store_migrate(router_store *st, const char *dir)
{
    cc_pg *pg = acquire(st);
    int applied = 0, rc;

    if (!pg)
        return -EAGAIN;
    rc = cc_pg_migrate(pg, "router", dir, &applied);
    release(st, pg);
    if (rc == 0)
        CC_INFO("router schema migrated: %d migration(s) applied from '%s'", applied, dir);
    return rc;
}

bool router_store_ready(router_store *st, char *why, size_t len)
{
    return cc_pg_pool_ready(st->pool, why, len);
}

bool router_store_timezone_known(void *arg, const char *tz)
{
    const router_store *st = arg;

    return tz && bsearch(&tz, st->tz, st->ntz, sizeof(*st->tz), cmp_str) != NULL;
}

/* ---- small helpers -------------------------------------------------------------------------- */

static long long col_ll(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int col_int(const PGresult *r, int row, int col)
{
    return (int)strtol(PQgetvalue(r, row, col), NULL, 10);
}

static bool col_bool(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col)[0] == 't';
}

static void col_str(const PGresult *r, int row, int col, char *out, size_t cap)
{
    snprintf(out, cap, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* Runs a statement that must succeed; 0 or the mapped failure. */
static int exec(cc_pg *pg, const char *sql, int n, const char *const *params)
{
    return cc_pg_exec(pg, sql, n, params) == 0 ? 0 : pg_failure(pg);
}

/* Runs a query; *res set (PQclear it) or the mapped failure. */
static int query(cc_pg *pg, const char *sql, int n, const char *const *params, PGresult **res)
{
    *res = cc_pg_query(pg, sql, n, params);
    return *res ? 0 : pg_failure(pg);
}

/* One query on a pooled connection (borrowed for this query only); as query(), or -EAGAIN. */
static int fetch(router_store *st, const char *sql, int n, const char *const *params,
                 PGresult **res)
{
    cc_pg *pg = acquire(st);
    int rc;

    if (!pg)
        return -EAGAIN;
    rc = query(pg, sql, n, params, res);
    release(st, pg);
    return rc;
}

/* Runs a "... RETURNING 1" that must touch exactly one row ($1 tenant, $2 key[, $3 key2]):
 * 0, -ENOENT when it touched none, or the mapped failure. */
static int touch_one(router_store *st, const char *sql, int n, const char *const *params)
{
    PGresult *res;
    int rc = fetch(st, sql, n, params, &res);

    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1 ? 0 : -ENOENT;
    PQclear(res);
    return rc;
}

/* Reads the one row of sql ($1 tenant, $2 key) into out with from_row; -ENOENT when there is
 * none. */
static int get_one(router_store *st, const char *sql, const char *tenant, const char *key,
                   int (*from_row)(const PGresult *, int, void *), void *out)
{
    PGresult *res;
    int rc = fetch(st, sql, 2, (const char *const[]){tenant, key}, &res);

    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1 ? from_row(res, 0, out) : -ENOENT;
    PQclear(res);
    return rc;
}

/* Borrows a connection and opens a transaction on it: 0 and *pg, or -EAGAIN / -EIO with *pg
 * NULL. End it with write_end(). */
static int write_begin(router_store *st, cc_pg **pg)
{
    *pg = acquire(st);
    if (!*pg)
        return -EAGAIN;
    if (cc_pg_begin(*pg) < 0) {
        release(st, *pg);
        *pg = NULL;
        return -EIO;
    }
    return 0;
}

/* Commits when rc is 0 (-EIO when that fails), gives pg back (rolled back by the pool when
 * still open) and returns rc. pg is NULL (and rc negative) after a failed write_begin. */
static int write_end(router_store *st, cc_pg *pg, int rc)
{
    if (rc == 0 && cc_pg_commit(pg) < 0)
        rc = -EIO;
    release(st, pg);
    return rc;
}

/* -ENOENT or -ESTALE after a conditional write to table (agents or queues) touched nothing:
 * whether the row (tenant, id) exists at all. */
static int missing_or_stale(cc_pg *pg, const char *table, const char *tenant, const char *id)
{
    char sql[128];
    PGresult *res;
    int rc;

    snprintf(sql, sizeof(sql), "SELECT 1 FROM router.%s WHERE tenant = $1 AND id = $2", table);
    rc = query(pg, sql, 2, (const char *const[]){tenant, id}, &res);
    if (rc < 0)
        return rc;
    rc = PQntuples(res) > 0 ? -ESTALE : -ENOENT;
    PQclear(res);
    return rc;
}

/* The pg text of if_version: NULL (unconditional) or the number. */
static const char *version_param(long long if_version, char buf[24])
{
    if (if_version <= 0)
        return NULL;
    snprintf(buf, 24, "%lld", if_version);
    return buf;
}

/* A new JSON array of n items, item(base, i) making each (a new reference); NULL when one
 * cannot be made. The text of it is the $3 of insert_children. */
static json_t *param_array(const void *base, size_t n, json_t *(*item)(const void *, size_t))
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, item(base, i)) < 0) {
            json_decref(arr);
            return NULL;
        }
    return arr;
}

static json_t *skill_item(const void *base, size_t i)
{
    const struct router_skill *s = (const struct router_skill *)base + i;

    return json_pack("{s:s, s:i}", "skill", s->skill, "level", s->level);
}

/* Runs `sql` with ($1 tenant, $2 id, $3 json text of arr) unless arr is empty. Steals arr. */
static int insert_children(cc_pg *pg, const char *sql, const char *tenant, const char *id,
                           json_t *arr)
{
    char *text;
    int rc;

    if (!arr)
        return -ENOMEM;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return 0;
    }
    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!text)
        return -ENOMEM;
    rc = exec(pg, sql, 3, (const char *const[]){tenant, id, text});
    free(text);
    return rc;
}

/* Parses a json text column [{"skill","level"}] into an owned array. */
static int skills_from_col(const PGresult *r, int row, int col, struct router_skill **out,
                           size_t *n)
{
    json_t *arr = json_loads(PQgetvalue(r, row, col), 0, NULL);
    size_t i;

    *out = NULL;
    *n = 0;
    if (!json_is_array(arr)) {
        json_decref(arr);
        return -EIO;
    }
    if (json_array_size(arr) > 0 && !(*out = calloc(json_array_size(arr), sizeof(**out)))) {
        json_decref(arr);
        return -ENOMEM;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        snprintf((*out)[i].skill, sizeof((*out)[i].skill), "%s",
                 json_string_value(json_object_get(v, "skill")));
        (*out)[i].level = (int)json_integer_value(json_object_get(v, "level"));
    }
    *n = json_array_size(arr);
    json_decref(arr);
    return 0;
}

/* ---- agents --------------------------------------------------------------------------------- */

#define AGENT_COLS                                                                                 \
    "a.id, a.name, a.cap_voice, a.cap_chat, a.cap_email, a.cap_sms, a.voice_blocks_other, "        \
    "a.enabled, a.version, " MS("a.created_at") ", " MS(                                           \
        "a.updated_at") ", "                                                                       \
                        "(SELECT coalesce(json_agg(json_build_object('skill', s.skill, 'level', "  \
                        "s.proficiency) "                                                          \
                        "ORDER BY s.skill), '[]') FROM router.agent_skills s "                     \
                        "WHERE s.tenant = a.tenant AND s.agent_id = a.id)::text"

static int agent_from_row(const PGresult *r, int row, struct router_agent *a)
{
    memset(a, 0, sizeof(*a));
    col_str(r, row, 0, a->id, sizeof(a->id));
    col_str(r, row, 1, a->name, sizeof(a->name));
    for (int c = 0; c < ROUTER_CH_COUNT; c++)
        a->capacity[c] = col_int(r, row, 2 + c);
    a->voice_blocks_other = col_bool(r, row, 6);
    a->enabled = col_bool(r, row, 7);
    a->version = col_ll(r, row, 8);
    a->created_ms = col_ll(r, row, 9);
    a->updated_ms = col_ll(r, row, 10);
    return skills_from_col(r, row, 11, &a->skills, &a->nskills);
}

/* The agent's columns as text params $3..$9 (after tenant, id). */
struct agent_params {
    char cap[ROUTER_CH_COUNT][8];
    const char *v[10];
};

static void agent_params(const char *tenant, const struct router_agent *a, struct agent_params *p)
{
    for (int c = 0; c < ROUTER_CH_COUNT; c++)
        snprintf(p->cap[c], sizeof(p->cap[c]), "%d", a->capacity[c]);
    p->v[0] = tenant;
    p->v[1] = a->id;
    p->v[2] = a->name;
    for (int c = 0; c < ROUTER_CH_COUNT; c++)
        p->v[3 + c] = p->cap[c];
    p->v[7] = a->voice_blocks_other ? "true" : "false";
    p->v[8] = a->enabled ? "true" : "false";
    p->v[9] = NULL;
}

static int agent_skills_write(cc_pg *pg, const char *tenant, const struct router_agent *a,
                              bool replace)
{
    int rc = 0;

    if (replace)
        rc = exec(pg, "DELETE FROM router.agent_skills WHERE tenant = $1 AND agent_id = $2", 2,
                  (const char *const[]){tenant, a->id});
    if (rc == 0)
        rc = insert_children(pg,
                             "INSERT INTO router.agent_skills (tenant, agent_id, skill, "
                             "proficiency) SELECT $1, $2, x->>'skill', (x->>'level')::smallint "
                             "FROM jsonb_array_elements($3::jsonb) x",
                             tenant, a->id, param_array(a->skills, a->nskills, skill_item));
    return rc;
}

/* Runs a versioned write of one row of table (agents or queues) in the open transaction: sql
 * (an INSERT ... ON CONFLICT DO NOTHING, or with update an UPDATE guarded by if_version; both
 * RETURNING version, created ms, updated ms) with params ($1 tenant, $2 id, ...), and stores
 * what it returned. No row: -EEXIST for an insert, -ENOENT or -ESTALE for an update. */
static int write_versioned(cc_pg *pg, const char *table, const char *sql, int n,
                           const char *const *params, bool update, long long *version,
                           int64_t *created, int64_t *updated)
{
    PGresult *res;
    int rc = query(pg, sql, n, params, &res);

    if (rc < 0)
        return rc;
    if (PQntuples(res) > 0) {
        *version = col_ll(res, 0, 0);
        *created = col_ll(res, 0, 1);
        *updated = col_ll(res, 0, 2);
    } else {
        rc = update ? missing_or_stale(pg, table, params[0], params[1]) : -EEXIST;
    }
    PQclear(res);
    return rc;
}

static const char agent_insert_sql[] =
    "INSERT INTO router.agents (tenant, id, name, cap_voice, cap_chat, cap_email, cap_sms, "
    "voice_blocks_other, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "ON CONFLICT DO NOTHING RETURNING version, " MS("created_at") ", " MS("updated_at");
static const char agent_update_sql[] =
    "UPDATE router.agents SET name = $3, cap_voice = $4, cap_chat = $5, cap_email = $6, "
    "cap_sms = $7, voice_blocks_other = $8, enabled = $9, version = version + 1, "
    "updated_at = now() WHERE tenant = $1 AND id = $2 "
    "AND ($10::bigint IS NULL OR version = $10) "
    "RETURNING version, " MS("created_at") ", " MS("updated_at");

/* Creates a (replace false; if_version unused) or replaces it, skills included, in one
 * transaction; fills its version and timestamps. */
static int agent_write(router_store *st, const char *tenant, struct router_agent *a, bool replace,
                       long long if_version)
{
    struct agent_params p;
    char vbuf[24];
    cc_pg *pg;
    int rc = write_begin(st, &pg);

    agent_params(tenant, a, &p);
    p.v[9] = version_param(if_version, vbuf);
    if (rc == 0)
        rc = write_versioned(pg, "agents", replace ? agent_update_sql : agent_insert_sql,
                             replace ? 10 : 9, p.v, replace, &a->version, &a->created_ms,
                             &a->updated_ms);
    if (rc == 0)
        rc = agent_skills_write(pg, tenant, a, replace);
    return write_end(st, pg, rc);
}

int router_store_agent_create(router_store *st, const char *tenant, struct router_agent *a)
{
    return agent_write(st, tenant, a, false, 0);
}

static int agent_row(const PGresult *r, int row, void *a)
{
    return agent_from_row(r, row, a);
}

int router_store_agent_get(router_store *st, const char *tenant, const char *id,
                           struct router_agent *out)
{
    return get_one(st,
                   "SELECT " AGENT_COLS " FROM router.agents a WHERE a.tenant = $1 AND a.id = $2",
                   tenant, id, agent_row, out);
}

int router_store_agent_replace(router_store *st, const char *tenant, struct router_agent *a,
                               long long if_version)
{
    return agent_write(st, tenant, a, true, if_version);
}

/* Deletes one row of table (agents or queues) by tenant, id and optional version. */
static int delete_versioned(cc_pg *pg, const char *table, const char *tenant, const char *id,
                            long long if_version)
{
    char vbuf[24], sql[160];
    PGresult *res;
    int rc;

    snprintf(sql, sizeof(sql),
             "DELETE FROM router.%s WHERE tenant = $1 AND id = $2 "
             "AND ($3::bigint IS NULL OR version = $3) RETURNING 1",
             table);
    rc =
        query(pg, sql, 3, (const char *const[]){tenant, id, version_param(if_version, vbuf)}, &res);
    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1 ? 0 : 1;
    PQclear(res);
    if (rc == 1)
        rc = missing_or_stale(pg, table, tenant, id);
    return rc;
}

int router_store_agent_delete(router_store *st, const char *tenant, const char *id,
                              long long if_version)
{
    cc_pg *pg = acquire(st);
    int rc;

    if (!pg)
        return -EAGAIN;
    rc = delete_versioned(pg, "agents", tenant, id, if_version);
    release(st, pg);
    return rc;
}

/* Runs a keyset page query ($1 tenant, $2 after or NULL, $3 limit) -- or with $2 = parent id
 * and $3/$4 shifted when parent is given. */
static int page_query(router_store *st, const char *sql, const char *tenant, const char *parent,
                      const char *after, size_t limit, PGresult **res)
{
    char lbuf[24];

    snprintf(lbuf, sizeof(lbuf), "%zu", limit);
    if (parent)
        return fetch(st, sql, 4, (const char *const[]){tenant, parent, after, lbuf}, res);
    return fetch(st, sql, 3, (const char *const[]){tenant, after, lbuf}, res);
}

/* Turns every row of res into a new array (*out, *n) of elem_size elements, each made by
 * from_row; on failure clears what was made with clear_fn and frees it. PQclear's res.
 * 0, -ENOMEM or from_row's error; on failure *out is NULL and *n is 0. */
static int rows_to_list(PGresult *res, size_t elem_size,
                        int (*from_row)(const PGresult *, int, void *), void (*clear_fn)(void *),
                        void **out, size_t *n)
{
    int rows = PQntuples(res), rc = 0;
    char *list = NULL;

    *out = NULL;
    *n = 0;
    if (rows > 0 && !(list = calloc((size_t)rows, elem_size)))
        rc = -ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++) {
        rc = from_row(res, i, list + (size_t)i * elem_size);
        (*n)++;
    }
    PQclear(res);
    if (rc < 0) {
        for (size_t i = 0; list && i < *n; i++)
            clear_fn(list + i * elem_size);
        free(list);
        *n = 0;
        return rc;
    }
    *out = list;
    return 0;
}

static void agent_clear_any(void *a)
{
    router_agent_clear(a);
}

int router_store_agent_list(router_store *st, const char *tenant, const char *after, size_t limit,
                            struct router_agent **out, size_t *n)
{
    PGresult *res;
    int rc = page_query(st,
                        "SELECT " AGENT_COLS " FROM router.agents a WHERE a.tenant = $1 "
                        "AND ($2::text IS NULL OR a.id > $2) ORDER BY a.id LIMIT $3",
                        tenant, NULL, after, limit, &res);

    *out = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    return rows_to_list(res, sizeof(**out), agent_row, agent_clear_any, (void **)out, n);
}

void router_store_agents_free(struct router_agent *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        router_agent_clear(&list[i]);
    free(list);
}

/* ---- queues --------------------------------------------------------------------------------- */

#define QUEUE_CHILD(table, obj)                                                                    \
    "(SELECT coalesce(json_agg(" obj "), '[]') FROM router." table " c "                           \
    "WHERE c.tenant = q.tenant AND c.queue_id = q.id)::text"

#define QUEUE_SKILLS_COL                                                                           \
    QUEUE_CHILD("queue_skills", "json_build_object('skill', c.skill, 'level', c.min_proficiency) " \
                                "ORDER BY c.skill")
#define QUEUE_TIERS_COL                                                                            \
    QUEUE_CHILD("queue_tier_rules", "json_build_array(c.level, c.after_s) ORDER BY c.level")
#define QUEUE_HOURS_COL                                                                            \
    QUEUE_CHILD("queue_hours",                                                                     \
                "json_build_array(c.day, c.open_min, c.close_min) ORDER BY c.day, c.open_min")
#define QUEUE_HOLIDAYS_COL                                                                         \
    QUEUE_CHILD("queue_holidays",                                                                  \
                "json_build_array(to_char(c.day, 'YYYY-MM-DD'), c.name) ORDER BY c.day")
#define QUEUE_META_COLS "q.version, " MS("q.created_at") ", " MS("q.updated_at")
#define QUEUE_COLS                                                                                 \
    "q.id, q.name, array_to_string(q.channels, ','), q.strategy, q.priority, q.sl_threshold_s, "   \
    "q.wrapup_s, q.ring_timeout_s, q.max_no_answer, q.max_wait_s, q.max_length, "                  \
    "q.ring_progressive_interval_s, q.callback_enabled, q.overflow_queue_id, q.no_agent_action, "  \
    "q.timezone, q.closed_action, q.closed_reason, " QUEUE_META_COLS ", " QUEUE_SKILLS_COL         \
    ", " QUEUE_TIERS_COL ", " QUEUE_HOURS_COL ", " QUEUE_HOLIDAYS_COL

/* Parses the [[a, b, c], ...] column col: calls fill(item, index) per element. */
static int tuples_from_col(const PGresult *r, int row, int col, size_t elem, void **out, size_t *n,
                           void (*fill)(void *base, size_t i, const json_t *item))
{
    json_t *arr = json_loads(PQgetvalue(r, row, col), 0, NULL);
    size_t i;

    *out = NULL;
    *n = 0;
    if (!json_is_array(arr)) {
        json_decref(arr);
        return -EIO;
    }
    if (json_array_size(arr) > 0 && !(*out = calloc(json_array_size(arr), elem))) {
        json_decref(arr);
        return -ENOMEM;
    }
    for (i = 0; i < json_array_size(arr); i++)
        fill(*out, i, json_array_get(arr, i));
    *n = json_array_size(arr);
    json_decref(arr);
    return 0;
}

static int item_int(const json_t *item, size_t k)
{
    return (int)json_integer_value(json_array_get(item, k));
}

static void fill_tier(void *base, size_t i, const json_t *item)
{
    struct router_tier_rule *t = (struct router_tier_rule *)base + i;

    t->level = item_int(item, 0);
    t->after_s = item_int(item, 1);
}

static void fill_hours(void *base, size_t i, const json_t *item)
{
    struct router_hours *h = (struct router_hours *)base + i;

    h->day = item_int(item, 0);
    h->open_min = item_int(item, 1);
    h->close_min = item_int(item, 2);
}

static void fill_holiday(void *base, size_t i, const json_t *item)
{
    struct router_holiday *h = (struct router_holiday *)base + i;

    snprintf(h->date, sizeof(h->date), "%s", json_string_value(json_array_get(item, 0)));
    snprintf(h->name, sizeof(h->name), "%s", json_string_value(json_array_get(item, 1)));
}

static unsigned channels_from_text(const char *text)
{
    char buf[64], *save = NULL;
    unsigned mask = 0;

    snprintf(buf, sizeof(buf), "%s", text);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        enum router_channel c;
        if (router_channel_parse(tok, &c) == 0)
            mask |= 1u << c;
    }
    return mask;
}

static int queue_from_row(const PGresult *r, int row, struct router_queue *q)
{
    enum router_strategy s = ROUTER_STRAT_RING_ALL;
    const char *na = PQgetvalue(r, row, 14);
    int rc;

    memset(q, 0, sizeof(*q));
    col_str(r, row, 0, q->id, sizeof(q->id));
    col_str(r, row, 1, q->name, sizeof(q->name));
    q->channels = channels_from_text(PQgetvalue(r, row, 2));
    router_strategy_parse(PQgetvalue(r, row, 3), &s);
    q->strategy = s;
    q->priority = col_int(r, row, 4);
    q->sl_threshold_s = col_int(r, row, 5);
    q->wrapup_s = col_int(r, row, 6);
    q->ring_timeout_s = col_int(r, row, 7);
    q->max_no_answer = col_int(r, row, 8);
    q->max_wait_s = col_int(r, row, 9);
    q->max_length = col_int(r, row, 10);
    q->ring_progressive_interval_s = col_int(r, row, 11);
    q->callback_enabled = col_bool(r, row, 12);
    col_str(r, row, 13, q->overflow_queue_id, sizeof(q->overflow_queue_id));
    q->no_agent_action = strcmp(na, "refuse") == 0     ? ROUTER_NOAGENT_REFUSE
                         : strcmp(na, "overflow") == 0 ? ROUTER_NOAGENT_OVERFLOW
                                                       : ROUTER_NOAGENT_JOIN;
    col_str(r, row, 15, q->timezone, sizeof(q->timezone));
    q->closed_action = strcmp(PQgetvalue(r, row, 16), "overflow") == 0 ? ROUTER_CLOSED_OVERFLOW
                                                                       : ROUTER_CLOSED_REJECT;
    col_str(r, row, 17, q->closed_reason, sizeof(q->closed_reason));
    q->version = col_ll(r, row, 18);
    q->created_ms = col_ll(r, row, 19);
    q->updated_ms = col_ll(r, row, 20);
    rc = skills_from_col(r, row, 21, &q->skills, &q->nskills);
    if (rc == 0)
        rc = tuples_from_col(r, row, 22, sizeof(*q->tiers), (void **)&q->tiers, &q->ntiers,
                             fill_tier);
    if (rc == 0)
        rc = tuples_from_col(r, row, 23, sizeof(*q->hours), (void **)&q->hours, &q->nhours,
                             fill_hours);
    if (rc == 0)
        rc = tuples_from_col(r, row, 24, sizeof(*q->holidays), (void **)&q->holidays, &q->nholidays,
                             fill_holiday);
    return rc;
}

/* The queue's columns as text params $1..$20 ($21 = if_version for updates). */
struct queue_params {
    char num[8][16];
    char channels[48];
    const char *v[21];
};

static void queue_params(const char *tenant, const struct router_queue *q, struct queue_params *p)
{
    const int nums[8] = {
        q->priority,      q->sl_threshold_s, q->wrapup_s,   q->ring_timeout_s,
        q->max_no_answer, q->max_wait_s,     q->max_length, q->ring_progressive_interval_s};
    size_t len = 0;

    for (int i = 0; i < 8; i++)
        snprintf(p->num[i], sizeof(p->num[i]), "%d", nums[i]);
    len += (size_t)snprintf(p->channels, sizeof(p->channels), "{");
    for (int c = 0; c < ROUTER_CH_COUNT; c++)
        if (q->channels & (1u << c))
            len += (size_t)snprintf(p->channels + len, sizeof(p->channels) - len, "%s%s",
                                    len > 1 ? "," : "", router_channel_name(c));
    snprintf(p->channels + len, sizeof(p->channels) - len, "}");
    p->v[0] = tenant;
    p->v[1] = q->id;
    p->v[2] = q->name;
    p->v[3] = p->channels;
    p->v[4] = router_strategy_name(q->strategy);
    for (int i = 0; i < 8; i++)
        p->v[5 + i] = p->num[i];
    p->v[13] = q->callback_enabled ? "true" : "false";
    p->v[14] = q->overflow_queue_id[0] ? q->overflow_queue_id : NULL;
    p->v[15] = router_no_agent_action_name(q->no_agent_action);
    p->v[16] = q->timezone;
    p->v[17] = router_closed_action_name(q->closed_action);
    p->v[18] = q->closed_reason;
    p->v[19] = NULL;
    p->v[20] = NULL;
}

static json_t *tier_item(const void *base, size_t i)
{
    const struct router_tier_rule *t = (const struct router_tier_rule *)base + i;

    return json_pack("[i, i]", t->level, t->after_s);
}

static json_t *hours_item(const void *base, size_t i)
{
    const struct router_hours *h = (const struct router_hours *)base + i;

    return json_pack("[i, i, i]", h->day, h->open_min, h->close_min);
}

static json_t *holiday_item(const void *base, size_t i)
{
    const struct router_holiday *h = (const struct router_holiday *)base + i;

    return json_pack("[s, s]", h->date, h->name);
}

/* Rewrites the four child tables of a queue (deleting the old rows when replace). */
static int queue_children_write(cc_pg *pg, const char *tenant, const struct router_queue *q,
                                bool replace)
{
    static const char *const tables[] = {"queue_skills", "queue_tier_rules", "queue_hours",
                                         "queue_holidays"};
    char sql[128];
    int rc = 0;

    for (size_t i = 0; replace && rc == 0 && i < sizeof(tables) / sizeof(tables[0]); i++) {
        snprintf(sql, sizeof(sql), "DELETE FROM router.%s WHERE tenant = $1 AND queue_id = $2",
                 tables[i]);
        rc = exec(pg, sql, 2, (const char *const[]){tenant, q->id});
    }
    if (rc == 0)
        rc = insert_children(pg,
                             "INSERT INTO router.queue_skills (tenant, queue_id, skill, "
                             "min_proficiency) SELECT $1, $2, x->>'skill', "
                             "(x->>'level')::smallint FROM jsonb_array_elements($3::jsonb) x",
                             tenant, q->id, param_array(q->skills, q->nskills, skill_item));
    if (rc == 0)
        rc = insert_children(pg,
                             "INSERT INTO router.queue_tier_rules (tenant, queue_id, level, "
                             "after_s) SELECT $1, $2, (x->>0)::int, (x->>1)::int "
                             "FROM jsonb_array_elements($3::jsonb) x",
                             tenant, q->id, param_array(q->tiers, q->ntiers, tier_item));
    if (rc == 0)
        rc = insert_children(pg,
                             "INSERT INTO router.queue_hours (tenant, queue_id, day, open_min, "
                             "close_min) SELECT $1, $2, (x->>0)::smallint, (x->>1)::smallint, "
                             "(x->>2)::smallint FROM jsonb_array_elements($3::jsonb) x",
                             tenant, q->id, param_array(q->hours, q->nhours, hours_item));
    if (rc == 0)
        rc = insert_children(pg,
                             "INSERT INTO router.queue_holidays (tenant, queue_id, day, name) "
                             "SELECT $1, $2, (x->>0)::date, x->>1 "
                             "FROM jsonb_array_elements($3::jsonb) x",
                             tenant, q->id, param_array(q->holidays, q->nholidays, holiday_item));
    return rc;
}

/* -ENXIO unless the overflow target exists; locks it against deletion until commit. */
static int lock_overflow_target(cc_pg *pg, const char *tenant, const struct router_queue *q)
{
    PGresult *res;
    int rc;

    if (!q->overflow_queue_id[0])
        return 0;
    rc = query(pg, "SELECT 1 FROM router.queues WHERE tenant = $1 AND id = $2 FOR KEY SHARE", 2,
               (const char *const[]){tenant, q->overflow_queue_id}, &res);
    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1 ? 0 : -ENXIO;
    PQclear(res);
    return rc;
}

static const char queue_insert_sql[] =
    "INSERT INTO router.queues (tenant, id, name, channels, strategy, priority, sl_threshold_s, "
    "wrapup_s, ring_timeout_s, max_no_answer, max_wait_s, max_length, "
    "ring_progressive_interval_s, callback_enabled, overflow_queue_id, no_agent_action, "
    "timezone, closed_action, closed_reason) VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, "
    "$9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT DO NOTHING "
    "RETURNING version, " MS("created_at") ", " MS("updated_at");
static const char queue_update_sql[] =
    "UPDATE router.queues SET name = $3, channels = $4::text[], strategy = $5, priority = $6, "
    "sl_threshold_s = $7, wrapup_s = $8, ring_timeout_s = $9, max_no_answer = $10, "
    "max_wait_s = $11, max_length = $12, ring_progressive_interval_s = $13, "
    "callback_enabled = $14, overflow_queue_id = $15, no_agent_action = $16, timezone = $17, "
    "closed_action = $18, closed_reason = $19, version = version + 1, updated_at = now() "
    "WHERE tenant = $1 AND id = $2 AND ($20::bigint IS NULL OR version = $20) "
    "RETURNING version, " MS("created_at") ", " MS("updated_at");

/* Creates q (replace false; if_version unused) or replaces it, child rows included, in one
 * transaction that holds its overflow target; fills its version and timestamps. */
static int queue_write(router_store *st, const char *tenant, struct router_queue *q, bool replace,
                       long long if_version)
{
    struct queue_params p;
    char vbuf[24];
    cc_pg *pg;
    int rc = write_begin(st, &pg);

    queue_params(tenant, q, &p);
    p.v[19] = version_param(if_version, vbuf);
    if (rc == 0)
        rc = lock_overflow_target(pg, tenant, q);
    if (rc == 0)
        rc = write_versioned(pg, "queues", replace ? queue_update_sql : queue_insert_sql,
                             replace ? 20 : 19, p.v, replace, &q->version, &q->created_ms,
                             &q->updated_ms);
    if (rc == 0)
        rc = queue_children_write(pg, tenant, q, replace);
    return write_end(st, pg, rc);
}

int router_store_queue_create(router_store *st, const char *tenant, struct router_queue *q)
{
    return queue_write(st, tenant, q, false, 0);
}

static int queue_row(const PGresult *r, int row, void *q)
{
    return queue_from_row(r, row, q);
}

int router_store_queue_get(router_store *st, const char *tenant, const char *id,
                           struct router_queue *out)
{
    return get_one(st,
                   "SELECT " QUEUE_COLS " FROM router.queues q WHERE q.tenant = $1 AND q.id = $2",
                   tenant, id, queue_row, out);
}

int router_store_queue_replace(router_store *st, const char *tenant, struct router_queue *q,
                               long long if_version)
{
    return queue_write(st, tenant, q, true, if_version);
}

int router_store_queue_delete(router_store *st, const char *tenant, const char *id,
                              long long if_version, char blocker[ROUTER_ID_MAX + 1])
{
    PGresult *res;
    cc_pg *pg = acquire(st);
    int rc;

    if (!pg)
        return -EAGAIN;
    rc = query(pg,
               "SELECT id FROM router.queues WHERE tenant = $1 AND overflow_queue_id = $2 "
               "ORDER BY id LIMIT 1",
               2, (const char *const[]){tenant, id}, &res);
    if (rc == 0) {
        if (PQntuples(res) == 1) {
            if (blocker)
                col_str(res, 0, 0, blocker, ROUTER_ID_MAX + 1);
            rc = -ENOTEMPTY;
        }
        PQclear(res);
    }
    if (rc == 0)
        rc = delete_versioned(pg, "queues", tenant, id, if_version);
    if (rc == -EINVAL && strcmp(cc_pg_last_sqlstate(pg), "23503") == 0) {
        if (blocker) /* a queue started to overflow here after the check */
            snprintf(blocker, ROUTER_ID_MAX + 1, "(a queue added since)");
        rc = -ENOTEMPTY;
    }
    release(st, pg);
    return rc;
}

static void queue_clear_any(void *q)
{
    router_queue_clear(q);
}

int router_store_queue_list(router_store *st, const char *tenant, const char *after, size_t limit,
                            struct router_queue **out, size_t *n)
{
    PGresult *res;
    int rc = page_query(st,
                        "SELECT " QUEUE_COLS " FROM router.queues q WHERE q.tenant = $1 "
                        "AND ($2::text IS NULL OR q.id > $2) ORDER BY q.id LIMIT $3",
                        tenant, NULL, after, limit, &res);

    *out = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    return rows_to_list(res, sizeof(**out), queue_row, queue_clear_any, (void **)out, n);
}

void router_store_queues_free(struct router_queue *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        router_queue_clear(&list[i]);
    free(list);
}

/* ---- memberships ---------------------------------------------------------------------------- */

/* Reads the row of an upsert's RETURNING (xmax = 0), created ms, updated ms. */
static void upserted(const PGresult *res, bool *created, int64_t *created_ms, int64_t *updated_ms)
{
    *created = col_bool(res, 0, 0);
    *created_ms = col_ll(res, 0, 1);
    *updated_ms = col_ll(res, 0, 2);
}

/* -ENOENT (queue) or -ESRCH (agent), whichever is missing first; 0 if both exist. */
static int member_parents(cc_pg *pg, const char *tenant, const char *queue_id, const char *agent_id)
{
    PGresult *res;
    int rc = query(pg,
                   "SELECT EXISTS (SELECT 1 FROM router.queues WHERE tenant = $1 AND id = $2), "
                   "EXISTS (SELECT 1 FROM router.agents WHERE tenant = $1 AND id = $3)",
                   3, (const char *const[]){tenant, queue_id, agent_id}, &res);

    if (rc < 0)
        return rc;
    rc = !col_bool(res, 0, 0) ? -ENOENT : !col_bool(res, 0, 1) ? -ESRCH : 0;
    PQclear(res);
    return rc;
}

int router_store_member_put(router_store *st, const char *tenant, struct router_member *m,
                            bool *created)
{
    char lv[16], pos[16], pen[16];
    PGresult *res;
    cc_pg *pg = acquire(st);
    int rc;

    if (!pg)
        return -EAGAIN;
    snprintf(lv, sizeof(lv), "%d", m->level);
    snprintf(pos, sizeof(pos), "%d", m->position);
    snprintf(pen, sizeof(pen), "%d", m->penalty);
    /* The parents are locked (FOR KEY SHARE) by the FK checks of the insert itself; a parent
     * deleted concurrently makes the insert fail with 23503, reported as missing. */
    rc = query(
        pg,
        "INSERT INTO router.memberships AS m (tenant, queue_id, agent_id, level, position, "
        "penalty) SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM router.queues "
        "WHERE tenant = $1 AND id = $2) AND EXISTS (SELECT 1 FROM router.agents WHERE "
        "tenant = $1 AND id = $3) ON CONFLICT (tenant, queue_id, agent_id) DO UPDATE SET "
        "level = EXCLUDED.level, position = EXCLUDED.position, penalty = EXCLUDED.penalty, "
        "updated_at = now() RETURNING (xmax = 0), " MS("m.created_at") ", " MS("m.updated_at"),
        6, (const char *const[]){tenant, m->queue_id, m->agent_id, lv, pos, pen}, &res);
    if (rc == 0 && PQntuples(res) == 1) {
        upserted(res, created, &m->created_ms, &m->updated_ms);
    } else if (rc == 0 || rc == -EINVAL) {
        rc = member_parents(pg, tenant, m->queue_id, m->agent_id);
        if (rc == 0) /* both exist again (a race): report it as a conflict to retry */
            rc = -EAGAIN;
    }
    PQclear(res);
    release(st, pg);
    return rc;
}

int router_store_member_delete(router_store *st, const char *tenant, const char *queue_id,
                               const char *agent_id)
{
    return touch_one(st,
                     "DELETE FROM router.memberships WHERE tenant = $1 AND queue_id = $2 "
                     "AND agent_id = $3 RETURNING 1",
                     3, (const char *const[]){tenant, queue_id, agent_id});
}

int router_store_member_list(router_store *st, const char *tenant, const char *queue_id,
                             const char *after, size_t limit, struct router_member **out, size_t *n)
{
    PGresult *res;
    int rc, rows;

    *out = NULL;
    *n = 0;
    /* The queue's row comes back even without members (LEFT JOIN), so a missing queue is told
     * apart from an empty one in the same round trip. */
    rc =
        page_query(st,
                   "SELECT m.agent_id, m.level, m.position, m.penalty, " MS("m.created_at") ", " MS(
                       "m.updated_at") " FROM router.queues q LEFT JOIN router.memberships m "
                                       "ON m.tenant = q.tenant AND m.queue_id = q.id "
                                       "AND ($3::text IS NULL OR m.agent_id > $3) "
                                       "WHERE q.tenant = $1 AND q.id = $2 "
                                       "ORDER BY m.agent_id LIMIT $4",
                   tenant, queue_id, after, limit, &res);
    if (rc < 0)
        return rc;
    rows = PQntuples(res);
    if (rows == 0)
        rc = -ENOENT;
    else if (PQgetisnull(res, 0, 0))
        rows = 0; /* the queue exists, no (more) members */
    if (rc == 0 && rows > 0 && !(*out = calloc((size_t)rows, sizeof(**out))))
        rc = -ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++) {
        struct router_member *m = &(*out)[(*n)++];
        snprintf(m->queue_id, sizeof(m->queue_id), "%s", queue_id);
        col_str(res, i, 0, m->agent_id, sizeof(m->agent_id));
        m->level = col_int(res, i, 1);
        m->position = col_int(res, i, 2);
        m->penalty = col_int(res, i, 3);
        m->created_ms = col_ll(res, i, 4);
        m->updated_ms = col_ll(res, i, 5);
    }
    PQclear(res);
    return rc;
}

/* ---- not-ready reasons ---------------------------------------------------------------------- */

static int reason_row(const PGresult *r, int row, void *reason)
{
    struct router_reason *out = reason;

    memset(out, 0, sizeof(*out));
    col_str(r, row, 0, out->code, sizeof(out->code));
    col_str(r, row, 1, out->label, sizeof(out->label));
    out->counts_as_break = col_bool(r, row, 2);
    out->created_ms = col_ll(r, row, 3);
    out->updated_ms = col_ll(r, row, 4);
    return 0;
}

static void reason_clear_any(void *reason)
{
    (void)reason; /* owns no memory */
}

#define REASON_COLS "code, label, counts_as_break, " MS("created_at") ", " MS("updated_at")

int router_store_reason_put(router_store *st, const char *tenant, struct router_reason *r,
                            bool *created)
{
    PGresult *res;
    int rc = fetch(
        st,
        "INSERT INTO router.not_ready_reasons AS r (tenant, code, label, counts_as_break) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, code) DO UPDATE SET "
        "label = EXCLUDED.label, counts_as_break = EXCLUDED.counts_as_break, "
        "updated_at = now() RETURNING (xmax = 0), " MS("r.created_at") ", " MS("r.updated_at"),
        4, (const char *const[]){tenant, r->code, r->label, r->counts_as_break ? "true" : "false"},
        &res);

    if (rc < 0)
        return rc;
    upserted(res, created, &r->created_ms, &r->updated_ms);
    PQclear(res);
    return 0;
}

int router_store_reason_get(router_store *st, const char *tenant, const char *code,
                            struct router_reason *out)
{
    return get_one(st,
                   "SELECT " REASON_COLS " FROM router.not_ready_reasons "
                   "WHERE tenant = $1 AND code = $2",
                   tenant, code, reason_row, out);
}

int router_store_reason_delete(router_store *st, const char *tenant, const char *code)
{
    return touch_one(st,
                     "DELETE FROM router.not_ready_reasons WHERE tenant = $1 AND code = $2 "
                     "RETURNING 1",
                     2, (const char *const[]){tenant, code});
}

int router_store_reason_list(router_store *st, const char *tenant, const char *after, size_t limit,
                             struct router_reason **out, size_t *n)
{
    PGresult *res;
    int rc = page_query(st,
                        "SELECT " REASON_COLS " FROM router.not_ready_reasons WHERE tenant = $1 "
                        "AND ($2::text IS NULL OR code > $2) ORDER BY code LIMIT $3",
                        tenant, NULL, after, limit, &res);

    *out = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    return rows_to_list(res, sizeof(**out), reason_row, reason_clear_any, (void **)out, n);
}
