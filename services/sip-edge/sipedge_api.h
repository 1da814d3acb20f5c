/*
 * sipedge_api: sip-edge's administration REST API (proto/openapi/sip-edge.yaml) on cc_http.
 *
 *   /v1/sip/credentials                      list (?agent_id=), create {username, password,
 *                                            agent_id, domain?}
 *   /v1/sip/credentials/{domain}/{username}  get, update {password?, agent_id?}, delete
 *   /v1/sip/dids                             list, create {number, queue_id, priority?}
 *   /v1/sip/dids/{number}                    get, replace {queue_id, priority?}, delete
 *                                            ('+' may be sent as %2B)
 *   /v1/sip/registrations                    the tenant's live bindings (?agent_id=)
 *
 * A credential is named by its AOR, (domain, username): that is what a phone registers as,
 * and it is unique across tenants. The domain (the digest realm) defaults to the tenant id,
 * is stored lowercase, and belongs to the first tenant that uses it. Only HA1 =
 * MD5(username:domain:password) is stored; the password is never stored, logged or returned,
 * so changing the domain means a new credential. A number (DID) reaches one tenant.
 *
 * Roles: admin and supervisor manage; analyst and service read; agent gets 403. The tenant is
 * the token's; another tenant's resource is 404 (a number or an AOR taken by another tenant is
 * still a 409 on create: they are global). Credentials and DIDs carry `ETag: "<version>"`;
 * PUT/DELETE take `If-Match` (or a `version` body field on PUT) and answer 409 when stale.
 * Lists page by keyset (`limit` 1..500, opaque `cursor`). Unknown body fields are a 422.
 * GET /readyz is ready when PostgreSQL answers.
 *
 * Thread-safety: handlers run on the HTTP pool's threads; they share only the store, which is
 * thread-safe.
 */
#ifndef SIPEDGE_API_H
#define SIPEDGE_API_H

#include "cc_http.h"
#include "sipedge_store.h"

typedef struct sipedge_api sipedge_api;

/* Adds every route and the ready check to srv (before cc_http_start). st is borrowed and must
 * outlive srv. NULL (logged) when a route cannot be added or on ENOMEM; srv may then hold some
 * routes: free it. */
sipedge_api *sipedge_api_new(cc_http *srv, sipedge_store *st);
/* Frees the handle; call after cc_http_free(srv). NULL is a no-op. */
void sipedge_api_free(sipedge_api *api);

#endif
