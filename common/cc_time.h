/*
 * cc_time: clocks in milliseconds/microseconds and RFC 3339 timestamps.
 *
 * Realtime for wall-clock facts (event times), monotonic for durations and timeouts.
 * All functions are thread-safe and allocate nothing.
 */
#ifndef CC_TIME_H
#define CC_TIME_H

#include <stdbool.h>
#include <stdint.h>

#define CC_TIME_ISO8601_LEN 32 /* buffer size for cc_time_format_iso8601 */

/* Wall-clock time as milliseconds since the unix epoch (CLOCK_REALTIME). */
int64_t cc_time_now_ms(void);
/* Monotonic milliseconds since an arbitrary point (CLOCK_MONOTONIC); only differences mean much. */
int64_t cc_time_mono_ms(void);
/* Monotonic microseconds, same clock as cc_time_mono_ms. */
int64_t cc_time_mono_us(void);
/* Formats unix_ms as UTC "2026-11-22T10:00:00.123Z" (always 3 fraction digits) into out.
 * Returns 0, or -EINVAL for a time outside years 0000..9999 (out is then an empty string). */
int cc_time_format_iso8601(int64_t unix_ms, char out[32]);
/* Parses an RFC 3339 date-time ("2026-11-22T10:00:00Z", "...:00.5+01:00", 't'/'z' accepted) into
 * unix milliseconds; fraction digits beyond ms are truncated. Returns 0, or -EINVAL for anything
 * else (missing offset, out-of-range fields, trailing bytes); *unix_ms is untouched on failure. */
int cc_time_parse_iso8601(const char *s, int64_t *unix_ms);

/* Sleeps ms milliseconds (monotonic), resuming after signals. ms <= 0 returns at once. */
void cc_time_sleep_ms(int ms);

/* Exponential backoff for reconnect and retry loops: first_ms, doubling up to max_ms, for at
 * most budget_ms in all (budget_ms < 0: no budget). Plain value: no allocation, one per loop. */
struct cc_backoff {
    int next_ms, max_ms;
    int64_t deadline_ms; /* monotonic; INT64_MAX without a budget */
};
void cc_backoff_init(struct cc_backoff *b, int first_ms, int max_ms, int budget_ms);
/* The delay the next wait would sleep (for log lines), never beyond the budget left. */
int cc_backoff_peek(const struct cc_backoff *b);
/* Sleeps the next delay (cut to the budget left) and doubles it. False, without sleeping, once
 * the budget is spent: the caller gives up. */
bool cc_backoff_wait(struct cc_backoff *b);

#endif
