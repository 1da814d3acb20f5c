/* router_state: C API over the router's Lua script (router_lua.c); see router_state.h. */
#include "router_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_event.h"
#include "cc_log.h"
#include "cc_redis.h"
#include "router_lua.h"

#define RS_ARGS_MAX 240 /* script arguments: 64 skills x 2 + config pairs + fixed ones */
#define RS_NUMS_MAX 120 /* numbers formatted for one call */
#define RS_NUM_LEN  24

#define RS_KEY_MAX 128

#define RS_FUNCTION "cc_router" /* the function the library registers */

struct router_state {
    cc_redis *redis;
    char outbox[RS_KEY_MAX + 1]; /* KEYS[1] of every call */
    char timers[RS_KEY_MAX + 1]; /* KEYS[2] */
};

/* The argument vector of one script call, with storage for the numbers it formats. */
struct rs_args {
    int n;
    bool overflow;
    const char *v[RS_ARGS_MAX];
    int nnum;
    char num[RS_NUMS_MAX][RS_NUM_LEN];
};

static const char *const agent_state_names[ROUTER_AGENT_STATE_COUNT] = {
    [ROUTER_AGENT_LOGGED_OUT] = "logged_out", [ROUTER_AGENT_AVAILABLE] = "available",
    [ROUTER_AGENT_RESERVED] = "reserved",     [ROUTER_AGENT_BUSY] = "busy",
    [ROUTER_AGENT_WRAP_UP] = "wrap_up",       [ROUTER_AGENT_NOT_READY] = "not_ready",
};

static const char *const status_names[] = {
    [ROUTER_ST_OK] = "ok",
    [ROUTER_ST_NOOP] = "noop",
    [ROUTER_ST_QUEUED] = "queued",
    [ROUTER_ST_REJECTED] = "rejected",
    [ROUTER_ST_OVERFLOWED] = "overflowed",
    [ROUTER_ST_TIMED_OUT] = "timed_out",
};

const char *router_agent_state_name(enum router_agent_state s)
{
    if ((unsigned)s >= ROUTER_AGENT_STATE_COUNT)
        return "unknown";
    return agent_state_names[s];
}

int router_agent_state_parse(const char *s, enum router_agent_state *out)
{
    if (!s)
        return -EINVAL;
    for (int i = 0; i < ROUTER_AGENT_STATE_COUNT; i++) {
        if (strcmp(s, agent_state_names[i]) == 0) {
            *out = (enum router_agent_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *router_state_status_name(enum router_state_status s)
{
    if ((unsigned)s >= sizeof(status_names) / sizeof(status_names[0]))
        return "unknown";
    return status_names[s];
}

/* ---- argument checks ---------------------------------------------------------------------- */

/* An interaction id as the event schemas define ids (common.schema.json#/$defs/id). */
static bool ix_id_valid(const char *s)
{
    return cc_event_id_valid(s, ROUTER_STATE_IX_MAX);
}

static bool party_valid(const char *by)
{
    return by && (!strcmp(by, "agent") || !strcmp(by, "supervisor") || !strcmp(by, "system"));
}

static bool skills_valid(const struct router_skill *skills, size_t n)
{
    if (n > ROUTER_SKILLS_MAX || (n > 0 && !skills))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!router_id_valid(skills[i].skill) || skills[i].level < 1 || skills[i].level > 5)
            return false;
    }
    return true;
}

/* ---- argument vector ---------------------------------------------------------------------- */

static void args_str(struct rs_args *a, const char *s)
{
    if (a->n >= RS_ARGS_MAX) {
        a->overflow = true;
        return;
    }
    a->v[a->n++] = s ? s : "";
}

static void args_ll(struct rs_args *a, long long v)
{
    if (a->nnum >= RS_NUMS_MAX) {
        a->overflow = true;
        return;
    }
    snprintf(a->num[a->nnum], RS_NUM_LEN, "%lld", v);
    args_str(a, a->num[a->nnum++]);
}

/* The fixed head: the two keys, then command, tenant, now, seed. */
static void args_head(struct rs_args *a, const router_state *rs, const char *cmd,
                      const char *tenant, int64_t now_ms, uint64_t seed)
{
    a->n = 0;
    a->nnum = 0;
    a->overflow = false;
    args_str(a, rs->outbox);
    args_str(a, rs->timers);
    args_str(a, cmd);
    args_str(a, tenant);
    args_ll(a, now_ms);
    args_ll(a, (long long)(seed % 2147483646u));
}

/* ---- replies ------------------------------------------------------------------------------ */

static void copy_str(char *dst, size_t size, const redisReply *r)
{
    size_t n = 0;

    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)) {
        n = r->len < size - 1 ? r->len : size - 1;
        memcpy(dst, r->str, n);
    }
    dst[n] = '\0';
}

/* Maps a script error reply to a code; logs the unexpected ones. */
static int error_code(const redisReply *reply, const char *cmd)
{
    if (!strncmp(reply->str, "NOSTATE", 7))
        return -ESTALE;
    if (!strncmp(reply->str, "ENOENT", 6))
        return -ENOENT;
    if (!strncmp(reply->str, "EINVAL", 6))
        return -EINVAL;
    CC_ERROR("router state script failed: \"%s\": %s", cmd, reply->str);
    return -EIO;
}

/* FUNCTION LOAD REPLACE of the library: 0, -EIO (unreachable) or -EINVAL (refused: a bug). */
static int library_load(router_state *rs)
{
    redisReply *reply =
        cc_redis_command(rs->redis, "FUNCTION LOAD REPLACE %s", router_lua_source());
    int rc = 0;

    if (!reply)
        return -EIO;
    if (reply->type == REDIS_REPLY_ERROR) {
        CC_ERROR("router state library refused: %s", reply->str);
        rc = -EINVAL;
    }
    freeReplyObject(reply);
    return rc;
}

static bool function_missing(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "Function not found");
}

/* FCALL cc_router 2 <outbox> <timers> <args...>; loads the library again once when the server
 * lost it (restart without persistence, FUNCTION FLUSH). NULL when Redis is unreachable. */
static redisReply *fcall_argv(router_state *rs, int argc, const char **argv)
{
    redisReply *reply = cc_redis_commandv(rs->redis, argc, argv, NULL);

    if (reply && function_missing(reply)) {
        CC_INFO("router state library missing, loading it again");
        freeReplyObject(reply);
        reply = NULL;
        if (library_load(rs) == 0)
            reply = cc_redis_commandv(rs->redis, argc, argv, NULL);
    }
    return reply;
}

static redisReply *fcall(router_state *rs, const struct rs_args *a)
{
    const char *argv[RS_ARGS_MAX + 3] = {"FCALL", RS_FUNCTION, "2"};

    memcpy(argv + 3, a->v, sizeof(a->v[0]) * (size_t)a->n);
    return fcall_argv(rs, a->n + 3, argv);
}

/* Runs the function with a; *out gets the reply (caller frees) when the call returns 0. */
static int run(router_state *rs, struct rs_args *a, redisReply **out)
{
    redisReply *reply;
    int rc;

    *out = NULL;
    if (a->overflow)
        return -EINVAL;
    reply = fcall(rs, a);
    if (!reply)
        return -EIO;
    if (reply->type == REDIS_REPLY_ERROR) {
        rc = error_code(reply, a->v[2]);
        freeReplyObject(reply);
        return rc;
    }
    *out = reply;
    return 0;
}

/* Parses {status, detail, queue, agent_state, nevents, noffers, (ix, agent, queue)...}. */
static int parse_result(const redisReply *reply, struct router_state_result *res)
{
    const redisReply *const *e;
    enum router_agent_state st;
    char state[16];
    size_t kept;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 6)
        return -EPROTO;
    e = (const redisReply *const *)reply->element;
    if (e[0]->type != REDIS_REPLY_INTEGER || e[4]->type != REDIS_REPLY_INTEGER ||
        e[5]->type != REDIS_REPLY_INTEGER || e[0]->integer < 0 ||
        e[0]->integer > ROUTER_ST_TIMED_OUT || e[5]->integer < 0 ||
        reply->elements != 6 + 3 * (size_t)e[5]->integer)
        return -EPROTO;
    if (!res)
        return 0;
    memset(res, 0, sizeof(*res));
    res->status = (enum router_state_status)e[0]->integer;
    copy_str(res->detail, sizeof(res->detail), e[1]);
    copy_str(res->queue_id, sizeof(res->queue_id), e[2]);
    copy_str(state, sizeof(state), e[3]);
    res->agent_state = router_agent_state_parse(state, &st) == 0 ? st : ROUTER_AGENT_STATE_COUNT;
    res->nevents = (size_t)e[4]->integer;
    res->noffers = (size_t)e[5]->integer;
    kept = res->noffers < ROUTER_STATE_OFFERS_MAX ? res->noffers : ROUTER_STATE_OFFERS_MAX;
    for (size_t i = 0; i < kept; i++) {
        struct router_state_offer *o = &res->offers[i];
        copy_str(o->interaction_id, sizeof(o->interaction_id), e[6 + 3 * i]);
        copy_str(o->agent_id, sizeof(o->agent_id), e[7 + 3 * i]);
        copy_str(o->queue_id, sizeof(o->queue_id), e[8 + 3 * i]);
    }
    return 0;
}

/* Runs a command that answers the standard result. */
static int run_result(router_state *rs, struct rs_args *a, struct router_state_result *res)
{
    redisReply *reply;
    int rc = run(rs, a, &reply);

    if (rc < 0)
        return rc;
    rc = parse_result(reply, res);
    if (rc < 0)
        CC_ERROR("router state script answered an unexpected reply: \"%s\" type %d", a->v[2],
                 reply->type);
    freeReplyObject(reply);
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

router_state *router_state_new(const char *redis_url)
{
    router_state *rs = calloc(1, sizeof(*rs));

    if (!rs) {
        CC_ERROR("router state failed: out of memory");
        return NULL;
    }
    rs->redis = cc_redis_new(redis_url);
    if (!rs->redis)
        goto free_rs;
    snprintf(rs->outbox, sizeof(rs->outbox), "%s", ROUTER_STATE_OUTBOX);
    snprintf(rs->timers, sizeof(rs->timers), "%s", ROUTER_STATE_TIMERS);
    if (library_load(rs) == -EINVAL)
        goto free_redis; /* the library does not compile: a bug, not an outage */
    return rs;

free_redis:
    cc_redis_free(rs->redis);
free_rs:
    free(rs);
    return NULL;
}

void router_state_free(router_state *rs)
{
    if (!rs)
        return;
    cc_redis_free(rs->redis);
    free(rs);
}

int router_state_set_keys(router_state *rs, const char *outbox, const char *timers)
{
    if (!rs || !outbox || !timers || !*outbox || !*timers || strlen(outbox) > RS_KEY_MAX ||
        strlen(timers) > RS_KEY_MAX)
        return -EINVAL;
    memcpy(rs->outbox, outbox, strlen(outbox) + 1);
    memcpy(rs->timers, timers, strlen(timers) + 1);
    return 0;
}

/* ---- epoch and rebuild lock --------------------------------------------------------------- */

int router_state_epoch_get(router_state *rs, long long *epoch)
{
    redisReply *reply;
    int rc = 0;

    if (!rs || !epoch)
        return -EINVAL;
    reply = cc_redis_command(rs->redis, "GET %s", ROUTER_STATE_EPOCH);
    if (!reply)
        return -EIO;
    if (reply->type == REDIS_REPLY_NIL)
        rc = -ENOENT;
    else if (reply->type == REDIS_REPLY_STRING)
        *epoch = strtoll(reply->str, NULL, 10);
    else
        rc = -EPROTO;
    freeReplyObject(reply);
    return rc;
}

int router_state_set_epoch(router_state *rs, long long epoch)
{
    redisReply *reply;
    int rc;

    if (!rs || epoch <= 0)
        return -EINVAL;
    reply = cc_redis_command(rs->redis, "SET %s %lld", ROUTER_STATE_EPOCH, epoch);
    if (!reply)
        return -EIO;
    rc = reply->type == REDIS_REPLY_STATUS ? 0 : -EPROTO;
    freeReplyObject(reply);
    return rc;
}

int router_state_rebuild_lock(router_state *rs, const char *owner, long ttl_ms)
{
    redisReply *reply;
    int rc;

    if (!rs || !owner || !*owner || ttl_ms <= 0)
        return -EINVAL;
    reply = cc_redis_command(rs->redis, "SET cc:rebuild %s NX PX %ld", owner, ttl_ms);
    if (!reply)
        return -EIO;
    if (reply->type == REDIS_REPLY_STATUS)
        rc = 0;
    else if (reply->type == REDIS_REPLY_NIL)
        rc = -EBUSY;
    else
        rc = -EPROTO;
    freeReplyObject(reply);
    return rc;
}

int router_state_rebuild_unlock(router_state *rs, const char *owner)
{
    redisReply *reply;
    int rc;

    if (!rs || !owner || !*owner)
        return -EINVAL;
    reply = cc_redis_command(rs->redis, "EVAL %s 1 cc:rebuild %s",
                             "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                             "return redis.call('DEL', KEYS[1]) end return 0",
                             owner);
    if (!reply)
        return -EIO;
    rc = reply->type == REDIS_REPLY_INTEGER ? 0 : -EPROTO;
    freeReplyObject(reply);
    return rc;
}

/* ---- configuration sync ------------------------------------------------------------------- */

int router_state_sync_agent(router_state *rs, const char *tenant, const struct router_agent *a,
                            int64_t now_ms)
{
    struct rs_args args;

    if (!rs || !cc_tenant_valid(tenant) || !a || !router_id_valid(a->id) ||
        !skills_valid(a->skills, a->nskills))
        return -EINVAL;
    args_head(&args, rs, "sync_agent", tenant, now_ms, 0);
    args_str(&args, a->id);
    args_str(&args, a->enabled ? "1" : "0");
    for (int ch = 0; ch < ROUTER_CH_COUNT; ch++)
        args_ll(&args, a->capacity[ch]);
    args_str(&args, a->voice_blocks_other ? "1" : "0");
    for (size_t i = 0; i < a->nskills; i++) {
        args_str(&args, a->skills[i].skill);
        args_ll(&args, a->skills[i].level);
    }
    return run_result(rs, &args, NULL);
}

int router_state_remove_agent(router_state *rs, const char *tenant, const char *agent_id,
                              int64_t now_ms)
{
    struct rs_args args;

    if (!rs || !cc_tenant_valid(tenant) || !router_id_valid(agent_id))
        return -EINVAL;
    args_head(&args, rs, "remove_agent", tenant, now_ms, 0);
    args_str(&args, agent_id);
    return run_result(rs, &args, NULL);
}

/* "level:after_s,..." of the tier rules (sorted by level in the model). */
static void tiers_text(const struct router_queue *q, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < q->ntiers && len < size; i++) {
        int n = snprintf(buf + len, size - len, "%s%d:%d", i ? "," : "", q->tiers[i].level,
                         q->tiers[i].after_s);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

int router_state_sync_queue(router_state *rs, const char *tenant, const struct router_queue *q,
                            int64_t now_ms)
{
    struct rs_args args;
    char tiers[ROUTER_TIERS_MAX * 24];
    int pairs_at;

    if (!rs || !cc_tenant_valid(tenant) || !q || !router_id_valid(q->id) ||
        !skills_valid(q->skills, q->nskills) || q->ntiers > ROUTER_TIERS_MAX)
        return -EINVAL;
    tiers_text(q, tiers, sizeof(tiers));
    args_head(&args, rs, "sync_queue", tenant, now_ms, 0);
    args_str(&args, q->id);
    pairs_at = args.n;
    args_str(&args, "0"); /* pair count, set below */
    args_str(&args, "strategy");
    args_str(&args, router_strategy_name(q->strategy));
    args_str(&args, "priority");
    args_ll(&args, q->priority);
    args_str(&args, "channels");
    args_ll(&args, q->channels);
    args_str(&args, "wrapup_s");
    args_ll(&args, q->wrapup_s);
    args_str(&args, "ring_timeout_s");
    args_ll(&args, q->ring_timeout_s);
    args_str(&args, "max_no_answer");
    args_ll(&args, q->max_no_answer);
    args_str(&args, "max_wait_s");
    args_ll(&args, q->max_wait_s);
    args_str(&args, "max_length");
    args_ll(&args, q->max_length);
    args_str(&args, "ring_progressive_interval_s");
    args_ll(&args, q->ring_progressive_interval_s);
    args_str(&args, "overflow_queue_id");
    args_str(&args, q->overflow_queue_id);
    args_str(&args, "no_agent_action");
    args_str(&args, router_no_agent_action_name(q->no_agent_action));
    args_str(&args, "callback_enabled");
    args_str(&args, q->callback_enabled ? "1" : "0");
    args_str(&args, "closed_action");
    args_str(&args, router_closed_action_name(q->closed_action));
    args_str(&args, "closed_reason");
    args_str(&args, q->closed_reason);
    args_str(&args, "tiers");
    args_str(&args, tiers);
    args_str(&args, "sl_threshold_s");
    args_ll(&args, q->sl_threshold_s);
    args.v[pairs_at] = "16";
    for (size_t i = 0; i < q->nskills; i++) {
        args_str(&args, q->skills[i].skill);
        args_ll(&args, q->skills[i].level);
    }
    return run_result(rs, &args, NULL);
}

int router_state_remove_queue(router_state *rs, const char *tenant, const char *queue_id,
                              int64_t now_ms)
{
    struct rs_args args;

    if (!rs || !cc_tenant_valid(tenant) || !router_id_valid(queue_id))
        return -EINVAL;
    args_head(&args, rs, "remove_queue", tenant, now_ms, 0);
    args_str(&args, queue_id);
    return run_result(rs, &args, NULL);
}

int router_state_sync_member(router_state *rs, const char *tenant, const struct router_member *m,
                             int64_t now_ms)
{
    struct rs_args args;

    if (!rs || !cc_tenant_valid(tenant) || !m || !router_id_valid(m->queue_id) ||
        !router_id_valid(m->agent_id) || m->level < 1 || m->level > ROUTER_LEVEL_MAX ||
        m->position < 1 || m->position > ROUTER_POSITION_MAX || m->penalty < 0 ||
        m->penalty > ROUTER_PENALTY_MAX)
        return -EINVAL;
    args_head(&args, rs, "sync_member", tenant, now_ms, 0);
    args_str(&args, m->queue_id);
    args_str(&args, m->agent_id);
    args_ll(&args, m->level);
    args_ll(&args, m->position);
    args_ll(&args, m->penalty);
    return run_result(rs, &args, NULL);
}

int router_state_remove_member(router_state *rs, const char *tenant, const char *queue_id,
                               const char *agent_id, int64_t now_ms)
{
    struct rs_args args;

    if (!rs || !cc_tenant_valid(tenant) || !router_id_valid(queue_id) || !router_id_valid(agent_id))
        return -EINVAL;
    args_head(&args, rs, "remove_member", tenant, now_ms, 0);
    args_str(&args, queue_id);
    args_str(&args, agent_id);
    return run_result(rs, &args, NULL);
}

/* ---- agent commands ----------------------------------------------------------------------- */

static int agent_cmd(router_state *rs, const char *tenant, const char *agent_id, const char *op,
                     const char *arg, const char *by, int64_t now_ms, uint64_t seed,
                     struct router_state_result *res)
{
    struct rs_args args;

    if (!by)
        by = "system";
    if (!rs || !cc_tenant_valid(tenant) || !router_id_valid(agent_id) || !party_valid(by))
        return -EINVAL;
    args_head(&args, rs, "agent", tenant, now_ms, seed);
    args_str(&args, agent_id);
    args_str(&args, op);
    args_str(&args, arg);
    args_str(&args, by);
    return run_result(rs, &args, res);
}

int router_state_agent_login(router_state *rs, const char *tenant, const char *agent_id, bool ready,
                             const char *reason, const char *by, int64_t now_ms, uint64_t seed,
                             struct router_state_result *res)
{
    const char *arg = "";

    if (!ready) {
        arg = reason && *reason ? reason : "login";
        if (!router_id_valid(arg))
            return -EINVAL;
    }
    return agent_cmd(rs, tenant, agent_id, "login", arg, by, now_ms, seed, res);
}

int router_state_agent_available(router_state *rs, const char *tenant, const char *agent_id,
                                 const char *by, int64_t now_ms, uint64_t seed,
                                 struct router_state_result *res)
{
    return agent_cmd(rs, tenant, agent_id, "available", "", by, now_ms, seed, res);
}

int router_state_agent_not_ready(router_state *rs, const char *tenant, const char *agent_id,
                                 const char *reason, const char *by, int64_t now_ms,
                                 struct router_state_result *res)
{
    if (!router_id_valid(reason))
        return -EINVAL;
    return agent_cmd(rs, tenant, agent_id, "not_ready", reason, by, now_ms, 0, res);
}

int router_state_agent_logout(router_state *rs, const char *tenant, const char *agent_id,
                              const char *by, int64_t now_ms, uint64_t seed,
                              struct router_state_result *res)
{
    return agent_cmd(rs, tenant, agent_id, "logout", "", by, now_ms, seed, res);
}

int router_state_agent_wrapup_end(router_state *rs, const char *tenant, const char *agent_id,
                                  const char *by, int64_t now_ms, uint64_t seed,
                                  struct router_state_result *res)
{
    return agent_cmd(rs, tenant, agent_id, "wrapup_end", "", by, now_ms, seed, res);
}

int router_state_agent_wrapup_extend(router_state *rs, const char *tenant, const char *agent_id,
                                     int seconds, const char *by, int64_t now_ms,
                                     struct router_state_result *res)
{
    char text[16];

    if (seconds < 1 || seconds > 3600)
        return -EINVAL;
    snprintf(text, sizeof(text), "%d", seconds);
    return agent_cmd(rs, tenant, agent_id, "wrapup_extend", text, by, now_ms, 0, res);
}

int router_state_agent_set_contact(router_state *rs, const char *tenant, const char *agent_id,
                                   const char *contact, int64_t now_ms)
{
    if (contact && strlen(contact) > 1024)
        return -EINVAL;
    return agent_cmd(rs, tenant, agent_id, "contact", contact ? contact : "", "system", now_ms, 0,
                     NULL);
}

/* ---- interaction commands ----------------------------------------------------------------- */

/* {"skill": min_proficiency, ...} as text (free()), "" for none; NULL on ENOMEM. */
static char *skills_json(const struct router_skill *skills, size_t n)
{
    json_t *o;
    char *text;

    if (n == 0)
        return strdup("");
    o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (json_object_set_new(o, skills[i].skill, json_integer(skills[i].level)) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return text;
}

/* At most ROUTER_STATE_EXCLUDE_MAX agent ids (excluded by a requeue). */
static bool exclude_valid(const char *const *ids, size_t n)
{
    if (n > ROUTER_STATE_EXCLUDE_MAX || (n && !ids))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!router_id_valid(ids[i]))
            return false;
    return true;
}

static bool enqueue_valid(const struct router_enqueue *req)
{
    return req && cc_tenant_valid(req->tenant) && ix_id_valid(req->interaction_id) &&
           router_id_valid(req->queue_id) && (unsigned)req->channel < ROUTER_CH_COUNT &&
           req->priority >= 0 && req->priority <= ROUTER_PRIORITY_MAX &&
           skills_valid(req->skills, req->nskills) &&
           (!req->callback_number || strlen(req->callback_number) <= 512) &&
           (!req->request_id || strlen(req->request_id) <= ROUTER_STATE_IX_MAX);
}

static int enqueue_run(router_state *rs, const struct router_enqueue *req, const char *held_by,
                       bool silent, struct router_state_result *res)
{
    struct rs_args args;
    char *skills;
    int rc;

    if (!rs || !enqueue_valid(req) || (held_by && *held_by && !router_id_valid(held_by)) ||
        !exclude_valid(req->exclude, req->nexclude))
        return -EINVAL;
    skills = skills_json(req->skills, req->nskills);
    if (!skills)
        return -ENOMEM;
    args_head(&args, rs, "enqueue", req->tenant, req->now_ms, req->seed);
    args_str(&args, req->interaction_id);
    args_str(&args, req->queue_id);
    args_str(&args, router_channel_name(req->channel));
    args_ll(&args, req->priority);
    args_str(&args, skills);
    args_str(&args, req->callback_number);
    args_str(&args, req->request_id);
    args_str(&args, req->closed ? "1" : "0");
    args_ll(&args, req->enqueued_ms);
    args_str(&args, held_by);
    args_str(&args, silent ? "1" : "0");
    if (silent) { /* a restore: what a requeue left */
        if (req->order_ms > 0)
            args_ll(&args, req->order_ms);
        else
            args_str(&args, "");
        for (size_t i = 0; i < req->nexclude; i++)
            args_str(&args, req->exclude[i]);
    }
    rc = run_result(rs, &args, res);
    free(skills);
    return rc;
}

int router_state_enqueue(router_state *rs, const struct router_enqueue *req,
                         struct router_state_result *res)
{
    return enqueue_run(rs, req, NULL, false, res);
}

/* The arguments of a batch of enqueues: the FCALL head, then per command its count and ARGV. */
struct rs_batch {
    const char **argv;
    int argc;
    char (*num)[RS_NUM_LEN]; /* RS_BATCH_NUMS per command */
    char **skills;           /* per command, free()d */
    size_t *sent;            /* index in reqs of each command sent */
    size_t nsent;
};

#define RS_BATCH_ARGS 17 /* per command: its count, its consume time, 15 arguments */
#define RS_BATCH_NUMS 6

static void batch_release(struct rs_batch *b, size_t n)
{
    if (b->skills) {
        for (size_t i = 0; i < n; i++)
            free(b->skills[i]);
    }
    free(b->skills);
    free(b->argv);
    free(b->num);
    free(b->sent);
}

/* Appends the ARGV of enqueue req (as enqueue_run builds it) to b. 0 or -ENOMEM. */
static int batch_add(struct rs_batch *b, const struct router_enqueue *req)
{
    const size_t k = b->nsent;
    char(*num)[RS_NUM_LEN] = b->num + k * RS_BATCH_NUMS;
    const char **v = b->argv + b->argc;

    b->skills[k] = skills_json(req->skills, req->nskills);
    if (!b->skills[k])
        return -ENOMEM;
    snprintf(num[0], RS_NUM_LEN, "%d", RS_BATCH_ARGS - 2);
    snprintf(num[1], RS_NUM_LEN, "%lld", (long long)req->now_ms);
    snprintf(num[2], RS_NUM_LEN, "%lld", (long long)(req->seed % 2147483646u));
    snprintf(num[3], RS_NUM_LEN, "%d", req->priority);
    snprintf(num[4], RS_NUM_LEN, "%lld", (long long)req->enqueued_ms);
    if (req->consumed_us > 0)
        snprintf(num[5], RS_NUM_LEN, "%lld", (long long)req->consumed_us);
    v[0] = num[0];
    v[1] = num[5]; /* "" when unknown */
    v[2] = "enqueue";
    v[3] = req->tenant;
    v[4] = num[1];
    v[5] = num[2];
    v[6] = req->interaction_id;
    v[7] = req->queue_id;
    v[8] = router_channel_name(req->channel);
    v[9] = num[3];
    v[10] = b->skills[k];
    v[11] = req->callback_number ? req->callback_number : "";
    v[12] = req->request_id ? req->request_id : "";
    v[13] = req->closed ? "1" : "0";
    v[14] = num[4];
    v[15] = "";
    v[16] = "0";
    b->argc += RS_BATCH_ARGS;
    b->nsent++;
    return 0;
}

/* Allocates b for n commands of at most per_cmd arguments and nums numbers each, and writes
 * the FCALL head. 0 or -ENOMEM (b then released by batch_release). */
static int batch_init(router_state *rs, struct rs_batch *b, size_t n, size_t per_cmd, size_t nums)
{
    b->argv = calloc(7 + n * per_cmd, sizeof(*b->argv)); /* FCALL head (7), then commands */
    b->num = calloc(n * nums, sizeof(*b->num));
    b->skills = calloc(n, sizeof(*b->skills));
    b->sent = calloc(n, sizeof(*b->sent));
    if (!b->argv || !b->num || !b->skills || !b->sent)
        return -ENOMEM;
    b->argv[0] = "FCALL";
    b->argv[1] = RS_FUNCTION;
    b->argv[2] = "2";
    b->argv[3] = rs->outbox;
    b->argv[4] = rs->timers;
    b->argv[5] = "batch";
    b->argc = 7; /* argv[6]: the count, set by batch_send */
    return 0;
}

/* Runs the commands of b in one script call: fills rcs[] (and res[]) of the commands sent
 * (b->sent), *epoch with the epoch they ran in. what names them in errors. */
static void batch_send(router_state *rs, struct rs_batch *b, const char *what,
                       struct router_state_result *res, int *rcs, long long *epoch)
{
    char count[RS_NUM_LEN];
    redisReply *reply;

    if (b->nsent == 0)
        return;
    snprintf(count, sizeof(count), "%zu", b->nsent);
    b->argv[6] = count;
    reply = fcall_argv(rs, b->argc, b->argv);
    /* one reply per command, then the epoch they ran in */
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != b->nsent + 1 ||
        reply->element[b->nsent]->type != REDIS_REPLY_STRING) {
        int code = !reply                             ? -EIO
                   : reply->type == REDIS_REPLY_ERROR ? error_code(reply, "batch")
                                                      : -EPROTO;
        for (size_t k = 0; k < b->nsent; k++)
            rcs[b->sent[k]] = code;
        if (reply)
            freeReplyObject(reply);
        return;
    }
    for (size_t k = 0; k < b->nsent; k++) {
        const redisReply *e = reply->element[k];
        size_t i = b->sent[k];
        if (e->type == REDIS_REPLY_ERROR)
            rcs[i] = error_code(e, what);
        else if (parse_result(e, res ? &res[i] : NULL) < 0)
            rcs[i] = -EPROTO;
        else
            rcs[i] = 0;
    }
    *epoch = strtoll(reply->element[b->nsent]->str, NULL, 10);
    freeReplyObject(reply);
}

static bool enqueue_valid_cmd(const void *cmd)
{
    return enqueue_valid(cmd);
}

static int batch_add_cmd(struct rs_batch *b, const void *cmd)
{
    return batch_add(b, cmd);
}

/* The ARGV of a fact in a batch: its count, "" (no consume time), then as a single call. */
#define RS_FACT_ARGS 10 /* count, consume time, command, tenant, now, seed, id, 2 arguments */
#define RS_FACT_NUMS 4  /* count, now, seed, talk time */

static bool fact_valid(const struct router_fact *f)
{
    if (!f || !cc_tenant_valid(f->tenant) || !ix_id_valid(f->interaction_id))
        return false;
    switch (f->kind) {
    case ROUTER_FACT_ANSWERED:
    case ROUTER_FACT_NO_ANSWER:
        return router_id_valid(f->agent_id);
    case ROUTER_FACT_ENDED:
        return (!f->agent_id || !*f->agent_id || router_id_valid(f->agent_id)) && f->talk_ms >= 0;
    case ROUTER_FACT_ABANDONED:
    case ROUTER_FACT_CANCELLED:
        return true;
    }
    return false;
}

/* Appends the ARGV of fact f (valid) to b, as the single call (router_state_answered, ...)
 * builds it. */
static void fact_add(struct rs_batch *b, const struct router_fact *f)
{
    static const char *const cmd[] = {
        [ROUTER_FACT_ANSWERED] = "answered",   [ROUTER_FACT_ENDED] = "ended",
        [ROUTER_FACT_ABANDONED] = "leave",     [ROUTER_FACT_CANCELLED] = "leave",
        [ROUTER_FACT_NO_ANSWER] = "no_answer",
    };
    char(*num)[RS_NUM_LEN] = b->num + b->nsent * RS_FACT_NUMS;
    const char **v = b->argv + b->argc;
    int n = 7;

    snprintf(num[1], RS_NUM_LEN, "%lld", (long long)f->now_ms);
    snprintf(num[2], RS_NUM_LEN, "%lld", (long long)(f->seed % 2147483646u));
    v[1] = "";
    v[2] = cmd[f->kind];
    v[3] = f->tenant;
    v[4] = num[1];
    v[5] = num[2];
    v[6] = f->interaction_id;
    if (f->kind == ROUTER_FACT_ABANDONED || f->kind == ROUTER_FACT_CANCELLED) {
        v[n++] = f->kind == ROUTER_FACT_ABANDONED ? "abandoned" : "cancelled";
    } else if (f->kind == ROUTER_FACT_ENDED) {
        snprintf(num[3], RS_NUM_LEN, "%lld", (long long)f->talk_ms);
        v[n++] = f->agent_id ? f->agent_id : "";
        v[n++] = num[3];
    } else {
        v[n++] = f->agent_id;
    }
    snprintf(num[0], RS_NUM_LEN, "%d", n - 2);
    v[0] = num[0];
    b->argc += n;
    b->nsent++;
}

static bool fact_valid_cmd(const void *cmd)
{
    return fact_valid(cmd);
}

static int fact_add_cmd(struct rs_batch *b, const void *cmd)
{
    fact_add(b, cmd);
    return 0;
}

/* What a batch is made of: commands of size bytes, each valid() or refused alone, appended by
 * add() (0 or -ENOMEM) with at most args arguments and nums numbers; what names them. */
struct rs_batch_kind {
    size_t size, args, nums;
    const char *what;
    bool (*valid)(const void *cmd);
    int (*add)(struct rs_batch *b, const void *cmd);
};

/* One script call for cmds[0..n) of kind k: fills rcs[] (and res[]) of the commands sent. */
static int batch_run(router_state *rs, const struct rs_batch_kind *k, const char *cmds, size_t n,
                     struct router_state_result *res, int *rcs, long long *epoch)
{
    struct rs_batch b = {0};
    int rc = batch_init(rs, &b, n, k->args, k->nums);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!k->valid(cmds + i * k->size)) {
            rcs[i] = -EINVAL;
            continue;
        }
        b.sent[b.nsent] = i;
        rc = k->add(&b, cmds + i * k->size);
    }
    if (rc == 0)
        batch_send(rs, &b, k->what, res, rcs, epoch);
    batch_release(&b, b.nsent);
    return rc;
}

static int batch_groups(router_state *rs, const struct rs_batch_kind *kind, const char *cmds,
                        size_t n, struct router_state_result *res, int *rcs, long long *epoch)
{
    size_t done = 0;
    long long seen = 0, group;
    int rc;

    if (!rs || (n > 0 && (!cmds || !rcs)))
        return -EINVAL;
    if (epoch)
        *epoch = 0;
    while (done < n) {
        size_t k = n - done < ROUTER_STATE_BATCH_MAX ? n - done : ROUTER_STATE_BATCH_MAX;
        group = 0;
        rc = batch_run(rs, kind, cmds + done * kind->size, k, res ? res + done : NULL, rcs + done,
                       &group);
        if (rc < 0)
            return rc;
        if (group) { /* groups that ran in different epochs: report none (-1) */
            seen = seen == 0 || seen == group ? group : -1;
            if (epoch)
                *epoch = seen;
        }
        for (size_t i = done; i < done + k; i++) {
            if (rcs[i] == -ESTALE || rcs[i] == -EIO) { /* the rest did not run: stop here */
                for (size_t j = done + k; j < n; j++)
                    rcs[j] = rcs[i];
                return 0;
            }
        }
        done += k;
    }
    return 0;
}

int router_state_enqueue_batch(router_state *rs, const struct router_enqueue *reqs, size_t n,
                               struct router_state_result *res, int *rcs, long long *epoch)
{
    static const struct rs_batch_kind kind = {sizeof(*reqs), RS_BATCH_ARGS,     RS_BATCH_NUMS,
                                              "enqueue",     enqueue_valid_cmd, batch_add_cmd};

    return batch_groups(rs, &kind, (const char *)reqs, n, res, rcs, epoch);
}

int router_state_facts_batch(router_state *rs, const struct router_fact *facts, size_t n,
                             struct router_state_result *res, int *rcs, long long *epoch)
{
    static const struct rs_batch_kind kind = {sizeof(*facts), RS_FACT_ARGS,   RS_FACT_NUMS,
                                              "fact",         fact_valid_cmd, fact_add_cmd};

    return batch_groups(rs, &kind, (const char *)facts, n, res, rcs, epoch);
}

int router_state_restore_interaction(router_state *rs, const struct router_enqueue *req,
                                     const char *agent_id)
{
    return enqueue_run(rs, req, agent_id, true, NULL);
}

#define RS_STATES_PER_CALL 100 /* 2 arguments each: within RS_ARGS_MAX */

bool router_ix_state_finished(const char *s)
{
    return s && *s && strcmp(s, "new") != 0 && strcmp(s, "waiting") != 0 &&
           strcmp(s, "offered") != 0 && strcmp(s, "assigned") != 0 && strcmp(s, "scheduled") != 0;
}

int router_state_ix_states(router_state *rs, size_t n, const char *const *tenants,
                           const char *const *ids, long long *epoch, struct router_ix_state *out)
{
    struct rs_args args;
    redisReply *reply;
    int rc = 0, run_rc;

    if (!rs || !epoch || (n > 0 && (!tenants || !ids || !out)))
        return -EINVAL;
    for (size_t done = 0; done == 0 || done < n;) {
        size_t k = n - done < RS_STATES_PER_CALL ? n - done : RS_STATES_PER_CALL;

        args_head(&args, rs, "states", n ? tenants[done] : "-", 0, 0);
        for (size_t i = done; i < done + k; i++) {
            args_str(&args, tenants[i]);
            args_str(&args, ids[i]);
        }
        run_rc = run(rs, &args, &reply); /* rc keeps the first call's -ENOENT (no epoch) */
        if (run_rc < 0)
            return run_rc;
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 + 2 * k) {
            freeReplyObject(reply);
            return -EPROTO;
        }
        if (done == 0) {
            rc = reply->element[0]->len ? 0 : -ENOENT;
            *epoch = strtoll(reply->element[0]->str ? reply->element[0]->str : "0", NULL, 10);
        }
        for (size_t i = 0; i < k; i++) {
            copy_str(out[done + i].state, sizeof(out[done + i].state), reply->element[1 + 2 * i]);
            copy_str(out[done + i].agent_id, sizeof(out[done + i].agent_id),
                     reply->element[2 + 2 * i]);
        }
        freeReplyObject(reply);
        if (k == 0)
            break;
        done += k;
    }
    return rc;
}

#define RS_TOMBSTONES_PER_CALL 70 /* 3 arguments each: within RS_ARGS_MAX and RS_NUMS_MAX */

int router_state_restore_tombstones(router_state *rs, const char *tenant, size_t n,
                                    const char *const *ids, const char *const *queues,
                                    const int64_t *ended_ms, int64_t now_ms, size_t *written)
{
    struct rs_args args;
    redisReply *reply;
    int rc;

    if (written)
        *written = 0;
    if (!rs || !cc_tenant_valid(tenant) || (n > 0 && (!ids || !queues || !ended_ms)))
        return -EINVAL;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < RS_TOMBSTONES_PER_CALL ? n - done : RS_TOMBSTONES_PER_CALL;

        args_head(&args, rs, "tombstones", tenant, now_ms, 0);
        for (size_t i = done; i < done + k; i++) {
            args_str(&args, ids[i]);
            args_str(&args, queues[i]);
            args_ll(&args, (long long)ended_ms[i]);
        }
        rc = run(rs, &args, &reply);
        if (rc < 0)
            return rc;
        rc = reply->type == REDIS_REPLY_INTEGER ? 0 : -EPROTO;
        if (rc == 0 && written)
            *written += (size_t)reply->integer;
        freeReplyObject(reply);
        if (rc < 0)
            return rc;
        done += k;
    }
    return 0;
}

int router_state_restore_agent(router_state *rs, const char *tenant, const char *agent_id,
                               enum router_agent_state presence, const char *reason,
                               int64_t since_ms)
{
    struct rs_args args;
    const char *p;

    switch (presence) {
    case ROUTER_AGENT_LOGGED_OUT:
        p = "logged_out";
        break;
    case ROUTER_AGENT_NOT_READY:
        p = "not_ready";
        break;
    case ROUTER_AGENT_AVAILABLE:
    case ROUTER_AGENT_RESERVED:
    case ROUTER_AGENT_BUSY:
    case ROUTER_AGENT_WRAP_UP:
        p = "ready"; /* logged in and ready: the live part comes from the interactions */
        break;
    default:
        return -EINVAL;
    }
    if (!rs || !cc_tenant_valid(tenant) || !router_id_valid(agent_id) ||
        (reason && *reason && !router_id_valid(reason)))
        return -EINVAL;
    args_head(&args, rs, "restore_agent", tenant, since_ms, 0);
    args_str(&args, agent_id);
    args_str(&args, p);
    args_str(&args, presence == ROUTER_AGENT_NOT_READY && reason ? reason : "");
    args_ll(&args, since_ms);
    return run_result(rs, &args, NULL);
}

int router_state_requeue(router_state *rs, const struct router_requeue *req,
                         struct router_state_result *res)
{
    struct rs_args args;
    char *skills;
    int rc;

    if (!rs || !req || !cc_tenant_valid(req->tenant) || !ix_id_valid(req->interaction_id) ||
        (req->queue_id && !router_id_valid(req->queue_id)) || req->priority > ROUTER_PRIORITY_MAX ||
        (req->set_skills && !skills_valid(req->skills, req->nskills)) ||
        !exclude_valid(req->exclude, req->nexclude))
        return -EINVAL;
    skills = req->set_skills ? skills_json(req->skills, req->nskills) : strdup("");
    if (!skills)
        return -ENOMEM;
    args_head(&args, rs, "requeue", req->tenant, req->now_ms, req->seed);
    args_str(&args, req->interaction_id);
    args_str(&args, req->queue_id);
    args_ll(&args, req->priority < 0 ? -1 : req->priority);
    args_str(&args, req->set_skills ? "1" : "0");
    args_str(&args, skills);
    args_str(&args, req->reason ? req->reason : "");
    args_str(&args, req->request_id ? req->request_id : "");
    args_str(&args, req->anew ? "1" : "0");
    for (size_t i = 0; i < req->nexclude; i++)
        args_str(&args, req->exclude[i]);
    rc = run_result(rs, &args, res);
    free(skills);
    return rc;
}

/* Commands on one interaction: cmd, then the interaction id and up to two more arguments. */
static int ix_cmd(router_state *rs, const char *cmd, const char *tenant, const char *ix,
                  const char *arg1, const char *arg2, int64_t now_ms, uint64_t seed,
                  struct router_state_result *res)
{
    struct rs_args args;

    if (!rs || !cc_tenant_valid(tenant) || !ix_id_valid(ix))
        return -EINVAL;
    args_head(&args, rs, cmd, tenant, now_ms, seed);
    args_str(&args, ix);
    if (arg1)
        args_str(&args, arg1);
    if (arg2)
        args_str(&args, arg2);
    return run_result(rs, &args, res);
}

int router_state_set_callback(router_state *rs, const char *tenant, const char *interaction_id,
                              const char *number, int64_t at_ms, int64_t now_ms,
                              struct router_state_result *res)
{
    char at[24];

    if (!number || !*number || strlen(number) > 512)
        return -EINVAL;
    snprintf(at, sizeof(at), "%lld", (long long)(at_ms > 0 ? at_ms : 0));
    return ix_cmd(rs, "set_callback", tenant, interaction_id, number, at, now_ms, 0, res);
}

int router_state_cancel(router_state *rs, const char *tenant, const char *interaction_id,
                        int64_t now_ms, uint64_t seed, struct router_state_result *res)
{
    return ix_cmd(rs, "leave", tenant, interaction_id, "cancelled", NULL, now_ms, seed, res);
}

int router_state_abandoned(router_state *rs, const char *tenant, const char *interaction_id,
                           int64_t now_ms, uint64_t seed, struct router_state_result *res)
{
    return ix_cmd(rs, "leave", tenant, interaction_id, "abandoned", NULL, now_ms, seed, res);
}

int router_state_answered(router_state *rs, const char *tenant, const char *interaction_id,
                          const char *agent_id, int64_t now_ms, uint64_t seed,
                          struct router_state_result *res)
{
    if (!router_id_valid(agent_id))
        return -EINVAL;
    return ix_cmd(rs, "answered", tenant, interaction_id, agent_id, NULL, now_ms, seed, res);
}

int router_state_no_answer(router_state *rs, const char *tenant, const char *interaction_id,
                           const char *agent_id, int64_t now_ms, uint64_t seed,
                           struct router_state_result *res)
{
    if (!router_id_valid(agent_id))
        return -EINVAL;
    return ix_cmd(rs, "no_answer", tenant, interaction_id, agent_id, NULL, now_ms, seed, res);
}

int router_state_ended(router_state *rs, const char *tenant, const char *interaction_id,
                       const char *agent_id, int64_t talk_ms, int64_t now_ms, uint64_t seed,
                       struct router_state_result *res)
{
    char talk[24];

    if ((agent_id && *agent_id && !router_id_valid(agent_id)) || talk_ms < 0)
        return -EINVAL;
    snprintf(talk, sizeof(talk), "%" PRId64, talk_ms);
    return ix_cmd(rs, "ended", tenant, interaction_id, agent_id ? agent_id : "", talk, now_ms, seed,
                  res);
}

int router_state_transferred(router_state *rs, const char *tenant, const char *interaction_id,
                             const char *from_agent_id, const char *to_agent_id, int64_t talk_ms,
                             int64_t now_ms, uint64_t seed, struct router_state_result *res)
{
    struct rs_args args;

    if (!rs || !cc_tenant_valid(tenant) || !ix_id_valid(interaction_id) ||
        !router_id_valid(to_agent_id) || (from_agent_id && !router_id_valid(from_agent_id)))
        return -EINVAL;
    args_head(&args, rs, "transferred", tenant, now_ms, seed);
    args_str(&args, interaction_id);
    args_str(&args, from_agent_id ? from_agent_id : "");
    args_str(&args, to_agent_id);
    args_ll(&args, talk_ms < 0 ? -1 : (long long)talk_ms);
    return run_result(rs, &args, res);
}

int router_state_dispatch_queue(router_state *rs, const char *tenant, const char *queue_id,
                                int64_t now_ms, uint64_t seed, struct router_state_result *res)
{
    struct rs_args args;

    if (!rs || !cc_tenant_valid(tenant) || !router_id_valid(queue_id))
        return -EINVAL;
    args_head(&args, rs, "dispatch_queue", tenant, now_ms, seed);
    args_str(&args, queue_id);
    return run_result(rs, &args, res);
}

int router_state_dispatch_agent(router_state *rs, const char *tenant, const char *agent_id,
                                int64_t now_ms, uint64_t seed, struct router_state_result *res)
{
    struct rs_args args;

    if (!rs || !cc_tenant_valid(tenant) || !router_id_valid(agent_id))
        return -EINVAL;
    args_head(&args, rs, "dispatch_agent", tenant, now_ms, seed);
    args_str(&args, agent_id);
    return run_result(rs, &args, res);
}

/* ---- timers ------------------------------------------------------------------------------- */

/* Splits "kind|tenant|id[|id2]" into *t; false when malformed. */
static bool timer_parse(const char *s, size_t len, struct router_timer *t)
{
    char buf[ROUTER_STATE_KIND_MAX + CC_EVENT_TENANT_MAX + 2 * ROUTER_STATE_IX_MAX + 8];
    char *field[4] = {0};
    size_t sizes[4] = {sizeof(t->kind), sizeof(t->tenant), sizeof(t->id), sizeof(t->id2)};
    char *dst[4] = {t->kind, t->tenant, t->id, t->id2};
    char *p;
    int n = 0;

    if (len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    for (p = buf; n < 4; n++) {
        field[n] = p;
        p = strchr(p, '|');
        if (!p)
            break;
        *p++ = '\0';
    }
    if (p || n < 2)
        return false;
    for (int i = 0; i < 4; i++) {
        const char *v = field[i] ? field[i] : "";
        if (strlen(v) >= sizes[i])
            return false;
        memcpy(dst[i], v, strlen(v) + 1);
    }
    return t->kind[0] && t->tenant[0] && t->id[0];
}

int router_state_pop_due_timers(router_state *rs, int64_t now_ms, size_t max,
                                struct router_timer *out, size_t *n)
{
    struct rs_args args;
    redisReply *reply;
    int rc;

    if (!rs || !n || (max > 0 && !out) || max > 100000)
        return -EINVAL;
    *n = 0;
    if (max == 0)
        return 0;
    args_head(&args, rs, "pop", "_", now_ms, 0);
    args_ll(&args, (long long)max);
    rc = run(rs, &args, &reply);
    if (rc < 0)
        return rc;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 || reply->elements / 2 > max) {
        freeReplyObject(reply);
        return -EPROTO;
    }
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *m = reply->element[i], *sc = reply->element[i + 1];
        struct router_timer *t = &out[*n];

        if (m->type != REDIS_REPLY_STRING || sc->type != REDIS_REPLY_STRING ||
            !timer_parse(m->str, m->len, t)) {
            CC_WARN("router timer malformed, dropped: \"%.*s\"",
                    m->type == REDIS_REPLY_STRING ? (int)m->len : 0,
                    m->type == REDIS_REPLY_STRING ? m->str : "");
            redisReply *del = cc_redis_command(rs->redis, "ZREM %s %b", rs->timers,
                                               m->str ? m->str : "", (size_t)m->len);
            if (del)
                freeReplyObject(del);
            continue;
        }
        t->due_ms = (int64_t)strtod(sc->str, NULL);
        (*n)++;
    }
    freeReplyObject(reply);
    return 0;
}

int router_state_handle_timer(router_state *rs, const struct router_timer *t, int64_t now_ms,
                              uint64_t seed, struct router_state_result *res)
{
    struct rs_args args;

    if (!rs || !t || !cc_tenant_valid(t->tenant) || !t->kind[0] || !t->id[0])
        return -EINVAL;
    args_head(&args, rs, "timer", t->tenant, now_ms, seed);
    args_str(&args, t->kind);
    args_str(&args, t->id);
    args_str(&args, t->id2);
    return run_result(rs, &args, res);
}

/* ---- views -------------------------------------------------------------------------------- */

static int view(router_state *rs, const char *cmd, const char *tenant, const char *id,
                int64_t now_ms, json_t **out)
{
    struct rs_args args;
    redisReply *reply;
    json_error_t err;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!rs || !cc_tenant_valid(tenant) || !router_id_valid(id))
        return -EINVAL;
    args_head(&args, rs, cmd, tenant, now_ms, 0);
    args_str(&args, id);
    rc = run(rs, &args, &reply);
    if (rc < 0)
        return rc;
    if (reply->type == REDIS_REPLY_STRING)
        *out = json_loadb(reply->str, reply->len, 0, &err);
    if (!*out) {
        CC_ERROR("router state view unreadable: \"%s\" of \"%s\"", cmd, id);
        rc = -EPROTO;
    }
    freeReplyObject(reply);
    return rc;
}

int router_state_queue_view(router_state *rs, const char *tenant, const char *queue_id,
                            int64_t now_ms, json_t **out)
{
    return view(rs, "queue_view", tenant, queue_id, now_ms, out);
}

int router_state_agent_view(router_state *rs, const char *tenant, const char *agent_id,
                            int64_t now_ms, json_t **out)
{
    return view(rs, "agent_view", tenant, agent_id, now_ms, out);
}
