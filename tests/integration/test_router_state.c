/*
 * Integration tests for services/router/router_state.c (the Lua routing scripts) against the
 * real redis-server of the local stack. Each test has its own tenant and its own outbox stream
 * and timer set (router_state_set_keys), so it never sees another test's events or timers, and
 * drives time by hand (now_ms), so tiers, wrap-up, RONA and max wait need no sleeping.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cc_bus.h"
#include "cc_event.h"
#include "cc_pg.h"
#include "cc_redis.h"
#include "itest.h"
#include "router_engine.h"
#include "router_outbox.h"
#include "router_state.h"
#include "router_store.h"

#define RS_T0   1893456000000LL /* 2030-01-01T00:00:00Z: the tests' clock starts here */
#define RS_S(n) (RS_T0 + (n)*1000LL)

static router_state *rs;
static cc_redis *rs_raw; /* plain connection: reads the outbox, seeds counters, cleans up */
static char rs_tenant[64];
static char rs_outbox[128];
static char rs_timers[128];

static void rs_it_setup(void)
{
    const char *url = itest_env("CC_REDIS_URL");
    long long epoch;

    itest_unique(rs_tenant, sizeof(rs_tenant), "rs");
    snprintf(rs_outbox, sizeof(rs_outbox), "cc:outbox:test:%s", rs_tenant);
    snprintf(rs_timers, sizeof(rs_timers), "cc:timers:test:%s", rs_tenant);
    rs = router_state_new(url);
    cr_assert_not_null(rs, "expected a router_state for '%s'", url);
    cr_assert_eq(router_state_set_keys(rs, rs_outbox, rs_timers), 0, "expected private keys");
    rs_raw = cc_redis_new(url);
    cr_assert_not_null(rs_raw, "expected a raw redis client");
    if (router_state_epoch_get(rs, &epoch) == -ENOENT)
        cr_assert_eq(router_state_set_epoch(rs, 1), 0, "expected cc:epoch to be set");
}

static void rs_it_teardown(void)
{
    char pattern[96];
    redisReply *r;

    snprintf(pattern, sizeof(pattern), "cc:{%s}:*", rs_tenant);
    r = cc_redis_command(rs_raw, "EVAL %s 0 %s %s %s",
                         "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                         "redis.call('DEL', k) end redis.call('DEL', ARGV[2], ARGV[3]) return 0",
                         pattern, rs_outbox, rs_timers);
    if (r)
        freeReplyObject(r);
    cc_redis_free(rs_raw);
    router_state_free(rs);
}

TestSuite(router_state, .init = rs_it_setup, .fini = rs_it_teardown, .timeout = 60);

/* ---- fixtures ----------------------------------------------------------------------------- */

/* Syncs an agent: capacities voice/chat/email/sms, voice_blocks_other, skills "s:3,t:2". */
static void rs_it_agent(const char *id, int voice, int chat, bool vbo, const char *skills)
{
    struct router_skill sk[8];
    struct router_agent a = {.voice_blocks_other = vbo, .enabled = true, .skills = sk};
    char buf[128];
    char *save = NULL;

    snprintf(a.id, sizeof(a.id), "%s", id);
    a.capacity[ROUTER_CH_VOICE] = voice;
    a.capacity[ROUTER_CH_CHAT] = chat;
    a.capacity[ROUTER_CH_EMAIL] = 5;
    a.capacity[ROUTER_CH_SMS] = 3;
    snprintf(buf, sizeof(buf), "%s", skills ? skills : "");
    for (char *t = strtok_r(buf, ",", &save); t && a.nskills < 8; t = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(t, ':');
        cr_assert_not_null(colon, "expected skill:level in '%s'", t);
        *colon = '\0';
        snprintf(sk[a.nskills].skill, sizeof(sk[a.nskills].skill), "%s", t);
        sk[a.nskills++].level = atoi(colon + 1);
    }
    cr_assert_eq(router_state_sync_agent(rs, rs_tenant, &a, RS_T0), 0, "expected agent '%s'", id);
    snprintf(buf, sizeof(buf), "sip:%s@10.0.0.1:5060", id);
    cr_assert_eq(router_state_agent_set_contact(rs, rs_tenant, id, buf, RS_T0), 0,
                 "expected the contact of '%s'", id);
}

static void rs_it_queue_init(struct router_queue *q, const char *id, enum router_strategy s)
{
    memset(q, 0, sizeof(*q));
    snprintf(q->id, sizeof(q->id), "%s", id);
    q->channels = 0xf;
    q->strategy = s;
    q->ring_timeout_s = 20;
    q->ring_progressive_interval_s = 5;
    q->sl_threshold_s = 20;
    q->no_agent_action = ROUTER_NOAGENT_JOIN;
    q->callback_enabled = true; /* the API's default */
}

static void rs_it_queue_sync(const struct router_queue *q)
{
    cr_assert_eq(router_state_sync_queue(rs, rs_tenant, q, RS_T0), 0, "expected queue '%s'", q->id);
}

static void rs_it_queue(const char *id, enum router_strategy s)
{
    struct router_queue q;

    rs_it_queue_init(&q, id, s);
    rs_it_queue_sync(&q);
}

static void rs_it_member(const char *q, const char *a, int level, int position, int penalty)
{
    struct router_member m = {.level = level, .position = position, .penalty = penalty};

    snprintf(m.queue_id, sizeof(m.queue_id), "%s", q);
    snprintf(m.agent_id, sizeof(m.agent_id), "%s", a);
    cr_assert_eq(router_state_sync_member(rs, rs_tenant, &m, RS_T0), 0, "expected member %s of %s",
                 a, q);
}

/* A plain agent (voice 1, chat 3, voice blocks chats, no skills), member of queue q at level 1,
 * position pos, no penalty. */
static void rs_it_plain_member(const char *q, const char *agent, int pos)
{
    rs_it_agent(agent, 1, 3, true, NULL);
    rs_it_member(q, agent, 1, pos, 0);
}

/* Queue "q" (longest_idle) with a plain agent as its one member. */
static void rs_it_solo(const char *agent)
{
    rs_it_queue("q", ROUTER_STRAT_LONGEST_IDLE);
    rs_it_plain_member("q", agent, 1);
}

static struct router_state_result rs_it_login(const char *a, long long now)
{
    struct router_state_result res;

    cr_assert_eq(router_state_agent_login(rs, rs_tenant, a, true, NULL, "agent", now, 1, &res), 0,
                 "expected '%s' to log in", a);
    return res;
}

static struct router_state_result rs_it_enqueue_p(const char *ix, const char *q,
                                                  enum router_channel ch, int prio, long long now,
                                                  uint64_t seed)
{
    struct router_state_result res;
    struct router_enqueue req = {.tenant = rs_tenant,
                                 .interaction_id = ix,
                                 .queue_id = q,
                                 .channel = ch,
                                 .priority = prio,
                                 .now_ms = now,
                                 .seed = seed};

    cr_assert_eq(router_state_enqueue(rs, &req, &res), 0, "expected enqueue of '%s'", ix);
    return res;
}

static struct router_state_result rs_it_enqueue(const char *ix, const char *q, long long now)
{
    return rs_it_enqueue_p(ix, q, ROUTER_CH_VOICE, 0, now, 1);
}

/* Sets a live counter by hand (talk_ms, handled): the scenario's history without replaying it. */
static void rs_it_hset(const char *agent, const char *field, long long v)
{
    redisReply *r =
        cc_redis_command(rs_raw, "HSET cc:{%s}:agent:%s %s %lld", rs_tenant, agent, field, v);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "expected HSET of %s.%s", agent, field);
    freeReplyObject(r);
}

/* Events of this test's outbox with type (and subject unless NULL): count, and the data of the
 * last one in *last (new reference) when last is not NULL. Entries are split into their events
 * as the publisher splits them (router_outbox_entry_parse). */
static int rs_it_events(const char *type, const char *subject, json_t **last)
{
    redisReply *r = cc_redis_command(rs_raw, "XRANGE %s - +", rs_outbox);
    static struct router_outbox_entry e;
    int count = 0;

    cr_assert(r && r->type == REDIS_REPLY_ARRAY, "expected the outbox stream");
    if (last)
        *last = NULL;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *fields = r->element[i]->element[1];
        static const char *f[2 * (4 + 5 * ROUTER_OUTBOX_EVENTS_MAX)];
        size_t nf = 0;

        cr_assert_leq(fields->elements, sizeof(f) / sizeof(f[0]), "expected a readable entry");
        for (size_t j = 0; j < fields->elements; j++)
            f[nf++] = fields->element[j]->str;
        cr_assert_gt(router_outbox_entry_parse(f, nf, &e), 0, "expected events in an entry");
        cr_assert(e.tenant && e.time_ms, "expected tenant and time_ms in an entry");
        cr_assert_str_eq(e.tenant, rs_tenant, "expected only this test's tenant in its outbox");
        for (size_t k = 0; k < e.nevents; k++) {
            const struct router_outbox_event *ev = &e.events[k];

            cr_assert(ev->topic && ev->type && ev->subject && ev->data,
                      "expected topic, type, subject and data in every event");
            if (strcmp(ev->type, type) || (subject && strcmp(ev->subject, subject)))
                continue;
            count++;
            if (last) {
                json_decref(*last);
                *last = json_loads(ev->data, 0, NULL);
                cr_assert_not_null(*last, "expected JSON data in %s", type);
            }
        }
    }
    freeReplyObject(r);
    return count;
}

static const char *rs_it_jstr(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    cr_assert_not_null(v, "expected string field '%s'", key);
    return v;
}

static void rs_it_offer_is(const struct router_state_result *res, const char *ix, const char *agent)
{
    cr_assert_geq(res->noffers, 1, "expected an offer of '%s' to '%s', got none", ix, agent);
    cr_assert_str_eq(res->offers[0].interaction_id, ix, "expected the offer to be of '%s'", ix);
    cr_assert_str_eq(res->offers[0].agent_id, agent, "expected '%s' to win, got '%s'", agent,
                     res->offers[0].agent_id);
}

/* Pops the due timers at now and handles each; returns the number handled, the last result in
 * *last. */
static size_t rs_it_tick(long long now, struct router_state_result *last)
{
    struct router_timer t[32];
    size_t n = 0;

    cr_assert_eq(router_state_pop_due_timers(rs, now, 32, t, &n), 0, "expected timers to pop");
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(t[i].tenant, rs_tenant, "expected only this test's timers");
        cr_assert_eq(router_state_handle_timer(rs, &t[i], now, 7, last), 0,
                     "expected timer %s|%s to be handled", t[i].kind, t[i].id);
    }
    return n;
}

static enum router_agent_state rs_it_state(const char *agent)
{
    json_t *v = NULL;
    enum router_agent_state st = ROUTER_AGENT_STATE_COUNT;

    cr_assert_eq(router_state_agent_view(rs, rs_tenant, agent, RS_T0, &v), 0,
                 "expected a view of '%s'", agent);
    cr_assert_eq(router_agent_state_parse(rs_it_jstr(v, "state"), &st), 0, "expected a state");
    json_decref(v);
    return st;
}

// clang-format off
/*
 * The strategy scenario: queue "q" (strategy s, skill "s" >= 1, sl_threshold_s 45) with seven
 * agents, all available, so that each strategy has a different winner:
 *
 *   agent  idle since  position  talk_ms  handled  skill s  penalty
 *   a1     T0+1 s      3         900000   9        1        99
 *   a2     T0+2 s      1         800000   8        2        99
 *   a3     T0+3 s      4         100000   7        3        99
 *   a4     T0+4 s      5         700000   1        2        99
 *   a5     T0+5 s      2         600000   6        5        99
 *   a6     T0+6 s      6         950000   9        1        99
 *   a7     T0+7 s      7         990000   9        1        0
 *
 * longest_idle -> a1 (idle longest); linear -> a2 (position 1); least_talk_time -> a3;
 * fewest_interactions -> a4; best_skill -> a5 (proficiency 5); random (seed 2) -> a6 (see test
 * random); weighted_random (seed 1) -> a7 (see its test); round_robin -> a2 then a5.
 */
// clang-format on
static void rs_it_scenario(enum router_strategy s)
{
    static const struct {
        const char *id;
        int pos, skill, pen;
        long long talk, handled;
    } ag[] = {
        {"a1", 3, 1, 99, 900000, 9}, {"a2", 1, 2, 99, 800000, 8}, {"a3", 4, 3, 99, 100000, 7},
        {"a4", 5, 2, 99, 700000, 1}, {"a5", 2, 5, 99, 600000, 6}, {"a6", 6, 1, 99, 950000, 9},
        {"a7", 7, 1, 0, 990000, 9},
    };
    struct router_queue q;
    struct router_skill sk = {.skill = "s", .level = 1};

    rs_it_queue_init(&q, "q", s);
    q.sl_threshold_s = 45;
    q.skills = &sk;
    q.nskills = 1;
    rs_it_queue_sync(&q);
    for (size_t i = 0; i < sizeof(ag) / sizeof(ag[0]); i++) {
        char skills[16];
        snprintf(skills, sizeof(skills), "s:%d", ag[i].skill);
        rs_it_agent(ag[i].id, 1, 3, true, skills);
        rs_it_member("q", ag[i].id, 1, ag[i].pos, ag[i].pen);
        rs_it_hset(ag[i].id, "talk_ms", ag[i].talk);
        rs_it_hset(ag[i].id, "handled", ag[i].handled);
        rs_it_login(ag[i].id, RS_S(1 + (long long)i));
    }
}

/* ---- strategies --------------------------------------------------------------------------- */

Test(router_state, longest_idle_offers_the_agent_idle_longest)
{
    struct router_state_result res;
    json_t *d;

    rs_it_scenario(ROUTER_STRAT_LONGEST_IDLE);
    res = rs_it_enqueue("i1", "q", RS_S(100));
    cr_assert_eq(res.status, ROUTER_ST_QUEUED, "expected queued, got %s",
                 router_state_status_name(res.status));
    rs_it_offer_is(&res, "i1", "a1");
    cr_assert_eq(rs_it_events("cc.routing.assigned", "i1", &d), 1, "expected one assigned");
    cr_assert_str_eq(rs_it_jstr(d, "strategy"), "longest_idle", "expected the strategy named");
    cr_assert_eq(json_integer_value(json_object_get(d, "candidates_considered")), 7,
                 "expected all seven agents considered");
    cr_assert_eq(json_integer_value(json_object_get(d, "tier")), 1, "expected tier 1");
    cr_assert_not_null(strstr(rs_it_jstr(d, "reason"), "longest idle (99 s)"),
                       "expected the reason to say how long a1 was idle: %s",
                       rs_it_jstr(d, "reason"));
    json_decref(d);
    cr_assert_eq(rs_it_events("cc.interaction.offered", "i1", NULL), 1, "expected offered");
    cr_assert_eq(rs_it_events("cc.interaction.queued", "i1", &d), 1, "expected queued");
    cr_assert_eq(json_integer_value(json_object_get(d, "sl_threshold_s")), 45,
                 "expected the queue's service-level threshold (45 s) in queued");
    json_decref(d);
    cr_assert_eq(rs_it_state("a1"), ROUTER_AGENT_RESERVED, "expected a1 reserved");
}

/* Agents idle since the same millisecond (a batch of facts frees many at once; agents log in
 * together): the tie goes to position, then id. Thirteen tied agents, more than a page of the
 * scan: t00 (position 1) and t12 (position 1) cannot take voice (no phone), t11 is at
 * position 2, t01..t10 at 5. By hand: v1 -> t11, v2 -> t01, v3 -> t02; a chat (no phone
 * needed) -> t00 (position 1, id before t12). */
Test(router_state, longest_idle_ties_go_to_position_then_id)
{
    static const char *const want[] = {"t11", "t01", "t02"};
    struct router_state_result res;
    char id[16];
    json_t *d;

    rs_it_queue("q", ROUTER_STRAT_LONGEST_IDLE);
    for (int i = 0; i <= 12; i++) {
        snprintf(id, sizeof(id), "t%02d", i);
        rs_it_agent(id, 1, 3, true, NULL);
        rs_it_member("q", id, 1, i == 0 || i == 12 ? 1 : i == 11 ? 2 : 5, 0);
        if (i == 0 || i == 12)
            cr_assert_eq(router_state_agent_set_contact(rs, rs_tenant, id, NULL, RS_T0), 0);
        rs_it_login(id, RS_S(1));
    }
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "v%d", i + 1);
        res = rs_it_enqueue(id, "q", RS_S(10 + i));
        rs_it_offer_is(&res, id, want[i]);
        cr_assert_eq(rs_it_events("cc.routing.assigned", id, &d), 1, "expected one assigned");
        cr_assert_eq(json_integer_value(json_object_get(d, "candidates_considered")), 13 - i,
                     "expected the free agents of the level counted (%d)", 13 - i);
        json_decref(d);
    }
    res = rs_it_enqueue_p("c1", "q", ROUTER_CH_CHAT, 0, RS_S(20), 1);
    rs_it_offer_is(&res, "c1", "t00");
}

Test(router_state, linear_offers_the_first_by_position)
{
    rs_it_scenario(ROUTER_STRAT_LINEAR);
    struct router_state_result res = rs_it_enqueue("i1", "q", RS_S(100));
    rs_it_offer_is(&res, "i1", "a2");
}

Test(router_state, least_talk_time_offers_the_agent_who_talked_least)
{
    rs_it_scenario(ROUTER_STRAT_LEAST_TALK_TIME);
    struct router_state_result res = rs_it_enqueue("i1", "q", RS_S(100));
    rs_it_offer_is(&res, "i1", "a3");
}

Test(router_state, fewest_interactions_offers_the_agent_with_fewest_handled)
{
    rs_it_scenario(ROUTER_STRAT_FEWEST_INTERACTIONS);
    struct router_state_result res = rs_it_enqueue("i1", "q", RS_S(100));
    rs_it_offer_is(&res, "i1", "a4");
}

Test(router_state, best_skill_offers_the_most_proficient_agent)
{
    json_t *d;

    rs_it_scenario(ROUTER_STRAT_BEST_SKILL);
    struct router_state_result res = rs_it_enqueue("i1", "q", RS_S(100));
    rs_it_offer_is(&res, "i1", "a5");
    rs_it_events("cc.routing.assigned", "i1", &d);
    cr_assert_eq(json_integer_value(json_object_get(d, "proficiency")), 5,
                 "expected the winner's proficiency in the decision");
    json_decref(d);
}

/* Park-Miller with seed 2 (state 3, two warm-up steps): the draw 0.8041 x 7 free agents -> rank
 * 5 of queue:q:avail (by idle: a1 logged in first) = a6, who is eligible: a6. */
Test(router_state, random_is_seeded_and_picks_by_the_seed)
{
    rs_it_scenario(ROUTER_STRAT_RANDOM);
    struct router_state_result res = rs_it_enqueue_p("i1", "q", ROUTER_CH_VOICE, 0, RS_S(100), 2);
    rs_it_offer_is(&res, "i1", "a6");
}

/* Weights 1/(1+penalty): a1..a6 0.01 each, a7 1. Seed 1 (after two warm-up steps): 0.2027 x 7
 * -> rank 1 = a2, accepted only if the next draw 0.7832 < 0.01: no; 0.9359 x 7 -> rank 6 = a7,
 * accepted as 0.3794 < 1 -> a7 (plain random would have taken a2). */
Test(router_state, weighted_random_follows_the_penalty_weights)
{
    rs_it_scenario(ROUTER_STRAT_WEIGHTED_RANDOM);
    struct router_state_result res = rs_it_enqueue_p("i1", "q", ROUTER_CH_VOICE, 0, RS_S(100), 1);
    rs_it_offer_is(&res, "i1", "a7");
}

/* Round robin remembers the last position offered: i1 -> a2 (position 1); a2 answers and ends
 * (back to available, a free agent again); i2 -> a5 (position 2), where linear would pick a2
 * again. */
Test(router_state, round_robin_continues_after_the_last_agent_offered)
{
    struct router_state_result res;

    rs_it_scenario(ROUTER_STRAT_ROUND_ROBIN);
    res = rs_it_enqueue("i1", "q", RS_S(100));
    rs_it_offer_is(&res, "i1", "a2");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i1", "a2", RS_S(101), 1, &res), 0);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i1", "a2", 5000, RS_S(106), 1, &res), 0);
    cr_assert_eq(rs_it_state("a2"), ROUTER_AGENT_AVAILABLE, "expected a2 free again");
    res = rs_it_enqueue("i2", "q", RS_S(107));
    rs_it_offer_is(&res, "i2", "a5");
}

/* Ring all: every eligible agent rings; a3 answers; the six others are withdrawn and free. */
Test(router_state, ring_all_offers_everyone_and_withdraws_the_others_on_answer)
{
    struct router_state_result res;
    json_t *d;

    rs_it_scenario(ROUTER_STRAT_RING_ALL);
    res = rs_it_enqueue("i1", "q", RS_S(100));
    cr_assert_eq(res.noffers, 7, "expected seven offers, got %zu", res.noffers);
    cr_assert_eq(rs_it_events("cc.routing.assigned", "i1", &d), 7, "expected seven decisions");
    cr_assert_not_null(json_object_get(d, "offer_group_id"), "expected an offer group id");
    json_decref(d);
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i1", "a3", RS_S(102), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_OK, "expected the answer applied");
    cr_assert_eq(rs_it_events("cc.routing.withdrawn", "i1", NULL), 6, "expected six withdrawn");
    cr_assert_eq(rs_it_state("a3"), ROUTER_AGENT_BUSY, "expected a3 busy");
    cr_assert_eq(rs_it_state("a1"), ROUTER_AGENT_AVAILABLE, "expected a1 free again");
}

/* Ring progressive: a2 (position 1) first; 5 s later a5 (position 2) rings too; a5 answers and
 * a2's offer is withdrawn. */
Test(router_state, ring_progressive_adds_one_agent_per_interval)
{
    struct router_state_result res;

    rs_it_scenario(ROUTER_STRAT_RING_PROGRESSIVE);
    res = rs_it_enqueue("i1", "q", RS_S(100));
    cr_assert_eq(res.noffers, 1, "expected one offer at first");
    rs_it_offer_is(&res, "i1", "a2");
    cr_assert_eq(rs_it_tick(RS_S(104), &res), 0, "expected nothing due before the interval");
    cr_assert_eq(rs_it_tick(RS_S(105), &res), 1, "expected the ring-progressive step");
    rs_it_offer_is(&res, "i1", "a5");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i1", "a5", RS_S(106), 1, &res), 0);
    cr_assert_eq(rs_it_events("cc.routing.withdrawn", "i1", NULL), 1, "expected a2 withdrawn");
    cr_assert_eq(rs_it_state("a2"), ROUTER_AGENT_AVAILABLE, "expected a2 free again");
}

/* ---- tiers, cross-queue, capacity -------------------------------------------------------- */

/* Tier rule level 2 after 30 s: only b2 (level 2) is available; the interaction waits 30 s. */
Test(router_state, tiers_widen_with_the_wait)
{
    struct router_queue q;
    struct router_tier_rule tier = {.level = 2, .after_s = 30};
    struct router_state_result res;

    rs_it_queue_init(&q, "q", ROUTER_STRAT_LONGEST_IDLE);
    q.tiers = &tier;
    q.ntiers = 1;
    rs_it_queue_sync(&q);
    rs_it_agent("b1", 1, 3, true, NULL);
    rs_it_agent("b2", 1, 3, true, NULL);
    rs_it_member("q", "b1", 1, 1, 0);
    rs_it_member("q", "b2", 2, 1, 0);
    cr_assert_eq(
        router_state_agent_login(rs, rs_tenant, "b1", false, "break", "agent", RS_S(1), 1, NULL),
        0);
    rs_it_login("b2", RS_S(2));
    res = rs_it_enqueue("i1", "q", RS_S(10));
    cr_assert_eq(res.noffers, 0, "expected no offer at tier 1");
    cr_assert_eq(rs_it_tick(RS_S(39), &res), 0, "expected nothing due at 29 s");
    cr_assert_eq(rs_it_tick(RS_S(40), &res), 1, "expected the tier timer at 30 s");
    rs_it_offer_is(&res, "i1", "b2");
}

/* c1 serves q1 (priority 0) and q2 (priority 10): i2 in q2 is younger but more important and
 * wins; then of two equal-priority heads (q1's i1 at 10 s, q3's i3 at 5 s) the older wins. */
Test(router_state, an_agent_in_several_queues_gets_the_best_head)
{
    struct router_queue q;
    struct router_state_result res;

    rs_it_queue("q1", ROUTER_STRAT_LONGEST_IDLE);
    rs_it_queue_init(&q, "q2", ROUTER_STRAT_LONGEST_IDLE);
    q.priority = 10;
    rs_it_queue_sync(&q);
    rs_it_queue("q3", ROUTER_STRAT_LINEAR);
    rs_it_plain_member("q1", "c1", 1);
    rs_it_member("q2", "c1", 1, 1, 0);
    rs_it_member("q3", "c1", 1, 1, 0);
    rs_it_enqueue("i3", "q3", RS_S(5));
    rs_it_enqueue("i1", "q1", RS_S(10));
    rs_it_enqueue("i2", "q2", RS_S(20));
    res = rs_it_login("c1", RS_S(30));
    rs_it_offer_is(&res, "i2", "c1");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i2", "c1", RS_S(31), 1, &res), 0);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i2", NULL, 1000, RS_S(32), 1, &res), 0);
    rs_it_offer_is(&res, "i3", "c1");
}

/* Chat capacity 3: three chats ring at d1, the fourth waits until one ends. */
Test(router_state, chat_capacity_is_never_exceeded)
{
    struct router_state_result res;
    char ix[16];

    rs_it_solo("d1");
    rs_it_login("d1", RS_S(1));
    for (int i = 1; i <= 4; i++) {
        snprintf(ix, sizeof(ix), "c%d", i);
        res = rs_it_enqueue_p(ix, "q", ROUTER_CH_CHAT, 0, RS_S(10 + i), 1);
        cr_assert_eq(res.noffers, i <= 3 ? 1u : 0u, "expected chat %d %s", i,
                     i <= 3 ? "offered" : "to wait");
        if (i <= 3)
            cr_assert_eq(router_state_answered(rs, rs_tenant, ix, "d1", RS_S(10 + i), 1, NULL), 0);
    }
    cr_assert_eq(router_state_ended(rs, rs_tenant, "c2", "d1", 1000, RS_S(30), 1, &res), 0);
    rs_it_offer_is(&res, "c4", "d1");
}

/* A voice call with voice_blocks_other blocks chats until it ends. */
Test(router_state, a_voice_call_blocks_chats_when_configured)
{
    struct router_state_result res;

    rs_it_solo("e1");
    rs_it_login("e1", RS_S(1));
    res = rs_it_enqueue("v1", "q", RS_S(2));
    rs_it_offer_is(&res, "v1", "e1");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "v1", "e1", RS_S(3), 1, NULL), 0);
    res = rs_it_enqueue_p("c1", "q", ROUTER_CH_CHAT, 0, RS_S(4), 1);
    cr_assert_eq(res.noffers, 0, "expected the chat to wait during the call");
    cr_assert_eq(router_state_ended(rs, rs_tenant, "v1", "e1", 60000, RS_S(64), 1, &res), 0);
    rs_it_offer_is(&res, "c1", "e1");
}

/* A voice offer needs a phone to ring: without a registered contact only chats are offered, and
 * the decision carries the contact once it is known. */
Test(router_state, voice_is_offered_only_to_an_agent_with_a_contact)
{
    struct router_state_result res;
    json_t *d;

    rs_it_queue("q", ROUTER_STRAT_LONGEST_IDLE);
    rs_it_agent("u1", 1, 3, false, NULL);
    rs_it_member("q", "u1", 1, 1, 0);
    cr_assert_eq(router_state_agent_set_contact(rs, rs_tenant, "u1", NULL, RS_T0), 0);
    rs_it_login("u1", RS_S(1));
    res = rs_it_enqueue("v1", "q", RS_S(2));
    cr_assert_eq(res.noffers, 0, "expected no voice offer without a contact");
    res = rs_it_enqueue_p("c1", "q", ROUTER_CH_CHAT, 0, RS_S(3), 1);
    rs_it_offer_is(&res, "c1", "u1");
    cr_assert_eq(router_state_agent_set_contact(rs, rs_tenant, "u1", "sip:u1@10.0.0.9", RS_S(4)),
                 0);
    cr_assert_eq(router_state_dispatch_agent(rs, rs_tenant, "u1", RS_S(4), 1, &res), 0);
    rs_it_offer_is(&res, "v1", "u1");
    rs_it_events("cc.routing.assigned", "v1", &d);
    cr_assert_str_eq(rs_it_jstr(d, "agent_contact"), "sip:u1@10.0.0.9", "expected the contact");
    json_decref(d);
}

/* ---- wrap-up, RONA, overflow, queue rules -------------------------------------------------- */

Test(router_state, wrap_up_is_visible_ends_at_the_timer_and_can_be_extended_or_ended)
{
    struct router_queue q;
    struct router_state_result res;

    rs_it_queue_init(&q, "q", ROUTER_STRAT_LONGEST_IDLE);
    q.wrapup_s = 30;
    rs_it_queue_sync(&q);
    rs_it_plain_member("q", "f1", 1);
    rs_it_login("f1", RS_S(1));
    rs_it_enqueue("i1", "q", RS_S(2));
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i1", "f1", RS_S(3), 1, NULL), 0);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i1", "f1", 7000, RS_S(10), 1, NULL), 0);
    cr_assert_eq(rs_it_state("f1"), ROUTER_AGENT_WRAP_UP, "expected wrap-up after the end");
    res = rs_it_enqueue("i2", "q", RS_S(11));
    cr_assert_eq(res.noffers, 0, "expected no offer during wrap-up");
    cr_assert_eq(router_state_agent_wrapup_extend(rs, rs_tenant, "f1", 10, "agent", RS_S(12), &res),
                 0);
    cr_assert_eq(rs_it_tick(RS_S(40), &res), 0, "expected the extended timer not due at 30 s");
    cr_assert_eq(rs_it_tick(RS_S(50), &res), 1, "expected the wrap-up timer at 40 s");
    rs_it_offer_is(&res, "i2", "f1");
    /* early end */
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i2", "f1", RS_S(51), 1, NULL), 0);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i2", "f1", 1000, RS_S(52), 1, NULL), 0);
    cr_assert_eq(rs_it_state("f1"), ROUTER_AGENT_WRAP_UP, "expected wrap-up again");
    cr_assert_eq(router_state_agent_wrapup_end(rs, rs_tenant, "f1", "agent", RS_S(53), 1, &res), 0);
    cr_assert_eq(res.agent_state, ROUTER_AGENT_AVAILABLE, "expected available after early end");
}

/* max_no_answer 1, ring 10 s: g1 (idle longest) gets i1, does not answer: g1 goes not_ready
 * "no_answer" and i1 rings at g2; a late no_answer from g1 is ignored. */
Test(router_state, rona_sets_not_ready_and_reoffers_to_the_next_agent)
{
    struct router_queue q;
    struct router_state_result res;
    json_t *d;

    rs_it_queue_init(&q, "q", ROUTER_STRAT_LONGEST_IDLE);
    q.ring_timeout_s = 10;
    q.max_no_answer = 1;
    rs_it_queue_sync(&q);
    rs_it_plain_member("q", "g1", 1);
    rs_it_plain_member("q", "g2", 2);
    rs_it_login("g1", RS_S(1));
    rs_it_login("g2", RS_S(2));
    res = rs_it_enqueue("i1", "q", RS_S(5));
    rs_it_offer_is(&res, "i1", "g1");
    cr_assert_eq(rs_it_tick(RS_S(14), &res), 0, "expected no timeout before 10 s");
    cr_assert_eq(rs_it_tick(RS_S(15), &res), 1, "expected the ring timeout at 10 s");
    rs_it_offer_is(&res, "i1", "g2");
    cr_assert_eq(rs_it_state("g1"), ROUTER_AGENT_NOT_READY, "expected g1 not ready");
    rs_it_events("cc.agent.state_changed", "g1", &d);
    cr_assert_str_eq(rs_it_jstr(d, "reason_code"), "no_answer", "expected reason no_answer");
    cr_assert_str_eq(rs_it_jstr(d, "to_state"), "not_ready", "expected to not_ready");
    json_decref(d);
    cr_assert_eq(rs_it_events("cc.routing.withdrawn", "i1", &d), 1,
                 "expected the ring timeout to withdraw g1's offer");
    cr_assert_str_eq(rs_it_jstr(d, "agent_id"), "g1", "expected g1's offer withdrawn");
    cr_assert_str_eq(rs_it_jstr(d, "reason"), "ring_timeout", "expected reason ring_timeout");
    json_decref(d);
    cr_assert_eq(router_state_no_answer(rs, rs_tenant, "i1", "g1", RS_S(16), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_NOOP, "expected a stale no_answer ignored");
    cr_assert_eq(rs_it_events("cc.interaction.offered", "i1", NULL), 2, "expected two offers");
    /* a no_answer fact (the channel gave up on the leg itself) withdraws nothing */
    cr_assert_eq(router_state_no_answer(rs, rs_tenant, "i1", "g2", RS_S(17), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_OK, "expected g2's no_answer applied");
    cr_assert_eq(rs_it_events("cc.routing.withdrawn", "i1", NULL), 1,
                 "expected no withdrawn for a no_answer fact");
}

/* max_wait 60 s then overflow to q2, where h2 is available. Without a target: no_agent_timeout. */
Test(router_state, max_wait_overflows_or_times_out)
{
    struct router_queue q;
    struct router_state_result res;

    rs_it_queue("q2", ROUTER_STRAT_LONGEST_IDLE);
    rs_it_queue_init(&q, "q1", ROUTER_STRAT_LONGEST_IDLE);
    q.max_wait_s = 60;
    snprintf(q.overflow_queue_id, sizeof(q.overflow_queue_id), "q2");
    rs_it_queue_sync(&q);
    rs_it_queue_init(&q, "q3", ROUTER_STRAT_LONGEST_IDLE);
    q.max_wait_s = 60;
    rs_it_queue_sync(&q);
    rs_it_plain_member("q2", "h2", 1);
    rs_it_enqueue("i1", "q1", RS_S(0));
    rs_it_enqueue("i3", "q3", RS_S(0));
    rs_it_login("h2", RS_S(1));
    cr_assert_eq(rs_it_tick(RS_S(59), &res), 0, "expected nothing due before 60 s");
    cr_assert_eq(rs_it_tick(RS_S(60), &res), 2, "expected both max-wait timers");
    cr_assert_eq(rs_it_events("cc.routing.overflowed", "i1", NULL), 1, "expected overflowed");
    cr_assert_eq(rs_it_events("cc.interaction.overflowed", "i1", NULL), 1, "expected the fact");
    cr_assert_eq(rs_it_events("cc.routing.assigned", "i1", NULL), 1, "expected h2 offered i1");
    cr_assert_eq(rs_it_events("cc.routing.no_agent_timeout", "i3", NULL), 1,
                 "expected a no-agent timeout for i3");
}

Test(router_state, enqueue_applies_the_queue_rules)
{
    struct router_queue q;
    struct router_state_result res;
    json_t *d;

    rs_it_queue_init(&q, "full", ROUTER_STRAT_LONGEST_IDLE);
    q.max_length = 1;
    rs_it_queue_sync(&q);
    rs_it_queue_init(&q, "refuse", ROUTER_STRAT_LONGEST_IDLE);
    q.no_agent_action = ROUTER_NOAGENT_REFUSE;
    rs_it_queue_sync(&q);
    rs_it_queue_init(&q, "spill", ROUTER_STRAT_LONGEST_IDLE);
    q.no_agent_action = ROUTER_NOAGENT_OVERFLOW;
    snprintf(q.overflow_queue_id, sizeof(q.overflow_queue_id), "full");
    rs_it_queue_sync(&q);
    rs_it_queue_init(&q, "closed", ROUTER_STRAT_LONGEST_IDLE);
    snprintf(q.closed_reason, sizeof(q.closed_reason), "holiday");
    rs_it_queue_sync(&q);

    res = rs_it_enqueue("i1", "full", RS_S(1));
    cr_assert_eq(res.status, ROUTER_ST_QUEUED, "expected join when nobody is logged in");
    res = rs_it_enqueue("i2", "full", RS_S(2));
    cr_assert_eq(res.status, ROUTER_ST_REJECTED, "expected queue_full");
    cr_assert_str_eq(res.detail, "queue_full", "expected reason queue_full");
    res = rs_it_enqueue("i3", "refuse", RS_S(3));
    cr_assert_str_eq(res.detail, "no_agents_logged_in", "expected a refusal");
    res = rs_it_enqueue("i4", "nosuch", RS_S(4));
    cr_assert_str_eq(res.detail, "unknown_queue", "expected unknown_queue");
    rs_it_events("cc.routing.rejected", "i4", &d);
    cr_assert_str_eq(rs_it_jstr(d, "reason"), "unknown_queue", "expected the rejected event");
    json_decref(d);
    struct router_enqueue req = {.tenant = rs_tenant,
                                 .interaction_id = "i5",
                                 .queue_id = "closed",
                                 .channel = ROUTER_CH_VOICE,
                                 .closed = true,
                                 .now_ms = RS_S(5)};
    cr_assert_eq(router_state_enqueue(rs, &req, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_REJECTED, "expected closed to reject");
    cr_assert_str_eq(res.detail, "closed", "expected reason closed");
    /* spill overflows to "full", which already holds i1 -> rejected there as queue_full */
    res = rs_it_enqueue("i6", "spill", RS_S(6));
    cr_assert_str_eq(res.detail, "queue_full", "expected the overflow target's rule to apply");
    cr_assert_eq(rs_it_events("cc.routing.overflowed", "i6", NULL), 1, "expected an overflow");
}

/* i1 is older than i2; a callback on i1 keeps its place and the decision carries the number. */
Test(router_state, callback_keeps_the_place_and_is_in_the_decision)
{
    struct router_state_result res;
    json_t *d, *cb;

    rs_it_solo("k1");
    rs_it_enqueue("i1", "q", RS_S(1));
    rs_it_enqueue("i2", "q", RS_S(2));
    cr_assert_eq(router_state_set_callback(rs, rs_tenant, "i1", "+4930123456", 0, RS_S(3), &res),
                 0);
    cr_assert_eq(res.status, ROUTER_ST_OK, "expected the callback set");
    res = rs_it_login("k1", RS_S(4));
    rs_it_offer_is(&res, "i1", "k1");
    rs_it_events("cc.routing.assigned", "i1", &d);
    cb = json_object_get(d, "callback");
    cr_assert_str_eq(rs_it_jstr(cb, "number"), "+4930123456", "expected the callback number");
    json_decref(d);
}

/* A callback scheduled for later leaves the queue until then: the offer out (k1) is withdrawn
 * and k1 takes the next interaction; at its time i1 comes back ordered from that time -- behind
 * i3, which came before it, ahead of none older -- and its assignment carries the number. */
Test(router_state, a_scheduled_callback_waits_out_of_the_queue_until_its_time)
{
    struct router_state_result res, last;
    json_t *v, *d;

    rs_it_solo("k1");
    rs_it_login("k1", RS_S(1));
    res = rs_it_enqueue("i1", "q", RS_S(2));
    rs_it_offer_is(&res, "i1", "k1");
    cr_assert_eq(
        router_state_set_callback(rs, rs_tenant, "i1", "+4930123456", RS_S(60), RS_S(3), &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_OK, "expected the callback scheduled");
    cr_assert_str_eq(res.detail, "scheduled");
    cr_assert_eq(rs_it_events("cc.routing.withdrawn", "i1", NULL), 1, "expected k1's offer back");
    cr_assert_eq(router_state_queue_view(rs, rs_tenant, "q", RS_S(3), &v), 0);
    cr_assert_eq(json_integer_value(json_object_get(v, "waiting")), 0, "expected nobody waiting");
    cr_assert_eq(json_integer_value(json_object_get(v, "scheduled_callbacks")), 1);
    json_decref(v);
    res = rs_it_enqueue("i2", "q", RS_S(4)); /* k1 is free again */
    rs_it_offer_is(&res, "i2", "k1");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i2", "k1", RS_S(5), 1, &res), 0);
    res = rs_it_enqueue("i3", "q", RS_S(50)); /* waits: k1 is busy */
    cr_assert_eq(res.noffers, 0, "expected i3 to wait");
    cr_assert_eq(rs_it_tick(RS_S(59), &last), 0, "expected nothing due before i1's time");
    cr_assert_eq(rs_it_tick(RS_S(61), &last), 1, "expected i1's time to come");
    cr_assert_eq(last.status, ROUTER_ST_QUEUED, "expected i1 back in its queue");
    cr_assert_eq(rs_it_events("cc.interaction.queued", "i1", NULL), 2, "expected queued again");
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i2", "k1", 1000, RS_S(62), 1, &res), 0);
    rs_it_offer_is(&res, "i3", "k1"); /* i3 came at 50, before i1's 60 */
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i3", "k1", RS_S(63), 1, &res), 0);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i3", "k1", 1000, RS_S(64), 1, &res), 0);
    rs_it_offer_is(&res, "i1", "k1");
    rs_it_events("cc.routing.assigned", "i1", &d);
    cr_assert_str_eq(rs_it_jstr(json_object_get(d, "callback"), "number"), "+4930123456");
    json_decref(d);
}

/* A queue with callback_enabled false refuses a callback: the interaction (whose caller hung
 * up for it) ends rejected {callback_disabled}, and the outstanding offer is withdrawn. */
Test(router_state, a_queue_without_callbacks_rejects_a_callback)
{
    struct router_state_result res;
    struct router_queue q;
    json_t *d;

    rs_it_queue_init(&q, "q", ROUTER_STRAT_LONGEST_IDLE);
    q.callback_enabled = false;
    rs_it_queue_sync(&q);
    rs_it_plain_member("q", "k1", 1);
    rs_it_login("k1", RS_S(1));
    res = rs_it_enqueue("i1", "q", RS_S(2));
    rs_it_offer_is(&res, "i1", "k1");
    cr_assert_eq(router_state_set_callback(rs, rs_tenant, "i1", "+4930123456", 0, RS_S(3), &res),
                 0);
    cr_assert_eq(res.status, ROUTER_ST_REJECTED, "expected the callback refused");
    cr_assert_str_eq(res.detail, "callback_disabled");
    cr_assert_eq(rs_it_events("cc.routing.rejected", "i1", &d), 1, "expected one rejected");
    cr_assert_str_eq(rs_it_jstr(d, "reason"), "callback_disabled");
    json_decref(d);
    cr_assert_eq(rs_it_events("cc.routing.withdrawn", "i1", NULL), 1,
                 "expected k1's offer taken back");
    res = rs_it_enqueue("i2", "q", RS_S(4));
    rs_it_offer_is(&res, "i2", "k1"); /* k1 is free again */
}

/* i1 older, i2 younger; raising i2's priority puts it first at once. */
Test(router_state, a_priority_change_takes_effect_at_once)
{
    struct router_state_result res;
    struct router_requeue rq = {
        .tenant = rs_tenant, .interaction_id = "i2", .priority = 5, .now_ms = RS_S(3)};

    rs_it_solo("m1");
    rs_it_enqueue("i1", "q", RS_S(1));
    rs_it_enqueue("i2", "q", RS_S(2));
    cr_assert_eq(router_state_requeue(rs, &rq, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_QUEUED, "expected the requeue applied");
    res = rs_it_login("m1", RS_S(4));
    rs_it_offer_is(&res, "i2", "m1");
}

/* at_head false (anew) puts a requeued interaction behind the waiting ones of its priority
 * (its wait still counts from its arrival); the agents a requeue excludes are never offered
 * it. i1, i2, i3 wait in q (arrived at 1, 2, 3 s; nobody logged in); i1 is requeued anew at
 * 10 s, i2 excludes x2. x2 logs in: the head i2 is not for x2, so x2 gets i3; x3 then gets
 * i2, x4 last gets i1, having waited 21 s. */
Test(router_state, a_requeue_anew_goes_behind_and_its_excluded_agents_never_get_it)
{
    static const char *const ex[] = {"x2"};
    struct router_state_result res;
    struct router_requeue rq = {
        .tenant = rs_tenant, .priority = -1, .reason = "supervisor", .now_ms = RS_S(10), .seed = 1};
    char id[16];
    json_t *d;

    rs_it_queue("q", ROUTER_STRAT_LONGEST_IDLE);
    for (int i = 1; i <= 4; i++) {
        snprintf(id, sizeof(id), "x%d", i);
        rs_it_plain_member("q", id, i);
    }
    for (int i = 1; i <= 3; i++) {
        snprintf(id, sizeof(id), "i%d", i);
        res = rs_it_enqueue(id, "q", RS_S(i));
        cr_assert_eq(res.status, ROUTER_ST_QUEUED, "expected '%s' waiting", id);
    }
    rq.interaction_id = "i1";
    rq.anew = true;
    cr_assert_eq(router_state_requeue(rs, &rq, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_QUEUED, "expected i1 requeued");
    rq.interaction_id = "i2";
    rq.anew = false;
    rq.exclude = ex;
    rq.nexclude = 1;
    cr_assert_eq(router_state_requeue(rs, &rq, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_QUEUED, "expected i2 requeued");
    res = rs_it_login("x2", RS_S(20));
    rs_it_offer_is(&res, "i3", "x2");
    res = rs_it_login("x3", RS_S(21));
    rs_it_offer_is(&res, "i2", "x3");
    res = rs_it_login("x4", RS_S(22));
    rs_it_offer_is(&res, "i1", "x4");
    cr_assert_eq(rs_it_events("cc.routing.assigned", "i1", &d), 1, "expected one assigned");
    cr_assert_eq(json_integer_value(json_object_get(d, "wait_ms")), 21000,
                 "expected i1's wait counted from its arrival");
    json_decref(d);
}

/* Reads an integer field of an agent's view. */
static long long rs_it_agent_int(const char *agent, const char *field)
{
    json_t *v = NULL;
    long long n;

    cr_assert_eq(router_state_agent_view(rs, rs_tenant, agent, RS_T0, &v), 0,
                 "expected a view of '%s'", agent);
    cr_assert(json_is_integer(json_object_get(v, field)), "expected integer '%s'", field);
    n = json_integer_value(json_object_get(v, field));
    json_decref(v);
    return n;
}

static struct router_state_result rs_it_transfer(const char *ix, const char *to, const char *reqid,
                                                 long long now)
{
    struct router_state_result res;
    struct router_requeue rq = {.tenant = rs_tenant,
                                .interaction_id = ix,
                                .queue_id = to,
                                .priority = -1,
                                .reason = "transfer",
                                .request_id = reqid,
                                .now_ms = now,
                                .seed = 1};

    cr_assert_eq(router_state_requeue(rs, &rq, &res), 0, "expected the transfer of '%s'", ix);
    return res;
}

/* t1 (sales, wrap-up 30 s) talks 10 s to i1 (arrived at 1 s), then transfers it blind to
 * support, where i2 (arrived at 3 s) waits: t1 goes to wrap-up with its talk counted, i1 waits
 * in support ahead of i2 (original arrival) and t2 gets it first. The same request again does
 * nothing. */
Test(router_state, a_transfer_releases_the_agent_and_queues_the_interaction_in_the_target)
{
    struct router_queue q;
    struct router_state_result res;
    json_t *d;

    rs_it_queue_init(&q, "sales", ROUTER_STRAT_LONGEST_IDLE);
    q.wrapup_s = 30;
    rs_it_queue_sync(&q);
    rs_it_queue("support", ROUTER_STRAT_LONGEST_IDLE);
    rs_it_agent("t1", 1, 3, true, NULL);
    rs_it_agent("t2", 1, 3, true, NULL);
    rs_it_member("sales", "t1", 1, 1, 0);
    rs_it_member("support", "t1", 1, 1, 0);
    rs_it_member("support", "t2", 1, 2, 0);
    rs_it_login("t1", RS_S(1));
    res = rs_it_enqueue("i1", "sales", RS_S(1));
    rs_it_offer_is(&res, "i1", "t1");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i1", "t1", RS_S(2), 1, NULL), 0);
    res = rs_it_enqueue("i2", "support", RS_S(3));
    cr_assert_eq(res.noffers, 0, "expected i2 to wait: nobody is free in support");

    res = rs_it_transfer("i1", "support", "req-1", RS_S(12));
    cr_assert_eq(res.status, ROUTER_ST_QUEUED, "expected the transfer queued, got %s",
                 router_state_status_name(res.status));
    cr_assert_str_eq(res.detail, "transfer", "expected detail transfer");
    cr_assert_str_eq(res.queue_id, "support", "expected i1 in support");
    cr_assert_eq(res.noffers, 0, "expected no offer: t1 is in wrap-up and t2 logged out");
    cr_assert_eq(rs_it_state("t1"), ROUTER_AGENT_WRAP_UP, "expected t1 in sales' wrap-up");
    cr_assert_eq(rs_it_agent_int("t1", "talk_ms"), 10000, "expected t1's 10 s of talk counted");
    cr_assert_eq(rs_it_agent_int("t1", "handled"), 1, "expected t1's handled count 1");
    rs_it_events("cc.interaction.queued", "i1", &d);
    cr_assert_str_eq(rs_it_jstr(d, "queue_id"), "support", "expected queued in support");
    cr_assert_eq(json_integer_value(json_object_get(d, "position")), 1,
                 "expected i1 ahead of i2 by its original arrival");
    json_decref(d);

    res = rs_it_transfer("i1", "support", "req-1", RS_S(13));
    cr_assert_eq(res.status, ROUTER_ST_NOOP, "expected a repeated transfer to do nothing");
    cr_assert_str_eq(res.detail, "duplicate", "expected detail duplicate");
    cr_assert_eq(rs_it_events("cc.interaction.queued", "i1", NULL), 2,
                 "expected one queued for the enqueue and one for the transfer");

    res = rs_it_login("t2", RS_S(14));
    rs_it_offer_is(&res, "i1", "t2");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i1", "t2", RS_S(15), 1, NULL), 0);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i1", "t2", 5000, RS_S(20), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_OK, "expected the end credited to t2");
    cr_assert_eq(rs_it_agent_int("t2", "talk_ms"), 5000, "expected t2's talk only");
}

/* A transfer to a queue that does not exist ends the interaction rejected and frees the agent. */
Test(router_state, a_transfer_to_an_unknown_queue_is_rejected_and_frees_the_agent)
{
    struct router_state_result res;
    json_t *d;

    rs_it_solo("u1");
    rs_it_login("u1", RS_S(1));
    rs_it_enqueue("i1", "q", RS_S(1));
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i1", "u1", RS_S(2), 1, NULL), 0);
    res = rs_it_transfer("i1", "nosuch", "req-9", RS_S(5));
    cr_assert_eq(res.status, ROUTER_ST_REJECTED, "expected the transfer rejected");
    cr_assert_str_eq(res.detail, "unknown_queue", "expected reason unknown_queue");
    cr_assert_eq(rs_it_events("cc.routing.rejected", "i1", &d), 1, "expected one rejected");
    cr_assert_str_eq(rs_it_jstr(d, "reason"), "unknown_queue", "expected unknown_queue");
    json_decref(d);
    cr_assert_eq(rs_it_state("u1"), ROUTER_AGENT_AVAILABLE, "expected u1 free (no wrap-up)");
    cr_assert_eq(rs_it_agent_int("u1", "handled"), 1, "expected the talk counted");
    res = rs_it_transfer("i1", "q", "req-10", RS_S(6));
    cr_assert_eq(res.status, ROUTER_ST_NOOP, "expected a rejected interaction not to move");
}

Test(router_state, commands_are_idempotent)
{
    struct router_state_result res;

    rs_it_solo("n1");
    rs_it_login("n1", RS_S(1));
    rs_it_enqueue("i1", "q", RS_S(2));
    res = rs_it_enqueue("i1", "q", RS_S(2));
    cr_assert_eq(res.status, ROUTER_ST_NOOP, "expected a repeated enqueue to do nothing");
    cr_assert_eq(rs_it_events("cc.interaction.queued", "i1", NULL), 1, "expected one queued");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i1", "n1", RS_S(3), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_OK);
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i1", "n1", RS_S(3), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_NOOP, "expected a repeated answer to do nothing");
    cr_assert_eq(router_state_no_answer(rs, rs_tenant, "i1", "n1", RS_S(4), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_NOOP, "expected a stale no_answer to do nothing");
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i1", "n1", 1000, RS_S(5), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_OK);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i1", "n1", 1000, RS_S(5), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_NOOP, "expected a repeated end to do nothing");
    cr_assert_eq(rs_it_state("n1"), ROUTER_AGENT_AVAILABLE, "expected n1 available");
}

Test(router_state, abandon_withdraws_the_offer_and_frees_the_agent)
{
    struct router_state_result res;

    rs_it_solo("p1");
    rs_it_login("p1", RS_S(1));
    rs_it_enqueue("i1", "q", RS_S(2));
    cr_assert_eq(router_state_abandoned(rs, rs_tenant, "i1", RS_S(3), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_OK);
    cr_assert_eq(rs_it_events("cc.routing.withdrawn", "i1", NULL), 1, "expected withdrawn");
    cr_assert_eq(rs_it_state("p1"), ROUTER_AGENT_AVAILABLE, "expected p1 free");
}

Test(router_state, views_show_the_live_queue_and_agent)
{
    json_t *v;

    rs_it_solo("r1");
    cr_assert_eq(
        router_state_agent_login(rs, rs_tenant, "r1", false, "break", "agent", RS_S(1), 1, NULL),
        0);
    rs_it_enqueue("i1", "q", RS_S(10));
    rs_it_enqueue("i2", "q", RS_S(20));
    cr_assert_eq(router_state_queue_view(rs, rs_tenant, "q", RS_S(40), &v), 0);
    cr_assert_eq(json_integer_value(json_object_get(v, "waiting")), 2, "expected 2 waiting");
    cr_assert_eq(json_integer_value(json_object_get(v, "oldest_wait_ms")), 30000,
                 "expected the oldest wait 30 s");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(v, "agents"), "not_ready")), 1,
                 "expected one agent not ready");
    json_decref(v);
    cr_assert_eq(router_state_agent_view(rs, rs_tenant, "r1", RS_S(40), &v), 0);
    cr_assert_str_eq(rs_it_jstr(v, "reason"), "break", "expected the reason");
    json_decref(v);
    cr_assert_eq(router_state_queue_view(rs, rs_tenant, "nosuch", RS_S(40), &v), -ENOENT,
                 "expected -ENOENT for an unknown queue");
    cr_assert_eq(router_state_agent_available(rs, rs_tenant, "nosuch", "agent", RS_S(1), 1, NULL),
                 -ENOENT, "expected -ENOENT for an unknown agent");
}

/* A server that lost the function library (restart without persistence, FUNCTION FLUSH) gets it
 * again on the next call. */
Test(router_state, a_lost_function_library_is_loaded_again)
{
    redisReply *r = cc_redis_command(rs_raw, "FUNCTION DELETE cc_router");

    cr_assert_not_null(r, "expected FUNCTION DELETE to answer");
    freeReplyObject(r);
    rs_it_queue("q", ROUTER_STRAT_LONGEST_IDLE);
    cr_assert_eq(router_state_dispatch_queue(rs, rs_tenant, "q", RS_S(1), 1, NULL), 0,
                 "expected the call to reload the library and succeed");
}

/* ---- concurrency: two processes against one Redis ----------------------------------------- */

#define RS_LOAD_AGENTS 200
#define RS_LOAD_QUEUES 4
#define RS_LOAD_PER    5000 /* interactions per process */
#define RS_LOAD_SLOTS  8192

/* Capacity invariant over every agent of the tenant, checked atomically inside Redis: used per
 * channel within 0..capacity and equal to what the agent holds or rings on that channel. Returns
 * the number of violations (0 = fine) and logs the first. */
static const char rs_load_check_lua[] =
    "local bad = 0 "
    "for i = 0, tonumber(ARGV[2]) - 1 do "
    "  local a = string.format('cc:{%s}:agent:a%03d', ARGV[1], i) "
    "  local held = {voice = 0, chat = 0, email = 0, sms = 0} "
    "  local ix = redis.call('HVALS', a .. ':ix') "
    "  for _, v in ipairs(ix) do local ch = string.match(v, '^(%a+)|') held[ch] = held[ch] + 1 end "
    "  for ch, n in pairs(held) do "
    "    local used = tonumber(redis.call('HGET', a, 'used_' .. ch) or 0) "
    "    local cap = tonumber(redis.call('HGET', a, 'cap_' .. ch) or 0) "
    "    if used ~= n or used < 0 or used > cap then bad = bad + 1 end "
    "  end "
    "end "
    "return bad";

static int rs_load_violations(cc_redis *raw, const char *tenant)
{
    redisReply *r =
        cc_redis_command(raw, "EVAL %s 0 %s %d", rs_load_check_lua, tenant, RS_LOAD_AGENTS);
    int bad = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;

    if (r)
        freeReplyObject(r);
    return bad;
}

struct rs_load_pair {
    char ix[32];
    char agent[16];
};

struct rs_load {
    router_state *st;
    cc_redis *raw;
    FILE *ledger;
    struct rs_load_pair offered[RS_LOAD_SLOTS], held[RS_LOAD_SLOTS];
    size_t noffered, nheld;
    unsigned long long rnd;
};

static unsigned rs_load_rand(struct rs_load *l, unsigned n)
{
    l->rnd ^= l->rnd << 13;
    l->rnd ^= l->rnd >> 7;
    l->rnd ^= l->rnd << 17;
    return (unsigned)(l->rnd % n);
}

/* Keeps the offers a command made: this process answers them (whoever's interaction it is). */
static int rs_load_collect(struct rs_load *l, const struct router_state_result *res)
{
    if (res->noffers > ROUTER_STATE_OFFERS_MAX)
        return -1; /* an offer we cannot see would ring forever */
    for (size_t i = 0; i < res->noffers; i++) {
        if (l->noffered >= RS_LOAD_SLOTS)
            return -1;
        snprintf(l->offered[l->noffered].ix, sizeof(l->offered[0].ix), "%s",
                 res->offers[i].interaction_id);
        snprintf(l->offered[l->noffered].agent, sizeof(l->offered[0].agent), "%s",
                 res->offers[i].agent_id);
        l->noffered++;
    }
    return 0;
}

static long long rs_load_ended(struct rs_load *l, const char *tenant, bool incr)
{
    redisReply *r =
        cc_redis_command(l->raw, "%s cc:{%s}:load:ended", incr ? "INCR" : "GET", tenant);
    long long v = -1;

    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    else if (r && r->type == REDIS_REPLY_NIL)
        v = 0;
    if (r)
        freeReplyObject(r);
    return v;
}

/* One step of the load: enqueue, answer / no-answer an offer, end a call, or dispatch. */
static int rs_load_step(struct rs_load *l, const char *tenant, int who, int *enqueued)
{
    struct router_state_result res;
    long long now = RS_T0 + 1000000 + *enqueued;
    char ix[32], q[16];
    unsigned r = rs_load_rand(l, 10);
    int rc;

    snprintf(q, sizeof(q), "q%u", rs_load_rand(l, RS_LOAD_QUEUES));
    if (*enqueued < RS_LOAD_PER && (r < 4 || (l->noffered == 0 && l->nheld == 0))) {
        struct router_enqueue req = {.tenant = tenant,
                                     .interaction_id = ix,
                                     .queue_id = q,
                                     .channel = r < 2 ? ROUTER_CH_VOICE : ROUTER_CH_CHAT,
                                     .priority = (int)rs_load_rand(l, 3),
                                     .now_ms = now,
                                     .seed = l->rnd};
        snprintf(ix, sizeof(ix), "L%d-%d", who, (*enqueued)++);
        rc = router_state_enqueue(l->st, &req, &res);
    } else if (l->noffered > 0 && r < 8) {
        size_t k = rs_load_rand(l, (unsigned)l->noffered);
        struct rs_load_pair p = l->offered[k];
        l->offered[k] = l->offered[--l->noffered];
        if (rs_load_rand(l, 10) < 9) {
            rc = router_state_answered(l->st, tenant, p.ix, p.agent, now, l->rnd, &res);
            if (rc == 0 && res.status == ROUTER_ST_OK) {
                l->held[l->nheld++] = p;
                fprintf(l->ledger, "%s %s\n", p.ix, p.agent);
            }
        } else {
            rc = router_state_no_answer(l->st, tenant, p.ix, p.agent, now, l->rnd, &res);
        }
    } else if (l->nheld > 0) {
        size_t k = rs_load_rand(l, (unsigned)l->nheld);
        struct rs_load_pair p = l->held[k];
        l->held[k] = l->held[--l->nheld];
        rc = router_state_ended(l->st, tenant, p.ix, p.agent, 1000, now, l->rnd, &res);
        if (rc == 0 && res.status == ROUTER_ST_OK && rs_load_ended(l, tenant, true) < 0)
            return -1;
    } else {
        rc = router_state_dispatch_queue(l->st, tenant, q, now, l->rnd, &res);
        if (rc == 0 && res.noffers == 0)
            usleep(500);
    }
    if (rc < 0)
        return rc;
    return rs_load_collect(l, &res);
}

/* The body of one load process; returns its exit status. */
static int rs_load_run(const char *url, const char *tenant, int who, const char *ledger)
{
    struct rs_load *l = calloc(1, sizeof(*l));
    int enqueued = 0, status = 1;
    time_t deadline = time(NULL) + 240;

    if (!l)
        return 2;
    l->rnd = 0x9e3779b97f4a7c15ULL * (unsigned)(who + 1);
    l->st = router_state_new(url);
    l->raw = cc_redis_new(url);
    l->ledger = fopen(ledger, "w");
    if (!l->st || !l->raw || !l->ledger || router_state_set_keys(l->st, rs_outbox, rs_timers))
        goto out;
    for (long step = 0; time(NULL) < deadline; step++) {
        if (rs_load_step(l, tenant, who, &enqueued) < 0) {
            fprintf(stderr, "load %d: a command failed at step %ld\n", who, step);
            goto out;
        }
        if (step % 500 == 0 && rs_load_violations(l->raw, tenant) != 0) {
            fprintf(stderr, "load %d: capacity invariant broken at step %ld\n", who, step);
            goto out;
        }
        if (enqueued == RS_LOAD_PER && l->noffered == 0 && l->nheld == 0 &&
            rs_load_ended(l, tenant, false) == 2 * RS_LOAD_PER) {
            status = 0;
            break;
        }
    }
    if (status)
        fprintf(stderr, "load %d: not finished in time\n", who);
out:
    if (l->ledger)
        fclose(l->ledger);
    cc_redis_free(l->raw);
    router_state_free(l->st);
    free(l);
    return status;
}

/* Counts answers per interaction in the two ledgers: each of the 10,000 exactly once. */
static void rs_load_check_ledgers(char ledger[2][256])
{
    static unsigned char seen[2][RS_LOAD_PER];
    char ix[64], agent[32];
    int who, k, total = 0;

    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(ledger[i], "r");
        cr_assert_not_null(f, "expected ledger '%s'", ledger[i]);
        while (fscanf(f, "%63s %31s", ix, agent) == 2) {
            cr_assert_eq(sscanf(ix, "L%d-%d", &who, &k), 2, "expected a load id, got '%s'", ix);
            cr_assert(who >= 0 && who < 2 && k >= 0 && k < RS_LOAD_PER, "bad id '%s'", ix);
            cr_assert_eq(seen[who][k], 0, "expected '%s' answered once, not twice", ix);
            seen[who][k] = 1;
            total++;
        }
        fclose(f);
    }
    cr_assert_eq(total, 2 * RS_LOAD_PER, "expected every interaction answered once, got %d", total);
}

/* Two processes, each with its own connection, route 5,000 interactions each over 200 agents
 * in 4 queues (each agent in two), answering 90 % of the offers they see (the rest RONA) and
 * ending calls at random. Inside Redis, no agent ever holds more than its capacity per
 * channel (checked atomically every 500 steps and at the end), and every interaction is
 * answered exactly once (ledgers). */
Test(router_state, two_processes_never_exceed_capacity, .timeout = 300)
{
    static const enum router_strategy strat[RS_LOAD_QUEUES] = {
        ROUTER_STRAT_LONGEST_IDLE, ROUTER_STRAT_LINEAR, ROUTER_STRAT_ROUND_ROBIN,
        ROUTER_STRAT_FEWEST_INTERACTIONS};
    const char *url = itest_env("CC_REDIS_URL");
    char ledger[2][256], id[16];
    pid_t pid[2];
    int status;

    for (int q = 0; q < RS_LOAD_QUEUES; q++) {
        snprintf(id, sizeof(id), "q%d", q);
        rs_it_queue(id, strat[q]);
    }
    for (int a = 0; a < RS_LOAD_AGENTS; a++) {
        char q1[16], q2[16];
        snprintf(id, sizeof(id), "a%03d", a);
        rs_it_agent(id, 1, 3, true, NULL);
        snprintf(q1, sizeof(q1), "q%d", a % RS_LOAD_QUEUES);
        snprintf(q2, sizeof(q2), "q%d", (a + 1) % RS_LOAD_QUEUES);
        rs_it_member(q1, id, 1, a + 1, 0);
        rs_it_member(q2, id, 1, a + 1, 0);
        rs_it_login(id, RS_S(a));
    }
    for (int i = 0; i < 2; i++) {
        snprintf(ledger[i], sizeof(ledger[i]), "/tmp/%s.%d.ledger", rs_tenant, i);
        pid[i] = fork();
        cr_assert(pid[i] >= 0, "expected fork");
        if (pid[i] == 0)
            _exit(rs_load_run(url, rs_tenant, i, ledger[i]));
    }
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(waitpid(pid[i], &status, 0), pid[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "expected load process %d to finish cleanly (status %d)", i, status);
    }
    cr_assert_eq(rs_load_violations(rs_raw, rs_tenant), 0, "expected the capacity invariant");
    rs_load_check_ledgers(ledger);
    for (int a = 0; a < RS_LOAD_AGENTS; a++) {
        snprintf(id, sizeof(id), "a%03d", a);
        enum router_agent_state st = rs_it_state(id);
        cr_assert(st == ROUTER_AGENT_AVAILABLE || st == ROUTER_AGENT_NOT_READY,
                  "expected '%s' to hold nothing at the end, state %s", id,
                  router_agent_state_name(st));
    }
    unlink(ledger[0]);
    unlink(ledger[1]);
}

/* ---- ordered indexes of free agents (availp / availt / availh) ----------------------------- */

/* ZCARD of the queue's key with suffix sfx (":avail", ":availp", ...). */
static long long rs_it_zcard(const char *q, const char *sfx)
{
    redisReply *r = cc_redis_command(rs_raw, "ZCARD cc:{%s}:queue:%s%s", rs_tenant, q, sfx);
    long long n;

    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "expected ZCARD of %s%s", q, sfx);
    n = r->integer;
    freeReplyObject(r);
    return n;
}

static void rs_it_del_key(const char *q, const char *sfx)
{
    redisReply *r = cc_redis_command(rs_raw, "DEL cc:{%s}:queue:%s%s", rs_tenant, q, sfx);

    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "expected %s%s deleted", q,
              sfx);
    freeReplyObject(r);
}

/* least_talk_time reads the talk-ordered index: its scores follow talk_ms as interactions end,
 * and when more agents than a page share the least talk time the longest idle of them wins. */
Test(router_state, least_talk_time_follows_talk_as_interactions_end)
{
    struct router_state_result res;
    char id[16];

    rs_it_queue("q", ROUTER_STRAT_LEAST_TALK_TIME);
    for (int i = 1; i <= 10; i++) {
        snprintf(id, sizeof(id), "t%02d", i);
        rs_it_agent(id, 1, 1, false, NULL);
        rs_it_member("q", id, 1, 11 - i, 0); /* position order is the reverse of idle order */
        rs_it_login(id, RS_S(i));
    }
    res = rs_it_enqueue_p("i1", "q", ROUTER_CH_CHAT, 0, RS_S(20), 1);
    rs_it_offer_is(&res, "i1", "t01");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i1", "t01", RS_S(21), 1, &res), 0);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i1", "t01", 5000, RS_S(26), 1, &res), 0);
    res = rs_it_enqueue_p("i2", "q", ROUTER_CH_CHAT, 0, RS_S(27), 1);
    rs_it_offer_is(&res, "i2", "t02");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "i2", "t02", RS_S(28), 1, &res), 0);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "i2", "t02", 1000, RS_S(29), 1, &res), 0);
    for (int i = 3; i <= 10; i++) {
        snprintf(id, sizeof(id), "t%02d", i);
        cr_assert_eq(router_state_agent_logout(rs, rs_tenant, id, "agent", RS_S(30), 1, &res), 0,
                     "expected '%s' to log out", id);
    }
    cr_assert_eq(rs_it_zcard("q", ":availt"), 2, "expected two free agents in the talk index");
    /* t01 is idle longer (since 26 s) but talked 5 s; t02 talked 1 s */
    res = rs_it_enqueue_p("i3", "q", ROUTER_CH_CHAT, 0, RS_S(31), 1);
    rs_it_offer_is(&res, "i3", "t02");
}

/* Fewest interactions when agents share the fewest: the longest idle of them wins, then the
 * position, whatever their order in the handled index (by id). 70 agents with none handled
 * (more than the tied set kept in the script) log in in reverse id order, f68 and f67 in the
 * same second (f68 placed first); each takes one chat. In q2, g09-g12 share the fewest (2),
 * g01-g08 handled 4 and are idle longer: g12, the longest idle of the four, wins. */
Test(router_state, fewest_interactions_ties_go_to_the_longest_idle_then_position)
{
    static const char *const want[] = {"f70", "f69", "f68", "f67", "f66"};
    struct router_state_result res;
    char id[16], ix[16];

    rs_it_queue("q", ROUTER_STRAT_FEWEST_INTERACTIONS);
    for (int i = 1; i <= 70; i++) {
        snprintf(id, sizeof(id), "f%02d", i);
        rs_it_agent(id, 1, 1, false, NULL);
        rs_it_member("q", id, 1, i == 68 ? 1 : 5, 0);
        rs_it_login(id, RS_S(i == 67 ? 32 : 100 - i));
    }
    for (int i = 0; i < 5; i++) {
        snprintf(ix, sizeof(ix), "c%d", i + 1);
        res = rs_it_enqueue_p(ix, "q", ROUTER_CH_CHAT, 0, RS_S(200 + i), 1);
        rs_it_offer_is(&res, ix, want[i]);
    }
    rs_it_queue("q2", ROUTER_STRAT_FEWEST_INTERACTIONS);
    for (int i = 1; i <= 12; i++) {
        snprintf(id, sizeof(id), "g%02d", i);
        rs_it_agent(id, 1, 1, false, NULL);
        rs_it_member("q2", id, 1, 1, 0);
        rs_it_hset(id, "handled", i <= 8 ? 4 : 2);
        rs_it_login(id, RS_S(i <= 8 ? i : 52 - i));
    }
    res = rs_it_enqueue_p("d1", "q2", ROUTER_CH_CHAT, 0, RS_S(300), 1);
    rs_it_offer_is(&res, "d1", "g12");
    res = rs_it_enqueue_p("d2", "q2", ROUTER_CH_CHAT, 0, RS_S(301), 1);
    rs_it_offer_is(&res, "d2", "g11");
}

/* Round robin over agents sharing a position: by agent id, then the next position, then wrap. */
Test(router_state, round_robin_walks_agents_of_one_position_by_id)
{
    static const char *const want[] = {"r1", "r2", "r3", "r4", "r1"};
    struct router_state_result res;
    char id[16];

    rs_it_queue("q", ROUTER_STRAT_ROUND_ROBIN);
    for (int i = 1; i <= 4; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        rs_it_agent(id, 1, 5, false, NULL);
        rs_it_member("q", id, 1, i < 4 ? 1 : 2, 0);
        rs_it_login(id, RS_S(i));
    }
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "i%d", i + 1);
        res = rs_it_enqueue_p(id, "q", ROUTER_CH_CHAT, 0, RS_S(10 + i), 1);
        rs_it_offer_is(&res, id, want[i]);
    }
}

/* State written before an ordered index existed: the index is rebuilt from queue:<q>:avail. */
Test(router_state, a_missing_order_index_is_rebuilt_from_the_free_agents)
{
    struct router_state_result res;

    rs_it_scenario(ROUTER_STRAT_LINEAR);
    rs_it_del_key("q", ":availp");
    res = rs_it_enqueue("i1", "q", RS_S(100));
    rs_it_offer_is(&res, "i1", "a2");
    cr_assert_eq(rs_it_zcard("q", ":availp"), rs_it_zcard("q", ":avail"),
                 "expected the position index to hold the free agents again");
    rs_it_queue("q2", ROUTER_STRAT_LEAST_TALK_TIME);
    for (int i = 1; i <= 7; i++) {
        char id[16];
        snprintf(id, sizeof(id), "a%d", i);
        rs_it_member("q2", id, 1, i, 0);
    }
    rs_it_del_key("q2", ":availt");
    res = rs_it_enqueue("i2", "q2", RS_S(101));
    rs_it_offer_is(&res, "i2", "a3");
}

/* A queue keeps only the free-agent indexes its strategy reads (avail always); after a change of
 * strategy the order it reads is rebuilt from the free agents and kept from then on, also when
 * it comes back to an order whose index was dropped meanwhile. Positions: a2 1, a5 2, a1 3, a3 4,
 * a4 5; a3 talked least; voice capacity 1, so an agent offered leaves every index. */
Test(router_state, a_strategy_change_reads_the_order_of_the_new_strategy)
{
    struct router_state_result res;

    rs_it_scenario(ROUTER_STRAT_LONGEST_IDLE);
    cr_assert_eq(rs_it_zcard("q", ":avail"), 7, "expected the seven free agents in avail");
    cr_assert_eq(rs_it_zcard("q", ":availp") + rs_it_zcard("q", ":availt") +
                     rs_it_zcard("q", ":availh"),
                 0, "expected no position / talk / handled index for longest idle");
    rs_it_queue("q", ROUTER_STRAT_LINEAR);
    res = rs_it_enqueue("i1", "q", RS_S(100));
    rs_it_offer_is(&res, "i1", "a2");
    res = rs_it_enqueue("i2", "q", RS_S(101));
    rs_it_offer_is(&res, "i2", "a5");
    cr_assert_eq(rs_it_zcard("q", ":availp"), 5, "expected the position index kept (5 free)");
    rs_it_queue("q", ROUTER_STRAT_LEAST_TALK_TIME);
    cr_assert_eq(rs_it_zcard("q", ":availp"), 0, "expected the position index dropped");
    res = rs_it_enqueue("i3", "q", RS_S(102));
    rs_it_offer_is(&res, "i3", "a3");
    rs_it_queue("q", ROUTER_STRAT_LINEAR);
    res = rs_it_enqueue("i4", "q", RS_S(103));
    rs_it_offer_is(&res, "i4", "a1");
    cr_assert_eq(rs_it_zcard("q", ":availt"), 0, "expected the talk index dropped");
    cr_assert_eq(rs_it_zcard("q", ":availp"), rs_it_zcard("q", ":avail"),
                 "expected the position index to hold the free agents");
}

/* best_skill without required skills: every proficiency sum is 0, so the longest idle wins. */
Test(router_state, best_skill_without_required_skills_offers_the_longest_idle)
{
    struct router_state_result res;
    char id[16];

    rs_it_queue("q", ROUTER_STRAT_BEST_SKILL);
    for (int i = 1; i <= 3; i++) {
        snprintf(id, sizeof(id), "b%d", i);
        rs_it_agent(id, 1, 1, false, "s:5");
        rs_it_member("q", id, 1, 4 - i, 0);
        rs_it_login(id, RS_S(i));
    }
    res = rs_it_enqueue_p("i1", "q", ROUTER_CH_CHAT, 0, RS_S(10), 1);
    rs_it_offer_is(&res, "i1", "b1");
    res = rs_it_enqueue_p("i2", "q", ROUTER_CH_CHAT, 0, RS_S(11), 1);
    rs_it_offer_is(&res, "i2", "b2");
}

/* best_skill with required skills reads queue:<q>:availb (by level, then the proficiency sum
 * over the queue's skills) instead of scanning every free agent. Queue skills s >= 1, t >= 2;
 * voice capacity 1, so an agent offered leaves the indexes. Agents, logged in in this order:
 * b1 s5 t1 (lacks t), b2 s3 t3 (sum 6), b3 s2 t5 (7), b4 s4 t3 (7), b5 s1 t2 (3), then c01..c10
 * s3 t4 (7 each): twelve agents tie at 7, more than a page, so the longest idle of them wins. */
Test(router_state, best_skill_reads_the_proficiency_index_and_follows_skill_changes)
{
    static const char *const early[] = {"b1:s:5,t:1", "b2:s:3,t:3", "b3:s:2,t:5", "b4:s:4,t:3",
                                        "b5:s:1,t:2"};
    struct router_skill qs[2] = {{.skill = "s", .level = 1}, {.skill = "t", .level = 2}};
    struct router_skill own = {.skill = "s", .level = 5};
    struct router_state_result res;
    struct router_queue q;
    char id[16];
    long long t = 1;
    json_t *d;

    rs_it_queue_init(&q, "q", ROUTER_STRAT_BEST_SKILL);
    q.skills = qs;
    q.nskills = 2;
    rs_it_queue_sync(&q);
    for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++) {
        snprintf(id, sizeof(id), "%.2s", early[i]);
        rs_it_agent(id, 1, 1, false, early[i] + 3);
        rs_it_member("q", id, 1, 1, 0);
        rs_it_login(id, RS_S(t++));
    }
    for (int i = 1; i <= 10; i++) {
        snprintf(id, sizeof(id), "c%02d", i);
        rs_it_agent(id, 1, 1, false, "s:3,t:4");
        rs_it_member("q", id, 1, 1, 0);
        rs_it_login(id, RS_S(t++));
    }
    cr_assert_eq(rs_it_zcard("q", ":availb"), 15, "expected every free agent in availb");
    res = rs_it_enqueue("i1", "q", RS_S(100));
    rs_it_offer_is(&res, "i1", "b3");
    cr_assert_eq(rs_it_events("cc.routing.assigned", "i1", &d), 1, "expected one assigned");
    cr_assert_eq(json_integer_value(json_object_get(d, "proficiency")), 5,
                 "expected b3's best proficiency in the decision");
    cr_assert_eq(json_integer_value(json_object_get(d, "candidates_considered")), 14,
                 "expected the 14 free agents with the queue's skills counted (not b1)");
    json_decref(d);
    res = rs_it_enqueue("i2", "q", RS_S(101));
    rs_it_offer_is(&res, "i2", "b4");
    res = rs_it_enqueue("i3", "q", RS_S(102));
    rs_it_offer_is(&res, "i3", "c01");
    /* b2 learns: s5 t5 (sum 10) moves it to the front */
    rs_it_agent("b2", 1, 1, false, "s:5,t:5");
    res = rs_it_enqueue("i4", "q", RS_S(103));
    rs_it_offer_is(&res, "i4", "b2");
    /* the queue now requires t >= 1 only: b1 (t1) is eligible, b5 (t2) beats it, the c agents
     * (t4) beat both: c02 is the longest idle of them */
    q.nskills = 1;
    qs[0] = (struct router_skill){.skill = "t", .level = 1};
    rs_it_queue_sync(&q);
    res = rs_it_enqueue("i5", "q", RS_S(104));
    rs_it_offer_is(&res, "i5", "c02");
    cr_assert_eq(rs_it_zcard("q", ":availb"), rs_it_zcard("q", ":avail"),
                 "expected availb rebuilt in the new order");
    /* an interaction with skills of its own is matched by a full scan: s >= 5 -> b1 only */
    struct router_enqueue req = {.tenant = rs_tenant,
                                 .interaction_id = "i6",
                                 .queue_id = "q",
                                 .channel = ROUTER_CH_VOICE,
                                 .skills = &own,
                                 .nskills = 1,
                                 .now_ms = RS_S(105),
                                 .seed = 1};
    cr_assert_eq(router_state_enqueue(rs, &req, &res), 0, "expected enqueue of 'i6'");
    rs_it_offer_is(&res, "i6", "b1");
}

/* A batch of enqueues is one script call per group with the results of single calls: in order
 * (the first two chats take d1's capacity of 2, the third waits), a repeated interaction is a
 * no-op, an unknown queue is rejected, and an invalid request is refused alone. More than
 * ROUTER_STATE_BATCH_MAX commands are split into groups. */
Test(router_state, a_batch_of_enqueues_gives_the_results_of_single_calls_in_order)
{
    enum { N = ROUTER_STATE_BATCH_MAX + 6 };
    static struct router_state_result res[N];
    struct router_enqueue reqs[N];
    char ids[N][16];
    int rcs[N];

    rs_it_queue("q", ROUTER_STRAT_LONGEST_IDLE);
    rs_it_agent("d1", 1, 2, true, NULL);
    rs_it_member("q", "d1", 1, 1, 0);
    rs_it_login("d1", RS_S(1));
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "b%d", i);
        reqs[i] = (struct router_enqueue){.tenant = rs_tenant,
                                          .interaction_id = ids[i],
                                          .queue_id = "q",
                                          .channel = ROUTER_CH_CHAT,
                                          .now_ms = RS_S(10 + i),
                                          .seed = 1};
    }
    reqs[3].interaction_id = ids[0]; /* again: a no-op */
    reqs[4].queue_id = "nope";       /* unknown queue: rejected */
    reqs[5].priority = -1;           /* invalid: refused before Redis */
    long long ran_in = 0, epoch = 0;

    cr_assert_eq(router_state_enqueue_batch(rs, reqs, N, res, rcs, &ran_in), 0,
                 "expected the batch to run");
    cr_assert_eq(router_state_epoch_get(rs, &epoch), 0, "expected an epoch");
    cr_assert_eq(ran_in, epoch, "expected the batch to name the epoch it ran in (%lld), got %lld",
                 epoch, ran_in);
    for (int i = 0; i < N; i++)
        cr_assert_eq(rcs[i], i == 5 ? -EINVAL : 0, "expected rc %d for command %d, got %d",
                     i == 5 ? -EINVAL : 0, i, rcs[i]);
    rs_it_offer_is(&res[0], "b0", "d1");
    rs_it_offer_is(&res[1], "b1", "d1");
    cr_assert_eq(res[2].noffers, 0u, "expected the third chat to wait (capacity 2)");
    cr_assert_eq(res[3].status, ROUTER_ST_NOOP, "expected a repeated enqueue to do nothing");
    cr_assert_eq(res[4].status, ROUTER_ST_REJECTED, "expected an unknown queue to be rejected");
    cr_assert_str_eq(res[N - 1].queue_id, "q", "expected the last group to run too");
    cr_assert_eq(rs_it_events("cc.interaction.queued", "b0", NULL), 1, "expected one queued b0");
    cr_assert_eq(rs_it_events("cc.interaction.queued", ids[N - 1], NULL), 1,
                 "expected the last command of the second group queued");
}

/* A batch of facts gives the results of the same facts applied one by one: the single calls
 * run first on j1 / j2, the batch then on i1 / i2 in the same situation (agent f1, voice 1:
 * x1 offered to it, x2 waiting): answered, abandoned (the one waiting), an invalid fact refused
 * alone, ended (f1 free again). */
Test(router_state, a_batch_of_facts_gives_the_results_of_single_calls)
{
    struct router_state_result one[3], res[4];
    struct router_fact facts[4];
    int rcs[4];

    rs_it_queue("q", ROUTER_STRAT_LONGEST_IDLE);
    rs_it_agent("f1", 1, 1, true, NULL);
    rs_it_member("q", "f1", 1, 1, 0);
    rs_it_login("f1", RS_S(1));
    rs_it_offer_is((struct router_state_result[]){rs_it_enqueue("j1", "q", RS_S(10))}, "j1", "f1");
    rs_it_enqueue("j2", "q", RS_S(11));
    cr_assert_eq(router_state_answered(rs, rs_tenant, "j1", "f1", RS_S(12), 1, &one[0]), 0);
    cr_assert_eq(router_state_abandoned(rs, rs_tenant, "j2", RS_S(13), 1, &one[1]), 0);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "j1", "f1", 5000, RS_S(17), 1, &one[2]), 0);

    rs_it_offer_is((struct router_state_result[]){rs_it_enqueue("i1", "q", RS_S(20))}, "i1", "f1");
    rs_it_enqueue("i2", "q", RS_S(21));
    facts[0] = (struct router_fact){ROUTER_FACT_ANSWERED, rs_tenant, "i1", "f1", 0, RS_S(22), 1};
    facts[1] = (struct router_fact){ROUTER_FACT_ABANDONED, rs_tenant, "i2", NULL, 0, RS_S(23), 1};
    facts[2] = (struct router_fact){ROUTER_FACT_ANSWERED, rs_tenant, "i9", "", 0, RS_S(24), 1};
    facts[3] = (struct router_fact){ROUTER_FACT_ENDED, rs_tenant, "i1", "f1", 5000, RS_S(27), 1};
    cr_assert_eq(router_state_facts_batch(rs, facts, 4, res, rcs, NULL), 0,
                 "expected the batch to run");
    cr_assert_eq(rcs[2], -EINVAL, "expected the fact without an agent refused, got %d", rcs[2]);
    for (int i = 0, k = 0; i < 4; i++) {
        if (i == 2)
            continue;
        cr_assert_eq(rcs[i], 0, "expected fact %d to run, got %d", i, rcs[i]);
        cr_assert_eq(res[i].status, one[k].status, "expected fact %d's status %s, got %s", i,
                     router_state_status_name(one[k].status),
                     router_state_status_name(res[i].status));
        cr_assert_str_eq(res[i].detail, one[k].detail, "expected fact %d's detail", i);
        cr_assert_eq(res[i].nevents, one[k].nevents, "expected fact %d to emit %zu events, got %zu",
                     i, one[k].nevents, res[i].nevents);
        k++;
    }
    cr_assert_eq(rs_it_events("cc.interaction.abandoned", "i2", NULL),
                 rs_it_events("cc.interaction.abandoned", "j2", NULL),
                 "expected the abandoned events of the batch as of the single call");
    cr_assert_eq(rs_it_state("f1"), ROUTER_AGENT_AVAILABLE, "expected f1 free after the end");
}

/* random draws agents until one is eligible: here only a4 has the required skill at level 3, so
 * whatever the draws, a4 wins, and the decision counts the 7 free agents of the level. */
/* A rebuild restores finished interactions as tombstones for the rest of their day: a route of
 * one is then a duplicate; one older than a day is not restored, and a live interaction is never
 * overwritten. */
Test(router_state, restored_tombstones_make_a_redelivered_route_a_duplicate)
{
    const char *ids[] = {"gone", "old", "live"}, *queues[] = {"q", "q", "q"};
    const int64_t ended[] = {RS_S(5), RS_S(5) - 86400LL * 1000, RS_S(5)};
    struct router_state_result res;
    size_t written = 0;

    rs_it_queue("q", ROUTER_STRAT_LONGEST_IDLE);
    rs_it_agent("t1", 1, 1, true, NULL);
    rs_it_member("q", "t1", 1, 1, 0);
    rs_it_login("t1", RS_S(1));
    res = rs_it_enqueue_p("live", "q", ROUTER_CH_CHAT, 0, RS_S(1), 1);
    rs_it_offer_is(&res, "live", "t1");
    cr_assert_eq(
        router_state_restore_tombstones(rs, rs_tenant, 3, ids, queues, ended, RS_S(10), &written),
        0, "expected the tombstones to be restored");
    cr_assert_eq(written, 1u, "expected only 'gone' written (old: past its day; live: exists)");
    res = rs_it_enqueue_p("gone", "q", ROUTER_CH_CHAT, 0, RS_S(11), 1);
    cr_assert_eq(res.status, ROUTER_ST_NOOP, "expected a route of a finished one to do nothing");
    cr_assert_str_eq(res.detail, "duplicate", "expected 'duplicate', got '%s'", res.detail);
    cr_assert_eq(rs_it_events("cc.interaction.queued", "gone", NULL), 0, "expected no queued");
    res = rs_it_enqueue_p("old", "q", ROUTER_CH_CHAT, 0, RS_S(12), 1);
    cr_assert_eq(res.status, ROUTER_ST_QUEUED,
                 "expected one past its day to be routed again, got %s",
                 router_state_status_name(res.status));
    cr_assert_eq(rs_it_events("cc.interaction.queued", "old", NULL), 1, "expected 'old' queued");
    res = rs_it_enqueue_p("live", "q", ROUTER_CH_CHAT, 0, RS_S(13), 1);
    cr_assert_eq(res.status, ROUTER_ST_NOOP, "expected 'live' untouched");
    cr_assert_eq(rs_it_events("cc.interaction.queued", "live", NULL), 1,
                 "expected 'live' queued once");
}

/* True when agent a is in queue q's free-agent index. */
static bool rs_it_indexed(const char *q, const char *a)
{
    redisReply *r = cc_redis_command(rs_raw, "ZSCORE cc:{%s}:queue:%s:avail %s", rs_tenant, q, a);
    bool in;

    cr_assert_not_null(r, "expected redis to answer");
    in = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    return in;
}

/* A queue's free-agent index holds the agents with room on one of the queue's channels: m1
 * (chat 1, e-mail 5) leaves chat queue q's index once its chat is taken -- so the next chat
 * of q reads no agent -- but stays in qm (chat and e-mail); it is back in q when the chat ends,
 * and a change of q's channels puts it back at once. */
Test(router_state, a_queue_indexes_only_the_agents_free_on_its_channels)
{
    struct router_queue q;
    struct router_state_result res;

    rs_it_queue_init(&q, "q", ROUTER_STRAT_LONGEST_IDLE);
    q.channels = 1u << ROUTER_CH_CHAT;
    rs_it_queue_sync(&q);
    rs_it_queue_init(&q, "qm", ROUTER_STRAT_LONGEST_IDLE);
    q.channels = (1u << ROUTER_CH_CHAT) | (1u << ROUTER_CH_EMAIL);
    rs_it_queue_sync(&q);
    rs_it_agent("m1", 0, 1, false, NULL);
    rs_it_member("q", "m1", 1, 1, 0);
    rs_it_member("qm", "m1", 1, 1, 0);
    rs_it_login("m1", RS_S(1));
    cr_assert(rs_it_indexed("q", "m1") && rs_it_indexed("qm", "m1"), "expected m1 free in both");
    res = rs_it_enqueue_p("c1", "q", ROUTER_CH_CHAT, 0, RS_S(2), 1);
    rs_it_offer_is(&res, "c1", "m1");
    cr_assert(!rs_it_indexed("q", "m1"), "expected m1 out of chat queue q: its chat is taken");
    cr_assert(rs_it_indexed("qm", "m1"), "expected m1 still free in qm (e-mail)");
    res = rs_it_enqueue_p("c2", "q", ROUTER_CH_CHAT, 0, RS_S(3), 1);
    cr_assert_eq(res.noffers, 0u, "expected c2 to wait");
    cr_assert_eq(router_state_answered(rs, rs_tenant, "c1", "m1", RS_S(4), 1, &res), 0);
    cr_assert_eq(router_state_ended(rs, rs_tenant, "c1", "m1", 1000, RS_S(5), 1, &res), 0);
    cr_assert_eq(rs_it_events("cc.routing.assigned", "c2", NULL), 1,
                 "expected c2 offered to m1 once its chat ended");
    cr_assert(!rs_it_indexed("q", "m1"), "expected m1 out of q again (c2 took the chat)");
    rs_it_queue_init(&q, "q", ROUTER_STRAT_LONGEST_IDLE);
    q.channels = (1u << ROUTER_CH_CHAT) | (1u << ROUTER_CH_EMAIL);
    rs_it_queue_sync(&q);
    cr_assert(rs_it_indexed("q", "m1"), "expected m1 in q once q serves e-mail too");
}

/* The state of interaction ix of the test's tenant in router.interactions ("" if none). */
static void rs_it_row_state(cc_pg *pg, const char *ix, char *state, size_t n, char *agent,
                            size_t agent_n)
{
    PGresult *res = cc_pg_query(pg,
                                "SELECT state, coalesce(agent_id, '') FROM router.interactions "
                                "WHERE tenant = $1 AND id = $2",
                                2, (const char *const[]){rs_tenant, ix});

    cr_assert_not_null(res, "expected router.interactions to be readable");
    snprintf(state, n, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    snprintf(agent, agent_n, "%s", PQntuples(res) ? PQgetvalue(res, 0, 1) : "");
    PQclear(res);
}

/* The engine runs a route's script first and persists the route after it, so a fact may be
 * applied in between and find no row to update (the decision had already left). Played here
 * in that order by hand: the scripts of x1 and x2 run, x1 is answered and x2 answered and ended,
 * then the engine handles both route commands -- the scripts answer "duplicate", the insert
 * makes the rows, and the engine brings them in line with Redis: x1 assigned to d1, x2 ended. */
Test(router_state, the_engine_catches_up_a_fact_applied_before_the_route_was_persisted)
{
    char dir[512], state[16], agent[64], *text[2];
    const char *ids[2] = {"x1", "x2"};
    struct router_state_result res;
    struct cc_bus_msg msgs[2] = {{0}};
    struct cc_bus_outcome out[2] = {{0}};
    router_store *st = router_store_new(itest_env("CC_PG_DSN"), 2, 5000);
    router_engine *e;
    cc_pg *pg;

    cr_assert_not_null(st, "expected a store on CC_PG_DSN");
    snprintf(dir, sizeof(dir), "%s/services/router/migrations", itest_env("CC_TEST_TOP"));
    cr_assert_eq(router_store_migrate(st, dir), 0, "expected the migrations of %s", dir);
    e = router_engine_new(&(struct router_engine_config){.redis_url = itest_env("CC_REDIS_URL"),
                                                         .pg_dsn = itest_env("CC_PG_DSN"),
                                                         .store = st,
                                                         .instance = rs_tenant,
                                                         .tenants = rs_tenant});
    cr_assert_not_null(e, "expected an engine");
    cr_assert_eq(router_state_set_keys(router_engine_state(e), rs_outbox, rs_timers), 0);
    rs_it_solo("d1");
    rs_it_login("d1", RS_S(1));
    for (int i = 0; i < 2; i++) {
        res = rs_it_enqueue_p(ids[i], "q", ROUTER_CH_CHAT, 0, RS_S(2 + i), 1);
        rs_it_offer_is(&res, ids[i], "d1");
        cr_assert_eq(router_state_answered(rs, rs_tenant, ids[i], "d1", RS_S(4), 1, &res), 0);
        cr_assert_eq(res.status, ROUTER_ST_OK, "expected %s answered", ids[i]);
    }
    cr_assert_eq(router_state_ended(rs, rs_tenant, "x2", "d1", 100, RS_S(5), 1, &res), 0);
    cr_assert_eq(res.status, ROUTER_ST_OK, "expected x2 ended");

    for (int i = 0; i < 2; i++) {
        json_t *env = cc_event_build(
            "cc.routing.route", "/test/router-state", ids[i], rs_tenant,
            json_pack("{s:s, s:s, s:i}", "queue_id", "q", "channel", "chat", "priority", 0));
        size_t len = 0;

        cr_assert_not_null(env, "expected an envelope");
        text[i] = cc_event_dump(env, &len);
        json_decref(env);
        msgs[i] = (struct cc_bus_msg){
            .topic = CC_TOPIC_ROUTING_REQUESTS, .value = text[i], .len = len, .timestamp_ms = -1};
    }
    router_engine_handle_batch(e, msgs, 2, out);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(out[i].verdict, CC_BUS_OK, "expected route %d applied (%s)", i, out[i].reason);
        free(text[i]);
    }
    pg = cc_pg_new(itest_env("CC_PG_DSN"));
    cr_assert_not_null(pg, "expected PostgreSQL");
    rs_it_row_state(pg, "x1", state, sizeof(state), agent, sizeof(agent));
    cr_assert_str_eq(state, "assigned", "expected x1's row assigned, got '%s'", state);
    cr_assert_str_eq(agent, "d1", "expected x1's row held by d1, got '%s'", agent);
    rs_it_row_state(pg, "x2", state, sizeof(state), agent, sizeof(agent));
    cr_assert_str_eq(state, "ended", "expected x2's row closed, got '%s'", state);
    cr_assert_eq(rs_it_events("cc.interaction.queued", "x1", NULL), 1, "expected x1 queued once");
    cc_pg_free(pg);
    router_engine_free(e);
    router_store_free(st);
}

Test(router_state, random_skips_ineligible_agents_it_draws)
{
    struct router_queue q;
    struct router_skill sk = {.skill = "s", .level = 3};
    json_t *d = NULL;

    rs_it_queue_init(&q, "q", ROUTER_STRAT_RANDOM);
    q.skills = &sk;
    q.nskills = 1;
    rs_it_queue_sync(&q);
    for (int i = 1; i <= 7; i++) {
        char id[8];
        snprintf(id, sizeof(id), "a%d", i);
        rs_it_agent(id, 1, 3, true, i == 4 ? "s:3" : "s:2");
        rs_it_member("q", id, 1, i, 0);
        rs_it_login(id, RS_S(i));
    }
    for (uint64_t seed = 1; seed <= 3; seed++) {
        char ix[8];
        struct router_state_result res;
        snprintf(ix, sizeof(ix), "i%d", (int)seed);
        res = rs_it_enqueue_p(ix, "q", ROUTER_CH_CHAT, 0, RS_S(100), seed);
        rs_it_offer_is(&res, ix, "a4");
    }
    rs_it_events("cc.routing.assigned", "i1", &d);
    cr_assert_eq(json_integer_value(json_object_get(d, "candidates_considered")), 7,
                 "expected the 7 free agents of the level to be counted");
    json_decref(d);
}
