/*
 * cc_time: clocks in milliseconds/microseconds and RFC 3339 timestamps.
 *
 * Realtime for wall-clock facts (event times), monotonic for durations and timeouts.
 * All functions are thread-safe and allocate nothing.
 */
#ifndef CC_TIME_H
#define CC_TIME_H

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

#endif
