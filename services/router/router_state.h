/*
 * router_state: the router's live state in Redis -- agents, queues, waiting interactions, offers,
 * timers -- changed only by Lua (one FCALL of the cc_router function library per command), with
 * every event a change causes appended to the stream cc:outbox by the same script (transactional
 * outbox).
 *
 * Design: services/router/DESIGN.md (keys, outbox, timers, epoch, routing semantics). What a
 * caller must know:
 *   - Selection and reservation happen inside one script, so any number of router instances
 *     against one Redis never offer an agent beyond its capacity per channel. An offer counts
 *     against capacity until it is answered (then held) or released (no answer, withdrawn).
 *   - Every mutating call takes now_ms (and seed where a random choice may happen): the scripts
 *     never read the clock, so tests drive time by hand.
 *   - Every command is idempotent: repeating it (redelivery after a crash) answers
 *     ROUTER_ST_NOOP and changes nothing; a stale fact (no_answer for an offer already answered,
 *     answered for an interaction that ended) is ignored the same way.
 *   - Freeing capacity (login ready, set_available, answered elsewhere, no_answer, ended,
 *     wrap-up end, timers) dispatches inside the same script: offers it makes come back in the
 *     result and their events are in cc:outbox.
 *   - Events: one cc:outbox entry per command that caused any (one XADD): tenant, time_ms (the
 *     now_ms of the command: the CloudEvents time), then per event, in order, topic, key (the
 *     subject), type and data (the event's data, JSON text following
 *     proto/schemas/<type>.schema.json); router_outbox_entry_parse splits it. The publisher
 *     (router_outbox) turns each event into a CloudEvent. Types produced: cc.routing.assigned,
 *     overflowed, rejected, no_agent_timeout, withdrawn; cc.interaction.queued, offered,
 *     overflowed; cc.agent.state_changed.
 *   - Agent states (schema names): logged_out, available, reserved (an offer rings), busy (an
 *     interaction in progress), wrap_up, not_ready (with a reason code). The reported state is
 *     the most significant one: logged_out > busy > reserved > wrap_up > not_ready > available.
 *     Presence (what the agent asked: logged_out / ready / not_ready) is kept apart, so an agent
 *     who goes not_ready during a chat stays busy until it ends and then shows not_ready.
 *   - Voice is offered only to an agent with a registered SIP contact (set_contact, from the
 *     cc.agent.registered facts): cc.routing.assigned must carry agent_contact for voice, and
 *     there is no phone to ring otherwise. Chat, email and SMS need no contact.
 *   - Wrap-up is per agent: when an interaction ends in a queue with wrapup_s > 0 the agent gets
 *     no new offer until the wrap-up timer (or wrapup_end) -- also on its other channels.
 *   - Epoch: every script first checks cc:epoch; if Redis lost its data it answers NOSTATE and
 *     the call returns -ESTALE: rebuild (config sync + restore_*), set_epoch, retry.
 *   - Scripts build tenant keys (cc:{tenant}:...) and touch the global cc:timers / cc:outbox /
 *     cc:epoch: standalone Redis or a single-shard deployment only.
 *
 * Return codes of int functions: 0; -ESTALE NOSTATE (rebuild first); -ENOENT unknown agent
 * (agent commands, views) or queue (queue views); -EINVAL bad arguments (NULL, empty id, a
 * bad enum, ...); -EIO Redis unreachable or a script failed (logged); -EPROTO unexpected reply.
 *
 * Thread-safety: a router_state is one Redis connection; use one per thread. Distinct objects
 * may be used from distinct threads and processes at once: that is what the scripts are for.
 */
#ifndef ROUTER_STATE_H
#define ROUTER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cc_event.h"
#include "router_model.h"

#define ROUTER_STATE_IX_MAX            128 /* characters of an interaction id (common.schema id) */
#define ROUTER_STATE_OFFERS_MAX        16  /* offers kept in one result (ring_all may make more) */
#define ROUTER_STATE_BATCH_MAX         64  /* commands per script call of a batch */
#define ROUTER_STATE_KIND_MAX          15
#define ROUTER_STATE_DETAIL_MAX        63
#define ROUTER_STATE_OUTBOX            "cc:outbox" /* stream of events to publish */
#define ROUTER_STATE_TIMERS            "cc:timers" /* ZSET of timers by due ms */
#define ROUTER_STATE_EPOCH             "cc:epoch"  /* generation of the state; absent = rebuild */
#define ROUTER_STATE_OVERFLOW_HOPS_MAX 5  /* overflows of one interaction (stops A->B->A) */
#define ROUTER_STATE_EXCLUDE_MAX       64 /* agents excluded by one requeue */
#define ROUTER_STATE_SCAN_HEADS        20 /* waiting heads scanned per queue for an agent */

typedef struct router_state router_state;

enum router_agent_state {
    ROUTER_AGENT_LOGGED_OUT,
    ROUTER_AGENT_AVAILABLE,
    ROUTER_AGENT_RESERVED,
    ROUTER_AGENT_BUSY,
    ROUTER_AGENT_WRAP_UP,
    ROUTER_AGENT_NOT_READY,
    ROUTER_AGENT_STATE_COUNT,
};

/* What a command did. */
enum router_state_status {
    ROUTER_ST_OK,         /* applied */
    ROUTER_ST_NOOP,       /* nothing to do: a repeat, a stale fact, unknown interaction */
    ROUTER_ST_QUEUED,     /* enqueue/requeue: waiting (or already offered: see offers) */
    ROUTER_ST_REJECTED,   /* enqueue: refused, detail = reason (unknown_queue, closed, ...) */
    ROUTER_ST_OVERFLOWED, /* enqueue/timer: moved to queue_id, detail = reason */
    ROUTER_ST_TIMED_OUT,  /* max-wait timer without overflow target: no_agent_timeout */
};

/* One offer made by a command: the agent is reserved for the interaction. */
struct router_state_offer {
    char interaction_id[ROUTER_STATE_IX_MAX + 1];
    char agent_id[ROUTER_ID_MAX + 1];
    char queue_id[ROUTER_ID_MAX + 1];
};

/* What Redis holds of one interaction (router_state_ix_states). */
struct router_ix_state {
    char state[16];                   /* waiting, offered, assigned, ended, ...; "" = absent */
    char agent_id[ROUTER_ID_MAX + 1]; /* the agent holding it when assigned, else "" */
};

/* The small outcome of a command, for logs and tests (the events are in cc:outbox). */
struct router_state_result {
    enum router_state_status status;
    char detail[ROUTER_STATE_DETAIL_MAX + 1]; /* reason code or note; "" when none */
    char queue_id[ROUTER_ID_MAX + 1];         /* interaction commands: its queue now */
    enum router_agent_state agent_state;      /* agent commands: the state after; else COUNT */
    size_t nevents;                           /* events appended to cc:outbox */
    size_t noffers;                           /* offers made (all of them) */
    struct router_state_offer offers[ROUTER_STATE_OFFERS_MAX]; /* the first ones */
};

/* A route request (cc.routing.route) as the engine validated it. Pointers are borrowed. */
struct router_enqueue {
    const char *tenant;
    const char *interaction_id;
    const char *queue_id;
    enum router_channel channel;
    int priority;                      /* 0..ROUTER_PRIORITY_MAX, added to the queue's */
    const struct router_skill *skills; /* extra requirements (level = min proficiency) */
    size_t nskills;                    /* 0..ROUTER_SKILLS_MAX */
    const char *callback_number;       /* NULL = none: the caller waits on the line */
    const char *request_id;            /* event id of the route command; may be NULL */
    bool closed;         /* the queue is closed now (the caller evaluated its schedule) */
    int64_t enqueued_ms; /* 0 = now_ms; a rebuild passes the original time */
    /* router_state_restore_interaction only: what a requeue left (order_ms > 0: ordered from
     * then; the agents never to offer it to, at most ROUTER_STATE_EXCLUDE_MAX) */
    int64_t order_ms;
    const char *const *exclude;
    size_t nexclude;
    int64_t now_ms;
    uint64_t seed;
    /* router_state_enqueue_batch only: when the command was consumed (wall clock us; 0 =
     * unknown). Its first outbox event carries it (fields ct, ck) so that the publisher can
     * time consumed -> produced. */
    int64_t consumed_us;
};

/* A requeue command: new values for a waiting interaction, or (reason "transfer") a blind
 * transfer of an interaction an agent holds to queue_id. */
struct router_requeue {
    const char *tenant;
    const char *interaction_id;
    const char *queue_id;              /* NULL = stay in the current queue */
    int priority;                      /* < 0 = keep */
    const struct router_skill *skills; /* with set_skills: replace the extra skills */
    size_t nskills;
    bool set_skills;
    const char *reason;         /* the command's reason (schema enum); NULL = none */
    bool anew;                  /* ordered from now (at_head false); else by its original age */
    const char *const *exclude; /* agents never to offer it to (added to those given before) */
    size_t nexclude;            /* at most ROUTER_STATE_EXCLUDE_MAX */
    const char *request_id;     /* event id of the command: a repeat is a NOOP; NULL = none */
    int64_t now_ms;
    uint64_t seed;
};

/* A due timer popped from cc:timers. kind: "offer" (ring timeout: id = interaction, id2 =
 * agent), "wrapup" (id = agent), "maxwait", "tier", "ringprog" (id = interaction). */
struct router_timer {
    char kind[ROUTER_STATE_KIND_MAX + 1];
    char tenant[CC_EVENT_TENANT_MAX + 1];
    char id[ROUTER_STATE_IX_MAX + 1];
    char id2[ROUTER_STATE_IX_MAX + 1]; /* "" when none */
    int64_t due_ms;
};

/* Enum <-> schema names ("wrap_up", "not_ready"). _parse: 0 or -EINVAL. */
const char *router_agent_state_name(enum router_agent_state s);
int router_agent_state_parse(const char *s, enum router_agent_state *out);
const char *router_state_status_name(enum router_state_status s);

/* Connects to redis_url (see cc_redis_new; a server down is not fatal) and loads the scripts
 * when it can (else on first use). NULL on a malformed url or out of memory. */
router_state *router_state_new(const char *redis_url);
/* Closes the connection. NULL is a no-op. */
void router_state_free(router_state *rs);
/* Uses other keys than cc:outbox / cc:timers for the events and timers of this handle (tests
 * run beside a live router on one Redis; a deployment keeps the defaults). 0 or -EINVAL. */
int router_state_set_keys(router_state *rs, const char *outbox, const char *timers);

/* Epoch. epoch_get: 0 with *epoch, -ENOENT when absent (the state must be rebuilt), -EIO.
 * set_epoch: SET cc:epoch (after a rebuild; any positive value, e.g. now_ms). */
int router_state_epoch_get(router_state *rs, long long *epoch);
int router_state_set_epoch(router_state *rs, long long epoch);
/* Takes (SET NX PX ttl_ms) or releases (only when owner still holds it) the rebuild lock
 * cc:rebuild. take: 0 taken, -EBUSY held by another, -EIO. */
int router_state_rebuild_lock(router_state *rs, const char *owner, long ttl_ms);
int router_state_rebuild_unlock(router_state *rs, const char *owner);

/*
 * Configuration sync from the model (called after each REST write, and for every row at a
 * rebuild). Live fields (presence, state, used capacity, counters) survive a sync. They do not
 * dispatch (a rebuild syncs thousands): call dispatch_queue/dispatch_agent afterwards when a
 * change may let an interaction be offered. remove_agent drops the agent from its queues and
 * forgets its live state (offers it had are withdrawn; interactions it held are forgotten by
 * the agent). remove_queue drops its memberships; interactions waiting in it get a
 * cc.routing.rejected (unknown_queue).
 */
int router_state_sync_agent(router_state *rs, const char *tenant, const struct router_agent *a,
                            int64_t now_ms);
int router_state_remove_agent(router_state *rs, const char *tenant, const char *agent_id,
                              int64_t now_ms);
int router_state_sync_queue(router_state *rs, const char *tenant, const struct router_queue *q,
                            int64_t now_ms);
int router_state_remove_queue(router_state *rs, const char *tenant, const char *queue_id,
                              int64_t now_ms);
/* -ENOENT when the agent or the queue is not synced yet. */
int router_state_sync_member(router_state *rs, const char *tenant, const struct router_member *m,
                             int64_t now_ms);
int router_state_remove_member(router_state *rs, const char *tenant, const char *queue_id,
                               const char *agent_id, int64_t now_ms);

/*
 * Agent commands. by is the party for cc.agent.state_changed: "agent", "supervisor" or
 * "system". res (may be NULL) gets the status (NOOP when nothing changed), the agent's state
 * after, and the offers the command caused. -ENOENT for an unknown agent.
 *   login: presence ready (ready=true) or not_ready with reason (NULL = "login").
 *   set_available / set_not_ready(reason, required) / logout: presence changes; logout releases
 *     outstanding offers (RONA-free: the interactions go back to the head of their queues) but
 *     not interactions in progress (they end by their own facts).
 *   wrapup_end: ends the wrap-up now (NOOP when not in wrap-up). wrapup_extend: adds seconds
 *     (1..3600) to the wrap-up timer (-EINVAL out of range; NOOP when not in wrap-up).
 *   set_contact: the agent's registered SIP contact (NULL or "" clears it).
 */
int router_state_agent_login(router_state *rs, const char *tenant, const char *agent_id, bool ready,
                             const char *reason, const char *by, int64_t now_ms, uint64_t seed,
                             struct router_state_result *res);
int router_state_agent_available(router_state *rs, const char *tenant, const char *agent_id,
                                 const char *by, int64_t now_ms, uint64_t seed,
                                 struct router_state_result *res);
int router_state_agent_not_ready(router_state *rs, const char *tenant, const char *agent_id,
                                 const char *reason, const char *by, int64_t now_ms,
                                 struct router_state_result *res);
int router_state_agent_logout(router_state *rs, const char *tenant, const char *agent_id,
                              const char *by, int64_t now_ms, uint64_t seed,
                              struct router_state_result *res);
int router_state_agent_wrapup_end(router_state *rs, const char *tenant, const char *agent_id,
                                  const char *by, int64_t now_ms, uint64_t seed,
                                  struct router_state_result *res);
int router_state_agent_wrapup_extend(router_state *rs, const char *tenant, const char *agent_id,
                                     int seconds, const char *by, int64_t now_ms,
                                     struct router_state_result *res);
int router_state_agent_set_contact(router_state *rs, const char *tenant, const char *agent_id,
                                   const char *contact, int64_t now_ms);

/*
 * Interaction commands. res (may be NULL) gets the status, the queue and the offers made.
 *   enqueue: checks in order: already known (NOOP) -> queue exists (else REJECTED
 *     unknown_queue) -> closed (closed_action: REJECTED with the queue's closed_reason or
 *     "closed", or OVERFLOWED closed) -> max_length (REJECTED queue_full) -> nobody logged in
 *     (no_agent_action: join, REJECTED no_agents_logged_in, or OVERFLOWED no_agents_logged_in;
 *     overflow without a target rejects) -> QUEUED (cc.interaction.queued) and the queue is
 *     dispatched. An overflow target is assumed open. Rejections XADD cc.routing.rejected.
 *   requeue: new priority / skills / queue for a waiting interaction; it keeps its original
 *     enqueued_ms (its place by age) unless anew (then it is ordered from now_ms, behind the
 *     ones of its priority already waiting; its wait is still counted from enqueued_ms), is
 *     never offered again to the agents of exclude, takes effect at once, and the queue is
 *     re-dispatched.
 *     An offered interaction gets the new values for its next offer. NOOP when unknown/ended.
 *     With reason "transfer", an interaction an agent holds is transferred: the agent is
 *     released as by ended (talk = time since answered; wrap-up of the old queue), the
 *     interaction waits in queue_id (by its original enqueued_ms, or from now when anew)
 *     and is offered (QUEUED,
 *     detail "transfer"), to the transferring agent only when nobody else is eligible; an
 *     unknown queue_id ends it REJECTED unknown_queue (cc.routing.rejected). A request_id seen
 *     before for the interaction is a NOOP "duplicate".
 *   set_callback: marks a waiting interaction as a queued callback (it keeps its place; its
 *     assignment carries callback.number). NOOP when unknown or ended.
 *   cancel / abandoned: the interaction leaves (waiting: removed; offered: the offers are
 *     withdrawn and the agents freed; assigned: as ended with talk_ms 0).
 *   answered(agent): the offer to agent becomes an interaction in progress (agent busy); the
 *     other offers of the same interaction (ring_all, ring_progressive) are withdrawn. NOOP
 *     when already answered by that agent or not offered to it.
 *   no_answer(agent): RONA: the offer is released, the agent's no_answer count grows and at
 *     the queue's max_no_answer the agent goes not_ready "no_answer"; when no offer is left the
 *     interaction returns to the head of its queue (original enqueued_ms) and is re-offered,
 *     to another agent first. NOOP for a stale no_answer.
 *   ended(agent, talk_ms): releases the agent's capacity, counts talk time and handled, starts
 *     wrap-up (queue wrapup_s) or frees the agent and dispatches it. agent may be NULL (the
 *     assigned agent is used).
 *   transferred(from, to, talk_ms): an attended transfer of an interaction held by from (NULL =
 *     whoever holds it): from is released as by ended (talk_ms < 0: the time since answered) and
 *     to holds it -- capacity and busy when the router knows to and it is logged in (detail
 *     "transferred"), else held by to outside routing, no capacity (detail "target_outside").
 *     NOOP "duplicate" when to holds it already, "other_agent" when another agent than from does.
 */
int router_state_enqueue(router_state *rs, const struct router_enqueue *req,
                         struct router_state_result *res);
/* Runs reqs[0..n) as router_state_enqueue each, in order, ROUTER_STATE_BATCH_MAX per script
 * call (one round trip and one atomic run for each group: the epoch is checked once per group,
 * so a group runs whole or not at all). rcs[i] gets what router_state_enqueue would return
 * (0, -EINVAL, -ENOENT, -ESTALE, -EIO); once a group fails with -ESTALE or -EIO the later
 * commands are not sent and get the same code. res (may be NULL) gets each result. epoch (may
 * be NULL) gets the cc:epoch the commands ran in: 0 when none ran, -1 when groups ran in
 * different epochs (a rebuild between them). A caller that persists after the script compares
 * it with router_state_epoch_get once persisted: another value means a rebuild may have read
 * PostgreSQL before that write, so the commands must run again. Returns 0, or -EINVAL /
 * -ENOMEM (then rcs is unspecified and nothing may have run: treat as -EIO). */
int router_state_enqueue_batch(router_state *rs, const struct router_enqueue *reqs, size_t n,
                               struct router_state_result *res, int *rcs, long long *epoch);
/* An interaction fact for router_state_facts_batch: what router_state_answered / _ended /
 * _abandoned / _cancel / _no_answer take. */
enum router_fact_kind {
    ROUTER_FACT_ANSWERED,
    ROUTER_FACT_ENDED,
    ROUTER_FACT_ABANDONED,
    ROUTER_FACT_CANCELLED,
    ROUTER_FACT_NO_ANSWER,
};

struct router_fact {
    enum router_fact_kind kind;
    const char *tenant;
    const char *interaction_id;
    const char *agent_id; /* answered, no_answer: required; ended: may be NULL or "" */
    int64_t talk_ms;      /* ended only: >= 0 */
    int64_t now_ms;
    uint64_t seed;
};

/* Runs facts[0..n) as the single calls would, in order, ROUTER_STATE_BATCH_MAX per script call
 * (one round trip and one atomic run per group, as router_state_enqueue_batch: rcs[i] gets
 * what the single call would return; once a group fails with -ESTALE or -EIO the later facts
 * are not sent and get the same code). res (may be NULL) gets each result, epoch (may be NULL)
 * the cc:epoch they ran in as router_state_enqueue_batch. Returns 0, or -EINVAL / -ENOMEM
 * (then rcs is unspecified and nothing may have run: treat as -EIO). */
int router_state_facts_batch(router_state *rs, const struct router_fact *facts, size_t n,
                             struct router_state_result *res, int *rcs, long long *epoch);
/* Reads, in one script call, the epoch (*epoch; -ENOENT when Redis has none) and what Redis
 * holds of interactions ids[i] of tenants[i] (out[i]), i < n. Returns 0, -ENOENT, -EINVAL,
 * -EIO, -EPROTO. */
int router_state_ix_states(router_state *rs, size_t n, const char *const *tenants,
                           const char *const *ids, long long *epoch, struct router_ix_state *out);
/* True when an interaction in state s (router_ix_state.state) has finished: it is neither
 * waiting, offered, assigned nor scheduled (a callback parked until its time), nor absent. */
bool router_ix_state_finished(const char *s);
int router_state_requeue(router_state *rs, const struct router_requeue *req,
                         struct router_state_result *res);
/* A waiting (or offered, or scheduled) interaction is to be called back at number. at_ms <= 0:
 * it keeps its place (a scheduled one goes back to its queue now, ordered from its time); a
 * time ahead: it leaves its queue (offers withdrawn, queue timers off) until then, when it is
 * placed again ordered from that time, max wait and tiers counting from then. A queue with
 * callback_enabled false: ROUTER_ST_REJECTED {callback_disabled}, the interaction ends. */
int router_state_set_callback(router_state *rs, const char *tenant, const char *interaction_id,
                              const char *number, int64_t at_ms, int64_t now_ms,
                              struct router_state_result *res);
int router_state_cancel(router_state *rs, const char *tenant, const char *interaction_id,
                        int64_t now_ms, uint64_t seed, struct router_state_result *res);
int router_state_abandoned(router_state *rs, const char *tenant, const char *interaction_id,
                           int64_t now_ms, uint64_t seed, struct router_state_result *res);
int router_state_answered(router_state *rs, const char *tenant, const char *interaction_id,
                          const char *agent_id, int64_t now_ms, uint64_t seed,
                          struct router_state_result *res);
int router_state_no_answer(router_state *rs, const char *tenant, const char *interaction_id,
                           const char *agent_id, int64_t now_ms, uint64_t seed,
                           struct router_state_result *res);
int router_state_ended(router_state *rs, const char *tenant, const char *interaction_id,
                       const char *agent_id, int64_t talk_ms, int64_t now_ms, uint64_t seed,
                       struct router_state_result *res);
int router_state_transferred(router_state *rs, const char *tenant, const char *interaction_id,
                             const char *from_agent_id, const char *to_agent_id, int64_t talk_ms,
                             int64_t now_ms, uint64_t seed, struct router_state_result *res);

/* Offers waiting interactions of queue_id to its free agents (up to ROUTER_STATE_OFFERS_MAX
 * interactions, head first), or offers agent_id the best waiting interaction among the heads of all
 * its queues (lowest score: priority, then age; several while it has spare capacity). */
int router_state_dispatch_queue(router_state *rs, const char *tenant, const char *queue_id,
                                int64_t now_ms, uint64_t seed, struct router_state_result *res);
int router_state_dispatch_agent(router_state *rs, const char *tenant, const char *agent_id,
                                int64_t now_ms, uint64_t seed, struct router_state_result *res);

/* Atomically removes up to max timers due at or before now_ms from cc:timers and writes them
 * to out[]; *n = how many. Each timer is handed to exactly one caller (instance). */
int router_state_pop_due_timers(router_state *rs, int64_t now_ms, size_t max,
                                struct router_timer *out, size_t *n);
/* Handles one popped timer through the normal scripts (stale timers are NOOP). */
int router_state_handle_timer(router_state *rs, const struct router_timer *t, int64_t now_ms,
                              uint64_t seed, struct router_state_result *res);

/*
 * Rebuild after NOSTATE (after the config sync, before set_epoch); no events are produced.
 *   restore_agent: presence (logged_out | available | not_ready) and reason as persisted.
 *   restore_interaction: an open interaction back into its queue with its original
 *     enqueued_ms; agent_id non-NULL = it was in progress with that agent (capacity held),
 *     NULL = waiting (an offer outstanding at the crash is re-made by the next dispatch).
 *   restore_tombstones: interactions of tenant that finished (ids[i] in queues[i], at
 *     ended_ms[i]) as finished, for what is left of the day the scripts keep one, so that a
 *     redelivered route of one stays a duplicate; written (may be NULL) gets how many were new.
 * All run without the epoch check. NOOP when already present.
 */
int router_state_restore_agent(router_state *rs, const char *tenant, const char *agent_id,
                               enum router_agent_state presence, const char *reason,
                               int64_t since_ms);
int router_state_restore_tombstones(router_state *rs, const char *tenant, size_t n,
                                    const char *const *ids, const char *const *queues,
                                    const int64_t *ended_ms, int64_t now_ms, size_t *written);
int router_state_restore_interaction(router_state *rs, const struct router_enqueue *req,
                                     const char *agent_id);

/* Live views (new references in *out, caller json_decref's).
 *   queue_view: {queue_id, waiting, oldest_wait_ms, callbacks, agents: {state: count},
 *     members, logged_in, estimated_wait_ms, estimate} -- estimated_wait_ms = (waiting + 1) x
 *     average handle time of the queue (talk + wrap-up of its ended interactions) / logged-in
 *     members (at least 1), "estimate": "average_handle_time"; without history,
 *     oldest_wait_ms ("estimate": "oldest_wait"). waiting counts interactions not ringing.
 *     -ENOENT unknown queue.
 *   agent_view: {agent_id, state, since_ms, presence, reason, contact, wrapup_until_ms,
 *     no_answer, talk_ms, handled, capacity: {ch: n}, used: {ch: n}, interactions: [{id,
 *     channel, status: offered|in_progress}]}. -ENOENT unknown agent. */
int router_state_queue_view(router_state *rs, const char *tenant, const char *queue_id,
                            int64_t now_ms, json_t **out);
int router_state_agent_view(router_state *rs, const char *tenant, const char *agent_id,
                            int64_t now_ms, json_t **out);

#endif
