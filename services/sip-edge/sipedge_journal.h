/*
 * sipedge_journal: what lets a live process finish the calls of a dead one (DESIGN.md "When an
 * instance dies").
 *
 * The router keeps every interaction until sip-edge reports its end. A process that dies (SIGKILL,
 * a crash, a lost node) takes its SIP dialogs with it and reports nothing: without the journal,
 * its answered calls would keep their agents busy for ever and its waiting calls would be offered
 * to agent after agent (each offer ringing nothing, each a no-answer against the agent).
 *
 * The journal: every call this process holds has an entry in Redis (hash
 * cc:{sipedge:<group>}:calls:<instance id>, field = interaction id, value = JSON {tenant, queue_id,
 * created_ms, agent_id, answered_ms, boot}; boot names the process). The SIP thread only appends
 * operations to a list (sipedge_journal_put / _del: a mutex, no I/O); the journal's own thread
 * writes them every SIPEDGE_JOURNAL_FLUSH_MS (one HSET, one HDEL), so a crash loses at most the
 * last few milliseconds of changes.
 *
 * Liveness, in hash cc:{sipedge:<group>}:instances (field = instance id; times are Redis's clock):
 * "a|<ms>" alive (renewed every second, or every dead_after / 3 when that is shorter), "r|<ms>"
 * retired (a graceful stop), "c|<claimed ms>|<last seen ms>|<claimer>" while another instance
 * recovers it, "x|<ms>|<claimer>" recovered (kept a day). Every tick, each live instance that has
 * renewed without a break for dead_after (after an outage of Redis, every instance looks silent
 * until it renews) claims (one script, so one claimer) every instance alive-but-silent for
 * longer than dead_after, retired, or claimed by a claimer that itself went silent, and
 * recovers it:
 *   1. every journal entry without a callback row (sipedge.callbacks) is a call that died with
 *      it: cc.interaction.ended {ended_by system, reason failed, detail instance_lost, agent_id},
 *      durations counted to when it was last seen, under the event id the call's own ended would
 *      have had (consumers deduplicate; a recovery repeated after a crash repeats the ids), and
 *      the producer is flushed;
 *   2. its dialler commands recorded and never dialled are reported (not_dialled), as its own
 *      start would have (sipedge_calls_recover_originations);
 *   3. its queued callbacks move to this instance, one UPDATE (a row goes to exactly one
 *      instance), and are handed to the SIP thread (restore);
 *   4. its journal is deleted and it is marked recovered (while the claim is still ours).
 * A start does the same for its own instance id first (a previous process of it: the entries
 * of another boot), and retries in its ticks until Redis and PostgreSQL answer.
 * Fencing: a process that finds itself claimed or recovered (it could not renew for dead_after)
 * stops itself with SIGTERM: its calls were already reported ended by the claimer.
 *
 * The group (CC_SIPEDGE_TAKEOVER_GROUP) bounds who takes whom over: instances of one group only
 * (separate fleets sharing a Redis, or tests running side by side, keep apart).
 *
 * Thread-safety: put / del from any one thread (the SIP thread); the rest from the owner.
 */
#ifndef SIPEDGE_JOURNAL_H
#define SIPEDGE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc_metrics.h"
#include "sipedge_bus.h"
#include "sipedge_store.h"

#define SIPEDGE_JOURNAL_FLUSH_MS    10     /* pending changes are written this often */
#define SIPEDGE_JOURNAL_PENDING_MAX 200000 /* changes kept while Redis is down; then dropped */

typedef struct sipedge_journal sipedge_journal;

/* One call as the journal keeps it. */
struct sipedge_journal_entry {
    char interaction_id[SIPEDGE_ID_MAX + 1];
    char tenant[SIPEDGE_ID_MAX + 1];
    char queue_id[SIPEDGE_ID_MAX + 1];
    char agent_id[SIPEDGE_ID_MAX + 1]; /* the agent talking ("" = none) */
    int64_t created_ms;                /* the interaction's (its event ids derive from it) */
    int64_t answered_ms;               /* unix ms the agent answered (0 = not answered) */
    char boot[40];                     /* the process that wrote it */
};

struct sipedge_journal_config {
    const char *redis_url;
    const char *instance;          /* CC_INSTANCE_ID */
    const char *group;             /* CC_SIPEDGE_TAKEOVER_GROUP: who takes whom over */
    long dead_after_ms;            /* CC_SIPEDGE_INSTANCE_DEAD_S * 1000 */
    long originate_max_age_s;      /* CC_SIPEDGE_ORIGINATE_MAX_AGE_S (a dead one's undialled) */
    sipedge_store *store;          /* borrowed: callbacks */
    const struct sipedge_pub *pub; /* borrowed: ended of lost calls */
    cc_metrics *metrics;           /* borrowed (NULL = none): sipedge_calls_lost_total,
                                    * sipedge_takeovers_total, sipedge_journal_dropped_total,
                                    * sipedge_journal_pending */
};

/* Callbacks taken over from a dead instance, for the SIP thread; takes rows (free()). Called on
 * the journal thread. */
typedef void (*sipedge_journal_restore_fn)(void *ctx, struct sipedge_callback *rows, size_t n);

/* Whether group is a valid CC_SIPEDGE_TAKEOVER_GROUP: 1 to SIPEDGE_ID_MAX of [A-Za-z0-9_-]. */
bool sipedge_journal_group_valid(const char *group);
/* Connects (a Redis that is down is not fatal: the journal keeps its changes and retries).
 * NULL (logged) on a bad group, out of memory or a malformed URL. */
sipedge_journal *sipedge_journal_new(const struct sipedge_journal_config *c);
/* Start-up, before the SIP loop: marks this instance alive and reports the calls a previous
 * process of it left (see above). Returns how many were reported ended, or a negative code
 * (logged; the ticks retry). */
int sipedge_journal_recover_own(sipedge_journal *j);
/* Starts the thread (writes, liveness, takeovers); restore(ctx, ...) gets the callbacks taken
 * over. 0 or a negative code. */
int sipedge_journal_start(sipedge_journal *j, sipedge_journal_restore_fn restore, void *ctx);
/* e is copied (boot is set here). */
void sipedge_journal_put(sipedge_journal *j, const struct sipedge_journal_entry *e);
void sipedge_journal_del(sipedge_journal *j, const char *interaction_id);
/* Stops the thread after writing what is pending; retire: mark this instance retired, so that a
 * live instance takes its waiting callbacks over at once. NULL ok. */
void sipedge_journal_free(sipedge_journal *j, bool retire);

/* Pure helpers (exposed for the unit tests). */
/* The entry's JSON value (malloc'd) or NULL. */
char *sipedge_journal_entry_text(const struct sipedge_journal_entry *e);
/* Parses the value of field id; 0 or -EINVAL. */
int sipedge_journal_entry_parse(const char *id, const char *text,
                                struct sipedge_journal_entry *out);
/* The ended a lost call gets: duration and talk up to seen_ms (never negative). */
void sipedge_journal_lost_times(const struct sipedge_journal_entry *e, int64_t seen_ms,
                                int64_t *duration_ms, int64_t *talk_ms);

#endif
