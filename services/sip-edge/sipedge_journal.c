/* sipedge_journal: the calls of this process in Redis, liveness, and the recovery of dead
 * instances (see sipedge_journal.h). */
#include "sipedge_journal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cc_bus.h"
#include "cc_event.h"
#include "cc_id.h"
#include "cc_log.h"
#include "cc_redis.h"
#include "cc_time.h"
#include "sipedge_call.h"

#define JOURNAL_KEY_MAX       (SIPEDGE_NAME_MAX + SIPEDGE_ID_MAX + 40)
#define JOURNAL_TICK_MIN_MS   200
#define JOURNAL_TICK_MAX_MS   1000
#define JOURNAL_FLUSH_WAIT_MS 10000 /* the producer, before a recovery deletes what it read */

/* Liveness of one instance (see the header; "x|<ms>|<claimer>" marks one recovered). tick:
 * renews "a|now" unless claimed or recovered (then {'claimed', value}; an entry Redis lost is
 * written again); start: sets it whatever it was (returns the old value); retire: "r|now" unless
 * claimed. Times are Redis's: the instances' clocks may differ. */
static const char lua_liveness[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local k = v and string.sub(v, 1, 2)\n"
    "if ARGV[2] ~= 'start' and (k == 'c|' or k == 'x|') then return {'claimed', v} end\n"
    "local tag = ARGV[2] == 'retire' and 'r|' or 'a|'\n"
    "redis.call('HSET', KEYS[1], ARGV[1], tag .. string.format('%d', now))\n"
    "return {'ok', v or ''}\n";

/* Claims for ARGV[1] every other instance silent for more than ARGV[2] ms, retired, or claimed
 * by a claimer silent that long: returns {id, last seen ms, ...}. */
static const char lua_claim[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local dead = tonumber(ARGV[2])\n"
    "local all, out = redis.call('HGETALL', KEYS[1]), {}\n"
    "for i = 1, #all, 2 do\n"
    "  local id, v = all[i], all[i + 1]\n"
    "  if id ~= ARGV[1] then\n"
    "    local kind, ms, seen = string.sub(v, 1, 1), nil, nil\n"
    "    if kind == 'x' then -- recovered: remembered a day (a late process of it stops)\n"
    "      ms = tonumber(string.match(v, '^x|(%d+)'))\n"
    "      if not ms or now - ms > 86400000 then redis.call('HDEL', KEYS[1], id) end\n"
    "    elseif kind == 'c' then\n"
    "      local a, b = string.match(v, '^c|(%d+)|(%d+)|')\n"
    "      ms, seen = tonumber(a), tonumber(b)\n"
    "    else\n"
    "      ms = tonumber(string.match(v, '^.|(%d+)'))\n"
    "      seen = ms\n"
    "    end\n"
    "    if kind ~= 'x' and (not ms or kind == 'r' or now - ms > dead) then\n"
    "      seen = string.format('%d', seen or now)\n"
    "      redis.call('HSET', KEYS[1], id, 'c|' .. string.format('%d', now) .. '|' .. seen .. "
    "'|' .. ARGV[1])\n"
    "      out[#out + 1] = id\n"
    "      out[#out + 1] = seen\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* The recovery of ARGV[1] by ARGV[2] is over: marks it recovered and deletes its journal
 * (KEYS[2]), if the claim is still ARGV[2]'s. 1 or 0. */
static const char lua_finish[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not v or string.match(v, '^c|%d+|%d+|(.*)$') ~= ARGV[2] then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('HSET', KEYS[1], ARGV[1], 'x|' .. string.format('%d', now) .. '|' .. ARGV[2])\n"
    "redis.call('DEL', KEYS[2])\n"
    "return 1\n";

/* One change waiting to be written. */
struct journal_op {
    struct journal_op *next;
    bool del;
    struct sipedge_journal_entry e; /* del: interaction_id only */
};

struct sipedge_journal {
    struct sipedge_journal_config c;
    char *instance, *redis_url;
    char boot[40];
    char k_prefix[SIPEDGE_ID_MAX + 32]; /* cc:{sipedge:<group>}: */
    char k_instances[JOURNAL_KEY_MAX], k_calls[JOURNAL_KEY_MAX];
    cc_redis *r; /* the journal thread's (the starting thread's before it runs) */
    struct cc_redis_script s_liveness, s_claim, s_finish;
    sipedge_journal_restore_fn restore;
    void *restore_ctx;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards the list, pending, dropped, stop */
    pthread_cond_t cond;
    struct journal_op *head, **tail;
    size_t pending;
    unsigned long dropped;
    struct cc_counter *m_lost, *m_takeovers, *m_dropped; /* NULL without a registry */
    struct cc_gauge *m_pending;
    bool stop, retire;
    /* the journal thread's own (the starting thread's before it runs) */
    bool registered, own_done, fenced;
    int64_t own_seen_ms;    /* when the previous process of this instance was last seen */
    int64_t renewing_since; /* mono ms of the first renewal of the current unbroken run (0) */
};

/* ---- pure helpers ---------------------------------------------------------------------- */

char *sipedge_journal_entry_text(const struct sipedge_journal_entry *e)
{
    json_t *v = json_pack("{s:s, s:s, s:I, s:s}", "tenant", e->tenant, "queue_id", e->queue_id,
                          "created_ms", (json_int_t)e->created_ms, "boot", e->boot);
    char *s;

    if (v && e->agent_id[0]) {
        json_object_set_new(v, "agent_id", json_string(e->agent_id));
        json_object_set_new(v, "answered_ms", json_integer((json_int_t)e->answered_ms));
    }
    s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return s;
}

/* Copies the string member key of v into out (cap bytes); false when absent, not a string, or
 * too long (optional: absent is fine). */
static bool entry_str(json_t *v, const char *key, char *out, size_t cap, bool optional)
{
    json_t *s = json_object_get(v, key);

    out[0] = '\0';
    if (!s)
        return optional;
    if (!json_is_string(s) || json_string_length(s) >= cap)
        return false;
    memcpy(out, json_string_value(s), json_string_length(s) + 1);
    return true;
}

int sipedge_journal_entry_parse(const char *id, const char *text, struct sipedge_journal_entry *out)
{
    json_t *v, *created, *answered;
    bool ok;

    memset(out, 0, sizeof(*out));
    if (!id || !*id || strlen(id) >= sizeof(out->interaction_id) || !text)
        return -EINVAL;
    snprintf(out->interaction_id, sizeof(out->interaction_id), "%s", id);
    v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return -EINVAL;
    }
    created = json_object_get(v, "created_ms");
    answered = json_object_get(v, "answered_ms");
    ok = entry_str(v, "tenant", out->tenant, sizeof(out->tenant), false) && out->tenant[0] &&
         entry_str(v, "queue_id", out->queue_id, sizeof(out->queue_id), false) &&
         entry_str(v, "agent_id", out->agent_id, sizeof(out->agent_id), true) &&
         entry_str(v, "boot", out->boot, sizeof(out->boot), true) && json_is_integer(created) &&
         (!answered || json_is_integer(answered));
    if (ok) {
        out->created_ms = json_integer_value(created);
        out->answered_ms = answered ? json_integer_value(answered) : 0;
    }
    json_decref(v);
    return ok ? 0 : -EINVAL;
}

void sipedge_journal_lost_times(const struct sipedge_journal_entry *e, int64_t seen_ms,
                                int64_t *duration_ms, int64_t *talk_ms)
{
    *duration_ms = seen_ms > e->created_ms ? seen_ms - e->created_ms : 0;
    *talk_ms = e->agent_id[0] && e->answered_ms > 0 && seen_ms > e->answered_ms
                   ? seen_ms - e->answered_ms
                   : 0;
}

/* ---- the list of changes ---------------------------------------------------------------- */

static void journal_push(sipedge_journal *j, struct journal_op *op)
{
    pthread_mutex_lock(&j->lock);
    while (j->pending >= SIPEDGE_JOURNAL_PENDING_MAX && j->head) { /* Redis down for long */
        struct journal_op *old = j->head;

        j->head = old->next;
        if (!j->head)
            j->tail = &j->head;
        j->pending--;
        if (j->dropped++ % 10000 == 0)
            CC_ERROR("the call journal keeps more than %d changes (Redis unavailable): dropping "
                     "the oldest (%lu so far); a crash now may leave calls unreported",
                     SIPEDGE_JOURNAL_PENDING_MAX, j->dropped);
        free(old);
        if (j->m_dropped)
            cc_counter_add(j->m_dropped, 1);
    }
    *j->tail = op;
    j->tail = &op->next;
    j->pending++;
    pthread_mutex_unlock(&j->lock);
}

void sipedge_journal_put(sipedge_journal *j, const struct sipedge_journal_entry *e)
{
    struct journal_op *op;

    if (!j || !(op = malloc(sizeof(*op))))
        return;
    op->next = NULL;
    op->del = false;
    op->e = *e;
    snprintf(op->e.boot, sizeof(op->e.boot), "%s", j->boot);
    journal_push(j, op);
}

void sipedge_journal_del(sipedge_journal *j, const char *interaction_id)
{
    struct journal_op *op;

    if (!j || !(op = calloc(1, sizeof(*op))))
        return;
    op->del = true;
    snprintf(op->e.interaction_id, sizeof(op->e.interaction_id), "%s", interaction_id);
    journal_push(j, op);
}

/* Runs argv (argc entries) and checks for a non-error reply. */
static int journal_cmd(sipedge_journal *j, int argc, const char **argv)
{
    redisReply *rep = cc_redis_commandv(j->r, argc, argv, NULL);
    int rc = rep && rep->type != REDIS_REPLY_ERROR ? 0 : -EIO;

    if (rep && rep->type == REDIS_REPLY_ERROR)
        CC_ERROR("call journal: %s failed: %s", argv[0], rep->str);
    freeReplyObject(rep);
    return rc;
}

static void ops_free(struct journal_op *op)
{
    while (op) {
        struct journal_op *next = op->next;

        free(op);
        op = next;
    }
}

/* Writes the pending changes (one HSET, one HDEL); on failure puts them back first in line. */
static int journal_write(sipedge_journal *j)
{
    struct journal_op *ops, *op, **last;
    size_t n, nput = 0, ndel = 0;
    const char **argv_put = NULL, **argv_del = NULL;
    char **texts = NULL;
    int rc = 0;

    pthread_mutex_lock(&j->lock);
    ops = j->head;
    n = j->pending;
    j->head = NULL;
    j->tail = &j->head;
    j->pending = 0;
    pthread_mutex_unlock(&j->lock);
    if (j->m_pending)
        cc_gauge_set(j->m_pending, (double)n);
    if (!ops)
        return 0;
    argv_put = calloc(2 + 2 * n, sizeof(*argv_put));
    argv_del = calloc(2 + n, sizeof(*argv_del));
    texts = calloc(n, sizeof(*texts));
    if (!argv_put || !argv_del || !texts)
        rc = -ENOMEM;
    if (rc == 0) {
        argv_put[0] = "HSET";
        argv_put[1] = argv_del[1] = j->k_calls;
        argv_del[0] = "HDEL";
    }
    for (op = ops; rc == 0 && op; op = op->next) {
        if (op->del) {
            argv_del[2 + ndel++] = op->e.interaction_id;
            continue;
        }
        texts[nput] = sipedge_journal_entry_text(&op->e);
        if (!texts[nput]) {
            rc = -ENOMEM;
            break;
        }
        argv_put[2 + 2 * nput] = op->e.interaction_id;
        argv_put[3 + 2 * nput] = texts[nput];
        nput++;
    }
    if (rc == 0 && nput > 0)
        rc = journal_cmd(j, 2 + 2 * (int)nput, argv_put);
    if (rc == 0 && ndel > 0)
        rc = journal_cmd(j, 2 + (int)ndel, argv_del);
    for (size_t i = 0; texts && i < nput; i++)
        free(texts[i]);
    free(texts);
    free(argv_put);
    free(argv_del);
    if (rc == 0) {
        ops_free(ops);
        return 0;
    }
    /* first in line again, before what came meanwhile (repeating the HSET is harmless) */
    for (last = &ops; *last; last = &(*last)->next)
        ;
    pthread_mutex_lock(&j->lock);
    *last = j->head;
    if (!j->head)
        j->tail = last;
    j->head = ops;
    j->pending += n;
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* ---- liveness and recovery -------------------------------------------------------------- */

/* The liveness script in mode; *old gets the value it found ("" none) when old is not NULL.
 * 1 = claimed (tick, retire), 0 = done, -EIO. */
static int journal_liveness(sipedge_journal *j, const char *mode, char *old, size_t cap)
{
    const char *argv[] = {j->k_instances, j->instance, mode};
    redisReply *rep = cc_redis_evalsha(j->r, &j->s_liveness, 1, 3, argv, NULL);
    int rc = -EIO;

    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[1]->type == REDIS_REPLY_STRING) {
        rc = strcmp(rep->element[0]->str, "claimed") == 0 ? 1 : 0;
        if (old)
            snprintf(old, cap, "%s", rep->element[1]->str);
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        CC_ERROR("call journal: liveness (%s) failed: %s", mode, rep->str);
    }
    freeReplyObject(rep);
    return rc;
}

/* When an instance whose liveness value was v was last seen (unix ms by Redis's clock); now
 * when v says nothing. */
static int64_t journal_seen(const char *v)
{
    long long a = 0, b = 0;

    if (sscanf(v, "c|%lld|%lld|", &a, &b) == 2 && b > 0)
        return b;
    if ((v[0] == 'a' || v[0] == 'r') && sscanf(v + 1, "|%lld", &a) == 1 && a > 0)
        return a;
    return cc_time_now_ms();
}

/* The journal of instance (key) as entries; own: only those another boot wrote. */
static int journal_entries(sipedge_journal *j, const char *key, bool own,
                           struct sipedge_journal_entry **out, size_t *n)
{
    const char *argv[] = {"HGETALL", key};
    redisReply *rep = cc_redis_commandv(j->r, 2, argv, NULL);
    struct sipedge_journal_entry *es;
    size_t k = 0;

    *out = NULL;
    *n = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rep);
        return -EIO;
    }
    es = rep->elements ? calloc(rep->elements / 2, sizeof(*es)) : NULL;
    if (rep->elements && !es) {
        freeReplyObject(rep);
        return -ENOMEM;
    }
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const char *id = rep->element[i]->str, *text = rep->element[i + 1]->str;

        if (sipedge_journal_entry_parse(id, text, &es[k]) < 0) {
            CC_WARN("call journal '%s': unreadable entry '%.64s': skipped", key, id ? id : "");
            continue;
        }
        if (own && strcmp(es[k].boot, j->boot) == 0)
            continue; /* a call of this process */
        k++;
    }
    freeReplyObject(rep);
    *out = es;
    *n = k;
    return 0;
}

/* Reports every entry that is not a waiting callback as ended (instance_lost) and flushes the
 * producer. Returns how many were reported, or a negative code (nothing may be forgotten). */
static int journal_report(sipedge_journal *j, const char *victim, int64_t seen_ms,
                          const struct sipedge_journal_entry *es, size_t n)
{
    const char **ids = n ? calloc(n, sizeof(*ids)) : NULL;
    bool *cb = n ? calloc(n, sizeof(*cb)) : NULL;
    int rc = 0, reported = 0;

    if (n && (!ids || !cb))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        ids[i] = es[i].interaction_id;
    if (rc == 0 && n)
        rc = sipedge_store_callbacks_exist(j->c.store, ids, n, cb);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct sipedge_journal_entry *e = &es[i];
        struct sipedge_ix ix = {.id = e->interaction_id,
                                .tenant = e->tenant,
                                .queue_id = e->queue_id,
                                .created_ms = e->created_ms};
        int64_t duration, talk;

        if (cb[i])
            continue; /* a waiting callback: whoever holds its row rings it */
        sipedge_journal_lost_times(e, seen_ms, &duration, &talk);
        CC_WARN_CTX(&(struct cc_log_ctx){.interaction_id = e->interaction_id},
                    "call of instance '%s' lost with it%s%s: reporting it ended (instance_lost)",
                    victim, e->agent_id[0] ? ", agent " : "", e->agent_id);
        rc = sipedge_bus_ended_lost(j->c.pub, &ix, e->agent_id[0] ? e->agent_id : NULL, talk,
                                    duration);
        reported++;
    }
    if (rc == 0 && reported > 0)
        rc = cc_producer_flush(j->c.pub->producer, JOURNAL_FLUSH_WAIT_MS);
    if (rc == 0 && reported > 0 && j->m_lost) /* a failure repeats them: counted once */
        cc_counter_add(j->m_lost, (uint64_t)reported);
    free(ids);
    free(cb);
    return rc < 0 ? rc : reported;
}

/* What a previous process of this instance left: reported, then its entries deleted. */
static int journal_recover_own_entries(sipedge_journal *j, int64_t seen_ms)
{
    struct sipedge_journal_entry *es;
    const char **argv;
    size_t n;
    int rc = journal_entries(j, j->k_calls, true, &es, &n);

    if (rc < 0)
        return rc;
    rc = journal_report(j, j->instance, seen_ms, es, n);
    if (rc >= 0 && n > 0) {
        argv = calloc(2 + n, sizeof(*argv));
        if (!argv) {
            rc = -ENOMEM;
        } else {
            argv[0] = "HDEL";
            argv[1] = j->k_calls;
            for (size_t i = 0; i < n; i++)
                argv[2 + i] = es[i].interaction_id;
            if (journal_cmd(j, 2 + (int)n, argv) < 0)
                rc = -EIO;
            free(argv);
        }
    }
    free(es);
    return rc;
}

/* Recovers victim, claimed by this instance (see the header). */
static int journal_recover(sipedge_journal *j, const char *victim, int64_t seen_ms)
{
    char key[JOURNAL_KEY_MAX];
    const char *argv[] = {j->k_instances, key, victim, j->instance};
    struct sipedge_journal_entry *es;
    struct sipedge_callback *rows = NULL;
    size_t n, nrows = 0;
    redisReply *rep;
    int rc, reported, undialled = 0;

    if ((size_t)snprintf(key, sizeof(key), "%scalls:%s", j->k_prefix, victim) >= sizeof(key)) {
        CC_ERROR("cannot recover instance '%.64s...': its name is too long", victim);
        return -ENAMETOOLONG;
    }
    rc = journal_entries(j, key, false, &es, &n);
    if (rc < 0)
        return rc;
    reported = rc = journal_report(j, victim, seen_ms, es, n);
    free(es);
    if (rc >= 0) /* its dialler commands recorded and never dialled, as its own start would */
        undialled = rc = sipedge_calls_recover_originations(j->c.store, j->c.pub, victim,
                                                            j->c.originate_max_age_s);
    if (rc >= 0)
        rc = sipedge_store_callbacks_claim(j->c.store, victim, j->instance, &rows, &nrows);
    if (rc < 0) {
        CC_ERROR("cannot recover instance '%s': %s (its claim ages and is taken again)", victim,
                 strerror(-rc));
        return rc;
    }
    if (nrows > 0)
        j->restore(j->restore_ctx, rows, nrows); /* takes rows */
    else
        free(rows);
    rep = cc_redis_evalsha(j->r, &j->s_finish, 2, 4, argv, NULL);
    freeReplyObject(rep);
    if (j->m_takeovers)
        cc_counter_add(j->m_takeovers, 1);
    CC_WARN("took over instance '%s' (silent since %" PRId64 " ms): %d call(s) reported ended "
            "(instance_lost), %d attempt(s) never dialled reported (not_dialled), %zu queued "
            "callback(s) now waiting here",
            victim, cc_time_now_ms() - seen_ms, reported, undialled, nrows);
    return 0;
}

/* Registers this process (start mode) and recovers its own previous entries. */
static int journal_own(sipedge_journal *j)
{
    char old[256] = "";
    int rc;

    if (!j->registered) {
        if (journal_liveness(j, "start", old, sizeof(old)) < 0)
            return -EIO;
        j->registered = true;
        j->own_seen_ms = journal_seen(old);
        j->renewing_since = cc_time_mono_ms();
    }
    rc = journal_recover_own_entries(j, j->own_seen_ms);
    if (rc >= 0)
        j->own_done = true;
    return rc;
}

/* Renews this instance's liveness; false when it must not go on (fenced, or not registered). */
static bool journal_renew(sipedge_journal *j)
{
    int rc;

    if (!j->registered)
        return journal_own(j) >= 0 || j->registered;
    rc = journal_liveness(j, "tick", NULL, 0);
    if (rc == 1) {
        j->fenced = true;
        CC_ERROR("instance '%s' was taken over by another (it could not renew its liveness for "
                 "%ld ms): stopping, its calls have been reported ended",
                 j->instance, j->c.dead_after_ms);
        kill(getpid(), SIGTERM);
        return false;
    }
    if (rc < 0)
        j->renewing_since = 0;
    else if (j->renewing_since == 0)
        j->renewing_since = cc_time_mono_ms();
    return rc == 0;
}

static void journal_tick(sipedge_journal *j)
{
    const char *argv[3];
    char dead[24];
    redisReply *rep;
    int rc;

    if (j->fenced || !journal_renew(j))
        return;
    if (!j->own_done) {
        rc = journal_own(j);
        if (rc > 0)
            CC_WARN("reported %d call(s) a previous process of this instance left (instance_lost)",
                    rc);
    }
    /* only after dead_after of unbroken renewals: after an outage of Redis every live instance
     * looks silent until it renews, and none may take the others over meanwhile */
    if (j->renewing_since == 0 || cc_time_mono_ms() - j->renewing_since < j->c.dead_after_ms)
        return;
    snprintf(dead, sizeof(dead), "%ld", j->c.dead_after_ms);
    argv[0] = j->k_instances;
    argv[1] = j->instance;
    argv[2] = dead;
    rep = cc_redis_evalsha(j->r, &j->s_claim, 1, 3, argv, NULL);
    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < rep->elements; i += 2)
            journal_recover(j, rep->element[i]->str, strtoll(rep->element[i + 1]->str, NULL, 10));
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        CC_ERROR("call journal: claim failed: %s", rep->str);
    }
    freeReplyObject(rep);
}

/* ---- thread and lifecycle ---------------------------------------------------------------- */

static void *journal_main(void *arg)
{
    sipedge_journal *j = arg;
    long tick_ms = j->c.dead_after_ms / 3;
    int64_t next_tick = 0;
    struct timespec until;
    bool stop;

    if (tick_ms > JOURNAL_TICK_MAX_MS) /* "last seen" ends the lost calls' durations */
        tick_ms = JOURNAL_TICK_MAX_MS;
    if (tick_ms < JOURNAL_TICK_MIN_MS)
        tick_ms = JOURNAL_TICK_MIN_MS;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += SIPEDGE_JOURNAL_FLUSH_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&j->lock);
        if (!j->stop)
            pthread_cond_timedwait(&j->cond, &j->lock, &until);
        stop = j->stop;
        pthread_mutex_unlock(&j->lock);
        journal_write(j);
        if (stop)
            break;
        if (cc_time_mono_ms() >= next_tick) {
            journal_tick(j);
            next_tick = cc_time_mono_ms() + tick_ms;
        }
    }
    if (j->retire && !j->fenced && journal_liveness(j, "retire", NULL, 0) == 0)
        CC_INFO("instance '%s' retired: a live instance takes its waiting callbacks over",
                j->instance);
    return NULL;
}

bool sipedge_journal_group_valid(const char *group)
{
    return group && cc_tenant_valid(group); /* the tenants' rule: a plain name, no hash tag */
}

sipedge_journal *sipedge_journal_new(const struct sipedge_journal_config *c)
{
    sipedge_journal *j;
    pthread_condattr_t attr;

    if (!sipedge_journal_group_valid(c->group)) {
        CC_ERROR("bad CC_SIPEDGE_TAKEOVER_GROUP '%s': 1 to %d letters, digits, '_' or '-'",
                 c->group ? c->group : "", SIPEDGE_ID_MAX);
        return NULL;
    }
    if (!c->instance || !*c->instance || strlen(c->instance) > SIPEDGE_NAME_MAX) {
        CC_ERROR("CC_INSTANCE_ID '%.40s...' is too long for sip-edge (1 to %d characters: it "
                 "names its callbacks and its call journal)",
                 c->instance ? c->instance : "", SIPEDGE_NAME_MAX);
        return NULL;
    }
    j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->c = *c;
    j->instance = strdup(c->instance);
    j->redis_url = strdup(c->redis_url);
    j->c.instance = j->instance;
    j->c.redis_url = j->redis_url;
    j->tail = &j->head;
    pthread_mutex_init(&j->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cond, &attr);
    pthread_condattr_destroy(&attr);
    j->s_liveness = (struct cc_redis_script){.name = "sipedge_liveness", .source = lua_liveness};
    j->s_claim = (struct cc_redis_script){.name = "sipedge_claim", .source = lua_claim};
    j->s_finish = (struct cc_redis_script){.name = "sipedge_finish", .source = lua_finish};
    if (c->metrics) {
        j->m_lost = cc_metrics_counter(c->metrics, "sipedge_calls_lost_total",
                                       "calls of a dead process (this instance's previous one or "
                                       "one taken over) reported ended instance_lost",
                                       NULL);
        j->m_takeovers = cc_metrics_counter(c->metrics, "sipedge_takeovers_total",
                                            "dead sip-edge instances this one recovered", NULL);
        j->m_dropped = cc_metrics_counter(
            c->metrics, "sipedge_journal_dropped_total",
            "call journal changes dropped while Redis was unavailable for too long", NULL);
        j->m_pending =
            cc_metrics_gauge(c->metrics, "sipedge_journal_pending",
                             "call journal changes waiting to be written to Redis", NULL);
    }
    snprintf(j->k_prefix, sizeof(j->k_prefix), "cc:{sipedge:%s}:", c->group);
    snprintf(j->k_instances, sizeof(j->k_instances), "%sinstances", j->k_prefix);
    snprintf(j->k_calls, sizeof(j->k_calls), "%scalls:%s", j->k_prefix, c->instance);
    if (!j->instance || !j->redis_url || cc_uuid_v7(j->boot) < 0 ||
        !(j->r = cc_redis_new(c->redis_url))) {
        sipedge_journal_free(j, false);
        return NULL;
    }
    /* a server that is down now: cc_redis_evalsha loads them when it answers */
    cc_redis_script_load(j->r, &j->s_liveness);
    cc_redis_script_load(j->r, &j->s_claim);
    cc_redis_script_load(j->r, &j->s_finish);
    return j;
}

int sipedge_journal_recover_own(sipedge_journal *j)
{
    int rc = journal_own(j);

    if (rc < 0)
        CC_ERROR("cannot recover the calls a previous process of instance '%s' left: %s (tried "
                 "again every %ld ms)",
                 j->instance, strerror(-rc), j->c.dead_after_ms / 3);
    return rc;
}

int sipedge_journal_start(sipedge_journal *j, sipedge_journal_restore_fn restore, void *ctx)
{
    j->restore = restore;
    j->restore_ctx = ctx;
    if (pthread_create(&j->thread, NULL, journal_main, j) != 0)
        return -EAGAIN;
    j->started = true;
    return 0;
}

void sipedge_journal_free(sipedge_journal *j, bool retire)
{
    if (!j)
        return;
    if (j->started) {
        pthread_mutex_lock(&j->lock);
        j->stop = true;
        j->retire = retire;
        pthread_cond_signal(&j->cond);
        pthread_mutex_unlock(&j->lock);
        pthread_join(j->thread, NULL);
    }
    ops_free(j->head);
    cc_redis_free(j->r);
    pthread_cond_destroy(&j->cond);
    pthread_mutex_destroy(&j->lock);
    free(j->instance);
    free(j->redis_url);
    free(j);
}
