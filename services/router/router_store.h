/*
 * router_store: the router's configuration in PostgreSQL (schema "router", migrations in
 * services/router/migrations), behind a small pool of cc_pg connections.
 *
 * Pool: cc_pg is one connection and not thread-safe, while the REST handlers run on several
 * libmicrohttpd threads. The store keeps pool_size connections (opened at start) guarded by a
 * mutex and a condition variable; each call borrows one for its whole duration (a transaction
 * never spans two connections) and gives it back rolled back if anything was left open. A call
 * that cannot get a connection within acquire_timeout_ms returns -EAGAIN (the API answers 503 +
 * Retry-After). Size it at least CC_HTTP_THREADS so that handlers never wait for each other.
 *
 * Every function takes the tenant and touches only that tenant's rows; only parameterised
 * queries. Return codes (int functions): 0; -ENOENT the resource (or the path's queue) does not
 * exist in the tenant; -ESRCH the membership's agent does not exist; -EEXIST the id is taken;
 * -ESTALE if_version given and different from the stored version; -ENXIO the overflow queue does
 * not exist; -ENOTEMPTY the queue is another queue's overflow target; -EINVAL the database
 * refused the values (a CHECK the model should have caught); -EAGAIN no connection free in time;
 * -EIO the database failed (logged); -ENOMEM.
 *
 * Versions: agents and queues carry version (1 on create, +1 per write). if_version <= 0 means
 * "unconditional". Timestamps come back in *_ms fields.
 *
 * Queue change feed: whoever learns that a queue's configuration changed (the configuration
 * listener of router_live, on each NOTIFY, and after each reconnect for "everything") records it
 * with router_store_queue_changed(); per-thread caches of queue configuration (router_engine)
 * poll router_store_queue_generation() (one atomic load) and, when it moved, drop what
 * router_store_queue_changes() lists. The feed remembers the last 256 changes; a reader further
 * behind is told "everything".
 *
 * Thread-safety: every function may be called from any thread at once, except _new/_free.
 */
#ifndef ROUTER_STORE_H
#define ROUTER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router_model.h"

typedef struct router_store router_store;

/* One queue change: tenant and queue_id, or both NULL for "every queue may have changed". */
typedef void (*router_store_change_fn)(void *arg, const char *tenant, const char *queue_id);

/* Opens pool_size (1..64) connections to dsn and loads PostgreSQL's time-zone names. NULL
 * (logged) when a connection fails or the arguments are bad. */
router_store *router_store_new(const char *dsn, unsigned pool_size, long acquire_timeout_ms);
/* Closes every connection; no call may be in flight. NULL is a no-op. */
void router_store_free(router_store *st);
/* Applies the migrations of dir to schema "router" (cc_pg_migrate); 0 or negative. Then reloads
 * nothing: call before serving. */
int router_store_migrate(router_store *st, const char *dir);
/* For /readyz: true when PostgreSQL answers on a pooled connection; else why[len] says why. */
bool router_store_ready(router_store *st, char *why, size_t len);
/* True when tz is exactly one of pg_timezone_names (loaded once at _new; case-sensitive, so
 * only the canonical spelling is stored). Signature of router_tz_known_fn; arg is the store. */
bool router_store_timezone_known(void *arg, const char *tz);

/* Records that a queue's configuration changed (tenant or queue_id NULL: every queue). */
void router_store_queue_changed(router_store *st, const char *tenant, const char *queue_id);
/* Generation of the newest recorded change (0: none yet). One atomic load: for hot paths. */
uint64_t router_store_queue_generation(router_store *st);
/* Calls fn for every change recorded after generation since, oldest first (once with NULLs
 * when more than the feed holds were recorded since), and returns the generation it reached,
 * to pass as since next time. fn runs under the feed's lock: it must not call the store. */
uint64_t router_store_queue_changes(router_store *st, uint64_t since, router_store_change_fn fn,
                                    void *arg);

/* Agents. create: a->id must be set; fills version/created_ms/updated_ms. */
int router_store_agent_create(router_store *st, const char *tenant, struct router_agent *a);
int router_store_agent_get(router_store *st, const char *tenant, const char *id,
                           struct router_agent *out);
/* Full replace (skills too); fills the new version and timestamps into *a. */
int router_store_agent_replace(router_store *st, const char *tenant, struct router_agent *a,
                               long long if_version);
int router_store_agent_delete(router_store *st, const char *tenant, const char *id,
                              long long if_version);
/* Up to limit agents with id > after (NULL = from the start), by id. *out (calloc'd, free with
 * router_store_agents_free) may be NULL when *n is 0. */
int router_store_agent_list(router_store *st, const char *tenant, const char *after, size_t limit,
                            struct router_agent **out, size_t *n);
void router_store_agents_free(struct router_agent *list, size_t n);

/* Queues: as agents. delete: -ENOTEMPTY when another queue overflows to it; blocker[] (may be
 * NULL) then names one such queue. */
int router_store_queue_create(router_store *st, const char *tenant, struct router_queue *q);
int router_store_queue_get(router_store *st, const char *tenant, const char *id,
                           struct router_queue *out);
int router_store_queue_replace(router_store *st, const char *tenant, struct router_queue *q,
                               long long if_version);
int router_store_queue_delete(router_store *st, const char *tenant, const char *id,
                              long long if_version, char blocker[ROUTER_ID_MAX + 1]);
int router_store_queue_list(router_store *st, const char *tenant, const char *after, size_t limit,
                            struct router_queue **out, size_t *n);
void router_store_queues_free(struct router_queue *list, size_t n);

/* Memberships. put: insert or update; *created tells which. -ENOENT queue, -ESRCH agent. */
int router_store_member_put(router_store *st, const char *tenant, struct router_member *m,
                            bool *created);
int router_store_member_delete(router_store *st, const char *tenant, const char *queue_id,
                               const char *agent_id);
/* Members of a queue by agent id after `after`; -ENOENT when the queue does not exist. *out is
 * malloc'd (free()), NULL when *n is 0. */
int router_store_member_list(router_store *st, const char *tenant, const char *queue_id,
                             const char *after, size_t limit, struct router_member **out,
                             size_t *n);

/* Not-ready reasons. put: insert or replace; *created tells which. */
int router_store_reason_put(router_store *st, const char *tenant, struct router_reason *r,
                            bool *created);
int router_store_reason_get(router_store *st, const char *tenant, const char *code,
                            struct router_reason *out);
int router_store_reason_delete(router_store *st, const char *tenant, const char *code);
/* As member_list; *out malloc'd (free()). */
int router_store_reason_list(router_store *st, const char *tenant, const char *after, size_t limit,
                             struct router_reason **out, size_t *n);

#endif
