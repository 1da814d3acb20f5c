/*
 * router_api_live: the router's live REST API (proto/openapi/router.yaml, tag "live").
 *
 *   POST /v1/agents/{id}/state   {state: available|not_ready|logged_out, reason}
 *                                an agent changes its own state; a supervisor or admin forces
 *                                any agent's (log out included). not_ready needs a configured
 *                                reason code (/v1/not-ready-reasons).
 *   POST /v1/agents/{id}/wrapup  {action: end|extend, seconds (extend: 1..3600)}
 *                                409 when the agent is not in wrap-up.
 *   GET  /v1/agents/{id}/live    state, since, reason, capacity/used, current interactions
 *   GET  /v1/queues/{id}/live    waiting, oldest wait, agents by state, estimated wait
 *
 * Roles: an agent token acts only for the agent whose id is its subject (another agent's id
 * is a 404, as for another tenant); supervisor and admin for every agent of their tenant;
 * analyst and service read the live views. Every state change is persisted (router.agent_state)
 * for a rebuild. An agent configured in PostgreSQL but not yet in Redis is synced on first use.
 *
 * Thread-safety: handlers run on the HTTP pool; each borrows one of the handle's engines (one
 * Redis + one PostgreSQL connection each) for its duration.
 */
#ifndef ROUTER_API_LIVE_H
#define ROUTER_API_LIVE_H

#include "cc_http.h"
#include "router_engine.h"

typedef struct router_api_live router_api_live;

/* Adds the routes to srv (before cc_http_start) with nengines engines made from cfg (>= 1;
 * use CC_HTTP_THREADS). NULL (logged) on failure; srv may then hold some routes: free it. */
router_api_live *router_api_live_new(cc_http *srv, const struct router_engine_config *cfg,
                                     unsigned nengines);
/* Call after cc_http_free(srv). NULL is a no-op. */
void router_api_live_free(router_api_live *api);

#endif
