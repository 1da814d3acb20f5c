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
 *   withdrawn -> CANCEL that agent leg;  rejected -> the caller gets the decision's status
 *
 * Thread-safety: none -- every function runs on the SIP (su_root) thread.
 */
#ifndef SIPEDGE_CALL_H
#define SIPEDGE_CALL_H

#include <stddef.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/su_wait.h>

#include "sipedge_bus.h"
#include "sipedge_config.h"
#include "sipedge_store.h"

#define SIPEDGE_CALL_MAX_LEGS 8 /* agent legs of one call (ring-all offers) */

typedef struct sipedge_calls sipedge_calls;

struct sipedge_calls_config {
    const struct sipedge_config *cfg; /* borrowed, outlives the calls */
    sipedge_store *store;             /* borrowed: DID lookups */
    const struct sipedge_pub *pub;    /* borrowed: events */
    nua_t *nua;                       /* borrowed */
    su_root_t *root;                  /* borrowed: ring timers */
};

/* Makes the (empty) call table. NULL on ENOMEM. */
sipedge_calls *sipedge_calls_new(const struct sipedge_calls_config *c);
/* Frees every call without touching its NUA handles (call after nua_destroy). NULL ok. */
void sipedge_calls_free(sipedge_calls *cs);

/* A new INVITE (nh not yet bound to a call): answers it (503, 404, 180 ...). */
void sipedge_calls_on_invite(sipedge_calls *cs, nua_handle_t *nh, const sip_t *sip);
/* Any NUA event on a handle bound to a call leg (hmagic = the leg). */
void sipedge_calls_on_event(sipedge_calls *cs, nua_event_t event, int status, const char *phrase,
                            nua_handle_t *nh, void *leg, const sip_t *sip, tagi_t tags[]);
/* A routing decision (from the bus thread, through the command queue): acts on it when the
 * interaction is one of ours, ignores it otherwise. */
void sipedge_calls_on_decision(sipedge_calls *cs, const struct sipedge_decision *d);
/* Shutdown: ends every call (BYE, CANCEL, 503 to queued callers), publishing ended. */
void sipedge_calls_end_all(sipedge_calls *cs);
/* Calls not yet ended (what CC_SIPEDGE_MAX_CALLS counts). */
size_t sipedge_calls_active(const sipedge_calls *cs);

#endif
