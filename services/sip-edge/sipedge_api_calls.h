/*
 * sipedge_api_calls: REST call control on cc_http (proto/openapi/sip-edge.yaml, "calls").
 *
 *   GET  /v1/calls                          the tenant's active calls {"items": [...]}
 *   GET  /v1/calls/{interaction_id}         one call
 *   POST /v1/calls/{interaction_id}/hangup  release it (a waiting caller gets 480)
 *   POST /v1/calls/{interaction_id}/hold    re-INVITE the caller sendonly (held)
 *   POST /v1/calls/{interaction_id}/resume  re-INVITE the caller with the agent's SDP (resumed)
 *   POST /v1/calls/{interaction_id}/transfer {"type": "blind", "target_type": "queue"|"number",
 *                                           "target": "..."}
 *
 * Roles admin, supervisor and service act on any call of their tenant; an agent token (its
 * subject = the agent id) only on a call the agent is on (others are 404, like another
 * tenant's). Actions answer 202 with the call as it is once the SIP side has started them;
 * 409 when the call is not in a state for it, 501 for a target sip-edge cannot reach (number:
 * no trunk yet), 503 + Retry-After when the SIP thread does not answer within 5 s.
 *
 * Thread-safety: handlers run on the HTTP pool's threads and never touch a call: each request
 * is marshalled to the SIP thread (sipedge_sip_control) and its outcome waited for.
 */
#ifndef SIPEDGE_API_CALLS_H
#define SIPEDGE_API_CALLS_H

#include "cc_http.h"
#include "sipedge_sip.h"

typedef struct sipedge_api_calls sipedge_api_calls;

/* Adds the call routes to srv (before cc_http_start). sip is borrowed and must outlive srv's
 * handlers (free srv first). NULL (logged) on ENOMEM or when a route cannot be added. */
sipedge_api_calls *sipedge_api_calls_new(cc_http *srv, sipedge_sip *sip);
/* Frees the handle; call after cc_http_free(srv). NULL is a no-op. */
void sipedge_api_calls_free(sipedge_api_calls *api);

#endif
