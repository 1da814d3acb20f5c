/*
 * sipedge_bus: sip-edge's side of the Kafka bus -- the routing decisions consumer, the dialer
 * commands consumer (cc.dialer.originate) and the builders of the events sip-edge publishes
 * (cc.interaction.created/answered/no_answer/ abandoned/held/resumed/transferred/ended,
 * cc.routing.route/requeue, cc.agent.registered), shaped as proto/schemas says.
 *
 * Threads: each consumer runs on a thread of its own and hands each parsed message to a deliver
 * callback, which must be thread-safe (sipedge_sip_post, sipedge_sip_originate_fn). Decisions:
 * group `sip-edge-<instance>`, starting at the latest offsets (decisions for calls that died with
 * a previous process are worthless). Dialer commands: one group shared by every instance
 * (CC_SIPEDGE_DIALER_GROUP), from the committed offsets, so each command is dialled by one
 * instance; the offset is committed once the callback returned 0 (the attempt is recorded).
 * The publish functions may be called from any thread (cc_producer is thread-safe).
 */
#ifndef SIPEDGE_BUS_H
#define SIPEDGE_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc_bus.h"

#define SIPEDGE_BUS_ID_MAX     64
#define SIPEDGE_BUS_REASON_MAX 128

typedef struct sipedge_bus_consumer sipedge_bus_consumer;

enum sipedge_decision_kind {
    SIPEDGE_DECISION_ASSIGNED,  /* ring agent_id at contact */
    SIPEDGE_DECISION_WITHDRAWN, /* stop ringing agent_id */
    SIPEDGE_DECISION_REJECTED,  /* give the caller sip_status (rejected, no_agent_timeout) */
    SIPEDGE_DECISION_OVERFLOWED /* the interaction moved to queue_id */
};

/* One routing decision about an interaction (a plain value, copied freely). */
struct sipedge_decision {
    enum sipedge_decision_kind kind;
    char interaction_id[SIPEDGE_BUS_ID_MAX + 1];
    char tenant[SIPEDGE_BUS_ID_MAX + 1];
    char agent_id[SIPEDGE_BUS_ID_MAX + 1];
    char queue_id[SIPEDGE_BUS_ID_MAX + 1];
    char contact[1025];
    char reason[SIPEDGE_BUS_REASON_MAX + 1];
    char strategy[32];  /* assigned: the queue's strategy ("ring_all" rings several at once) */
    int ring_timeout_s; /* 0: not given */
    int sip_status;     /* rejected: the status for the caller (480 when not given) */
    bool callback;      /* assigned: for a queued callback (data.callback) */
    int64_t time_ms;    /* the event's time (unix ms): when the router decided */
};

/* One cc.dialer.originate command (a plain value, copied freely); see
 * proto/schemas/cc.dialer.originate.schema.json. */
struct sipedge_originate {
    char attempt_id[SIPEDGE_BUS_ID_MAX + 1];
    char tenant[SIPEDGE_BUS_ID_MAX + 1];
    char campaign_id[SIPEDGE_BUS_ID_MAX + 1];
    char queue_id[SIPEDGE_BUS_ID_MAX + 1];
    char customer_id[SIPEDGE_BUS_ID_MAX + 1];    /* "" when not given */
    char interaction_id[SIPEDGE_BUS_ID_MAX + 1]; /* given, or derived from the attempt id */
    char to[257];                                /* E.164 number or a sip: URI */
    char caller_id[65];                          /* E.164 number or a SIP user */
    int ring_timeout_s;                          /* 1..300, default 30 */
    int priority;                                /* 0..1000, default 0 */
    int max_wait_s;                              /* 0 = the queue's rules; else 1..3600 */
    int64_t time_ms;     /* the command's CloudEvents time (unix ms): its age */
    int64_t recorded_ms; /* when sip-edge recorded it (sipedge.originations): the created_ms of
                            its interaction, so re-published events keep their ids */
};

/* Where events go and whom they name as source ("/sip-edge/<instance>"); borrowed pointers. */
struct sipedge_pub {
    cc_producer *producer;
    const char *source;
};

/* The identity every event of one interaction carries (borrowed strings). created_ms (unix ms)
 * seeds the time part of deterministic event ids. */
struct sipedge_ix {
    const char *id, *tenant, *queue_id;
    int64_t created_ms;
};

/* Called on the consumer thread for each decision; must be thread-safe and copy *d. */
typedef void (*sipedge_decision_fn)(void *ctx, const struct sipedge_decision *d);

/* Called on the dialer consumer thread for each originate command; must be thread-safe and copy
 * *o. 0 once the command is taken (or deliberately ignored), -EAGAIN to have it redelivered
 * later (e.g. the database is down). */
typedef int (*sipedge_originate_fn)(void *ctx, const struct sipedge_originate *o);

/* Parses one cc.routing.decisions message. Returns 1 and fills *out for a decision sip-edge acts
 * on, 0 for one it ignores (another type, or no_agent_timeout with an action other than reject),
 * -EINVAL with the reason in err for a malformed one. Pure; thread-safe. */
int sipedge_bus_parse_decision(const void *value, size_t len, struct sipedge_decision *out,
                               char *err, size_t errlen);

/* Parses one cc.dialer.commands message: 1 and fills *out for a cc.dialer.originate, 0 for
 * another type, -EINVAL with the reason in err for a malformed one. A missing interaction_id is
 * derived from the tenant, the attempt id and the command's time (cc_uuid_v7_derived), so a
 * redelivered command names the same interaction. Pure; thread-safe. */
int sipedge_bus_parse_originate(const void *value, size_t len, struct sipedge_originate *out,
                                char *err, size_t errlen);

/* Starts the consumer thread of cc.routing.decisions in group (copied), start_at_latest, calling
 * deliver(ctx, d) for each decision; rejected messages go to cc.deadletter through deadletter
 * (borrowed; must outlive the consumer). NULL (logged) on failure. */
sipedge_bus_consumer *sipedge_bus_consumer_start(const struct cc_bus_config *cfg, const char *group,
                                                 cc_producer *deadletter,
                                                 sipedge_decision_fn deliver, void *ctx);
/* Starts the consumer thread of cc.dialer.commands in group (copied, shared by the instances),
 * from the committed offsets, calling deliver(ctx, o) for each originate; malformed commands go
 * to cc.deadletter. NULL (logged) on failure. Stop it with sipedge_bus_consumer_stop. */
sipedge_bus_consumer *sipedge_bus_dialer_start(const struct cc_bus_config *cfg, const char *group,
                                               cc_producer *deadletter,
                                               sipedge_originate_fn deliver, void *ctx);
/* Stops the thread, commits, leaves the group and frees. NULL ok. */
void sipedge_bus_consumer_stop(sipedge_bus_consumer *c);
/* True once the group assigned the consumer its partitions (cc_consumer_assigned): decisions
 * produced from then on reach this instance. Any thread. */
bool sipedge_bus_consumer_assigned(const sipedge_bus_consumer *c);

/* Event publishers: each builds the CloudEvent, sends it keyed by the interaction (agent) id and
 * returns 0 or a negative code from cc_producer_send_event (logged). Ids are deterministic --
 * derived from the interaction id, the type and `attempt` -- so a retried publication repeats
 * the same id; cc.agent.registered gets a fresh UUIDv7. Thread-safe. */
int sipedge_bus_created(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                        const char *from, const char *to, int priority);
/* created of an outbound call: direction outbound, from = caller id, to = the customer;
 * campaign_id, attempt_id and customer_id may be NULL or "". */
int sipedge_bus_created_outbound(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                                 const char *from, const char *to, int priority,
                                 const char *campaign_id, const char *attempt_id,
                                 const char *customer_id);
/* created of a consultation call between two agents: direction outbound, the queue of the
 * call the consulting agent is on, parent_interaction_id (may be ""), attributes
 * {"kind":"consult","agent_id": the consulting agent}. */
int sipedge_bus_created_consult(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                                const char *from, const char *to, const char *parent_id,
                                const char *agent_id);
int sipedge_bus_route(const struct sipedge_pub *pub, const struct sipedge_ix *ix, int priority);
/* attempt: the answering offer's number (a transferred call is answered again). */
int sipedge_bus_answered(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                         const char *agent_id, int64_t wait_ms, int64_t ring_ms, int attempt);
/* An outbound call picked up by the customer: answered_by customer, wait_ms = dial to answer. */
int sipedge_bus_answered_customer(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                                  int64_t wait_ms);
/* reason: timeout|busy|declined|unreachable|failed; attempt numbers the offers of one call. */
int sipedge_bus_no_answer(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                          const char *agent_id, const char *reason, int64_t ring_ms, int sip_status,
                          int attempt);
/* ringing_agent_id may be NULL. */
int sipedge_bus_abandoned(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                          int64_t wait_ms, const char *ringing_agent_id);
/* held_by: agent|customer|supervisor|system; seq numbers the holds of one call. */
int sipedge_bus_held(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                     const char *agent_id, const char *held_by, int seq);
int sipedge_bus_resumed(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                        const char *agent_id, int64_t hold_ms, int seq);
/* One transfer of the call (seq numbers them): transfer_type blind|attended, target_type
 * queue|agent|number; talk_ms is the transferring agent's talk (ended counts only the last
 * agent's); from_agent_id and consult_id (attended: the consultation's interaction) may be
 * NULL. */
int sipedge_bus_transferred(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                            const char *transfer_type, const char *target_type, const char *target,
                            const char *from_agent_id, const char *from_queue_id, int64_t talk_ms,
                            int seq, const char *consult_id);
/* cc.routing.requeue {reason, queue_id, at_head true}: the interaction waits in queue_id with
 * its original age (a caller served once is not sent behind later callers). */
int sipedge_bus_requeue(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                        const char *reason, const char *queue_id, int seq);
/* cc.routing.cancel {reason, queue_id}: the interaction leaves the router (an agent holding it
 * is released as by ended); seq numbers the cancels of one call. */
int sipedge_bus_cancel(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                       const char *reason, int seq);
/* cc.routing.callback {number, keep_place, scheduled_at, queue_id}: the waiting caller asked to
 * be called back at number and was released; the interaction keeps its place (at_ms 0) or waits
 * out of the queue until at_ms (unix ms). */
int sipedge_bus_callback(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                         const char *number, int64_t at_ms);
/* ended_by: customer|agent|supervisor|system, or external (the party a call was transferred to
 * through the trunk hung up); reason: normal|abandoned|rejected|failed|
 * session_timeout|transferred, and for an outbound call the customer never answered:
 * busy|no_answer|rejected|failed; agent_id may be NULL; sip_status 0 = none. */
int sipedge_bus_ended(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                      const char *ended_by, int64_t talk_ms, int64_t hold_ms, int64_t duration_ms,
                      const char *agent_id, const char *reason, int sip_status);
/* ended of an outbound attempt that never rang anyone: {ended_by system, reason failed, detail
 * (expired|not_dialled|no_trunk|over_capacity|store_unavailable), sip_status 0 = none}. */
int sipedge_bus_ended_failed(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                             int64_t duration_ms, const char *detail, int sip_status);
/* ended of a call that died with its sip-edge process (sipedge_journal): {ended_by system,
 * reason failed, detail instance_lost, agent_id (may be NULL), talk_ms and duration_ms up to when
 * the process was last seen}, under the id the call's own ended would have had. */
int sipedge_bus_ended_lost(const struct sipedge_pub *pub, const struct sipedge_ix *ix,
                           const char *agent_id, int64_t talk_ms, int64_t duration_ms);
/* The agent's reachable contact (expires_s 0: removed); user_agent, transport, source may be
 * NULL or "". */
int sipedge_bus_registered(const struct sipedge_pub *pub, const char *tenant, const char *agent_id,
                           const char *contact, long expires_s, const char *aor,
                           const char *user_agent, const char *transport, const char *source);

#endif
