/*
 * router_api: the router's configuration REST API (proto/openapi/router.yaml) on cc_http.
 *
 *   /v1/agents[/{id}]                     agents: list, create, get, replace, merge-patch, delete
 *   /v1/queues[/{id}]                     queues: the same
 *   /v1/queues/{id}/members[/{agent_id}]  memberships: list, put (create or update), delete
 *   /v1/not-ready-reasons[/{code}]        reason codes: list, get, put, delete
 *
 * Roles: admin and supervisor write; every role reads. The tenant is the token's; another
 * tenant's resource is 404. Optimistic concurrency on agents and queues: responses carry
 * `ETag: "<version>"`; PUT/PATCH/DELETE take `If-Match: "<version>"` (or a `version` field in
 * the body) and answer 409 Conflict when it is stale (the project's convention for a stale
 * version, proto/openapi/README.md, rather than 412). Lists page by keyset with an opaque
 * cursor. GET /readyz is ready when PostgreSQL answers.
 *
 * Thread-safety: handlers run on the HTTP pool's threads; their only shared state is the
 * store, which is thread-safe.
 */
#ifndef ROUTER_API_H
#define ROUTER_API_H

#include "cc_http.h"
#include "router_store.h"

typedef struct router_api router_api;

/* Adds every route and the ready check to srv (before cc_http_start) and returns the handle
 * that owns the routes' contexts. store is borrowed and must outlive srv. NULL (logged) when a
 * route cannot be added or on ENOMEM; srv may then hold some routes: free it. */
router_api *router_api_new(cc_http *srv, router_store *store);
/* Frees the handle; call after cc_http_free(srv) (handlers use it). NULL is a no-op. */
void router_api_free(router_api *api);

#endif
