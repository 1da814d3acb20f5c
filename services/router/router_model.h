/*
 * router_model: the router's configuration model -- agents, queues, memberships and not-ready
 * reasons -- as C structs, with strict JSON validation (request bodies) and JSON rendering
 * (responses). Pure: no I/O, no globals; every function is thread-safe on distinct objects.
 *
 * The model covers the whole ACD (issue 3), not only what slice 1 serves:
 *   agent      skills with proficiency 1..5; capacity per channel (voice 0..1, chat/email/sms
 *              0..100, 0 = channel not served); voice_blocks_other (a voice call blocks every
 *              other channel while it lasts); enabled.
 *   queue      channels served; strategy; priority 0..1000 (higher first, then age);
 *              sl_threshold_s; wrapup_s; ring_timeout_s per offer (RONA); max_no_answer (RONA
 *              count before the agent goes not_ready "no_answer"; 0 = never); max_wait_s (0 = no
 *              limit; then overflow_queue_id, or a no_agent_timeout decision); no_agent_action
 *              when nobody is logged in (join|refuse|overflow); max_length (0 = unlimited);
 *              ring_progressive_interval_s (ring_progressive: one more agent rings every N s);
 *              callback_enabled (queued callback keeps the caller's place); required skills
 *              with min_proficiency; tier_rules (level L becomes eligible once the interaction
 *              has waited the after_s of the highest rule whose level <= L; level 1 at once; no
 *              rules = every level at once, levels only order); opening hours in an IANA time
 *              zone (empty = always open), holidays (whole days closed), closed_action
 *              (overflow|reject) with closed_reason.
 *   membership agent <-> queue with level (tier, 1 = first), position (linear order, 1 first)
 *              and penalty (weighted_random weight 1/(1+penalty); ties in other strategies).
 *   reason     tenant's not-ready reason codes with a label and counts_as_break.
 *
 * Ids (agent, queue, skill, reason code): ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ -- a subset of the
 * event schemas' id form, so every configured id is a valid event id. Unknown fields are
 * rejected (422 naming the field); read-only fields (version, created_at, updated_at and the
 * ids already in the path) are accepted so that a GET body can be PUT back.
 */
#ifndef ROUTER_MODEL_H
#define ROUTER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define ROUTER_ID_MAX        64  /* characters of an id */
#define ROUTER_NAME_MAX      200 /* characters (UTF-8 code points) of a name or label */
#define ROUTER_TENANT_MAX    63
#define ROUTER_TZ_MAX        64
#define ROUTER_SKILLS_MAX    64 /* skills per agent or per queue */
#define ROUTER_TIERS_MAX     16
#define ROUTER_HOURS_MAX     64 /* opening intervals per week */
#define ROUTER_HOLIDAYS_MAX  400
#define ROUTER_LEVEL_MAX     100
#define ROUTER_POSITION_MAX  100000
#define ROUTER_PENALTY_MAX   1000
#define ROUTER_PRIORITY_MAX  1000
#define ROUTER_CAP_VOICE_MAX 1
#define ROUTER_CAP_OTHER_MAX 100
#define ROUTER_ERRORS_MAX    16

enum router_channel {
    ROUTER_CH_VOICE,
    ROUTER_CH_CHAT,
    ROUTER_CH_EMAIL,
    ROUTER_CH_SMS,
    ROUTER_CH_COUNT,
};

enum router_strategy {
    ROUTER_STRAT_RING_ALL,
    ROUTER_STRAT_LONGEST_IDLE,
    ROUTER_STRAT_ROUND_ROBIN,
    ROUTER_STRAT_LINEAR,
    ROUTER_STRAT_LEAST_TALK_TIME,
    ROUTER_STRAT_FEWEST_INTERACTIONS,
    ROUTER_STRAT_RANDOM,
    ROUTER_STRAT_WEIGHTED_RANDOM,
    ROUTER_STRAT_RING_PROGRESSIVE,
    ROUTER_STRAT_BEST_SKILL,
    ROUTER_STRAT_COUNT,
};

enum router_no_agent_action { ROUTER_NOAGENT_JOIN, ROUTER_NOAGENT_REFUSE, ROUTER_NOAGENT_OVERFLOW };
enum router_closed_action { ROUTER_CLOSED_REJECT, ROUTER_CLOSED_OVERFLOW };

/* A skill an agent has (level = proficiency) or a queue needs (level = min_proficiency). */
struct router_skill {
    char skill[ROUTER_ID_MAX + 1];
    int level; /* 1..5 */
};

struct router_tier_rule {
    int level;   /* 2..ROUTER_LEVEL_MAX */
    int after_s; /* 0..86400, strictly increasing with level */
};

/* One opening interval in the queue's time zone: day 1 = Monday .. 7 = Sunday (ISO 8601). */
struct router_hours {
    int day;
    int open_min;  /* minutes after midnight, 0..1439 */
    int close_min; /* 1..1440 (24:00), > open_min; intervals of one day never overlap */
};

struct router_holiday {
    char date[11]; /* YYYY-MM-DD, a real calendar date */
    char name[ROUTER_NAME_MAX * 4 + 1];
};

struct router_agent {
    char id[ROUTER_ID_MAX + 1]; /* "" in a POST body without id: the caller makes a UUIDv7 */
    char name[ROUTER_NAME_MAX * 4 + 1];
    int capacity[ROUTER_CH_COUNT]; /* defaults 1/3/5/3 */
    bool voice_blocks_other;       /* default true */
    bool enabled;                  /* default true */
    struct router_skill *skills;   /* owned; sorted by skill name */
    size_t nskills;
    long long version; /* stored: 1.. ; parsed: the body's version or 0 when absent */
    int64_t created_ms, updated_ms;
};

struct router_queue {
    char id[ROUTER_ID_MAX + 1];
    char name[ROUTER_NAME_MAX * 4 + 1];
    unsigned channels; /* bit (1u << enum router_channel); at least one */
    enum router_strategy strategy;
    int priority, sl_threshold_s, wrapup_s, ring_timeout_s, max_no_answer, max_wait_s;
    int max_length, ring_progressive_interval_s;
    char overflow_queue_id[ROUTER_ID_MAX + 1]; /* "" = none */
    enum router_no_agent_action no_agent_action;
    bool callback_enabled;
    char timezone[ROUTER_TZ_MAX + 1];
    enum router_closed_action closed_action;
    char closed_reason[ROUTER_ID_MAX + 1];
    struct router_skill *skills; /* owned, sorted by skill */
    size_t nskills;
    struct router_tier_rule *tiers; /* owned, sorted by level */
    size_t ntiers;
    struct router_hours *hours; /* owned, sorted by day then open_min */
    size_t nhours;
    struct router_holiday *holidays; /* owned, sorted by date */
    size_t nholidays;
    long long version;
    int64_t created_ms, updated_ms;
};

struct router_member {
    char queue_id[ROUTER_ID_MAX + 1];
    char agent_id[ROUTER_ID_MAX + 1];
    int level;    /* 1..ROUTER_LEVEL_MAX, default 1 */
    int position; /* 1..ROUTER_POSITION_MAX, default 1 */
    int penalty;  /* 0..ROUTER_PENALTY_MAX, default 0 */
    int64_t created_ms, updated_ms;
};

struct router_reason {
    char code[ROUTER_ID_MAX + 1];
    char label[ROUTER_NAME_MAX * 4 + 1];
    bool counts_as_break; /* default false */
    int64_t created_ms, updated_ms;
};

/* Field-level validation errors; field is a JSON pointer ("/skills/0/proficiency"). */
struct router_error {
    char field[96];
    char message[160];
};
struct router_errors {
    size_t n;       /* kept, at most ROUTER_ERRORS_MAX */
    size_t dropped; /* further errors not kept */
    struct router_error e[ROUTER_ERRORS_MAX];
};

/* Checks a time-zone name against the known set; arg is the caller's. */
typedef bool (*router_tz_known_fn)(void *arg, const char *tz);

/* True when s is a valid id (see above). NULL is false. */
bool router_id_valid(const char *s);
/* Enum <-> wire names ("ring_all", "voice", "join", "reject"). _parse: 0 or -EINVAL. */
const char *router_channel_name(enum router_channel c);
int router_channel_parse(const char *s, enum router_channel *out);
const char *router_strategy_name(enum router_strategy s);
int router_strategy_parse(const char *s, enum router_strategy *out);
const char *router_no_agent_action_name(enum router_no_agent_action a);
const char *router_closed_action_name(enum router_closed_action a);

/* Adds one error (printf message); past ROUTER_ERRORS_MAX only counts it. */
void router_errors_add(struct router_errors *errs, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A JSON array [{"field","message"}, ...] of the kept errors (new reference; NULL on ENOMEM). */
json_t *router_errors_json(const struct router_errors *errs);

/*
 * Parses a request body into *out (zeroed first; the caller router_*_clear()s it on every path).
 * path_id: the id from the URL (PUT/PATCH) that a body id must equal, or NULL (POST: id
 * optional, "" when absent). Returns 0, -EINVAL with errs filled (every problem found, not only
 * the first), or -ENOMEM.
 */
int router_agent_parse(const json_t *doc, const char *path_id, struct router_agent *out,
                       struct router_errors *errs);
/* As router_agent_parse; tz_known (may be NULL = any zone) validates /timezone. */
int router_queue_parse(const json_t *doc, const char *path_id, router_tz_known_fn tz_known,
                       void *tz_arg, struct router_queue *out, struct router_errors *errs);
/* Body {level, position, penalty} (all optional); queue_id/agent_id set from the path. */
int router_member_parse(const json_t *doc, const char *queue_id, const char *agent_id,
                        struct router_member *out, struct router_errors *errs);
/* Body {label, counts_as_break}; code from the path. */
int router_reason_parse(const json_t *doc, const char *code, struct router_reason *out,
                        struct router_errors *errs);

/* Renders a resource (new reference; NULL on ENOMEM). Timestamps are RFC 3339 UTC. */
json_t *router_agent_to_json(const struct router_agent *a);
json_t *router_queue_to_json(const struct router_queue *q);
json_t *router_member_to_json(const struct router_member *m);
json_t *router_reason_to_json(const struct router_reason *r);

/* Frees what a struct owns and zeroes it; NULL is a no-op. */
void router_agent_clear(struct router_agent *a);
void router_queue_clear(struct router_queue *q);

/* RFC 7396 JSON merge patch: a new document = target with patch applied (neither is changed).
 * NULL on ENOMEM. */
json_t *router_merge_patch(const json_t *target, const json_t *patch);

#endif
