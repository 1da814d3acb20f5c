/* Unit tests for common/cc_time.c: clocks, RFC 3339 formatting and parsing. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "cc_time.h"

TestSuite(cc_time);

/* Inline arrays, not pointers: Criterion hands parameters to a separate worker process. */
struct time_case {
    char text[48];
    int64_t unix_ms;
};

ParameterizedTestParameters(cc_time, parses_valid_rfc3339_timestamps)
{
    static struct time_case cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2026-11-22T10:00:00.123Z", 1795341600123LL},
        {"2026-11-22T10:00:00Z", 1795341600000LL},
        {"2026-11-22t10:00:00.1z", 1795341600100LL},
        {"2026-11-22T10:00:00.123456789Z", 1795341600123LL},
        {"2026-11-22T11:30:00+01:30", 1795341600000LL},
        {"2026-11-22T05:00:00-05:00", 1795341600000LL},
        {"2026-11-22T10:00:00.5+00:00", 1795341600500LL},
        {"2024-02-29T00:00:00Z", 1709164800000LL},
        {"1969-12-31T23:59:59.999Z", -1},
        {"2016-12-31T23:59:60Z", 1483228800000LL},
        {"0000-01-01T00:00:00Z", -62167219200000LL},
    };
    return cr_make_param_array(struct time_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct time_case *c, cc_time, parses_valid_rfc3339_timestamps)
{
    int64_t ms = 42;

    cr_assert_eq(cc_time_parse_iso8601(c->text, &ms), 0, "expected '%s' to parse", c->text);
    cr_assert_eq(ms, c->unix_ms, "'%s': expected %lld ms, got %lld", c->text, (long long)c->unix_ms,
                 (long long)ms);
}

struct bad_case {
    char text[48];
    char why[48];
};

ParameterizedTestParameters(cc_time, rejects_malformed_timestamps)
{
    static struct bad_case cases[] = {
        {"", "empty"},
        {"2026-11-22", "date only"},
        {"2026-11-22T10:00:00", "no offset"},
        {"2026-11-22 10:00:00Z", "space separator"},
        {"2026-11-22T10:00Z", "no seconds"},
        {"2026-13-01T10:00:00Z", "month 13"},
        {"2026-00-01T10:00:00Z", "month 0"},
        {"2026-02-29T10:00:00Z", "29 February of a common year"},
        {"2026-04-31T10:00:00Z", "31 April"},
        {"2026-11-00T10:00:00Z", "day 0"},
        {"2026-11-22T24:00:00Z", "hour 24"},
        {"2026-11-22T10:60:00Z", "minute 60"},
        {"2026-11-22T10:00:61Z", "second 61"},
        {"2026-11-22T10:00:00.Z", "empty fraction"},
        {"2026-11-22T10:00:00+0100", "offset without colon"},
        {"2026-11-22T10:00:00+24:00", "offset hour 24"},
        {"2026-11-22T10:00:00+01:60", "offset minute 60"},
        {"2026-11-22T10:00:00Zjunk", "trailing bytes"},
        {"26-11-22T10:00:00Z", "two-digit year"},
        {"2026-1-22T10:00:00Z", "one-digit month"},
        {"+2026-11-22T10:00:00Z", "signed year"},
    };
    return cr_make_param_array(struct bad_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *c, cc_time, rejects_malformed_timestamps)
{
    int64_t ms = 42;

    cr_assert_eq(cc_time_parse_iso8601(c->text, &ms), -EINVAL, "expected '%s' (%s) rejected",
                 c->text, c->why);
    cr_assert_eq(ms, 42, "expected the output untouched on failure");
}

Test(cc_time, rejects_null)
{
    int64_t ms;

    cr_assert_eq(cc_time_parse_iso8601(NULL, &ms), -EINVAL);
}

ParameterizedTestParameters(cc_time, formats_utc_with_milliseconds)
{
    static struct time_case cases[] = {
        {"1970-01-01T00:00:00.000Z", 0},
        {"2026-11-22T10:00:00.123Z", 1795341600123LL},
        {"1969-12-31T23:59:59.999Z", -1},
        {"2024-02-29T23:59:59.001Z", 1709251199001LL},
        {"9999-12-31T23:59:59.999Z", 253402300799999LL},
        {"0000-01-01T00:00:00.000Z", -62167219200000LL},
    };
    return cr_make_param_array(struct time_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct time_case *c, cc_time, formats_utc_with_milliseconds)
{
    char out[CC_TIME_ISO8601_LEN];

    cr_assert_eq(cc_time_format_iso8601(c->unix_ms, out), 0);
    cr_assert_str_eq(out, c->text, "expected %lld to format as '%s'", (long long)c->unix_ms,
                     c->text);
}

Test(cc_time, refuses_to_format_years_beyond_four_digits)
{
    char out[CC_TIME_ISO8601_LEN] = "x";

    cr_assert_eq(cc_time_format_iso8601(253402300800000LL, out), -EINVAL);
    cr_assert_str_empty(out, "expected an empty string on failure");
    cr_assert_eq(cc_time_format_iso8601(-62167219200001LL, out), -EINVAL);
}

Test(cc_time, format_and_parse_round_trip_over_a_range_of_days)
{
    char out[CC_TIME_ISO8601_LEN];
    int64_t back;

    for (int64_t ms = -5000LL * 86400000; ms < 40000LL * 86400000; ms += 86400000LL * 7 + 3601001) {
        cr_assert_eq(cc_time_format_iso8601(ms, out), 0);
        cr_assert_eq(cc_time_parse_iso8601(out, &back), 0, "expected '%s' to parse", out);
        cr_assert_eq(back, ms, "round trip of %lld gave %lld via '%s'", (long long)ms,
                     (long long)back, out);
    }
}

Test(cc_time, now_matches_the_system_clock)
{
    int64_t ms = cc_time_now_ms();
    time_t t = time(NULL);

    cr_assert(ms / 1000 >= (int64_t)t - 1 && ms / 1000 <= (int64_t)t + 1,
              "expected now_ms (%lld) within a second of time() (%lld)", (long long)ms,
              (long long)t);
}

Test(cc_time, monotonic_clocks_agree_and_never_go_back)
{
    int64_t us0 = cc_time_mono_us(), ms0 = cc_time_mono_ms();
    struct timespec pause = {0, 20 * 1000 * 1000};

    nanosleep(&pause, NULL);
    int64_t us1 = cc_time_mono_us(), ms1 = cc_time_mono_ms();
    cr_assert(us1 - us0 >= 20000, "expected at least 20 ms to pass in us, got %lld",
              (long long)(us1 - us0));
    cr_assert(ms1 - ms0 >= 19 && ms1 - ms0 < 2000, "expected about 20 ms, got %lld",
              (long long)(ms1 - ms0));
    cr_assert(us0 / 1000 - ms0 <= 1, "expected the same clock in both units");
}

Test(cc_time, backoff_doubles_up_to_its_cap, .timeout = 10)
{
    struct cc_backoff b;

    cc_backoff_init(&b, 1, 4, -1);
    cr_assert_eq(cc_backoff_peek(&b), 1, "expected the first delay");
    cr_assert(cc_backoff_wait(&b), "expected a wait without a budget");
    cr_assert_eq(cc_backoff_peek(&b), 2, "expected the delay to double");
    cr_assert(cc_backoff_wait(&b));
    cr_assert_eq(cc_backoff_peek(&b), 4);
    cr_assert(cc_backoff_wait(&b));
    cr_assert_eq(cc_backoff_peek(&b), 4, "expected the delay capped at max_ms");
}

Test(cc_time, backoff_stops_when_its_budget_is_spent, .timeout = 10)
{
    struct cc_backoff b;
    int64_t start = cc_time_mono_ms();
    int waits = 0;

    cc_backoff_init(&b, 10, 1000, 50);
    while (cc_backoff_wait(&b))
        waits++;
    /* 10 + 20 + 20 (cut to what is left of 50) */
    cr_assert_geq(waits, 2, "expected at least two waits, got %d", waits);
    cr_assert_leq(waits, 4, "expected the budget to stop it, got %d waits", waits);
    cr_assert_geq(cc_time_mono_ms() - start, 50, "expected the whole budget slept");
    cr_assert_lt(cc_time_mono_ms() - start, 500, "expected no sleep beyond the budget");
    cr_assert_not(cc_backoff_wait(&b), "expected no more waits once spent");
}
