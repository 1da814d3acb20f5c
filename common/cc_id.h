/*
 * cc_id: RFC 9562 UUIDv7 identifiers (time-ordered, 48-bit unix ms + randomness from getrandom()).
 *
 * Ids from one process sort in generation order, even within one millisecond: the 12-bit
 * rand_a field and, when it overflows, the timestamp itself act as a counter. Thread-safe.
 */
#ifndef CC_ID_H
#define CC_ID_H

#include <stdbool.h>

#define CC_UUID_STRLEN 36 /* without the NUL */

/* Writes a fresh lowercase canonical UUIDv7 ("0190b4c2-....") plus NUL into out. Returns 0, or a
 * negative errno if getrandom() fails (out is then an empty string). Thread-safe. */
int cc_uuid_v7(char out[37]);
/* True when s is a canonical 8-4-4-4-12 hex UUID (either case, any version). NULL is false. */
bool cc_uuid_valid(const char *s);

#endif
