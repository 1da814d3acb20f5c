/*
 * itest_sipedge_call: what the sip-edge SIP suites (test_sipedge_calls, _control, _outbound,
 * _transfer) share on their itest_sipedge fixture -- an event wait that asserts, and the call
 * to one agent most of their scenarios start from.
 *
 * Test code only: every function asserts (Criterion).
 */
#ifndef ITEST_SIPEDGE_CALL_H
#define ITEST_SIPEDGE_CALL_H

#include <jansson.h>
#include <stddef.h>

#include "itest_proc.h"
#include "itest_sipedge.h"

/* The first event of type about subject (any subject when NULL; data.field == value when field
 * is given) within ITEST_SIPEDGE_WAIT_MS: borrowed, its index in t->events into *index when
 * index is non-NULL. Asserts that it came, naming what was expected. */
json_t *itest_sipedge_expect(struct itest_sipedge *t, const char *type, const char *subject,
                             const char *field, const char *value, size_t *index);

/* Both services, queue q1 (ring timeout 20 s), agent a1 registered and available with its
 * phone (sipp, into *phone) running phone_scn (phone_extra: more sipp arguments, may be NULL),
 * and a caller (into *caller) running caller_scn (-d pause ms, NULL = 0) to a DID of q1.
 * Returns the call's interaction id (borrowed from t->events). */
const char *itest_sipedge_one_agent_call(struct itest_sipedge *t, const char *phone_scn,
                                         const char *const phone_extra[], const char *caller_scn,
                                         const char *pause, struct itest_proc **phone,
                                         struct itest_proc **caller);

#endif
