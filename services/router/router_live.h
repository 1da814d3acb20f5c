/*
 * router_live: what the router persists in PostgreSQL so that Redis can be rebuilt
 * (migrations/002_live.sql: router.interactions, router.agent_state), the rebuild itself, the
 * configuration sync from PostgreSQL (router_store) into Redis (router_state), and the listener
 * of the configuration change feed (NOTIFY router_config, sent by triggers on the config tables).
 *
 * Persistence (one PostgreSQL connection per handle, synchronous_commit=off on it): a route
 * command is stored (INSERT ... ON CONFLICT DO NOTHING) before Redis sees it; later changes
 * (assigned, moved, requeued, callback, closed, presence) are UPDATEs to a state, so repeating
 * any of them changes nothing. synchronous_commit=off makes a commit return before its WAL is
 * flushed: the hot path saves a disk flush per request (measured: see the report); what a
 * PostgreSQL crash can lose is the last few hundred ms of rows, which the Kafka consumer then
 * redelivers because their offsets were not yet committed either (commit interval 1 s > the
 * WAL writer's 200 ms), so nothing is forgotten.
 *
 * The hot-path statements (route insert, state updates, presence) are prepared statements on
 * the handle's connection (cc_pg_query_prepared): parsed and planned once per connection.
 *
 * Rebuild (router_live_rebuild), run by whoever meets -ESTALE (NOSTATE) first, under the
 * Redis lock cc:rebuild: sync every tenant's configuration, restore every agent's presence and
 * every open interaction (its original enqueued_ms, in progress with its agent or waiting),
 * set cc:epoch, then dispatch every queue (offers lost with Redis are made again).
 *
 * Thread-safety: a router_live is one connection: one per thread. router_store is shared
 * (thread-safe). The listener runs on its own thread with its own connections.
 */
#ifndef ROUTER_LIVE_H
#define ROUTER_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "router_state.h"
#include "router_store.h"

typedef struct router_live router_live;
typedef struct router_live_listener router_live_listener;

/* Connects (synchronous_commit=off on this session). NULL (logged) when it cannot connect. */
router_live *router_live_new(const char *dsn);
void router_live_free(router_live *lv);

/*
 * Stores route commands reqs[0..n) as open interactions in ONE statement (a multi-row insert
 * from a JSON parameter): skills_json[i] is the command's extra skills as a JSON array text
 * (skills_json itself may be NULL: none). ended[i] becomes true for an interaction already known
 * and ended (a redelivered command after its end: it must not stay routed). The interaction ids
 * must be distinct within one call. Returns 0, -EIO on a database failure (then nothing was
 * stored), -ENOMEM.
 */
int router_live_route_batch(router_live *lv, const struct router_enqueue *reqs,
                            const char *const *skills_json, size_t n, bool *ended);
/* In progress with agent_id. */
int router_live_assigned(router_live *lv, const char *tenant, const char *ix, const char *agent_id);
/* Waiting again (e.g. the assignment was taken back). */
int router_live_waiting(router_live *lv, const char *tenant, const char *ix);
/* Now in queue_id (overflow, requeue to another queue). */
int router_live_moved(router_live *lv, const char *tenant, const char *ix, const char *queue_id);
/* New priority (< 0 = keep) and/or skills (NULL = keep) and/or queue (NULL = keep); order_ms:
 * ordered from then (at_head false; <= 0 = by its arrival again); excluded_json: a JSON array
 * of agent ids added to the ones it excludes already (NULL = none). */
int router_live_requeue(router_live *lv, const char *tenant, const char *ix, const char *queue_id,
                        int priority, const char *skills_json, int64_t order_ms,
                        const char *excluded_json);
/* The callback's number, and at_ms: when to call back (a scheduled callback; <= 0 = it keeps
 * its place). */
int router_live_callback(router_live *lv, const char *tenant, const char *ix, const char *number,
                         int64_t at_ms);
/* Closed for good: ended, abandoned, cancelled, rejected, timed out. */
int router_live_closed(router_live *lv, const char *tenant, const char *ix);
/* One interaction's row change of a batch of facts (router_live_rows). */
struct router_live_row {
    bool closed; /* router_live_closed; else router_live_assigned to agent_id */
    const char *tenant;
    const char *ix;
    const char *agent_id; /* assigned only */
};
/* Most rows router_live_rows() takes at once. */
#define ROUTER_LIVE_ROWS_MAX 512
/* rows[0..n) (distinct interactions) as router_live_closed / router_live_assigned would apply
 * them, as ONE transaction sent in one round trip (libpq pipeline mode) instead of a round
 * trip and a commit each; rows are locked in key order, so two instances applying overlapping
 * batches wait for each other instead of deadlocking. When a statement fails (and the
 * connection did not), the transaction is rolled back and each row is written alone, so that
 * only the failing ones fail. rcs[i]: 0 or -EIO for rows[i] (on a lost connection every row
 * fails and its outcome is unknown: each change may be applied again). Returns 0 when every
 * row was written, -EIO, or -EINVAL (n above ROUTER_LIVE_ROWS_MAX: nothing written, every
 * rcs -EIO). */
int router_live_rows(router_live *lv, const struct router_live_row *rows, size_t n, int *rcs);
/* An agent's presence (logged_out, available or not_ready with reason) since since_ms. */
int router_live_presence(router_live *lv, const char *tenant, const char *agent_id,
                         enum router_agent_state presence, const char *reason, int64_t since_ms);
/* Deletes closed interactions last touched more than older_s seconds ago; 0 or -EIO. */
int router_live_purge(router_live *lv, long older_s);

/* A statement prepared on a router_live session under name, with nparams parameters. */
struct router_live_statement {
    const char *name, *sql;
    int nparams;
};
/* The statements behind router_live_route_batch .. router_live_closed: the ones that run for
 * every interaction. Each reaches its rows through the primary key alone whatever the
 * statistics of router.interactions -- never through its partial indexes, which hold a day of
 * closed rows or every open one -- so that a route costs the same on a young table and a full
 * one (tests check their generic plans). Sets *n; the array is static. */
const struct router_live_statement *router_live_row_statements(size_t *n);

/*
 * Configuration sync PostgreSQL -> Redis for one entity (a missing row removes it from Redis),
 * followed by a dispatch of what the change may unblock. Return 0, -ESTALE (Redis needs a
 * rebuild), -EAGAIN (no pooled connection in time), -EIO.
 */
int router_live_sync_agent(router_live *lv, router_state *rs, router_store *st, const char *tenant,
                           const char *agent_id, int64_t now_ms);
int router_live_sync_queue(router_live *lv, router_state *rs, router_store *st, const char *tenant,
                           const char *queue_id, int64_t now_ms);
int router_live_sync_member(router_live *lv, router_state *rs, router_store *st, const char *tenant,
                            const char *queue_id, const char *agent_id, int64_t now_ms);
/* Every tenant's agents, queues and memberships (no dispatch). 0 or negative. */
int router_live_sync_all(router_live *lv, router_state *rs, router_store *st, int64_t now_ms);

/* The rebuild described above. owner names the lock holder (the instance). Returns 0 (done, by
 * us or meanwhile by another instance), -EAGAIN (another instance is rebuilding: retry
 * shortly), or negative. */
int router_live_rebuild(router_live *lv, router_state *rs, router_store *st, const char *owner,
                        int64_t now_ms);

/* Starts the thread that LISTENs on router_config and syncs each changed entity (a lost
 * connection is re-established and followed by a full sync: notifications may have been
 * missed). Each queue change, and each full sync (as "every queue"), is also recorded in the
 * store's queue change feed (router_store_queue_changed) before the sync, so the engines'
 * queue caches drop the entry and re-read it on their next request for that queue. store is
 * borrowed and must outlive the listener. NULL (logged) on failure. */
router_live_listener *router_live_listen_start(const char *dsn, const char *redis_url,
                                               router_store *store, const char *owner);
/* True once the full sync after the listener's last (re)connect is done: main() waits for it
 * before consuming, so no request meets a queue that is configured but not yet in Redis. */
bool router_live_listen_synced(router_live_listener *l);
void router_live_listen_stop(router_live_listener *l);

#endif
