/* sipedge_store: sip-edge's tables in PostgreSQL over a connection pool (see the header). */
#include "sipedge_store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cc_log.h"
#include "cc_pg.h"
#include "cc_pg_pool.h"
#include "cc_time.h"

#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"
#define TS(p)   "to_timestamp(" p "::double precision / 1000)"

#define CRED_COLS                                                                                  \
    "tenant, agent_id, domain, username, ha1, version, " MS("created_at") ", " MS("updated_at")
#define DID_COLS                                                                                   \
    "number, tenant, queue_id, priority, version, " MS("created_at") ", " MS("updated_at")
#define BIND_COLS                                                                                  \
    "tenant, agent_id, domain, username, contact, call_id, cseq, " MS("expires_at") ", " MS(       \
        "updated_at") ", user_agent, source, transport"

#define CACHE_SLOTS   4096 /* direct-mapped: a collision only costs a lookup */
#define CACHE_KEY_MAX (2 * SIPEDGE_NAME_MAX + 4)

enum cache_kind { CACHE_EMPTY, CACHE_DID, CACHE_CRED };

/* One looked-up key: its row, or that there was none (found false: -ENOENT is cached too, so a
 * flood of unknown numbers or users does not reach PostgreSQL). */
struct cache_entry {
    enum cache_kind kind;
    bool found;
    int64_t expires_mono_ms;
    char key[CACHE_KEY_MAX];
    union {
        struct sipedge_did did;
        struct sipedge_credential cred;
    } v;
};

struct sipedge_store {
    cc_pg_pool *pool;
    long cache_ttl_ms;          /* 0: no cache */
    pthread_mutex_t cache_lock; /* guards cache and cache_gen */
    uint64_t cache_gen;         /* +1 per invalidation: a lookup racing a write is not cached */
    struct cache_entry *cache;  /* CACHE_SLOTS, NULL when ttl is 0 */
};

/* ---- plumbing ------------------------------------------------------------------------------- */

sipedge_store *sipedge_store_new_cached(const char *dsn, unsigned pool_size,
                                        long acquire_timeout_ms, long cache_ttl_ms)
{
    sipedge_store *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    st->cache_ttl_ms = cache_ttl_ms > 0 ? cache_ttl_ms : 0;
    if (st->cache_ttl_ms > 0) {
        st->cache = calloc(CACHE_SLOTS, sizeof(*st->cache));
        if (!st->cache)
            goto out_store;
    }
    pthread_mutex_init(&st->cache_lock, NULL);
    st->pool = cc_pg_pool_new(dsn, pool_size, acquire_timeout_ms);
    if (!st->pool) {
        CC_ERROR("sipedge store: cannot open the connection pool");
        goto out_lock;
    }
    return st;
out_lock:
    pthread_mutex_destroy(&st->cache_lock);
    free(st->cache);
out_store:
    free(st);
    return NULL;
}

sipedge_store *sipedge_store_new(const char *dsn, unsigned pool_size, long acquire_timeout_ms)
{
    return sipedge_store_new_cached(dsn, pool_size, acquire_timeout_ms,
                                    SIPEDGE_STORE_CACHE_TTL_MS_DEFAULT);
}

void sipedge_store_free(sipedge_store *st)
{
    if (!st)
        return;
    cc_pg_pool_free(st->pool);
    pthread_mutex_destroy(&st->cache_lock);
    free(st->cache);
    free(st);
}

/* ---- lookup cache --------------------------------------------------------------------------- */

/* "d:<number>" or "c:<lowercased domain>\n<username>" (domains compare case-insensitively). */
static void cache_key(char key[CACHE_KEY_MAX], enum cache_kind kind, const char *a, const char *b)
{
    size_t n = 0;

    key[n++] = kind == CACHE_DID ? 'd' : 'c';
    key[n++] = ':';
    for (; *a && n < CACHE_KEY_MAX - 2; a++)
        key[n++] = (char)(*a >= 'A' && *a <= 'Z' ? *a + 32 : *a);
    if (b) {
        key[n++] = '\n';
        for (; *b && n < CACHE_KEY_MAX - 1; b++)
            key[n++] = *b;
    }
    key[n] = '\0';
}

static struct cache_entry *cache_slot(sipedge_store *st, const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return &st->cache[h % CACHE_SLOTS];
}

/* 1 and *e copied on a fresh hit, 0 on a miss (with *gen for cache_put). */
static int cache_get(sipedge_store *st, const char *key, struct cache_entry *e, uint64_t *gen)
{
    struct cache_entry *slot;
    int hit;

    if (!st->cache)
        return 0;
    pthread_mutex_lock(&st->cache_lock);
    slot = cache_slot(st, key);
    hit = slot->kind != CACHE_EMPTY && slot->expires_mono_ms > cc_time_mono_ms() &&
          strcmp(slot->key, key) == 0;
    if (hit)
        *e = *slot;
    *gen = st->cache_gen;
    pthread_mutex_unlock(&st->cache_lock);
    return hit;
}

/* Keeps e unless an invalidation happened since the lookup began (gen from cache_get). */
static void cache_put(sipedge_store *st, const struct cache_entry *e, uint64_t gen)
{
    struct cache_entry *slot;

    if (!st->cache)
        return;
    pthread_mutex_lock(&st->cache_lock);
    if (st->cache_gen == gen) {
        slot = cache_slot(st, e->key);
        *slot = *e;
        slot->expires_mono_ms = cc_time_mono_ms() + st->cache_ttl_ms;
    }
    pthread_mutex_unlock(&st->cache_lock);
}

/* Forgets a key after a write through this instance (whatever the write's outcome). */
static void cache_forget(sipedge_store *st, enum cache_kind kind, const char *a, const char *b)
{
    char key[CACHE_KEY_MAX];
    struct cache_entry *slot;

    if (!st->cache || !a)
        return;
    cache_key(key, kind, a, b);
    pthread_mutex_lock(&st->cache_lock);
    st->cache_gen++;
    slot = cache_slot(st, key);
    if (strcmp(slot->key, key) == 0)
        slot->kind = CACHE_EMPTY;
    pthread_mutex_unlock(&st->cache_lock);
}

int sipedge_store_migrate(sipedge_store *st, const char *dir)
{
    cc_pg *pg = cc_pg_pool_acquire(st->pool);
    int applied = 0, rc;

    if (!pg)
        return -EAGAIN;
    rc = cc_pg_migrate(pg, "sipedge", dir, &applied);
    cc_pg_pool_release(st->pool, pg);
    if (rc == 0)
        CC_INFO("sipedge schema migrated: %d migration(s) applied from '%s'", applied, dir);
    return rc < 0 ? -EIO : 0;
}

bool sipedge_store_ready(sipedge_store *st, char *why, size_t len)
{
    return cc_pg_pool_ready(st->pool, why, len);
}

/* Runs one prepared statement on a pooled connection: 0 and *res (PQclear it), or the mapped
 * failure (-EAGAIN when no connection came free). */
static int run(sipedge_store *st, const char *name, const char *sql, int n,
               const char *const *params, PGresult **res)
{
    cc_pg *pg = cc_pg_pool_acquire(st->pool);
    int rc = 0;

    *res = NULL;
    if (!pg)
        return -EAGAIN;
    *res = cc_pg_query_prepared(pg, name, sql, n, params);
    if (!*res)
        rc = cc_pg_pool_errno(pg);
    cc_pg_pool_release(st->pool, pg);
    return rc;
}

/* As run(), for statements that RETURN at most one row: -ENOENT when none came back. */
static int run_one(sipedge_store *st, const char *name, const char *sql, int n,
                   const char *const *params, PGresult **res)
{
    int rc = run(st, name, sql, n, params, res);

    if (rc == 0 && PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
        rc = -ENOENT;
    }
    return rc;
}

static long long col_ll(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void col_str(const PGresult *r, int row, int col, char *out, size_t cap)
{
    snprintf(out, cap, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* Runs a prepared query and fills one malloc'd element of size bytes per row with fill: the
 * array into *out (NULL when *n is 0). 0 or a negative code. */
static int run_rows(sipedge_store *st, const char *name, const char *sql, int n,
                    const char *const *params, size_t size,
                    void (*fill)(const PGresult *res, int row, void *out), void **out,
                    size_t *count)
{
    PGresult *res;
    char *rows;
    int rc, nrows;

    *out = NULL;
    *count = 0;
    rc = run(st, name, sql, n, params, &res);
    if (rc < 0)
        return rc;
    nrows = PQntuples(res);
    rows = nrows > 0 ? calloc((size_t)nrows, size) : NULL;
    if (nrows > 0 && !rows) {
        PQclear(res);
        return -ENOMEM;
    }
    for (int i = 0; i < nrows; i++)
        fill(res, i, rows + (size_t)i * size);
    PQclear(res);
    *out = rows;
    *count = (size_t)nrows;
    return 0;
}

/* The text of a number parameter. */
static const char *num(char buf[24], long long v)
{
    snprintf(buf, 24, "%lld", v);
    return buf;
}

/* The pg text of if_version: NULL (unconditional) or the number. */
static const char *version_param(long long if_version, char buf[24])
{
    return if_version > 0 ? num(buf, if_version) : NULL;
}

static void credential_from_row(const PGresult *r, int row, struct sipedge_credential_row *out)
{
    memset(out, 0, sizeof(*out));
    col_str(r, row, 0, out->c.tenant, sizeof(out->c.tenant));
    col_str(r, row, 1, out->c.agent_id, sizeof(out->c.agent_id));
    col_str(r, row, 2, out->c.domain, sizeof(out->c.domain));
    col_str(r, row, 3, out->c.username, sizeof(out->c.username));
    col_str(r, row, 4, out->c.ha1, sizeof(out->c.ha1));
    out->version = col_ll(r, row, 5);
    out->created_ms = col_ll(r, row, 6);
    out->updated_ms = col_ll(r, row, 7);
}

static void did_from_row(const PGresult *r, int row, struct sipedge_did_row *out)
{
    memset(out, 0, sizeof(*out));
    col_str(r, row, 0, out->d.number, sizeof(out->d.number));
    col_str(r, row, 1, out->d.tenant, sizeof(out->d.tenant));
    col_str(r, row, 2, out->d.queue_id, sizeof(out->d.queue_id));
    out->d.priority = (int)col_ll(r, row, 3);
    out->version = col_ll(r, row, 4);
    out->created_ms = col_ll(r, row, 5);
    out->updated_ms = col_ll(r, row, 6);
}

static void binding_from_row(const PGresult *r, int row, struct sipedge_binding *b)
{
    memset(b, 0, sizeof(*b));
    col_str(r, row, 0, b->tenant, sizeof(b->tenant));
    col_str(r, row, 1, b->agent_id, sizeof(b->agent_id));
    col_str(r, row, 2, b->domain, sizeof(b->domain));
    col_str(r, row, 3, b->username, sizeof(b->username));
    col_str(r, row, 4, b->contact, sizeof(b->contact));
    col_str(r, row, 5, b->call_id, sizeof(b->call_id));
    b->cseq = (uint32_t)col_ll(r, row, 6);
    b->expires_at_ms = col_ll(r, row, 7);
    b->updated_at_ms = col_ll(r, row, 8);
    col_str(r, row, 9, b->user_agent, sizeof(b->user_agent));
    col_str(r, row, 10, b->source, sizeof(b->source));
    col_str(r, row, 11, b->transport, sizeof(b->transport));
}

/* The end of a listing: rc when negative (out and n untouched), else every row of res copied
 * through from_row into a malloc'd array (*out, *n rows; -ENOMEM); res freed either way. */
static int rows_out(int rc, PGresult *res, size_t elem,
                    void (*from_row)(const PGresult *, int, void *), void **out, size_t *n)
{
    int rows;

    if (rc < 0) {
        PQclear(res);
        return rc;
    }
    rows = PQntuples(res);
    *out = NULL;
    *n = 0;
    if (rows > 0) {
        *out = calloc((size_t)rows, elem);
        if (!*out) {
            PQclear(res);
            return -ENOMEM;
        }
    }
    for (int i = 0; i < rows; i++)
        from_row(res, i, (char *)*out + (size_t)i * elem);
    *n = (size_t)rows;
    PQclear(res);
    return 0;
}

static void credential_row_any(const PGresult *r, int row, void *out)
{
    credential_from_row(r, row, out);
}

static void did_row_any(const PGresult *r, int row, void *out)
{
    did_from_row(r, row, out);
}

static void binding_row_any(const PGresult *r, int row, void *out)
{
    binding_from_row(r, row, out);
}

/* The end of a one-row statement: rc when negative, else 0 with row 0 of res read into out
 * through from_row; res freed either way (NULL ok). */
static int row_out(int rc, PGresult *res, void (*from_row)(const PGresult *, int, void *),
                   void *out)
{
    if (rc >= 0) {
        from_row(res, 0, out);
        rc = 0;
    }
    PQclear(res);
    return rc;
}

/* -ENOENT or -ESTALE after a conditional write touched nothing: does the row exist at all? */
static int missing_or_stale(sipedge_store *st, const char *name, const char *sql, int n,
                            const char *const *params)
{
    PGresult *res;
    int rc = run(st, name, sql, n, params, &res);

    if (rc < 0)
        return rc;
    rc = PQntuples(res) > 0 ? -ESTALE : -ENOENT;
    PQclear(res);
    return rc;
}

/* A conditional write (UPDATE/DELETE ... RETURNING under a version): 0 and *res with its row,
 * or, when it touched nothing, -ESTALE / -ENOENT as the key (the first nkey params) still exists
 * or not. */
static int run_versioned(sipedge_store *st, const char *name, const char *sql, int n,
                         const char *const *params, const char *exists_name, const char *exists_sql,
                         int nkey, PGresult **res)
{
    int rc = run(st, name, sql, n, params, res);

    if (rc < 0 || PQntuples(*res) > 0)
        return rc;
    PQclear(*res);
    *res = NULL;
    return missing_or_stale(st, exists_name, exists_sql, nkey, params);
}

/* ---- lookups on the call / REGISTER path ---------------------------------------------------- */

/* Answers e->key from the cache, or asks fetch (0 with e->v filled, -ENOENT, or another error)
 * and caches a row or its absence. */
static int cached(sipedge_store *st, struct cache_entry *e,
                  int (*fetch)(sipedge_store *st, struct cache_entry *e))
{
    uint64_t gen = 0;
    int rc;

    if (cache_get(st, e->key, e, &gen))
        return e->found ? 0 : -ENOENT;
    rc = fetch(st, e);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    e->found = rc == 0;
    cache_put(st, e, gen);
    return rc;
}

static int credential_fetch(sipedge_store *st, struct cache_entry *e)
{
    const char *params[] = {e->v.cred.domain, e->v.cred.username};
    struct sipedge_credential_row row;
    PGresult *res;
    int rc = run_one(st, "sipedge_cred_get",
                     "SELECT " CRED_COLS " FROM sipedge.credentials "
                     "WHERE domain = lower($1) AND username = $2",
                     2, params, &res);

    rc = row_out(rc, res, credential_row_any, &row);
    if (rc == 0)
        e->v.cred = row.c;
    return rc;
}

static int did_fetch(sipedge_store *st, struct cache_entry *e)
{
    const char *params[] = {e->v.did.number};
    struct sipedge_did_row row;
    PGresult *res;
    int rc = run_one(st, "sipedge_did_get",
                     "SELECT " DID_COLS " FROM sipedge.dids WHERE number = $1", 1, params, &res);

    rc = row_out(rc, res, did_row_any, &row);
    if (rc == 0)
        e->v.did = row.d;
    return rc;
}

int sipedge_store_credential_get(sipedge_store *st, const char *domain, const char *username,
                                 struct sipedge_credential *out)
{
    struct cache_entry e = {.kind = CACHE_CRED};
    int rc;

    if (!domain || !username)
        return -ENOENT;
    cache_key(e.key, CACHE_CRED, domain, username);
    snprintf(e.v.cred.domain, sizeof(e.v.cred.domain), "%s", domain);
    snprintf(e.v.cred.username, sizeof(e.v.cred.username), "%s", username);
    rc = cached(st, &e, credential_fetch);
    if (rc == 0)
        *out = e.v.cred;
    return rc;
}

int sipedge_store_did_get(sipedge_store *st, const char *number, struct sipedge_did *out)
{
    struct cache_entry e = {.kind = CACHE_DID};
    int rc;

    if (!number)
        return -ENOENT;
    cache_key(e.key, CACHE_DID, number, NULL);
    snprintf(e.v.did.number, sizeof(e.v.did.number), "%s", number);
    rc = cached(st, &e, did_fetch);
    if (rc == 0)
        *out = e.v.did;
    return rc;
}

/* ---- bindings ------------------------------------------------------------------------------- */

int sipedge_store_binding_put(sipedge_store *st, const struct sipedge_binding *b)
{
    char cseq[24], expires[24], updated[24];
    const char *params[] = {b->domain,
                            b->username,
                            b->contact,
                            b->tenant,
                            b->agent_id,
                            b->call_id,
                            num(cseq, b->cseq),
                            num(expires, b->expires_at_ms),
                            num(updated, b->updated_at_ms),
                            b->user_agent,
                            b->source,
                            b->transport[0] ? b->transport : "udp"};
    PGresult *res;
    int rc;

    /* a refresh of the same Call-ID must carry a higher CSeq (RFC 3261 10.3 step 7) */
    rc = run(st, "sipedge_bind_put",
             "INSERT INTO sipedge.bindings AS b (domain, username, contact, tenant, agent_id, "
             "call_id, cseq, expires_at, updated_at, user_agent, source, transport) "
             "VALUES (lower($1), $2, $3, $4, $5, $6, $7, " TS("$8") ", " TS(
                 "$9") ", $10, $11, "
                       "$12) ON CONFLICT (domain, username, contact) DO UPDATE SET tenant = "
                       "EXCLUDED.tenant, agent_id = EXCLUDED.agent_id, call_id = EXCLUDED.call_id, "
                       "cseq = "
                       "EXCLUDED.cseq, expires_at = EXCLUDED.expires_at, updated_at = "
                       "EXCLUDED.updated_at, "
                       "user_agent = EXCLUDED.user_agent, source = EXCLUDED.source, transport = "
                       "EXCLUDED.transport WHERE b.call_id <> EXCLUDED.call_id OR b.cseq < "
                       "EXCLUDED.cseq "
                       "RETURNING 1",
             12, params, &res);
    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1 ? 0 : -EALREADY;
    PQclear(res);
    return rc;
}

int sipedge_store_origination_claim(sipedge_store *st, const struct sipedge_origination *o)
{
    char prio[24], at[24];
    const char *params[] = {o->attempt_id,
                            o->tenant,
                            o->interaction_id,
                            o->campaign_id,
                            o->destination,
                            o->queue_id,
                            o->caller_id,
                            o->customer_id,
                            o->instance,
                            num(prio, o->priority),
                            num(at, o->recorded_ms)};
    PGresult *res;
    int rc;

    rc = run(st, "sipedge_orig_claim",
             "INSERT INTO sipedge.originations (attempt_id, tenant, interaction_id, campaign_id, "
             "destination, queue_id, caller_id, customer_id, instance, priority, state, "
             "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'recorded', " TS(
                 "$11") ") ON CONFLICT (attempt_id) DO NOTHING RETURNING 1",
             11, params, &res);
    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1 ? 0 : -EALREADY;
    PQclear(res);
    return rc;
}

/* recorded -> to (dialled | orphaned) for attempt_id: 0, or -EALREADY when not recorded. */
static int origination_move(sipedge_store *st, const char *name, const char *sql,
                            const char *attempt_id)
{
    const char *params[] = {attempt_id};
    PGresult *res;
    int rc = run(st, name, sql, 1, params, &res);

    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1 ? 0 : -EALREADY;
    PQclear(res);
    return rc;
}

int sipedge_store_origination_take(sipedge_store *st, const char *attempt_id)
{
    return origination_move(st, "sipedge_orig_take",
                            "UPDATE sipedge.originations SET state = 'dialled' WHERE attempt_id = "
                            "$1 AND state = 'recorded' RETURNING 1",
                            attempt_id);
}

int sipedge_store_origination_orphan(sipedge_store *st, const char *attempt_id)
{
    return origination_move(st, "sipedge_orig_orphan",
                            "UPDATE sipedge.originations SET state = 'orphaned' WHERE attempt_id = "
                            "$1 AND state = 'recorded' RETURNING 1",
                            attempt_id);
}

static void origination_fill(const PGresult *res, int i, void *out)
{
    struct sipedge_origination *o = out;

    col_str(res, i, 0, o->attempt_id, sizeof(o->attempt_id));
    col_str(res, i, 1, o->tenant, sizeof(o->tenant));
    col_str(res, i, 2, o->interaction_id, sizeof(o->interaction_id));
    col_str(res, i, 3, o->campaign_id, sizeof(o->campaign_id));
    col_str(res, i, 4, o->queue_id, sizeof(o->queue_id));
    col_str(res, i, 5, o->customer_id, sizeof(o->customer_id));
    col_str(res, i, 6, o->caller_id, sizeof(o->caller_id));
    col_str(res, i, 7, o->destination, sizeof(o->destination));
    col_str(res, i, 8, o->instance, sizeof(o->instance));
    o->priority = (int)col_ll(res, i, 9);
    o->recorded_ms = col_ll(res, i, 10);
}

int sipedge_store_origination_recorded(sipedge_store *st, const char *instance,
                                       int64_t older_than_ms, size_t limit,
                                       struct sipedge_origination **out, size_t *n)
{
    char before[24], lim[24];
    const char *params[] = {instance, num(before, older_than_ms), num(lim, (long long)limit)};

    return run_rows(
        st, "sipedge_orig_recorded",
        "SELECT attempt_id, tenant, interaction_id, campaign_id, queue_id, customer_id, "
        "caller_id, destination, instance, priority, " MS(
            "created_at") " FROM "
                          "sipedge.originations WHERE state = 'recorded' AND (instance = $1 OR "
                          "created_at < " TS("$2") ") ORDER BY created_at LIMIT $3",
        3, params, sizeof(**out), origination_fill, (void **)out, n);
}

int sipedge_store_callback_put(sipedge_store *st, const struct sipedge_callback *cb)
{
    char prio[24], at[24], sched[24];
    const char *params[] = {cb->interaction_id,
                            cb->tenant,
                            cb->queue_id,
                            cb->number,
                            cb->caller,
                            cb->dialled,
                            cb->host,
                            num(prio, cb->priority),
                            cb->instance,
                            num(at, cb->created_ms),
                            cb->at_ms > 0 ? num(sched, cb->at_ms) : NULL};
    PGresult *res;
    int rc;

    rc = run(st, "sipedge_cb_put",
             "INSERT INTO sipedge.callbacks (interaction_id, tenant, queue_id, number, caller, "
             "dialled, host, priority, instance, created_at, scheduled_at) VALUES ($1, $2, $3, "
             "$4, $5, $6, $7, $8, $9, " TS("$10") ", " TS("$11") ") ON CONFLICT (interaction_id) "
                                                                 "DO NOTHING RETURNING 1",
             11, params, &res);
    if (rc < 0)
        return rc;
    rc = PQntuples(res) == 1 ? 0 : -EALREADY;
    PQclear(res);
    return rc;
}

int sipedge_store_callback_moved(sipedge_store *st, const char *interaction_id,
                                 const char *queue_id)
{
    const char *params[] = {interaction_id, queue_id};
    PGresult *res;
    int rc = run(st, "sipedge_cb_moved",
                 "UPDATE sipedge.callbacks SET queue_id = $2 WHERE interaction_id = $1", 2, params,
                 &res);

    PQclear(res);
    return rc;
}

int sipedge_store_callback_delete(sipedge_store *st, const char *interaction_id)
{
    const char *params[] = {interaction_id};
    PGresult *res;
    int rc = run(st, "sipedge_cb_delete", "DELETE FROM sipedge.callbacks WHERE interaction_id = $1",
                 1, params, &res);

    PQclear(res);
    return rc;
}

static void callback_fill(const PGresult *res, int i, void *out)
{
    struct sipedge_callback *cb = out;

    col_str(res, i, 0, cb->interaction_id, sizeof(cb->interaction_id));
    col_str(res, i, 1, cb->tenant, sizeof(cb->tenant));
    col_str(res, i, 2, cb->queue_id, sizeof(cb->queue_id));
    col_str(res, i, 3, cb->number, sizeof(cb->number));
    col_str(res, i, 4, cb->caller, sizeof(cb->caller));
    col_str(res, i, 5, cb->dialled, sizeof(cb->dialled));
    col_str(res, i, 6, cb->host, sizeof(cb->host));
    cb->priority = (int)col_ll(res, i, 7);
    col_str(res, i, 8, cb->instance, sizeof(cb->instance));
    cb->created_ms = col_ll(res, i, 9);
    cb->at_ms = col_ll(res, i, 10);
}

int sipedge_store_callbacks_claim(sipedge_store *st, const char *from, const char *to,
                                  struct sipedge_callback **out, size_t *n)
{
    const char *params[] = {from, to};

    return run_rows(st, "sipedge_cb_claim",
                    "WITH t AS (UPDATE sipedge.callbacks SET instance = $2 WHERE instance = $1 "
                    "RETURNING interaction_id, tenant, queue_id, number, caller, dialled, host, "
                    "priority, instance, " MS("created_at") ", " MS(
                        "scheduled_at") ", "
                                        "requested_at) SELECT * FROM t ORDER BY requested_at",
                    2, params, sizeof(**out), callback_fill, (void **)out, n);
}

int sipedge_store_callbacks_exist(sipedge_store *st, const char *const *ids, size_t n, bool *exists)
{
    json_t *arr = json_array();
    const char *params[1];
    PGresult *res;
    char *text;
    int rc;

    for (size_t i = 0; i < n; i++) {
        exists[i] = false;
        if (arr && json_array_append_new(arr, json_string(ids[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (!text)
        return -ENOMEM;
    params[0] = text;
    rc = run(st, "sipedge_cb_exist",
             "SELECT interaction_id FROM sipedge.callbacks WHERE interaction_id IN (SELECT "
             "jsonb_array_elements_text($1::jsonb))",
             1, params, &res);
    free(text);
    if (rc < 0)
        return rc;
    for (int r = 0; r < PQntuples(res); r++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(PQgetvalue(res, r, 0), ids[i]) == 0)
                exists[i] = true;
    PQclear(res);
    return 0;
}

int sipedge_store_binding_remove(sipedge_store *st, const char *domain, const char *username,
                                 const char *contact)
{
    const char *params[] = {domain, username, contact};
    PGresult *res;
    int rc;

    if (contact)
        rc = run(st, "sipedge_bind_rm_one",
                 "DELETE FROM sipedge.bindings WHERE domain = lower($1) AND username = $2 AND "
                 "contact = $3",
                 3, params, &res);
    else
        rc = run(st, "sipedge_bind_rm_all",
                 "DELETE FROM sipedge.bindings WHERE domain = lower($1) AND username = $2", 2,
                 params, &res);
    PQclear(res);
    return rc;
}

/* Calls fn for every row of res as a binding; returns the row count and frees res. */
static int each_binding(PGresult *res, sipedge_binding_fn fn, void *ctx)
{
    int rows = PQntuples(res);
    struct sipedge_binding b;

    for (int i = 0; fn && i < rows; i++) {
        binding_from_row(res, i, &b);
        fn(ctx, &b);
    }
    PQclear(res);
    return rows;
}

int sipedge_store_bindings_of(sipedge_store *st, const char *domain, const char *username,
                              int64_t now_ms, sipedge_binding_fn fn, void *ctx)
{
    char now[24];
    const char *params[] = {domain, username, num(now, now_ms)};
    PGresult *res;
    int rc = run(st, "sipedge_bind_of",
                 "SELECT " BIND_COLS " FROM sipedge.bindings WHERE domain = lower($1) AND "
                 "username = $2 AND expires_at > " TS("$3") " ORDER BY updated_at DESC, contact",
                 3, params, &res);

    return rc < 0 ? rc : each_binding(res, fn, ctx);
}

int sipedge_store_bindings_expire(sipedge_store *st, int64_t now_ms, int limit,
                                  sipedge_binding_fn fn, void *ctx)
{
    char now[24], lim[24];
    const char *params[] = {num(now, now_ms), num(lim, limit)};
    PGresult *res;
    int rc;

    if (limit < 1)
        return 0;
    /* SKIP LOCKED: instances sweeping at once share the work instead of queueing on it */
    rc = run(st, "sipedge_bind_expire",
             "DELETE FROM sipedge.bindings WHERE ctid IN (SELECT ctid FROM sipedge.bindings "
             "WHERE expires_at <= " TS("$1") " ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP "
                                             "LOCKED) RETURNING " BIND_COLS,
             2, params, &res);
    return rc < 0 ? rc : each_binding(res, fn, ctx);
}

int sipedge_store_binding_list(sipedge_store *st, const char *tenant, const char *agent_id,
                               int64_t now_ms, const char *after_domain, const char *after_username,
                               const char *after_contact, size_t limit,
                               struct sipedge_binding **out, size_t *n)
{
    char now[24], lim[24];
    const char *params[] = {tenant,         agent_id,      num(now, now_ms),          after_domain,
                            after_username, after_contact, num(lim, (long long)limit)};
    PGresult *res;
    int rc = run(
        st, "sipedge_bind_list",
        "SELECT " BIND_COLS " FROM sipedge.bindings WHERE tenant = $1 AND ($2::text IS "
        "NULL OR agent_id = $2) AND expires_at > " TS(
            "$3") " AND ($4::text IS NULL OR "
                  "(domain, username, contact) > ($4, $5, $6)) ORDER BY domain, username, contact "
                  "LIMIT $7",
        7, params, &res);

    return rows_out(rc, res, sizeof(**out), binding_row_any, (void **)out, n);
}

/* ---- credentials (administration) ----------------------------------------------------------- */

int sipedge_store_credential_create(sipedge_store *st, struct sipedge_credential_row *row)
{
    const char *params[] = {row->c.domain, row->c.username, row->c.tenant, row->c.agent_id,
                            row->c.ha1};
    PGresult *res;
    int rc = run_one(st, "sipedge_cred_create",
                     "INSERT INTO sipedge.credentials (domain, username, tenant, agent_id, ha1) "
                     "SELECT lower($1), $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM "
                     "sipedge.credentials WHERE domain = lower($1) AND tenant <> $3) "
                     "RETURNING " CRED_COLS,
                     5, params, &res);

    cache_forget(st, CACHE_CRED, row->c.domain, row->c.username);
    if (rc == -ENOENT)
        return -EPERM; /* nothing inserted, no error: the domain is another tenant's */
    return row_out(rc, res, credential_row_any, row);
}

int sipedge_store_credential_read(sipedge_store *st, const char *tenant, const char *domain,
                                  const char *username, struct sipedge_credential_row *out)
{
    const char *params[] = {tenant, domain, username};
    PGresult *res;
    int rc = run_one(st, "sipedge_cred_read",
                     "SELECT " CRED_COLS " FROM sipedge.credentials WHERE tenant = $1 AND domain "
                     "= lower($2) AND username = $3",
                     3, params, &res);

    return row_out(rc, res, credential_row_any, out);
}

#define CRED_EXISTS_SQL                                                                            \
    "SELECT 1 FROM sipedge.credentials WHERE tenant = $1 AND domain = lower($2) AND username = $3"

int sipedge_store_credential_update(sipedge_store *st, const char *tenant, const char *domain,
                                    const char *username, const char *agent_id, const char *ha1,
                                    long long if_version, struct sipedge_credential_row *out)
{
    char v[24];
    const char *params[] = {tenant, domain, username, agent_id, ha1, version_param(if_version, v)};
    PGresult *res;
    int rc = run_versioned(
        st, "sipedge_cred_update",
        "WITH c AS (UPDATE sipedge.credentials SET agent_id = coalesce($4, agent_id), "
        "ha1 = coalesce($5, ha1), version = version + 1, updated_at = now() WHERE tenant "
        "= $1 AND domain = lower($2) AND username = $3 AND ($6::bigint IS NULL OR "
        "version = $6) RETURNING " CRED_COLS "), b AS (UPDATE sipedge.bindings AS x SET "
        "agent_id = c.agent_id FROM c WHERE x.domain = c.domain AND x.username = "
        "c.username AND x.agent_id <> c.agent_id) SELECT * FROM c",
        6, params, "sipedge_cred_exists", CRED_EXISTS_SQL, 3, &res);

    cache_forget(st, CACHE_CRED, domain, username);
    return row_out(rc, res, credential_row_any, out);
}

int sipedge_store_credential_delete(sipedge_store *st, const char *tenant, const char *domain,
                                    const char *username, long long if_version)
{
    char v[24];
    const char *params[] = {tenant, domain, username, version_param(if_version, v)};
    PGresult *res;
    int rc = run_versioned(
        st, "sipedge_cred_delete",
        "DELETE FROM sipedge.credentials WHERE tenant = $1 AND domain = lower($2) AND "
        "username = $3 AND ($4::bigint IS NULL OR version = $4) RETURNING 1",
        4, params, "sipedge_cred_exists", CRED_EXISTS_SQL, 3, &res);

    cache_forget(st, CACHE_CRED, domain, username);
    PQclear(res);
    return rc;
}

int sipedge_store_credential_list(sipedge_store *st, const char *tenant, const char *agent_id,
                                  const char *after_domain, const char *after_username,
                                  size_t limit, struct sipedge_credential_row **out, size_t *n)
{
    char lim[24];
    const char *params[] = {tenant, agent_id, after_domain, after_username,
                            num(lim, (long long)limit)};
    PGresult *res;
    int rc = run(st, "sipedge_cred_list",
                 "SELECT " CRED_COLS " FROM sipedge.credentials WHERE tenant = $1 AND ($2::text "
                 "IS NULL OR agent_id = $2) AND ($3::text IS NULL OR (domain, username) > ($3, "
                 "$4)) ORDER BY domain, username LIMIT $5",
                 5, params, &res);

    return rows_out(rc, res, sizeof(**out), credential_row_any, (void **)out, n);
}

/* ---- DIDs (administration) ------------------------------------------------------------------ */

int sipedge_store_did_create(sipedge_store *st, struct sipedge_did_row *row)
{
    char prio[24];
    const char *params[] = {row->d.number, row->d.tenant, row->d.queue_id,
                            num(prio, row->d.priority)};
    PGresult *res;
    int rc = run_one(st, "sipedge_did_create",
                     "INSERT INTO sipedge.dids (number, tenant, queue_id, priority) VALUES ($1, "
                     "$2, $3, $4) RETURNING " DID_COLS,
                     4, params, &res);

    cache_forget(st, CACHE_DID, row->d.number, NULL);
    return row_out(rc, res, did_row_any, row);
}

int sipedge_store_did_read(sipedge_store *st, const char *tenant, const char *number,
                           struct sipedge_did_row *out)
{
    const char *params[] = {tenant, number};
    PGresult *res;
    int rc = run_one(st, "sipedge_did_read",
                     "SELECT " DID_COLS " FROM sipedge.dids WHERE tenant = $1 AND number = $2", 2,
                     params, &res);

    return row_out(rc, res, did_row_any, out);
}

#define DID_EXISTS_SQL "SELECT 1 FROM sipedge.dids WHERE tenant = $1 AND number = $2"

int sipedge_store_did_update(sipedge_store *st, const char *tenant, const char *number,
                             const char *queue_id, int priority, long long if_version,
                             struct sipedge_did_row *out)
{
    char prio[24], v[24];
    const char *params[] = {tenant, number, queue_id, num(prio, priority),
                            version_param(if_version, v)};
    PGresult *res;
    int rc = run_versioned(
        st, "sipedge_did_update",
        "UPDATE sipedge.dids SET queue_id = $3, priority = $4, version = version + 1, "
        "updated_at = now() WHERE tenant = $1 AND number = $2 AND ($5::bigint IS NULL "
        "OR version = $5) RETURNING " DID_COLS,
        5, params, "sipedge_did_exists", DID_EXISTS_SQL, 2, &res);

    cache_forget(st, CACHE_DID, number, NULL);
    return row_out(rc, res, did_row_any, out);
}

int sipedge_store_did_delete(sipedge_store *st, const char *tenant, const char *number,
                             long long if_version)
{
    char v[24];
    const char *params[] = {tenant, number, version_param(if_version, v)};
    PGresult *res;
    int rc = run_versioned(
        st, "sipedge_did_delete",
        "DELETE FROM sipedge.dids WHERE tenant = $1 AND number = $2 AND ($3::bigint IS "
        "NULL OR version = $3) RETURNING 1",
        3, params, "sipedge_did_exists", DID_EXISTS_SQL, 2, &res);

    cache_forget(st, CACHE_DID, number, NULL);
    PQclear(res);
    return rc;
}

int sipedge_store_did_list(sipedge_store *st, const char *tenant, const char *after, size_t limit,
                           struct sipedge_did_row **out, size_t *n)
{
    char lim[24];
    const char *params[] = {tenant, after, num(lim, (long long)limit)};
    PGresult *res;
    int rc = run(st, "sipedge_did_list",
                 "SELECT " DID_COLS " FROM sipedge.dids WHERE tenant = $1 AND ($2::text IS NULL "
                 "OR number > $2) ORDER BY number LIMIT $3",
                 3, params, &res);

    return rows_out(rc, res, sizeof(**out), did_row_any, (void **)out, n);
}
