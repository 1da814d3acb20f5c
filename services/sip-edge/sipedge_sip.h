/*
 * sipedge_sip: sip-edge's SIP thread -- the su_root loop, the NUA stack (UDP and TCP on
 * CC_SIPEDGE_SIP_URL, media disabled: SDP passes through), the dispatch of NUA events to the
 * registrar and the calls, and the command queue through which other threads reach them.
 *
 * The command queue is a mutex-protected list plus an eventfd registered in the root: any thread
 * may post (sipedge_sip_post, sipedge_sip_control); the SIP thread wakes up, drains the list and
 * applies each command in order. Everything else here runs on the thread that calls
 * sipedge_sip_run.
 */
#ifndef SIPEDGE_SIP_H
#define SIPEDGE_SIP_H

#include <stddef.h>

#include <jansson.h>

#include "sipedge_bus.h"
#include "sipedge_call.h"
#include "sipedge_config.h"
#include "sipedge_store.h"

typedef struct sipedge_sip sipedge_sip;

struct sipedge_sip_config {
    const struct sipedge_config *cfg; /* borrowed, outlives the stack */
    sipedge_store *store;             /* borrowed */
    const struct sipedge_pub *pub;    /* borrowed */
    const unsigned char *secret;      /* nonce secret (copied) */
    size_t secret_len;
    sipedge_journal *journal; /* borrowed: the calls' entries (NULL = none) */
};

/* Initialises Sofia (su_init), makes the root and binds NUA to cfg->sip_url. NULL (logged) when
 * the address cannot be bound or on ENOMEM. Call from the thread that will run it. */
sipedge_sip *sipedge_sip_new(const struct sipedge_sip_config *c);
/* Queues a decision for the SIP thread (copied). 0, or -ENOMEM. Thread-safe. */
int sipedge_sip_post(sipedge_sip *s, const struct sipedge_decision *d);
/* Runs a call-control request on the SIP thread and waits up to timeout_ms for its outcome:
 * sipedge_calls_control's result and *out (a new reference or NULL); -ETIMEDOUT when the SIP
 * thread did not get to it in time (it may still run it later), -ESHUTDOWN once the loop has
 * stopped, -ENOMEM. Thread-safe; never call it from the SIP thread (it would wait for itself). */
int sipedge_sip_control(sipedge_sip *s, const struct sipedge_ctl *req, int timeout_ms,
                        json_t **out);
/* The dialer consumer's sipedge_originate_fn: records the attempt in PostgreSQL
 * (sipedge.originations) and queues the originate for the SIP thread; a redelivered attempt is
 * acknowledged without dialling. 0, or -EAGAIN when the database is unavailable (the command is
 * redelivered). Thread-safe. */
int sipedge_sip_originate_fn(void *s, const struct sipedge_originate *o);
/* Callbacks rows[0..n) taken over from a dead instance (already moved to this one in
 * sipedge.callbacks) for the SIP thread to restore; takes rows (free()). Shaped as
 * sipedge_journal_config.restore. Thread-safe. */
void sipedge_sip_restore_fn(void *s, struct sipedge_callback *rows, size_t n);
/* Same as sipedge_sip_post, shaped as a sipedge_decision_fn for the bus consumer. */
void sipedge_sip_post_fn(void *s, const struct sipedge_decision *d);
/* Runs the loop until stop_fd (e.g. a signalfd) is readable, then ends every call, shuts NUA
 * down and returns 0 once it has finished (at most about 5 s). */
int sipedge_sip_run(sipedge_sip *s, int stop_fd);
/* Destroys NUA, the root and what is left; su_deinit. NULL ok. Same thread as _new. */
void sipedge_sip_free(sipedge_sip *s);

#endif
