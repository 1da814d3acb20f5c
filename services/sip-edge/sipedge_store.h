/*
 * sipedge_store: sip-edge's PostgreSQL tables (schema "sipedge", migrations in
 * services/sip-edge/migrations): SIP credentials (HA1 only), DIDs, registration bindings.
 *
 * Thread-safety: a store holds a pool of connections (common/cc_pg_pool); every function may
 * be called from any thread. A call that gets no connection within the pool's acquire timeout
 * returns -EAGAIN. Errors: -ENOENT (no such row), -EEXIST (unique key taken), -EINVAL (a value
 * PostgreSQL refused), -EIO (database unreachable or another failure); the administration
 * functions add -ESTALE (if_version given and different from the stored version).
 *
 * Lookup cache: the two lookups on the call / REGISTER path (a credential by (domain, username),
 * a DID by number) are answered from memory for cache_ttl_ms after PostgreSQL answered them
 * (a missing row too, so floods of unknown numbers or users stay off the database). A write
 * through this instance's administration functions forgets the key at once (a lookup racing the
 * write is not kept), so this instance sees its own changes immediately; another instance sees a
 * change within its cache TTL (the staleness bound; 0 disables the cache): a new password, a
 * deleted credential, a new or moved DID (a number another instance found missing stays 404
 * there) take effect at the other instances within that bound. Bindings are never cached.
 * Thread-safety of the cache: one mutex, held only to copy an entry in or out.
 * Domains are stored lowercase and looked up case-insensitively; user names are
 * case-sensitive. Deleting a credential deletes its bindings.
 */
#ifndef SIPEDGE_STORE_H
#define SIPEDGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sipedge_digest.h"

typedef struct sipedge_store sipedge_store;

#define SIPEDGE_ID_MAX     64  /* tenant, agent and queue ids */
#define SIPEDGE_NAME_MAX   128 /* SIP user names and domains */
#define SIPEDGE_URI_MAX    512 /* contacts */
#define SIPEDGE_NUMBER_MAX 32  /* DIDs: digits with an optional leading '+' */

/* TTL of sipedge_store_new's lookup cache (-DSIPEDGE_STORE_CACHE_TTL_MS_DEFAULT=0: none, for A/B
 * benchmark builds) */
#ifndef SIPEDGE_STORE_CACHE_TTL_MS_DEFAULT
#define SIPEDGE_STORE_CACHE_TTL_MS_DEFAULT 5000
#endif

/* What REGISTER authentication needs for one (domain, username). */
struct sipedge_credential {
    char tenant[SIPEDGE_ID_MAX + 1];
    char agent_id[SIPEDGE_ID_MAX + 1];
    char domain[SIPEDGE_NAME_MAX + 1];
    char username[SIPEDGE_NAME_MAX + 1];
    char ha1[SIPEDGE_DIGEST_HEX_LEN + 1];
};

/* Where an inbound call to a number goes. */
struct sipedge_did {
    char number[SIPEDGE_NUMBER_MAX + 1];
    char tenant[SIPEDGE_ID_MAX + 1];
    char queue_id[SIPEDGE_ID_MAX + 1];
    int priority; /* 0..1000, higher first; default 0 */
};

/* One registered contact of an AOR (domain, username). */
struct sipedge_binding {
    char tenant[SIPEDGE_ID_MAX + 1];
    char agent_id[SIPEDGE_ID_MAX + 1];
    char domain[SIPEDGE_NAME_MAX + 1];
    char username[SIPEDGE_NAME_MAX + 1];
    char contact[SIPEDGE_URI_MAX + 1];     /* the Contact URI, without <> or parameters */
    char call_id[SIPEDGE_URI_MAX + 1];     /* of the REGISTER that made it */
    uint32_t cseq;                         /* of that REGISTER (RFC 3261 10.3 step 7) */
    int64_t expires_at_ms;                 /* unix ms */
    int64_t updated_at_ms;                 /* unix ms of the REGISTER that refreshed it */
    char user_agent[SIPEDGE_NAME_MAX + 1]; /* may be "" */
    char source[64];                       /* "ip:port" the REGISTER came from */
    char transport[8];                     /* "udp" / "tcp" */
};

/* A credential or a DID as the REST API shows it: version 1 on create, +1 per write. */
struct sipedge_credential_row {
    struct sipedge_credential c;
    long long version;
    int64_t created_ms, updated_ms; /* unix ms */
};

struct sipedge_did_row {
    struct sipedge_did d;
    long long version;
    int64_t created_ms, updated_ms; /* unix ms */
};

typedef void (*sipedge_binding_fn)(void *ctx, const struct sipedge_binding *b);

/* Opens pool_size (1..64) connections to dsn; acquire waits at most acquire_timeout_ms; lookups
 * are cached for cache_ttl_ms (0: no cache). NULL on failure (logged). */
sipedge_store *sipedge_store_new_cached(const char *dsn, unsigned pool_size,
                                        long acquire_timeout_ms, long cache_ttl_ms);
/* sipedge_store_new_cached with SIPEDGE_STORE_CACHE_TTL_MS_DEFAULT. */
sipedge_store *sipedge_store_new(const char *dsn, unsigned pool_size, long acquire_timeout_ms);
void sipedge_store_free(sipedge_store *st);
/* Applies services/sip-edge/migrations (dir) to schema "sipedge"; 0 or -EIO. */
int sipedge_store_migrate(sipedge_store *st, const char *dir);
/* For /readyz: true when PostgreSQL answers; else why says why. */
bool sipedge_store_ready(sipedge_store *st, char *why, size_t len);

/* ---- lookups on the call / REGISTER path (cached, see above) ---- */
int sipedge_store_credential_get(sipedge_store *st, const char *domain, const char *username,
                                 struct sipedge_credential *out);
int sipedge_store_did_get(sipedge_store *st, const char *number, struct sipedge_did *out);

/* ---- bindings ---- */
/* Inserts or refreshes the binding (domain, username, contact). A refresh whose call_id equals
 * the stored one and whose cseq is not greater is refused with -EALREADY (out of order). */
int sipedge_store_binding_put(sipedge_store *st, const struct sipedge_binding *b);
/* Removes one contact (contact non-NULL) or every contact (contact NULL) of the AOR; 0 even when
 * there was none. */
int sipedge_store_binding_remove(sipedge_store *st, const char *domain, const char *username,
                                 const char *contact);
/* Calls fn for each unexpired (expires_at_ms > now_ms) binding of the AOR, newest refresh
 * first; returns how many, or a negative error. */
int sipedge_store_bindings_of(sipedge_store *st, const char *domain, const char *username,
                              int64_t now_ms, sipedge_binding_fn fn, void *ctx);
/* Deletes every binding with expires_at_ms <= now_ms (at most limit) and calls fn for each
 * deleted one; returns how many, or a negative error. */
int sipedge_store_bindings_expire(sipedge_store *st, int64_t now_ms, int limit,
                                  sipedge_binding_fn fn, void *ctx);

/* ---- outbound originations ---- */
/* One attempt as sipedge.originations records it (what created/ended need again). */
struct sipedge_origination {
    char attempt_id[SIPEDGE_ID_MAX + 1];
    char tenant[SIPEDGE_ID_MAX + 1];
    char interaction_id[SIPEDGE_ID_MAX + 1];
    char campaign_id[SIPEDGE_ID_MAX + 1];
    char queue_id[SIPEDGE_ID_MAX + 1];
    char customer_id[SIPEDGE_ID_MAX + 1]; /* may be "" */
    char caller_id[SIPEDGE_ID_MAX + 1];
    char destination[257];
    char instance[SIPEDGE_NAME_MAX + 1]; /* CC_INSTANCE_ID of the sip-edge that recorded it */
    int priority;
    int64_t recorded_ms; /* unix ms of the row (also the interaction's created_ms) */
};

/* Records that o->attempt_id is to be dialled (state recorded, before the INVITE): 0 when this
 * call made the row, -EALREADY when the attempt already had one (a redelivered command: do not
 * dial again), -EINVAL for values PostgreSQL refused, -EAGAIN / -EIO when the database is
 * unavailable. */
int sipedge_store_origination_claim(sipedge_store *st, const struct sipedge_origination *o);
/* The SIP thread takes a recorded attempt to dial it (recorded -> dialled, compare-and-set):
 * 0, or -EALREADY when it is no longer recorded (a start-up found it orphaned: do not dial),
 * -EAGAIN / -EIO. */
int sipedge_store_origination_take(sipedge_store *st, const char *attempt_id);
/* Attempts still recorded that nobody will dial: those recorded by instance (a previous process
 * of this instance: call before its dialer consumer starts), and any recorded before
 * older_than_ms (unix ms). Up to limit rows, oldest first, into *out (malloc'd, free(); NULL
 * when *n is 0). Nothing is changed: mark each with sipedge_store_origination_orphan once its
 * events are out. 0 or a negative code. */
int sipedge_store_origination_recorded(sipedge_store *st, const char *instance,
                                       int64_t older_than_ms, size_t limit,
                                       struct sipedge_origination **out, size_t *n);
/* recorded -> orphaned: 0, -EALREADY when it was not recorded any more. */
int sipedge_store_origination_orphan(sipedge_store *st, const char *attempt_id);

/* ---- queued callbacks ---- */
/* One callback waiting for its agent as sipedge.callbacks records it (what the call needs to be
 * restored by the instance after a restart). */
struct sipedge_callback {
    char interaction_id[SIPEDGE_ID_MAX + 1];
    char tenant[SIPEDGE_ID_MAX + 1];
    char queue_id[SIPEDGE_ID_MAX + 1];
    char number[24];  /* the customer's number to dial: '+' and 2..20 digits */
    char caller[257]; /* who called (the From user) */
    char dialled[257];
    char host[257];                      /* our address as the caller dialled it */
    char instance[SIPEDGE_NAME_MAX + 1]; /* CC_INSTANCE_ID of the sip-edge that took it */
    int priority;
    int64_t created_ms; /* the interaction's created_ms (unix ms) */
    int64_t at_ms;      /* scheduled for then (unix ms); 0 = keeping its place */
};

/* Records a callback (before the caller is released): 0, -EALREADY when the interaction has one
 * already, -EINVAL for values PostgreSQL refused, -EAGAIN / -EIO when it is unavailable. */
int sipedge_store_callback_put(sipedge_store *st, const struct sipedge_callback *cb);
/* The callback of interaction_id waits in queue_id now (the router overflowed it): 0 (also when
 * there is no such callback) or a negative code. */
int sipedge_store_callback_moved(sipedge_store *st, const char *interaction_id,
                                 const char *queue_id);
/* Forgets the callback of interaction_id (it ended): 0 (also when there was none) or a negative
 * code. */
int sipedge_store_callback_delete(sipedge_store *st, const char *interaction_id);
/* Moves the callbacks of instance from to instance to (from == to: this instance's own, after a
 * restart) and returns them, oldest first, into *out (malloc'd, free(); NULL when *n is 0): one
 * UPDATE, so a row is returned to one caller only, whoever else claims it at the same time.
 * 0 or a negative code. */
int sipedge_store_callbacks_claim(sipedge_store *st, const char *from, const char *to,
                                  struct sipedge_callback **out, size_t *n);
/* exists[i] = whether interaction ids[i] (i < n) has a callback row, whoever holds it. 0 or a
 * negative code. */
int sipedge_store_callbacks_exist(sipedge_store *st, const char *const *ids, size_t n,
                                  bool *exists);

/* ---- administration (REST): tenant-scoped, another tenant's row is -ENOENT ---- */
/* Inserts row->c (every field set; the domain is lowercased); fills version and timestamps.
 * -EEXIST when (domain, username) is taken, in any tenant; -EPERM when the domain already
 * holds another tenant's credentials (a domain belongs to the first tenant that uses it). */
int sipedge_store_credential_create(sipedge_store *st, struct sipedge_credential_row *row);
int sipedge_store_credential_read(sipedge_store *st, const char *tenant, const char *domain,
                                  const char *username, struct sipedge_credential_row *out);
/* Sets agent_id and/or ha1 (NULL keeps it) when if_version is 0 or the stored version; the
 * AOR's bindings follow the new agent in the same statement. Fills *out with the new row. */
int sipedge_store_credential_update(sipedge_store *st, const char *tenant, const char *domain,
                                    const char *username, const char *agent_id, const char *ha1,
                                    long long if_version, struct sipedge_credential_row *out);
/* Deletes the credential and its bindings (if_version 0 = unconditional). */
int sipedge_store_credential_delete(sipedge_store *st, const char *tenant, const char *domain,
                                    const char *username, long long if_version);
/* Up to limit credentials of tenant ordered by (domain, username), after the given pair (both
 * NULL: from the start), of one agent (agent_id non-NULL) or all. *out is malloc'd (free());
 * NULL when *n is 0. */
int sipedge_store_credential_list(sipedge_store *st, const char *tenant, const char *agent_id,
                                  const char *after_domain, const char *after_username,
                                  size_t limit, struct sipedge_credential_row **out, size_t *n);

/* Inserts row->d (every field set); fills version and timestamps. -EEXIST when the number is
 * taken, in any tenant (a number reaches one tenant). */
int sipedge_store_did_create(sipedge_store *st, struct sipedge_did_row *row);
int sipedge_store_did_read(sipedge_store *st, const char *tenant, const char *number,
                           struct sipedge_did_row *out);
/* Sets queue_id and priority when if_version is 0 or the stored version; fills *out. */
int sipedge_store_did_update(sipedge_store *st, const char *tenant, const char *number,
                             const char *queue_id, int priority, long long if_version,
                             struct sipedge_did_row *out);
int sipedge_store_did_delete(sipedge_store *st, const char *tenant, const char *number,
                             long long if_version);
/* Up to limit DIDs of tenant with number > after (NULL: from the start), by number. *out is
 * malloc'd (free()); NULL when *n is 0. */
int sipedge_store_did_list(sipedge_store *st, const char *tenant, const char *after, size_t limit,
                           struct sipedge_did_row **out, size_t *n);

/* Up to limit unexpired bindings of tenant (of one agent when agent_id is non-NULL) ordered by
 * (domain, username, contact), after that triple (after_domain NULL: from the start). *out is
 * malloc'd (free()); NULL when *n is 0. */
int sipedge_store_binding_list(sipedge_store *st, const char *tenant, const char *agent_id,
                               int64_t now_ms, const char *after_domain, const char *after_username,
                               const char *after_contact, size_t limit,
                               struct sipedge_binding **out, size_t *n);

#endif
