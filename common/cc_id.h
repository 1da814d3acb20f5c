/*
 * cc_id: RFC 9562 UUIDv7 identifiers (time-ordered, 48-bit unix ms + randomness from getrandom()).
 *
 * Ids from one process sort in generation order, even within one millisecond: the 12-bit
 * rand_a field and, when it overflows, the timestamp itself act as a counter. Thread-safe.
 */
#ifndef CC_ID_H
#define CC_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CC_UUID_STRLEN 36 /* without the NUL */

/* Writes a fresh lowercase canonical UUIDv7 ("0190b4c2-....") plus NUL into out. Returns 0, or a
 * negative errno if getrandom() fails (out is then an empty string). Thread-safe. */
int cc_uuid_v7(char out[37]);
/* Writes a deterministic UUID in version 7 layout: the 48-bit timestamp ms, then 74 bits of
 * SHA-256(key). The same (ms, key) always gives the same id -- for events that may be published
 * again after a crash or a retry, which consumers then deduplicate by id. 0, or -EINVAL (NULL
 * key, negative ms; out is then ""). Thread-safe. */
int cc_uuid_v7_derived(int64_t ms, const void *key, size_t keylen, char out[37]);
/* True when s is a canonical 8-4-4-4-12 hex UUID (either case, any version). NULL is false. */
bool cc_uuid_valid(const char *s);

#endif
