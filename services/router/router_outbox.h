/*
 * router_outbox: the publisher of the transactional outbox -- moves the events the Lua scripts
 * appended to the Redis stream cc:outbox onto Kafka as CloudEvents, and deletes each entry only
 * once Kafka acknowledged it.
 *
 * One publisher at a time: the instance holding the lease cc:outbox:lease (SET NX PX, renewed
 * every lease_ms/3) reads the stream through the consumer group "router" as consumer
 * <instance> (XREADGROUP ... >) and produces every entry at once on a producer of its own,
 * without waiting for earlier ones: up to max_inflight entries are in flight. Each delivery
 * report marks its entry; the delivered prefix (in stream order) is XACK + XDEL'ed as reports
 * arrive, while reading goes on. When a send or a delivery fails, nothing new is produced: once
 * every outstanding report is in, what is delivered is acknowledged and the rest of the window
 * is produced again, in order (delivered entries behind the failure too, as a batch retry
 * would, so Kafka's per-key order never puts an older entry only after a newer one), with
 * backoff, until it is delivered or the lease is lost. One producer with idempotence keeps
 * per-partition order of what is in flight. Losing the lease drops the window unacknowledged
 * (the next leader claims and republishes it, same ids). One reader
 * keeps Kafka's per-key order equal to the order the scripts wrote (two readers of one group
 * would race batches against each other); a standby instance takes over within lease_ms when
 * the leader dies, and first claims (XAUTOCLAIM) every entry still pending in the group --
 * whoever read it -- and publishes those before anything newer.
 *
 * An entry holds every event of one script command (one XADD per command): the fields tenant,
 * time_ms and, for a batched route command, ct / ck (consume time, command), then per event
 * topic, key (also the CloudEvents subject), type and data, in the order they happened; each
 * event is produced on its own, in that order, and the entry is acknowledged once all of them
 * are delivered. Entries written before this layout (one event each, with a subject field)
 * read the same way.
 *
 * Exactly-once as consumers see it: the CloudEvents id is a function of the entry and the
 * event's index in it (UUIDv7 layout: the entry id's milliseconds, the rest from SHA-256 of
 * "<entry id>|tenant|type|subject" for the first event, "<entry id>.<index>|..." for the
 * others), so an entry published twice (crash between delivery and XACK, a leader that lost
 * its lease mid-batch) carries the same ids both times and consumers dedupe on them.
 * The CloudEvents time is the entry's time_ms (the command's now_ms), the source
 * "/router/<instance>".
 *
 * A Redis FLUSHALL drops the group: NOGROUP is answered by creating it again (from id 0) and
 * carrying on. An entry that cannot be made into an event (missing field, data not a JSON
 * object) is logged, counted and deleted: it can never become valid.
 *
 * Thread-safety: _start/_stop from one thread (main); the publisher runs on its own thread
 * with its own Redis connection and producer. router_outbox_event_id is pure and thread-safe.
 */
#ifndef ROUTER_OUTBOX_H
#define ROUTER_OUTBOX_H

#include <jansson.h>
#include <stddef.h>

#include "cc_bus.h"
#include "cc_metrics.h"

#define ROUTER_OUTBOX_GROUP      "router"
#define ROUTER_OUTBOX_LEASE      "cc:outbox:lease"
#define ROUTER_OUTBOX_BATCH      512  /* default entries per batch */
#define ROUTER_OUTBOX_LEASE_MS   5000 /* default lease; takeover within this after a crash */
#define ROUTER_OUTBOX_INFLIGHT   4096 /* default bound of entries produced but not yet acked */
#define ROUTER_OUTBOX_EVENTS_MAX 256  /* events read from one entry (the script writes <= 250) */

typedef struct router_outbox router_outbox;

/* One outbox entry split into its events; every pointer borrows the fields it was parsed from
 * (NULL when the field is absent). */
struct router_outbox_entry {
    const char *tenant, *time_ms;
    const char *ct, *ck; /* consume time (us) and command of a batched command, else NULL */
    size_t nevents;
    struct router_outbox_event {
        const char *topic, *key, *type, *subject, *data; /* subject: key unless given */
    } events[ROUTER_OUTBOX_EVENTS_MAX];
};

struct router_outbox_config {
    const char *redis_url;           /* required */
    const struct cc_bus_config *bus; /* required; copied into the publisher's producer */
    const char *instance;            /* consumer name and CloudEvents source; required */
    int batch;                       /* entries per XREADGROUP; <= 0 = ROUTER_OUTBOX_BATCH */
    int lease_ms;                    /* <= 0 = ROUTER_OUTBOX_LEASE_MS; >= 300 */
    int max_inflight; /* entries read but not yet acked; <= 0 = ROUTER_OUTBOX_INFLIGHT; >= batch */
    cc_metrics *metrics; /* borrowed registry for counters; may be NULL */
};

/* Starts the publisher thread (connects, creates its producer). NULL (logged) on a bad config
 * or when the thread or producer cannot be made. */
router_outbox *router_outbox_start(const struct router_outbox_config *cfg);

/* Stops the publisher: keeps publishing for up to drain_ms while the stream still has entries
 * or entries are in flight (so a clean shutdown leaves nothing behind), flushes the producer, gives
 * the lease up, joins the thread and frees everything. NULL is a no-op. */
void router_outbox_stop(router_outbox *ob, int drain_ms);

/* Writes the deterministic CloudEvents id of event index (0-based) of an outbox entry into
 * out: lowercase canonical UUID, version 7, variant 10, first 48 bits = the ms part of entry_id
 * ("<ms>-<seq>"). Returns 0, or -EINVAL when entry_id is not a stream id. */
int router_outbox_event_id(const char *entry_id, size_t index, const char *tenant, const char *type,
                           const char *subject, char out[37]);

/* Splits an entry's fields (name/value pairs as the stream holds them) into out: entry fields
 * anywhere, each "topic" starts an event, later key / type / subject / data belong to it.
 * Returns the number of events (0 when none), or -E2BIG beyond ROUTER_OUTBOX_EVENTS_MAX (out
 * holds the first ones). Pure. */
int router_outbox_entry_parse(const char *const *fields, size_t nfields,
                              struct router_outbox_entry *out);

/* Builds the CloudEvents envelope of event index of a parsed entry, fully validated (the
 * reference router_outbox_event_text is tested against). Returns a new reference, or NULL with
 * a reason in err (a field missing, data not a JSON object, schema violation). */
json_t *router_outbox_envelope(const char *entry_id, const struct router_outbox_entry *e,
                               size_t index, const char *source, char *err, size_t errlen);

/* The same envelope as compact JSON text, built without parsing the data (the publisher's
 * path: the scripts write data with cjson, so only its shape is checked, "{...}"; the other
 * attributes are checked as router_outbox_envelope checks them). Returns a malloc'd string
 * (caller frees) with *len its length and id the event's id, or NULL with a reason in err. */
char *router_outbox_event_text(const char *entry_id, const struct router_outbox_entry *e,
                               size_t index, const char *source, char id[37], size_t *len,
                               char *err, size_t errlen);

#endif
