/*
 * sipedge_call: the calls of one sip-edge -- the B2BUA call object and its state machine.
 *
 * One call per interaction (UUIDv7 id, in every event and log line): the caller leg and up to
 * SIPEDGE_CALL_MAX_LEGS agent legs (ring-all offers several). SDP passes through untouched; a
 * media relay would later sit between the legs' SDPs (each leg keeps the SDP it sent).
 *
 *   INVITE -> capacity (503 + Retry-After) -> DID (404) -> 180 -> created + route -> queued
 *   assigned -> INVITE the agent contact, ring timer -> agent 200 -> 200 to the caller with
 *   the agent's SDP -> answered (other agent legs cancelled)
 *   caller CANCEL while queued -> agent legs cancelled, abandoned + ended
 *   BYE from either side -> BYE the other, ended (ended_by, talk_ms)
 *   agent 486/600/603, ring timeout, unreachable -> no_answer (the router re-offers)
 *   withdrawn -> CANCEL that agent leg (no no_answer: the router counted it); rejected -> the
 *   caller gets the decision's status
 *   re-INVITE from either leg -> passed to the other leg, its answer back (held/resumed when
 *   the offer puts the other side on hold or takes it off)
 *   control (REST, REFER): hangup; hold/resume (sip-edge re-INVITEs the caller); blind transfer
 *   to a queue -> BYE the agent leg, transferred + requeue, the caller stays up; the next
 *   assigned agent gets the caller's last SDP and the caller a re-INVITE with the agent's;
 *   blind transfer to a number -> BYE the agent leg, transferred + cancel, the number INVITEd
 *   through the trunk (EXTERNAL) -> its 200 re-INVITEs the caller; its failure ends the call
 *   outbound (sipedge_calls_originate): created -> INVITE to the trunk (placeholder offer,
 *   digest answered) -> customer 200 -> answered (customer) + route -> as after a transfer;
 *   486/timeout/4xx/5xx -> ended busy/no_answer/rejected/failed
 *   consultation: an agent's authenticated INVITE to agent-<id> rings that agent; REFER with
 *   Replaces naming it on the agent's customer call -> attended transfer (the customer bridged
 *   to the consulted agent, transferred + the consultation ended)
 *
 * Thread-safety: none -- every function runs on the SIP (su_root) thread.
 */
#ifndef SIPEDGE_CALL_H
#define SIPEDGE_CALL_H

#include <stddef.h>

#include <jansson.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/su_wait.h>

#include "sipedge_bus.h"
#include "sipedge_config.h"
#include "sipedge_journal.h"
#include "sipedge_registrar.h"
#include "sipedge_store.h"

#define SIPEDGE_CALL_MAX_LEGS 8 /* agent legs of one call (ring-all offers) */
/* An attempt recorded this long past CC_SIPEDGE_ORIGINATE_MAX_AGE_S is nobody's to dial. */
#define SIPEDGE_ORIGINATE_GRACE_S 60

typedef struct sipedge_calls sipedge_calls;

struct sipedge_calls_config {
    const struct sipedge_config *cfg; /* borrowed, outlives the calls */
    sipedge_store *store;             /* borrowed: DID lookups */
    const struct sipedge_pub *pub;    /* borrowed: events */
    nua_t *nua;                       /* borrowed */
    su_root_t *root;                  /* borrowed: ring timers */
    sipedge_registrar *reg;           /* borrowed: authenticates agents' consultation calls */
    sipedge_journal *journal;         /* borrowed: every call's entry (NULL = none) */
};

/* What a control request does (sipedge_calls_control). */
enum sipedge_ctl_op {
    SIPEDGE_CTL_LIST,     /* the tenant's calls (the agent's, with agent_id) */
    SIPEDGE_CTL_GET,      /* one call */
    SIPEDGE_CTL_HANGUP,   /* release both sides (a waiting caller gets 480) */
    SIPEDGE_CTL_HOLD,     /* re-INVITE the caller sendonly */
    SIPEDGE_CTL_RESUME,   /* re-INVITE the caller with the agent's SDP */
    SIPEDGE_CTL_TRANSFER, /* blind, to target_type/target */
    SIPEDGE_CTL_CALLBACK  /* a waiting caller is called back at target ("" = its number) */
};

/* One call-control request (a plain value, copied freely). */
struct sipedge_ctl {
    enum sipedge_ctl_op op;
    char tenant[SIPEDGE_BUS_ID_MAX + 1];
    char agent_id[SIPEDGE_BUS_ID_MAX + 1]; /* "" = any call of the tenant, else only the calls
                                              this agent is on (an agent's token) */
    char by[16];                           /* who acts: agent|supervisor|system */
    char interaction_id[SIPEDGE_BUS_ID_MAX + 1];
    char target_type[16]; /* transfer: queue|number */
    char target[SIPEDGE_BUS_ID_MAX + 1];
    int64_t at_ms; /* callback: when (unix ms); 0 = at its turn */
};

/* Start-up check of CC_SIPEDGE_TRUNK_URI (Sofia-SIP's URL parser): "" (no trunk) or a sip: or
 * sips: URI with a valid host. 0, or -EINVAL with the reason in err (cap bytes). */
int sipedge_calls_trunk_check(const char *uri, char *err, size_t cap);
/* Makes the (empty) call table. NULL on ENOMEM. */
sipedge_calls *sipedge_calls_new(const struct sipedge_calls_config *c);
/* Frees every call without touching its NUA handles (call after nua_destroy). NULL ok. */
void sipedge_calls_free(sipedge_calls *cs);

/* A new INVITE (nh not yet bound to a call): answers it (503, 404, 180 ...). */
void sipedge_calls_on_invite(sipedge_calls *cs, nua_handle_t *nh, const sip_t *sip);
/* Any NUA event on a handle bound to a call leg (hmagic = the leg). */
void sipedge_calls_on_event(sipedge_calls *cs, nua_event_t event, int status, const char *phrase,
                            nua_handle_t *nh, void *leg, const sip_t *sip, tagi_t tags[]);
/* An originate command (from the dialer consumer, through the command queue, already recorded
 * in sipedge.originations): created, then the INVITE to the customer through the trunk (a
 * placeholder SDP offer); the outcome (answered by the customer -> routed to the campaign's
 * queue; busy / no answer / rejected / failed -> ended) goes to cc.interactions. Without a trunk
 * the attempt ends at once (failed, logged). */
void sipedge_calls_originate(sipedge_calls *cs, const struct sipedge_originate *o);
/* Start-up, before the dialer consumer runs (any thread; no call needed): every attempt still
 * recorded-not-dialled in sipedge.originations -- recorded by this instance (a previous process
 * crashed between the row and the INVITE, or stopped with commands queued), or by anyone more
 * than max_age_s + SIPEDGE_ORIGINATE_GRACE_S ago -- gets cc.interaction.created (as the SIP
 * thread would have published it) and ended {system, failed, detail not_dialled}, flushed, then
 * is marked orphaned, so that it is reported once and the dialer can retry it. Returns how many
 * were reported, or a negative code (nothing marked: the next start tries again). */
int sipedge_calls_recover_originations(sipedge_store *st, const struct sipedge_pub *pub,
                                       const char *instance, long max_age_s);
/* Queued callbacks rows[0..n) (sipedge.callbacks, claimed by this instance: its own at a start,
 * before the SIP loop and the decisions consumer run, or a dead instance's) become calls again,
 * waiting for their agent; one already held is skipped. Returns how many, or a negative code. */
int sipedge_calls_restore_callbacks(sipedge_calls *cs, const struct sipedge_callback *rows,
                                    size_t n);
/* A routing decision (from the bus thread, through the command queue): acts on it when the
 * interaction is one of ours, ignores it otherwise. */
void sipedge_calls_on_decision(sipedge_calls *cs, const struct sipedge_decision *d);
/* Applies one control request. 0 with *out a new reference (the list {"items": [...]}, or the
 * call as it is after the request was started); -ENOENT no such call for that tenant / agent,
 * -EBUSY the call is not in a state for it (not connected, already held, a re-INVITE under
 * way), -ENOTSUP a transfer target sip-edge cannot reach (number: no trunk) or a callback
 * without a trunk, -EINVAL a callback without a number to call, -EIO the store failed. */
int sipedge_calls_control(sipedge_calls *cs, const struct sipedge_ctl *req, json_t **out);
/* Shutdown: ends every call (BYE, CANCEL, 503 to queued callers), publishing ended. */
void sipedge_calls_end_all(sipedge_calls *cs);
/* Calls not yet ended (what CC_SIPEDGE_MAX_CALLS counts). */
size_t sipedge_calls_active(const sipedge_calls *cs);

#endif
