/*
 * router_schedule: is a queue open at a given instant -- weekly opening hours in an IANA time
 * zone plus whole-day holidays (router_model's struct router_queue).
 *
 * Rules: a queue with no opening intervals is open around the clock (except its holidays); a
 * holiday closes the whole local calendar day; otherwise the queue is open when the local
 * (ISO weekday, minute of day) falls in [open_min, close_min) of one of that day's intervals.
 * Overnight hours are two intervals (Fri 22:00-24:00 + Sat 00:00-06:00), as the model stores
 * them. An empty time zone means UTC.
 *
 * Local time: glibc has no localtime() that takes a zone, and the system zoneinfo files
 * (TZif, with a POSIX-TZ footer for the far future) are what every tool here agrees on. So the
 * conversion runs localtime_r() with TZ set to the zone, under one process-wide mutex, and puts
 * TZ back afterwards; the resulting UTC offset is cached per zone and 15-minute UTC slot (every
 * zone's transitions fall on quarter hours), so the mutex and tzset() run only on a cache miss.
 * router_schedule_init() must be called once from main() before any thread starts: it makes
 * sure TZ exists in environ, so that later setenv() only swaps a pointer in place instead of
 * reallocating environ under a concurrent getenv() (glibc never frees replaced strings).
 *
 * Thread-safety: every function but _init may be called from any thread.
 */
#ifndef ROUTER_SCHEDULE_H
#define ROUTER_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router_model.h"

/* A local wall-clock reading in some zone. */
struct router_local_time {
    int year, month, mday; /* calendar date, month 1..12 */
    int wday;              /* ISO 8601: 1 = Monday .. 7 = Sunday */
    int minute;            /* minutes after local midnight, 0..1439 */
    int utc_offset_s;      /* local - UTC, seconds */
};

/* Makes TZ present in the environment (its current value, or ":UTC" when unset) so that the
 * conversions may swap it safely later. Call once from main() before starting threads (tests:
 * before anything else). Returns 0 or -ENOMEM. */
int router_schedule_init(void);

/* Converts unix_ms to the local time of zone tz ("Europe/Berlin"; NULL or "" = UTC). Returns 0,
 * or -EINVAL when tz is not a zone the system knows (no file under /usr/share/zoneinfo) or
 * looks like a path. */
int router_schedule_local(const char *tz, int64_t unix_ms, struct router_local_time *out);

/* Decides whether q (its timezone, hours and holidays only) is open at unix_ms. Returns 1 open,
 * 0 closed, -EINVAL for an unknown time zone (the caller treats the queue as open and logs:
 * the API validates zones, so this means the system lost its zoneinfo). */
int router_schedule_is_open(const struct router_queue *q, int64_t unix_ms);

/* Writes a short human description of q's hours for reasons ("Mon 08:00-20:00, ... Europe/Berlin")
 * into out (always NUL-terminated, truncated to cap). */
void router_schedule_describe(const struct router_queue *q, char *out, size_t cap);

#endif
