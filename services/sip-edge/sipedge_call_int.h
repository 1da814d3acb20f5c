/*
 * sipedge_call_int: the call object shared by the files of the calls module -- sipedge_call.c
 * (table, inbound calls, agent legs, endings, decisions), sipedge_call_control.c (re-INVITEs,
 * hold/resume, transfers, REFER, REST control), sipedge_originate.c (outbound calls through the
 * trunk) and sipedge_consult.c (agent consultation calls, attended transfer). Nothing outside
 * those files includes it; their public face is sipedge_call.h.
 *
 * Thread-safety: none -- everything here runs on the SIP (su_root) thread.
 */
#ifndef SIPEDGE_CALL_INT_H
#define SIPEDGE_CALL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/su_wait.h>

#include "cc_id.h"
#include "cc_log.h"
#include "sipedge_call.h"
#include "sipedge_sdp.h"

#define SIPEDGE_CALL_ADDR_MAX 260  /* from / to / host of a call */
#define SIPEDGE_CALLS_BUCKETS 8192 /* hash buckets of the call table */
#define SIPEDGE_UNHELD_MAX    512  /* callbacks' assignments kept while no call here holds them */

enum sipedge_call_state {
    SIPEDGE_CALL_DIALING,  /* outbound: the customer's phone is being called through the trunk */
    SIPEDGE_CALL_QUEUED,   /* waiting for (or ringing) an agent: the caller hears ringing, or
                              (after a transfer, or an answered outbound call) is connected to
                              nobody (caller.up) */
    SIPEDGE_CALL_EXTERNAL, /* blind transfer to a number: the customer is up, connected to
                              nobody, while the number rings through the trunk (external leg) */
    SIPEDGE_CALL_CALLBACK, /* a queued callback: the caller was released and the interaction
                              keeps its place; the assigned agent is rung first (agent legs),
                              then the customer dialled (DIALING with callback set) */
    SIPEDGE_CALL_ANSWERED, /* bridged (to an agent, or after a transfer to a number's party) */
    SIPEDGE_CALL_ENDED,    /* over; waiting for the legs' handles to terminate */
};

/* The re-INVITE in progress toward the caller's leg or passed between the legs (at most one
 * per call: glare gets 491). */
enum sipedge_call_reinv {
    SIPEDGE_REINV_NONE,
    SIPEDGE_REINV_PASS,   /* a leg's re-INVITE passed to the other one: its answer goes back */
    SIPEDGE_REINV_HOLD,   /* ours: the caller sendonly */
    SIPEDGE_REINV_RESUME, /* ours: the caller back to the agent's SDP */
    SIPEDGE_REINV_BRIDGE, /* ours: the caller to the new agent (transfer, outbound answer) */
};

struct sipedge_leg {
    struct sipedge_call *call;
    nua_handle_t *nh; /* NULL once destroyed (or never made) */
    bool is_caller;   /* the customer's leg (inbound caller, outbound callee), or the
                         consulting agent's leg of a consultation call */
    bool up;          /* answered (200 sent / received) */
    bool cancelled;   /* we stopped it: its failure is not reported again */
    bool failed;      /* got a final error */
    bool own_reinv;   /* a re-INVITE of ours (attended transfer) waits for its answer */
    bool auth_tried;  /* outbound: the trunk's challenge was answered once */
    bool external;    /* a number dialled through the trunk (blind transfer), not an agent */
    char agent_id[SIPEDGE_BUS_ID_MAX + 1];
    int attempt;                /* offer number within the call */
    int64_t invited_mono_ms;    /* when the INVITE left */
    su_timer_t *ring_timer;     /* agent legs: the ring backstop; outbound: the ring timeout */
    char *sdp;                  /* the SDP this leg's party sent (malloc'd) */
    struct sipedge_sdp_out out; /* what was sent to it */
    bool bye_after_notify;      /* transferred by REFER: BYE once the NOTIFY is answered */
};

struct sipedge_call {
    struct sipedge_call *next; /* hash chain */
    sipedge_calls *cs;
    char id[CC_UUID_STRLEN + 1];
    char tenant[SIPEDGE_ID_MAX + 1];
    char queue_id[SIPEDGE_ID_MAX + 1];
    char from[SIPEDGE_CALL_ADDR_MAX], to[SIPEDGE_CALL_ADDR_MAX];
    char host[SIPEDGE_CALL_ADDR_MAX]; /* our address as the caller dialled it */
    int priority;
    enum sipedge_call_state state;
    int64_t created_ms, created_mono_ms, answered_mono_ms;
    int attempts;
    int64_t queued_mono_ms; /* created, the last transfer, or the customer's answer */
    bool held;
    int holds, transfers;
    int64_t held_mono_ms, hold_ms; /* current hold's start; finished holds' total */
    enum sipedge_call_reinv reinv;
    struct sipedge_leg *reinv_from; /* SIPEDGE_REINV_PASS: the leg whose re-INVITE waits */
    nua_handle_t *reinv_nh;
    /* outbound (sipedge_originate.c) */
    bool outbound;
    char campaign_id[SIPEDGE_BUS_ID_MAX + 1], attempt_id[SIPEDGE_BUS_ID_MAX + 1];
    int ring_timeout_s, max_wait_s;
    int64_t dial_mono_ms;
    su_timer_t *wait_timer; /* outbound: the answered customer's wait for an agent */
    /* queued callback (sipedge_callback.c) */
    bool callback;           /* the customer asked to be called back at callback_to */
    bool callback_forgotten; /* its sipedge.callbacks row is deleted (its agent answered) */
    bool uncounted;          /* not counted in cs->active (a callback without its caller) */
    char callback_to[24];
    int64_t callback_at_ms; /* when the customer asked to be called (unix ms); 0 = at its turn */
    /* blind transfer to a number (sipedge_originate.c) */
    char external_to[SIPEDGE_CALL_ADDR_MAX]; /* the number (or sip: URI); "" when none */
    /* consultation (sipedge_consult.c): the caller leg is the consulting agent's */
    bool consult;
    char parent_id[CC_UUID_STRLEN + 1];       /* the call the consulting agent was on, or "" */
    char caller_call_id[SIPEDGE_URI_MAX + 1]; /* Call-ID of the caller leg (Replaces) */
    char caller_agent_id[SIPEDGE_BUS_ID_MAX + 1];
    char caller_tag[SIPEDGE_NAME_MAX + 1];    /* From tag of the consulting agent's INVITE */
    char done_consult_id[CC_UUID_STRLEN + 1]; /* attended transfer: the consultation whose
                                                 agent leg is released with this call's */
    struct sipedge_leg caller;
    struct sipedge_leg agents[SIPEDGE_CALL_MAX_LEGS];
    struct cc_log_ctx log;
    /* in cs's early list (a caller sent 180, its next 180 due at early_due_mono_ms) */
    struct sipedge_call *early_next, **early_prev;
    int64_t early_due_mono_ms;
};

struct sipedge_calls {
    struct sipedge_calls_config c;
    size_t active;
    struct sipedge_call *buckets[SIPEDGE_CALLS_BUCKETS];
    /* Callers answered 180 and not yet a final response, in order of their next 180 (one
     * interval for all: appending keeps it sorted) -- instead of nta's per-call N2 timer,
     * whose sorted insertion walks every ringing call (see DESIGN.md "Capacity"). */
    struct sipedge_call *early_head, **early_tail;
    su_timer_t *early_timer; /* due at the head's early_due_mono_ms */
    /* The latest assignment of each queued callback that no call here holds, for its ring
     * time, the newest overwriting the oldest: while a dead instance's callbacks wait to be
     * taken over, their assignments reach nobody, and the instance that takes one over acts
     * on the one it kept (sipedge_callback.c). Allocated at the first such decision. */
    struct sipedge_decision *unheld;
    size_t unheld_next, unheld_count;
};

/* ---- sipedge_callback.c (beside the functions of sipedge_call.h) ---- */
/* A decision about an interaction no call here holds: an assignment of a queued callback is
 * kept (its holder may be dead and this instance the one to take it over); a withdrawal,
 * rejection or overflow forgets what was kept of it. */
void sipedge_calls_keep_unheld(sipedge_calls *cs, const struct sipedge_decision *d);

/* ---- sipedge_call.c ---- */
/* The call of interaction id, or NULL. */
struct sipedge_call *sipedge_call_find(sipedge_calls *cs, const char *id);
/* A new call (state QUEUED, caller leg bound to nh when nh is given) in the table, counted as
 * active; id NULL makes a fresh UUIDv7. NULL on ENOMEM. */
struct sipedge_call *sipedge_call_new(sipedge_calls *cs, const char *id, nua_handle_t *nh);
/* The event identity of c. */
struct sipedge_ix sipedge_call_ix(const struct sipedge_call *c);
/* Milliseconds since a cc_time_mono_ms() value (never negative). */
int64_t sipedge_call_since(int64_t mono_ms);
/* The agent leg ringing (not answered, not released), or NULL. */
struct sipedge_leg *sipedge_call_ringing(struct sipedge_call *c);
/* The agent leg connected to the caller (answered, not released), or NULL. */
struct sipedge_leg *sipedge_call_agent_leg(struct sipedge_call *c);
/* Its agent id, or NULL. */
const char *sipedge_call_agent(const struct sipedge_call *c);
/* Hold time so far: the finished holds plus the current one. */
int64_t sipedge_call_hold_ms(const struct sipedge_call *c);
void sipedge_call_set_held(struct sipedge_call *c, const char *agent_id, const char *held_by);
/* Ends the current hold; publishes resumed unless quietly (a transfer ends it too). */
void sipedge_call_set_resumed(struct sipedge_call *c, const char *agent_id, bool quietly);
/* CANCEL (ringing) or BYE (up) one leg of ours, once. */
void sipedge_call_leg_cancel(struct sipedge_leg *l);
/* Moves c to ENDED and releases every agent leg but except (NULL: all). */
void sipedge_call_finish(struct sipedge_call *c, const struct sipedge_leg *except);
/* Final error to a caller still waiting (or a BYE when it is up), then ended. */
void sipedge_call_reject(struct sipedge_call *c, int status, const char *reason,
                         const char *ended_by, const char *ended_reason);
/* The caller gave up before an agent answered (or, ended_by system, an outbound customer was
 * released after max_wait_s): abandoned + ended. */
void sipedge_call_abandon(struct sipedge_call *c, const char *ended_by);
/* Call right after the caller leg was answered 180 Ringing: while the caller waits (QUEUED, not
 * up, no final response), it gets 180 again every CC_SIPEDGE_PROGRESS_S (RFC 3261 13.3.1.1).
 * O(1); no-op when c is listed already. */
void sipedge_call_early_start(struct sipedge_call *c);
/* Frees c once it is ENDED and none of its handles is alive (else nothing). */
void sipedge_call_maybe_free(struct sipedge_call *c);
/* Agent leg l answered c (what: "the call", "the callback"): logged, answered published (wait
 * since c was queued), every other agent leg released. */
void sipedge_call_agent_took(struct sipedge_call *c, struct sipedge_leg *l, const char *what);
/* c's journal entry (tenant, queue, the agent talking) written again: after it was created, an
 * agent took it, it moved to another queue. Nothing once c ended. */
void sipedge_call_journal(struct sipedge_call *c);
/* INVITEs an agent as the decision says (ring timer, offer number); a redelivered decision for
 * a phone that rings already is ignored. */
void sipedge_call_offer(struct sipedge_call *c, const struct sipedge_decision *d);
/* Our address as the Request-URI of sip names it ("host[:port]"). */
void sipedge_call_host(char *out, size_t cap, const sip_t *sip);
/* A number as DIDs are written: digits with an optional leading '+', 2..20 digits. */
bool sipedge_call_did_valid(const char *s);

/* ---- sipedge_call_control.c ---- */
/* A re-INVITE on leg l (nua_i_invite within its dialog). */
void sipedge_call_on_reinvite(struct sipedge_call *c, struct sipedge_leg *l, nua_handle_t *nh,
                              const sip_t *sip);
/* The answer to a re-INVITE sip-edge sent on leg l. */
void sipedge_call_on_reinvite_done(struct sipedge_call *c, struct sipedge_leg *l, int status,
                                   const sip_t *sip);
/* A REFER on leg l (NUA answered it 202): blind or attended transfer, NOTIFY with the outcome. */
void sipedge_call_on_refer(struct sipedge_call *c, struct sipedge_leg *l, nua_handle_t *nh,
                           const sip_t *sip, tagi_t tags[]);
/* Sends the caller sdp in a re-INVITE of ours (what: why); dir as sipedge_sdp_for_leg. */
void sipedge_call_reinvite_caller(struct sipedge_call *c, enum sipedge_call_reinv what,
                                  const char *sdp, const char *dir);

/* ---- sipedge_originate.c ---- */
/* INVITEs the customer `to` (an E.164 number or a sip: URI) through the trunk as the call's
 * caller leg, From caller_id, with offer sdp, ring timer c->ring_timeout_s (then CANCEL); the
 * call must be DIALING. 0, -ENOTSUP (no trunk) or -ENOMEM. */
int sipedge_call_dial(struct sipedge_call *c, const char *to, const char *caller_id,
                      const char *sdp);
/* The placeholder offer of a party without media yet (sipedge_sdp_placeholder at our media
 * address), malloc'd; NULL on ENOMEM. */
char *sipedge_call_placeholder(const struct sipedge_call *c);
/* The customer being dialled did not answer: ended {ended_by, reason, sip_status} (with the
 * agent of a callback), every leg released. */
void sipedge_call_dial_end(struct sipedge_call *c, const char *ended_by, const char *reason,
                           int status);
/* A final or provisional answer on the customer leg of an outbound call being dialled. */
void sipedge_call_on_dial_answer(struct sipedge_call *c, int status, const sip_t *sip);
/* Blind transfer to a number: INVITEs target (E.164 number or sip: URI) through the trunk with
 * the customer's last SDP on a free agent slot marked external, ring timer
 * CC_SIPEDGE_TRANSFER_RING_TIMEOUT_S; the call must already be in SIPEDGE_CALL_EXTERNAL.
 * 0, -ENOTSUP (no trunk), -EBUSY (no free leg), -ENOMEM. */
int sipedge_call_dial_external(struct sipedge_call *c, const char *target);
/* An answer on the external leg l: 2xx bridges the customer to it (re-INVITE with its SDP, the
 * call ANSWERED); 401/407 is answered once with the trunk credentials; another final status
 * ends the call (ended {system, busy|no_answer|rejected|failed, sip_status}, the customer
 * released with a BYE carrying a Reason). */
void sipedge_call_on_external_answer(struct sipedge_call *c, struct sipedge_leg *l, int status,
                                     const sip_t *sip);
/* The customer hung up (or its dialog ended: ended_by system) while the number rang: the
 * external leg is cancelled, ended {ended_by, normal}. */
void sipedge_call_external_abandon(struct sipedge_call *c, const char *ended_by);

/* ---- sipedge_callback.c ---- */
/* The waiting caller of c asks to be called back at number ("" = the caller's own number), at
 * its turn in the queue (at_ms 0) or from at_ms (unix ms) on:
 * recorded in sipedge.callbacks, cc.routing.callback published, the caller released (480, or
 * a BYE when connected to nobody after a transfer); c becomes CALLBACK. 0, -ENOTSUP (no trunk),
 * -EBUSY (not a waiting inbound call, or an agent rings), -EINVAL (no number to call back),
 * -EIO (the store failed: nothing changed). */
int sipedge_call_callback(struct sipedge_call *c, const char *number, int64_t at_ms);
/* Agent leg l answered callback c: answered published, the customer dialled with l's SDP. */
void sipedge_call_callback_answered(struct sipedge_call *c, struct sipedge_leg *l);
/* The customer of callback c answered (2xx on the caller leg): the agent is re-INVITEd with
 * the customer's SDP and the call is ANSWERED. */
void sipedge_call_callback_connected(struct sipedge_call *c, const sip_t *sip);
/* The agent of callback c hung up (or its dialog ended) while the customer rang. */
void sipedge_call_callback_agent_gone(struct sipedge_call *c, struct sipedge_leg *l);
/* Callback c was overflowed to c->queue_id: its row follows (logged when it cannot). */
void sipedge_call_callback_moved(struct sipedge_call *c);
/* c ended: its sipedge.callbacks row goes (logged when it cannot). */
void sipedge_call_callback_forget(struct sipedge_call *c);

/* ---- sipedge_consult.c ---- */
/* A new INVITE that is not for a DID: an agent's consultation call (authenticated with the
 * agent's SIP credential). Answers it (407, 404, 480, 180 ...). */
void sipedge_call_consult_invite(sipedge_calls *cs, nua_handle_t *nh, const sip_t *sip);
/* Attended transfer: REFER with Replaces from agent leg a of call c naming consultation dialog
 * (call_id and the tags of its Replaces, either way round): bridges c's caller and the consulted
 * agent. 0, -ENOENT (no such consultation of that agent), -EBUSY (not in a state for it). */
int sipedge_call_attended_transfer(struct sipedge_call *c, struct sipedge_leg *a,
                                   const char *call_id, const char *to_tag, const char *from_tag);
/* After an attended transfer's NOTIFY was answered: BYE the consulting agent's leg of the
 * consultation (c->done_consult_id). No-op when there is none. */
void sipedge_call_consult_release(struct sipedge_call *c);

#endif
