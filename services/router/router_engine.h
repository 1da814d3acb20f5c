/*
 * router_engine: the router's bus handlers -- validates commands (cc.routing.requests: route,
 * cancel, requeue, callback) and facts (cc.interactions: answered, ended, abandoned, no_answer;
 * cc.agents: registered) and applies each through router_state (Redis, one script per
 * command; consecutive route commands of a batch: one script call per group, see
 * router_engine_handle_batch), persisting what a rebuild needs through router_live
 * (PostgreSQL).
 *
 * Verdicts (cc_bus): a message that is not a valid CloudEvent, or whose data breaks its schema
 * (proto/schemas), is CC_BUS_REJECT (deadletter, with the reason); an event type the router
 * does not act on, or an event the router produced itself (source "/router/..."), is ignored
 * (CC_BUS_OK); a valid request with a business answer (unknown queue, closed, queue full) is
 * CC_BUS_OK and its answer is a cc.routing.rejected / overflowed decision written by the
 * script; Redis or PostgreSQL unreachable is CC_BUS_RETRY. Redis that lost its state (NOSTATE)
 * is rebuilt (router_live_rebuild) and the command applied again; while another instance
 * rebuilds, CC_BUS_RETRY.
 *
 * A route command runs its script first -- the decision leaves through the outbox without
 * waiting for PostgreSQL -- and is persisted right after (router.interactions, INSERT ... ON
 * CONFLICT DO NOTHING), before its offset is stored; a redelivered route for an interaction
 * already ended is a duplicate in Redis (its tombstone, kept a day and restored by a rebuild),
 * and one PostgreSQL alone knows as ended is cancelled again. A rebuild that raced the insert
 * (the epoch changed since the script ran) makes the scripts run again. Queue
 * schedules (time zone, hours, holidays) come from router_store through a per-engine cache
 * (a hash map by tenant + queue: every queue stays cached), so the hot path does no PostgreSQL
 * read. A cached queue is re-read when the store's queue change feed names it -- fed by the
 * configuration listener (router_live) on each NOTIFY router_config -- so a configuration
 * change applies to the next route request once the listener has received its notification
 * (normally milliseconds after the commit); ROUTER_ENGINE_QUEUE_TTL_MS is the safety net
 * (a process without a listener, a missed notification): no entry is older than that.
 *
 * Thread-safety: a router_engine holds one Redis and one PostgreSQL connection: one engine per
 * consumer thread. router_engine_parse is pure and thread-safe.
 */
#ifndef ROUTER_ENGINE_H
#define ROUTER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc_bus.h"
#include "cc_event.h"
#include "cc_metrics.h"
#include "router_model.h"
#include "router_state.h"
#include "router_store.h"

#define ROUTER_ENGINE_QUEUE_TTL_MS     60000 /* a cached queue is re-read after this at the latest */
#define ROUTER_ENGINE_ROUTE_SKILLS     32    /* skills in a route command (schema maxItems) */
#define ROUTER_ENGINE_EXCLUDE_MAX      ROUTER_STATE_EXCLUDE_MAX /* schema maxItems */
#define ROUTER_ENGINE_ADDRESS_MAX      512
#define ROUTER_ENGINE_CALLBACK_AHEAD_S (30 * 86400) /* farthest scheduled callback */

typedef struct router_engine router_engine;

enum router_cmd_kind {
    ROUTER_CMD_IGNORE, /* valid, but nothing for the router to do */
    ROUTER_CMD_ROUTE,
    ROUTER_CMD_CANCEL,
    ROUTER_CMD_REQUEUE,
    ROUTER_CMD_CALLBACK,
    ROUTER_CMD_ANSWERED,
    ROUTER_CMD_ENDED,
    ROUTER_CMD_ABANDONED,
    ROUTER_CMD_NO_ANSWER,
    ROUTER_CMD_REGISTERED,
    ROUTER_CMD_TRANSFERRED, /* cc.interaction.transferred {attended, agent} */
};

/* A validated command or fact. Strings are borrowed from ev (live until router_cmd_clear). */
struct router_cmd {
    enum router_cmd_kind kind;
    cc_event ev; /* owns the parsed envelope */
    const char *tenant;
    const char *subject;         /* interaction id (agent id for cc.agents) */
    const char *queue_id;        /* NULL when absent */
    const char *agent_id;        /* facts (transferred: the target agent); NULL when absent */
    const char *from_agent_id;   /* transferred: the transferring agent; NULL when absent */
    enum router_channel channel; /* route */
    int priority;                /* route; requeue: -1 = unchanged */
    struct router_skill skills[ROUTER_ENGINE_ROUTE_SKILLS];
    size_t nskills;
    bool has_skills;    /* requeue: skills given (replace) */
    char *skills_json;  /* malloc'd "[...]" of skills (route, requeue); NULL = none */
    const char *number; /* route callback / callback command / registered contact */
    int64_t at_ms;      /* callback: when to call back (unix ms); 0 = keep the place */
    bool at_head;       /* requeue */
    const char *exclude[ROUTER_ENGINE_EXCLUDE_MAX]; /* requeue: agents not to offer it to */
    size_t nexclude;
    const char *reason; /* requeue: the reason (static string) */
    int64_t talk_ms;    /* ended; transferred: -1 when absent */
    long expires_s;     /* registered: 0 = contact removed */
};

struct router_engine_config {
    const char *redis_url; /* required */
    const char *pg_dsn;    /* required */
    router_store *store;   /* required, borrowed, thread-safe; outlives the engine */
    const char *instance;  /* names the rebuild lock owner; required */
    cc_metrics *metrics;   /* borrowed; may be NULL */
    /* Tenants this instance serves, comma-separated (CC_ROUTER_TENANTS); NULL or "" = all.
     * Messages of other tenants are acknowledged untouched: give a tenant-restricted instance
     * its own consumer group (and its own Redis), or the work is lost for the others. */
    const char *tenants;
};

/* Parses and validates one message of topic (cc.routing.requests, cc.interactions, cc.agents).
 * Returns 0 with *out filled (kind may be ROUTER_CMD_IGNORE; call router_cmd_clear after), or
 * -EINVAL with a reason in err naming the field ("data.priority: must be an integer 0..1000"),
 * *out cleared. Pure. */
int router_engine_parse(const char *topic, const void *value, size_t len, struct router_cmd *out,
                        char *err, size_t errlen);
/* Releases what a parsed command owns; safe on a zeroed or cleared one. */
void router_cmd_clear(struct router_cmd *cmd);

/* Connects an engine (its own Redis and PostgreSQL connections). NULL (logged) on failure. */
router_engine *router_engine_new(const struct router_engine_config *cfg);
void router_engine_free(router_engine *e);

/* Applies a validated command. Returns the verdict; reason[reasonlen] says why on a retry. */
enum cc_bus_verdict router_engine_apply(router_engine *e, const struct router_cmd *cmd,
                                        char *reason, size_t reasonlen);

/* The cc_bus_handler: ctx is a router_engine. parse + apply. */
enum cc_bus_verdict router_engine_handle(void *ctx, const struct cc_bus_msg *m, char *reason,
                                         size_t reasonlen);

/* The cc_bus_batch_handler: ctx is a router_engine. Parses every message, then applies them in
 * order: consecutive route commands of distinct interactions together (one multi-row insert,
 * then one script call per ROUTER_STATE_BATCH_MAX), anything else one by one as
 * router_engine_handle does. Once a message is retried, the later ones are not applied and get
 * CC_BUS_RETRY too (they come again, in order). */
void router_engine_handle_batch(void *ctx, const struct cc_bus_msg *msgs, size_t n,
                                struct cc_bus_outcome *out);

/* Handles one due timer popped from cc:timers (router_state_handle_timer) and persists its
 * outcome: an overflow moves the interaction, a no_agent_timeout closes it, a ring timeout
 * that made the agent not_ready records the presence. 0, -EAGAIN (rebuild elsewhere) or
 * negative; a stale timer is a no-op. */
int router_engine_timer(router_engine *e, const struct router_timer *t, int64_t now_ms);

/* The engine's Redis state handle and PostgreSQL persistence, for the ticker and the REST API
 * sharing its thread discipline (borrowed; one thread at a time). */
router_state *router_engine_state(router_engine *e);
struct router_live *router_engine_live(router_engine *e);

/* Runs a router_state call again after rebuilding Redis when it answered -ESTALE: the helper
 * every caller of router_state uses. Returns rc, or the retried call's rc, or -EAGAIN when
 * another instance is rebuilding. */
#define ROUTER_ENGINE_RETRY_STALE(e, call)                                                         \
    ({                                                                                             \
        int rc_ = (call);                                                                          \
        if (rc_ == -ESTALE) {                                                                      \
            rc_ = router_engine_rebuild(e);                                                        \
            if (rc_ == 0)                                                                          \
                rc_ = (call);                                                                      \
        }                                                                                          \
        rc_;                                                                                       \
    })
/* Rebuilds Redis from PostgreSQL (router_live_rebuild with this engine's connections). */
int router_engine_rebuild(router_engine *e);

#endif
