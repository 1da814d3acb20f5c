/* router_schedule: opening hours and holidays of a queue in its time zone (see the header). */
#include "router_schedule.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCHEDULE_ZONEINFO  "/usr/share/zoneinfo"
#define SCHEDULE_SLOT_S    900 /* offsets are cached per 15-minute UTC slot */
#define SCHEDULE_CACHE_LEN 256

struct schedule_cache_entry {
    char zone[ROUTER_TZ_MAX + 1];
    int64_t slot; /* unix seconds / SCHEDULE_SLOT_S; valid when zone[0] */
    int offset_s;
};

/* The one lock around TZ/tzset (process-wide by nature) and the offset cache it fills. */
static pthread_mutex_t schedule_lock = PTHREAD_MUTEX_INITIALIZER;
static struct schedule_cache_entry schedule_cache[SCHEDULE_CACHE_LEN];

int router_schedule_init(void)
{
    const char *tz = getenv("TZ");

    if (tz)
        return 0;
    return setenv("TZ", ":UTC", 0) == 0 ? 0 : -ENOMEM;
}

/* A zone name as the API stores it: "Area/City", no absolute or parent path, sane bytes. */
static bool schedule_zone_name_ok(const char *tz)
{
    size_t n = strlen(tz);

    if (n == 0 || n > ROUTER_TZ_MAX || tz[0] == '/' || strstr(tz, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = tz[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+'))
            return false;
    }
    return true;
}

static unsigned schedule_hash(const char *zone, int64_t slot)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (const char *p = zone; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ (uint64_t)slot) * 1099511628211ULL;
    return (unsigned)(h % SCHEDULE_CACHE_LEN);
}

/* Computes the UTC offset of zone at secs with TZ swapped under the lock (held by the caller). */
static int schedule_offset_locked(const char *zone, time_t secs, int *offset_s)
{
    char path[sizeof(SCHEDULE_ZONEINFO) + ROUTER_TZ_MAX + 2];
    char want[ROUTER_TZ_MAX + 2];
    const char *old;
    char *saved = NULL;
    struct tm tm;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", SCHEDULE_ZONEINFO, zone);
    if (access(path, R_OK) != 0)
        return -EINVAL;
    old = getenv("TZ");
    if (old) {
        saved = strdup(old);
        if (!saved)
            return -ENOMEM;
    }
    snprintf(want, sizeof(want), ":%s", zone);
    if (setenv("TZ", want, 1) != 0) {
        rc = -ENOMEM;
        goto out_saved;
    }
    tzset();
    if (!localtime_r(&secs, &tm))
        rc = -EINVAL;
    else
        *offset_s = (int)tm.tm_gmtoff;
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
out_saved:
    free(saved);
    return rc;
}

int router_schedule_local(const char *tz, int64_t unix_ms, struct router_local_time *out)
{
    const char *zone = (tz && *tz) ? tz : "UTC";
    int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : -((-unix_ms + 999) / 1000);
    int64_t slot =
        secs >= 0 ? secs / SCHEDULE_SLOT_S : -((-secs + SCHEDULE_SLOT_S - 1) / SCHEDULE_SLOT_S);
    struct schedule_cache_entry *e;
    int offset_s = 0, rc = 0;
    time_t local;
    struct tm tm;

    if (!schedule_zone_name_ok(zone))
        return -EINVAL;
    pthread_mutex_lock(&schedule_lock);
    e = &schedule_cache[schedule_hash(zone, slot)];
    if (e->zone[0] && e->slot == slot && strcmp(e->zone, zone) == 0) {
        offset_s = e->offset_s;
    } else {
        rc = schedule_offset_locked(zone, (time_t)secs, &offset_s);
        if (rc == 0) {
            snprintf(e->zone, sizeof(e->zone), "%s", zone);
            e->slot = slot;
            e->offset_s = offset_s;
        }
    }
    pthread_mutex_unlock(&schedule_lock);
    if (rc < 0)
        return rc;
    local = (time_t)(secs + offset_s);
    if (!gmtime_r(&local, &tm))
        return -EINVAL;
    out->year = tm.tm_year + 1900;
    out->month = tm.tm_mon + 1;
    out->mday = tm.tm_mday;
    out->wday = tm.tm_wday == 0 ? 7 : tm.tm_wday;
    out->minute = tm.tm_hour * 60 + tm.tm_min;
    out->utc_offset_s = offset_s;
    return 0;
}

int router_schedule_is_open(const struct router_queue *q, int64_t unix_ms)
{
    struct router_local_time lt;
    char date[16];
    int rc;

    if (q->nhours == 0 && q->nholidays == 0)
        return 1;
    rc = router_schedule_local(q->timezone, unix_ms, &lt);
    if (rc < 0)
        return rc;
    snprintf(date, sizeof(date), "%04d-%02d-%02d", lt.year, lt.month, lt.mday);
    for (size_t i = 0; i < q->nholidays; i++)
        if (strcmp(q->holidays[i].date, date) == 0)
            return 0;
    if (q->nhours == 0)
        return 1;
    for (size_t i = 0; i < q->nhours; i++) {
        const struct router_hours *h = &q->hours[i];
        if (h->day == lt.wday && lt.minute >= h->open_min && lt.minute < h->close_min)
            return 1;
    }
    return 0;
}

void router_schedule_describe(const struct router_queue *q, char *out, size_t cap)
{
    static const char *const days[] = {"", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    size_t n = 0;

    if (cap == 0)
        return;
    out[0] = '\0';
    if (q->nhours == 0) {
        snprintf(out, cap, "open around the clock except holidays");
        return;
    }
    for (size_t i = 0; i < q->nhours && n < cap; i++) {
        const struct router_hours *h = &q->hours[i];
        int w = snprintf(out + n, cap - n, "%s%s %02d:%02d-%02d:%02d", i ? ", " : "",
                         days[h->day >= 1 && h->day <= 7 ? h->day : 0], h->open_min / 60,
                         h->open_min % 60, h->close_min / 60, h->close_min % 60);
        if (w < 0)
            return;
        n += (size_t)w;
    }
    if (n < cap)
        snprintf(out + n, cap - n, " %s", q->timezone[0] ? q->timezone : "UTC");
}
