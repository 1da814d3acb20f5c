/* cc_time: clocks and RFC 3339 timestamps; see cc_time.h. */
#include "cc_time.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_DAY 86400000LL
/* 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z in unix ms: the range we format. */
#define MIN_UNIX_MS (-62167219200000LL)
#define END_UNIX_MS 253402300800000LL

static int64_t clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t cc_time_now_ms(void)
{
    return clock_ns(CLOCK_REALTIME) / 1000000;
}

int64_t cc_time_mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

int64_t cc_time_mono_us(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int cc_time_format_iso8601(int64_t unix_ms, char out[32])
{
    int y, mo, d;

    out[0] = '\0';
    if (unix_ms < MIN_UNIX_MS || unix_ms >= END_UNIX_MS)
        return -EINVAL;
    int64_t days = unix_ms / MS_PER_DAY;
    int64_t rem = unix_ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    civil_from_days(days, &y, &mo, &d);
    /* a roomy buffer: the compiler cannot see that every field has its width */
    char buf[80];
    int n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d,
                     (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
                     (int)(rem % 1000));
    memcpy(out, buf, (size_t)n + 1);
    return 0;
}

/* Reads exactly n decimal digits at *p, advancing it; false when any is not a digit. */
static bool read_digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* Parses "Z" or "+hh:mm"/"-hh:mm" into seconds east of UTC. */
static bool parse_offset(const char **p, int *offset_s)
{
    int sign, oh, om;

    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        *offset_s = 0;
        return true;
    }
    if (**p != '+' && **p != '-')
        return false;
    sign = **p == '-' ? -1 : 1;
    (*p)++;
    if (!read_digits(p, 2, &oh) || !expect(p, ':') || !read_digits(p, 2, &om))
        return false;
    if (oh > 23 || om > 59)
        return false;
    *offset_s = sign * (oh * 3600 + om * 60);
    return true;
}

int cc_time_parse_iso8601(const char *s, int64_t *unix_ms)
{
    int y, mo, d, h, mi, sec, ms = 0, offset_s;
    const char *p = s;

    if (!s)
        return -EINVAL;
    if (!read_digits(&p, 4, &y) || !expect(&p, '-') || !read_digits(&p, 2, &mo) ||
        !expect(&p, '-') || !read_digits(&p, 2, &d))
        return -EINVAL;
    if (*p != 'T' && *p != 't')
        return -EINVAL;
    p++;
    if (!read_digits(&p, 2, &h) || !expect(&p, ':') || !read_digits(&p, 2, &mi) ||
        !expect(&p, ':') || !read_digits(&p, 2, &sec))
        return -EINVAL;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        }
        if (digits == 0)
            return -EINVAL;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (!parse_offset(&p, &offset_s) || *p != '\0')
        return -EINVAL;
    /* sec 60 is a leap second (RFC 3339 5.6); it folds into the next minute. */
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    *unix_ms = secs * 1000 + ms;
    return 0;
}

void cc_time_sleep_ms(int ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts = (struct timespec){.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void cc_backoff_init(struct cc_backoff *b, int first_ms, int max_ms, int budget_ms)
{
    b->next_ms = first_ms > 0 ? first_ms : 1;
    b->max_ms = max_ms > b->next_ms ? max_ms : b->next_ms;
    b->deadline_ms = budget_ms < 0 ? INT64_MAX : cc_time_mono_ms() + budget_ms;
}

int cc_backoff_peek(const struct cc_backoff *b)
{
    int64_t left = b->deadline_ms == INT64_MAX ? b->next_ms : b->deadline_ms - cc_time_mono_ms();

    if (left <= 0)
        return 0;
    return left < b->next_ms ? (int)left : b->next_ms;
}

bool cc_backoff_wait(struct cc_backoff *b)
{
    int delay = cc_backoff_peek(b);

    if (delay <= 0)
        return false;
    cc_time_sleep_ms(delay);
    b->next_ms = b->next_ms > b->max_ms / 2 ? b->max_ms : b->next_ms * 2;
    return true;
}
