/* Unit tests for services/router/router_schedule.c: a table of queues (zone, weekly hours,
 * holidays) and instants, each expected verdict worked out by hand with `TZ=<zone> date -d`
 * (the comments give the local time), across DST transitions, overnight hours and holidays. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "router_schedule.h"

static void schedule_setup(void)
{
    cr_assert_eq(router_schedule_init(), 0, "expected TZ to be prepared");
}

TestSuite(router_schedule, .init = schedule_setup, .timeout = 10);

/* Arrays, not pointers: Criterion runs each parameter in a fresh process. */
struct schedule_case {
    char tz[40];
    struct router_hours hours[4];
    size_t nhours;
    char holiday[11]; /* "" = none */
    long long unix_s;
    int want; /* 1 open, 0 closed */
};

ParameterizedTestParameters(router_schedule, decides_open_or_closed)
{
    static struct schedule_case cases[] = {
        /* Berlin, spring forward 2026-03-29 01:00Z: Sun 00:00-02:30 */
        {"Europe/Berlin", {{7, 0, 150}}, 1, "", 1774745940, 1}, /* 01:59 CET */
        {"Europe/Berlin", {{7, 0, 150}}, 1, "", 1774746000, 0}, /* 03:00 CEST (naive +1: 02:00) */
        /* Berlin, fall back 2026-10-25 01:00Z: Sun 00:00-02:30 */
        {"Europe/Berlin", {{7, 0, 150}}, 1, "", 1792889940, 0}, /* 02:59 CEST */
        {"Europe/Berlin", {{7, 0, 150}}, 1, "", 1792890000, 1}, /* 02:00 CET again */
        /* New York, spring forward 2026-03-08 07:00Z: Sun 02:30-04:00 */
        {"America/New_York", {{7, 150, 240}}, 1, "", 1772953140, 0}, /* 01:59 EST */
        {"America/New_York", {{7, 150, 240}}, 1, "", 1772953200, 1}, /* 03:00 EDT */
        /* Kathmandu (+05:45): Mon 08:00-17:00 */
        {"Asia/Kathmandu", {{1, 480, 1020}}, 1, "", 1780280040, 0}, /* Mon 07:59 */
        {"Asia/Kathmandu", {{1, 480, 1020}}, 1, "", 1780280100, 1}, /* Mon 08:00 */
        /* overnight in UTC: Fri 22:00-24:00 + Sat 00:00-06:00 */
        {"UTC", {{5, 1320, 1440}, {6, 0, 360}}, 2, "", 1795816740, 0}, /* Fri 21:59 */
        {"UTC", {{5, 1320, 1440}, {6, 0, 360}}, 2, "", 1795820400, 1}, /* Fri 23:00 */
        {"UTC", {{5, 1320, 1440}, {6, 0, 360}}, 2, "", 1795845540, 1}, /* Sat 05:59 */
        {"UTC", {{5, 1320, 1440}, {6, 0, 360}}, 2, "", 1795845600, 0}, /* Sat 06:00 */
        /* empty zone = UTC */
        {"", {{5, 1320, 1440}}, 1, "", 1795820400, 1}, /* Fri 23:00 */
        /* holiday 2026-12-25 in Berlin closes the local day, whatever the hours say */
        {"Europe/Berlin", {{4, 0, 1440}, {5, 0, 1440}}, 2, "2026-12-25", 1798151400, 1}, /* Thu 24th
                                                                                            23:30 */
        {"Europe/Berlin", {{4, 0, 1440}, {5, 0, 1440}}, 2, "2026-12-25", 1798155000, 0}, /* Fri 25th
                                                                                            00:30 */
        /* no hours: open around the clock but on holidays */
        {"Europe/Berlin", {{0}}, 0, "", 1798155000, 1},
        {"Europe/Berlin", {{0}}, 0, "2026-12-25", 1798155000, 0},
        /* far future (past the zoneinfo's precomputed transitions): Sun 11:00-13:00 CEST */
        {"Europe/Berlin", {{7, 660, 780}}, 1, "", 2224749600, 1}, /* 2040-07-01 12:00 */
        /* Lord Howe (+11 in January, half-hour DST): Sat 22:30-23:30 */
        {"Australia/Lord_Howe", {{6, 1350, 1410}}, 1, "", 1768046400, 1}, /* Sat 23:00 */
    };
    return cr_make_param_array(struct schedule_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct schedule_case *c, router_schedule, decides_open_or_closed)
{
    struct router_holiday hol = {0};
    struct router_queue q = {0};
    int got;

    snprintf(q.timezone, sizeof(q.timezone), "%s", c->tz);
    q.hours = c->hours;
    q.nhours = c->nhours;
    if (c->holiday[0]) {
        memcpy(hol.date, c->holiday, sizeof(hol.date));
        q.holidays = &hol;
        q.nholidays = 1;
    }
    got = router_schedule_is_open(&q, c->unix_s * 1000);
    cr_assert_eq(got, c->want,
                 "expected %s at %lld in '%s' (%zu interval(s), holiday '%s'), got %d",
                 c->want ? "open" : "closed", c->unix_s, c->tz, c->nhours, c->holiday, got);
}

Test(router_schedule, converts_to_local_time_across_dst)
{
    struct router_local_time lt;

    cr_assert_eq(router_schedule_local("Europe/Berlin", 1774746000LL * 1000, &lt), 0);
    cr_assert(lt.year == 2026 && lt.month == 3 && lt.mday == 29 && lt.wday == 7,
              "expected Sunday 2026-03-29, got %d-%d-%d (%d)", lt.year, lt.month, lt.mday, lt.wday);
    cr_assert_eq(lt.minute, 180, "expected 03:00 local, got minute %d", lt.minute);
    cr_assert_eq(lt.utc_offset_s, 7200, "expected CEST (+7200 s), got %d", lt.utc_offset_s);
    /* the cached slot answers the same */
    cr_assert_eq(router_schedule_local("Europe/Berlin", 1774746000LL * 1000 + 60000, &lt), 0);
    cr_assert_eq(lt.minute, 181, "expected 03:01 from the cache, got minute %d", lt.minute);
}

Test(router_schedule, refuses_unknown_or_path_like_zones)
{
    struct router_local_time lt;
    struct router_queue q = {.nhours = 1, .hours = &(struct router_hours){1, 0, 1440}};

    cr_assert_eq(router_schedule_local("Mars/Olympus_Mons", 0, &lt), -EINVAL,
                 "expected an unknown zone to be refused");
    cr_assert_eq(router_schedule_local("../../etc/passwd", 0, &lt), -EINVAL,
                 "expected a path to be refused");
    cr_assert_eq(router_schedule_local("/etc/localtime", 0, &lt), -EINVAL,
                 "expected an absolute path to be refused");
    snprintf(q.timezone, sizeof(q.timezone), "Nowhere/Land");
    cr_assert_eq(router_schedule_is_open(&q, 0), -EINVAL,
                 "expected is_open to report the unknown zone");
}

Test(router_schedule, leaves_the_process_time_zone_alone)
{
    struct router_local_time lt;
    const char *before = getenv("TZ");
    char saved[64];

    cr_assert_not_null(before, "expected router_schedule_init to set TZ");
    snprintf(saved, sizeof(saved), "%s", before);
    cr_assert_eq(router_schedule_local("Asia/Tokyo", 1780280100LL * 1000, &lt), 0);
    cr_assert_str_eq(getenv("TZ"), saved, "expected TZ restored after a conversion");
}

Test(router_schedule, describes_hours)
{
    struct router_hours h[2] = {{1, 480, 1200}, {6, 0, 1440}};
    struct router_queue q = {.hours = h, .nhours = 2};
    char out[128];

    snprintf(q.timezone, sizeof(q.timezone), "Europe/Berlin");
    router_schedule_describe(&q, out, sizeof(out));
    cr_assert_str_eq(out, "Mon 08:00-20:00, Sat 00:00-24:00 Europe/Berlin");
}
