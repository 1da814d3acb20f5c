/* router_model: configuration structs <-> JSON, with strict validation (see router_model.h). */
#include "router_model.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_time.h"

static const char *const channel_names[ROUTER_CH_COUNT] = {"voice", "chat", "email", "sms"};
static const char *const strategy_names[ROUTER_STRAT_COUNT] = {
    "ring_all",         "longest_idle",        "round_robin", "linear",
    "least_talk_time",  "fewest_interactions", "random",      "weighted_random",
    "ring_progressive", "best_skill"};
static const char *const no_agent_names[] = {"join", "refuse", "overflow", NULL};
static const char *const closed_names[] = {"reject", "overflow", NULL};

/* ---- names ---------------------------------------------------------------------------------- */

bool router_id_valid(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (const char *p = s; *p; p++, n++) {
        char c = *p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (n == 0 || (c != '_' && c != '-')))
            return false;
    }
    return n >= 1 && n <= ROUTER_ID_MAX;
}

static int name_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; s && i < n && names[i]; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

/* names[i] for i < n (names of an enum), else "invalid". */
static const char *name_of(const char *const *names, unsigned n, unsigned i)
{
    return i < n ? names[i] : "invalid";
}

const char *router_channel_name(enum router_channel c)
{
    return name_of(channel_names, ROUTER_CH_COUNT, c);
}

int router_channel_parse(const char *s, enum router_channel *out)
{
    int i = name_index(channel_names, ROUTER_CH_COUNT, s);

    if (i >= 0)
        *out = (enum router_channel)i;
    return i < 0 ? -EINVAL : 0;
}

const char *router_strategy_name(enum router_strategy s)
{
    return name_of(strategy_names, ROUTER_STRAT_COUNT, s);
}

int router_strategy_parse(const char *s, enum router_strategy *out)
{
    int i = name_index(strategy_names, ROUTER_STRAT_COUNT, s);

    if (i >= 0)
        *out = (enum router_strategy)i;
    return i < 0 ? -EINVAL : 0;
}

const char *router_no_agent_action_name(enum router_no_agent_action a)
{
    return name_of(no_agent_names, ROUTER_NOAGENT_OVERFLOW + 1, a);
}

const char *router_closed_action_name(enum router_closed_action a)
{
    return name_of(closed_names, ROUTER_CLOSED_OVERFLOW + 1, a);
}

/* ---- errors --------------------------------------------------------------------------------- */

void router_errors_add(struct router_errors *errs, const char *field, const char *fmt, ...)
{
    struct router_error *e;
    va_list ap;

    if (errs->n == ROUTER_ERRORS_MAX) {
        errs->dropped++;
        return;
    }
    e = &errs->e[errs->n++];
    snprintf(e->field, sizeof(e->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

json_t *router_errors_json(const struct router_errors *errs)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < errs->n; i++) {
        if (json_array_append_new(arr, json_pack("{s:s, s:s}", "field", errs->e[i].field, "message",
                                                 errs->e[i].message)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* ---- field readers: each reports its own errors with the field's JSON pointer ------------- */

/* "/prefix/key" with key escaped per RFC 6901 (~ -> ~0, / -> ~1), truncated to fit. */
static void pointer(char *out, size_t cap, const char *prefix, const char *key)
{
    size_t n = (size_t)snprintf(out, cap, "%s/", prefix);

    for (const char *k = key; *k && n + 3 < cap; k++) {
        if (*k == '~' || *k == '/') {
            out[n++] = '~';
            out[n++] = *k == '~' ? '0' : '1';
        } else {
            out[n++] = *k;
        }
    }
    out[n < cap ? n : cap - 1] = '\0';
}

static void field_error(struct router_errors *errs, const char *prefix, const char *key,
                        const char *msg)
{
    char field[96];

    pointer(field, sizeof(field), prefix, key);
    router_errors_add(errs, field, "%s", msg);
}

/* Rejects every member of obj not named in allowed (NULL-terminated). */
static void reject_unknown(const json_t *obj, const char *prefix, const char *const *allowed,
                           struct router_errors *errs)
{
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)obj, key, val)
    {
        if (name_index(allowed, SIZE_MAX, key) < 0)
            field_error(errs, prefix, key, "unknown field");
    }
}

/* Absent: *out = def. Present: an integer in min..max. */
static void get_int(const json_t *obj, const char *prefix, const char *key, int min, int max,
                    int def, int *out, struct router_errors *errs)
{
    const json_t *v = json_object_get(obj, key);
    char msg[80];

    *out = def;
    if (!v)
        return;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(msg, sizeof(msg), "must be an integer %d..%d", min, max);
        field_error(errs, prefix, key, msg);
        return;
    }
    *out = (int)json_integer_value(v);
}

static void get_bool(const json_t *obj, const char *prefix, const char *key, bool def, bool *out,
                     struct router_errors *errs)
{
    const json_t *v = json_object_get(obj, key);

    *out = def;
    if (!v)
        return;
    if (!json_is_boolean(v)) {
        field_error(errs, prefix, key, "must be true or false");
        return;
    }
    *out = json_is_true(v);
}

/* Counts UTF-8 code points (Jansson guarantees valid UTF-8); -1 on a control character. */
static long text_length(const char *s)
{
    long n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return -1;
        if ((*p & 0xC0) != 0x80)
            n++;
    }
    return n;
}

/* A human text of 1..ROUTER_NAME_MAX code points without control characters. Absent: def. */
static void get_text(const json_t *obj, const char *prefix, const char *key, const char *def,
                     char *out, size_t cap, struct router_errors *errs)
{
    const json_t *v = json_object_get(obj, key);
    long len;

    snprintf(out, cap, "%s", def ? def : "");
    if (!v) {
        if (!def)
            field_error(errs, prefix, key, "is required");
        return;
    }
    len = json_is_string(v) ? text_length(json_string_value(v)) : -1;
    if (len < 1 || len > ROUTER_NAME_MAX || json_string_length(v) >= cap) {
        field_error(errs, prefix, key,
                    "must be a string of 1..200 characters without control characters");
        return;
    }
    snprintf(out, cap, "%s", json_string_value(v));
}

/* An id. required: absence is an error; nullable: JSON null means "none" (""). */
static void get_id(const json_t *obj, const char *prefix, const char *key, bool required,
                   bool nullable, const char *def, char out[ROUTER_ID_MAX + 1],
                   struct router_errors *errs)
{
    const json_t *v = json_object_get(obj, key);

    snprintf(out, ROUTER_ID_MAX + 1, "%s", def ? def : "");
    if (!v || (nullable && json_is_null(v))) {
        if (!v && required)
            field_error(errs, prefix, key, "is required");
        return;
    }
    if (!router_id_valid(json_string_value(v))) {
        field_error(errs, prefix, key,
                    "must be an id: 1..64 characters of [A-Za-z0-9_-], starting with a letter or "
                    "digit");
        return;
    }
    snprintf(out, ROUTER_ID_MAX + 1, "%s", json_string_value(v));
}

/* One of names (NULL-terminated); absent: def. */
static int get_enum(const json_t *obj, const char *prefix, const char *key,
                    const char *const *names, size_t n, int def, struct router_errors *errs)
{
    const json_t *v = json_object_get(obj, key);
    char msg[160];
    size_t len = 0;
    int i;

    if (!v)
        return def;
    i = name_index(names, n, json_string_value(v));
    if (i >= 0)
        return i;
    len = (size_t)snprintf(msg, sizeof(msg), "must be one of");
    for (size_t k = 0; k < n && names[k] && len < sizeof(msg); k++)
        len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s %s", k ? "," : "", names[k]);
    field_error(errs, prefix, key, msg);
    return def;
}

/* A path id in the body must equal the URL's. */
static void check_path_id(const json_t *doc, const char *key, const char *path_id,
                          struct router_errors *errs)
{
    const json_t *v = json_object_get(doc, key);

    if (v && (!json_is_string(v) || strcmp(json_string_value(v), path_id) != 0))
        field_error(errs, "", key, "must equal the id in the path");
}

/* Read-only fields: version is a precondition (>= 1), the timestamps are ignored. */
static void get_readonly(const json_t *doc, long long *version, struct router_errors *errs)
{
    const json_t *v = json_object_get(doc, "version");

    *version = 0;
    if (v && (!json_is_integer(v) || json_integer_value(v) < 1))
        field_error(errs, "", "version", "must be an integer >= 1 (the version last read)");
    else if (v)
        *version = json_integer_value(v);
    if (json_object_get(doc, "created_at") && !json_is_string(json_object_get(doc, "created_at")))
        field_error(errs, "", "created_at", "is read-only (a timestamp string may be echoed)");
    if (json_object_get(doc, "updated_at") && !json_is_string(json_object_get(doc, "updated_at")))
        field_error(errs, "", "updated_at", "is read-only (a timestamp string may be echoed)");
}

/* An array of at most max objects; NULL when absent (error when not an array). */
static const json_t *get_array(const json_t *obj, const char *key, size_t max,
                               struct router_errors *errs)
{
    const json_t *v = json_object_get(obj, key);
    char msg[64];

    if (!v)
        return NULL;
    if (!json_is_array(v) || json_array_size(v) > max) {
        snprintf(msg, sizeof(msg), "must be an array of at most %zu items", max);
        field_error(errs, "", key, msg);
        return NULL;
    }
    return v;
}

/* An array item that must be an object; its pointer prefix goes into prefix[cap]. */
static const json_t *array_item(const json_t *arr, const char *key, size_t i, char *prefix,
                                size_t cap, struct router_errors *errs)
{
    const json_t *item = json_array_get(arr, i);

    snprintf(prefix, cap, "/%s/%zu", key, i);
    if (!json_is_object(item)) {
        router_errors_add(errs, prefix, "must be an object");
        return NULL;
    }
    return item;
}

/* ---- skills, tiers, hours, holidays --------------------------------------------------------- */

static int cmp_skill(const void *a, const void *b)
{
    return strcmp(((const struct router_skill *)a)->skill, ((const struct router_skill *)b)->skill);
}

/* key: "skills"; level_key: "proficiency" (agents) or "min_proficiency" (queues). */
static int parse_skills(const json_t *doc, const char *level_key, struct router_skill **out,
                        size_t *n, struct router_errors *errs)
{
    const char *const allowed[] = {"skill", level_key, NULL};
    const json_t *arr = get_array(doc, "skills", ROUTER_SKILLS_MAX, errs);
    char prefix[64]; /* "/<key>/<index>" */

    *out = NULL;
    *n = 0;
    if (!arr || json_array_size(arr) == 0)
        return 0;
    *out = calloc(json_array_size(arr), sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *item = array_item(arr, "skills", i, prefix, sizeof(prefix), errs);
        struct router_skill s;
        if (!item)
            continue;
        reject_unknown(item, prefix, allowed, errs);
        get_id(item, prefix, "skill", true, false, NULL, s.skill, errs);
        if (!json_object_get(item, level_key))
            field_error(errs, prefix, level_key, "is required");
        get_int(item, prefix, level_key, 1, 5, 1, &s.level, errs);
        for (size_t k = 0; s.skill[0] && k < *n; k++)
            if (strcmp((*out)[k].skill, s.skill) == 0)
                field_error(errs, prefix, "skill", "is listed twice");
        (*out)[(*n)++] = s;
    }
    qsort(*out, *n, sizeof(**out), cmp_skill);
    return 0;
}

static int cmp_tier(const void *a, const void *b)
{
    return ((const struct router_tier_rule *)a)->level -
           ((const struct router_tier_rule *)b)->level;
}

static int parse_tiers(const json_t *doc, struct router_queue *q, struct router_errors *errs)
{
    static const char *const allowed[] = {"level", "after_s", NULL};
    const json_t *arr = get_array(doc, "tier_rules", ROUTER_TIERS_MAX, errs);
    char prefix[64]; /* "/<key>/<index>" */
    bool bad = false;

    if (!arr || json_array_size(arr) == 0)
        return 0;
    q->tiers = calloc(json_array_size(arr), sizeof(*q->tiers));
    if (!q->tiers)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *item = array_item(arr, "tier_rules", i, prefix, sizeof(prefix), errs);
        struct router_tier_rule t;
        size_t before = errs->n + errs->dropped;
        if (!item) {
            bad = true;
            continue;
        }
        reject_unknown(item, prefix, allowed, errs);
        if (!json_object_get(item, "level") || !json_object_get(item, "after_s"))
            router_errors_add(errs, prefix, "needs 'level' and 'after_s'");
        get_int(item, prefix, "level", 2, ROUTER_LEVEL_MAX, 2, &t.level, errs);
        get_int(item, prefix, "after_s", 0, 86400, 0, &t.after_s, errs);
        bad |= errs->n + errs->dropped != before;
        q->tiers[q->ntiers++] = t;
    }
    qsort(q->tiers, q->ntiers, sizeof(*q->tiers), cmp_tier);
    for (size_t i = 1; !bad && i < q->ntiers; i++) {
        if (q->tiers[i].level == q->tiers[i - 1].level)
            router_errors_add(errs, "/tier_rules", "level %d is listed twice", q->tiers[i].level);
        else if (q->tiers[i].after_s <= q->tiers[i - 1].after_s)
            router_errors_add(errs, "/tier_rules",
                              "after_s must grow with the level (level %d: %d s, level %d: %d s)",
                              q->tiers[i - 1].level, q->tiers[i - 1].after_s, q->tiers[i].level,
                              q->tiers[i].after_s);
    }
    return 0;
}

/* "HH:MM" -> minutes; 24:00 only when allow_24. -1 when malformed. */
static int parse_hhmm(const json_t *v, bool allow_24)
{
    const char *s = json_string_value(v);
    int h, m;

    if (!s || strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
        return -1;
    return h * 60 + m;
}

static int cmp_hours(const void *a, const void *b)
{
    const struct router_hours *x = a, *y = b;

    return x->day != y->day ? x->day - y->day : x->open_min - y->open_min;
}

static int parse_hours(const json_t *doc, struct router_queue *q, struct router_errors *errs)
{
    static const char *const allowed[] = {"day", "open", "close", NULL};
    const json_t *arr = get_array(doc, "opening_hours", ROUTER_HOURS_MAX, errs);
    char prefix[64]; /* "/<key>/<index>" */
    bool bad = false;

    if (!arr || json_array_size(arr) == 0)
        return 0;
    q->hours = calloc(json_array_size(arr), sizeof(*q->hours));
    if (!q->hours)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *item = array_item(arr, "opening_hours", i, prefix, sizeof(prefix), errs);
        struct router_hours h;
        if (!item) {
            bad = true;
            continue;
        }
        reject_unknown(item, prefix, allowed, errs);
        if (!json_object_get(item, "day"))
            field_error(errs, prefix, "day", "is required");
        get_int(item, prefix, "day", 1, 7, 1, &h.day, errs);
        h.open_min = parse_hhmm(json_object_get(item, "open"), false);
        h.close_min = parse_hhmm(json_object_get(item, "close"), true);
        if (h.open_min < 0)
            field_error(errs, prefix, "open", "must be a time \"HH:MM\" from 00:00 to 23:59");
        if (h.close_min < 0)
            field_error(errs, prefix, "close", "must be a time \"HH:MM\" from 00:01 to 24:00");
        else if (h.open_min >= 0 && h.close_min <= h.open_min)
            field_error(errs, prefix, "close",
                        "must be after 'open' (split a night shift at 24:00)");
        bad |= h.open_min < 0 || h.close_min <= h.open_min;
        q->hours[q->nhours++] = h;
    }
    qsort(q->hours, q->nhours, sizeof(*q->hours), cmp_hours);
    for (size_t i = 1; !bad && i < q->nhours; i++) {
        const struct router_hours *a = &q->hours[i - 1], *b = &q->hours[i];
        if (a->day == b->day && b->open_min < a->close_min)
            router_errors_add(errs, "/opening_hours", "intervals of day %d overlap", a->day);
    }
    return 0;
}

static bool date_valid(const char *s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d, dim;

    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    y = atoi(s);
    m = atoi(s + 5);
    d = atoi(s + 8);
    if (y < 1970 || m < 1 || m > 12)
        return false;
    dim = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    return d >= 1 && d <= dim;
}

static int cmp_holiday(const void *a, const void *b)
{
    return strcmp(((const struct router_holiday *)a)->date,
                  ((const struct router_holiday *)b)->date);
}

static int parse_holidays(const json_t *doc, struct router_queue *q, struct router_errors *errs)
{
    static const char *const allowed[] = {"date", "name", NULL};
    const json_t *arr = get_array(doc, "holidays", ROUTER_HOLIDAYS_MAX, errs);
    char prefix[64]; /* "/<key>/<index>" */

    if (!arr || json_array_size(arr) == 0)
        return 0;
    q->holidays = calloc(json_array_size(arr), sizeof(*q->holidays));
    if (!q->holidays)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *item = array_item(arr, "holidays", i, prefix, sizeof(prefix), errs);
        struct router_holiday h = {0};
        const char *date;
        if (!item)
            continue;
        reject_unknown(item, prefix, allowed, errs);
        date = json_string_value(json_object_get(item, "date"));
        if (!date_valid(date))
            field_error(errs, prefix, "date", "must be a calendar date \"YYYY-MM-DD\"");
        else
            snprintf(h.date, sizeof(h.date), "%s", date);
        get_text(item, prefix, "name", "holiday", h.name, sizeof(h.name), errs);
        for (size_t k = 0; h.date[0] && k < q->nholidays; k++)
            if (strcmp(q->holidays[k].date, h.date) == 0)
                field_error(errs, prefix, "date", "is listed twice");
        q->holidays[q->nholidays++] = h;
    }
    qsort(q->holidays, q->nholidays, sizeof(*q->holidays), cmp_holiday);
    return 0;
}

static unsigned parse_channels(const json_t *doc, struct router_errors *errs)
{
    const json_t *arr = json_object_get(doc, "channels");
    unsigned mask = 0;
    char prefix[64]; /* "/<key>/<index>" */

    if (!arr) {
        field_error(errs, "", "channels", "is required");
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) < 1 || json_array_size(arr) > 4) {
        field_error(errs, "", "channels", "must be an array of 1..4 of voice, chat, email, sms");
        return 0;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        enum router_channel c;
        snprintf(prefix, sizeof(prefix), "/channels/%zu", i);
        if (router_channel_parse(json_string_value(json_array_get(arr, i)), &c) < 0)
            router_errors_add(errs, prefix, "must be one of voice, chat, email, sms");
        else if (mask & (1u << c))
            router_errors_add(errs, prefix, "is listed twice");
        else
            mask |= 1u << c;
    }
    return mask;
}

/* ---- resources ------------------------------------------------------------------------------ */

static int parse_result(const struct router_errors *errs)
{
    return errs->n || errs->dropped ? -EINVAL : 0;
}

static bool is_body(const json_t *doc, struct router_errors *errs)
{
    if (json_is_object(doc))
        return true;
    router_errors_add(errs, "", "the body must be a JSON object");
    return false;
}

/* What an agent's and a queue's body start with: an object of allowed members only, the id (the
 * path's, which the body may repeat; else an optional one in the body) and the name. false
 * (reported) when doc is not an object: nothing else is read. */
static bool parse_head(const json_t *doc, const char *const *allowed, const char *path_id,
                       char id[ROUTER_ID_MAX + 1], char *name, size_t name_cap,
                       struct router_errors *errs)
{
    if (!is_body(doc, errs))
        return false;
    reject_unknown(doc, "", allowed, errs);
    if (path_id) {
        check_path_id(doc, "id", path_id, errs);
        snprintf(id, ROUTER_ID_MAX + 1, "%s", path_id);
    } else {
        get_id(doc, "", "id", false, false, NULL, id, errs);
    }
    get_text(doc, "", "name", NULL, name, name_cap, errs);
    return true;
}

int router_agent_parse(const json_t *doc, const char *path_id, struct router_agent *out,
                       struct router_errors *errs)
{
    static const char *const allowed[] = {"id",         "name",   "capacity", "voice_blocks_other",
                                          "enabled",    "skills", "version",  "created_at",
                                          "updated_at", NULL};
    static const char *const cap_allowed[] = {"voice", "chat", "email", "sms", NULL};
    static const int cap_def[ROUTER_CH_COUNT] = {1, 3, 5, 3};
    const json_t *cap;

    memset(out, 0, sizeof(*out));
    if (!parse_head(doc, allowed, path_id, out->id, out->name, sizeof(out->name), errs))
        return -EINVAL;
    cap = json_object_get(doc, "capacity");
    if (cap && !json_is_object(cap))
        field_error(errs, "", "capacity", "must be an object {voice, chat, email, sms}");
    if (json_is_object(cap))
        reject_unknown(cap, "/capacity", cap_allowed, errs);
    for (int c = 0; c < ROUTER_CH_COUNT; c++)
        get_int(json_is_object(cap) ? cap : NULL, "/capacity", channel_names[c], 0,
                c == ROUTER_CH_VOICE ? ROUTER_CAP_VOICE_MAX : ROUTER_CAP_OTHER_MAX, cap_def[c],
                &out->capacity[c], errs);
    get_bool(doc, "", "voice_blocks_other", true, &out->voice_blocks_other, errs);
    get_bool(doc, "", "enabled", true, &out->enabled, errs);
    get_readonly(doc, &out->version, errs);
    if (parse_skills(doc, "proficiency", &out->skills, &out->nskills, errs) < 0)
        return -ENOMEM;
    return parse_result(errs);
}

/* Rules that tie fields together; run once each field is valid on its own. */
static void check_queue(const struct router_queue *q, struct router_errors *errs)
{
    if (q->overflow_queue_id[0] && strcmp(q->overflow_queue_id, q->id) == 0)
        field_error(errs, "", "overflow_queue_id", "must not be the queue itself");
    if (q->no_agent_action == ROUTER_NOAGENT_OVERFLOW && !q->overflow_queue_id[0])
        field_error(errs, "", "no_agent_action",
                    "'overflow' needs an 'overflow_queue_id' to overflow to");
    if (q->closed_action == ROUTER_CLOSED_OVERFLOW && !q->overflow_queue_id[0])
        field_error(errs, "", "closed_action",
                    "'overflow' needs an 'overflow_queue_id' to overflow to");
}

int router_queue_parse(const json_t *doc, const char *path_id, router_tz_known_fn tz_known,
                       void *tz_arg, struct router_queue *out, struct router_errors *errs)
{
    static const char *const allowed[] = {"id",
                                          "name",
                                          "channels",
                                          "strategy",
                                          "priority",
                                          "sl_threshold_s",
                                          "wrapup_s",
                                          "ring_timeout_s",
                                          "max_no_answer",
                                          "max_wait_s",
                                          "overflow_queue_id",
                                          "no_agent_action",
                                          "max_length",
                                          "ring_progressive_interval_s",
                                          "callback_enabled",
                                          "skills",
                                          "tier_rules",
                                          "timezone",
                                          "opening_hours",
                                          "holidays",
                                          "closed_action",
                                          "closed_reason",
                                          "version",
                                          "created_at",
                                          "updated_at",
                                          NULL};
    const json_t *tz;

    memset(out, 0, sizeof(*out));
    if (!parse_head(doc, allowed, path_id, out->id, out->name, sizeof(out->name), errs))
        return -EINVAL;
    out->channels = parse_channels(doc, errs);
    if (!json_object_get(doc, "strategy"))
        field_error(errs, "", "strategy", "is required");
    out->strategy = (enum router_strategy)get_enum(doc, "", "strategy", strategy_names,
                                                   ROUTER_STRAT_COUNT, 0, errs);
    get_int(doc, "", "priority", 0, ROUTER_PRIORITY_MAX, 0, &out->priority, errs);
    get_int(doc, "", "sl_threshold_s", 1, 86400, 20, &out->sl_threshold_s, errs);
    get_int(doc, "", "wrapup_s", 0, 3600, 0, &out->wrapup_s, errs);
    get_int(doc, "", "ring_timeout_s", 1, 600, 20, &out->ring_timeout_s, errs);
    get_int(doc, "", "max_no_answer", 0, 100, 3, &out->max_no_answer, errs);
    get_int(doc, "", "max_wait_s", 0, 30 * 86400, 0, &out->max_wait_s, errs);
    get_int(doc, "", "max_length", 0, 1000000, 0, &out->max_length, errs);
    get_int(doc, "", "ring_progressive_interval_s", 1, 600, 5, &out->ring_progressive_interval_s,
            errs);
    get_bool(doc, "", "callback_enabled", true, &out->callback_enabled, errs);
    get_id(doc, "", "overflow_queue_id", false, true, NULL, out->overflow_queue_id, errs);
    out->no_agent_action = (enum router_no_agent_action)get_enum(
        doc, "", "no_agent_action", no_agent_names, SIZE_MAX, ROUTER_NOAGENT_JOIN, errs);
    out->closed_action = (enum router_closed_action)get_enum(doc, "", "closed_action", closed_names,
                                                             SIZE_MAX, ROUTER_CLOSED_REJECT, errs);
    get_id(doc, "", "closed_reason", false, false, "closed", out->closed_reason, errs);
    tz = json_object_get(doc, "timezone");
    snprintf(out->timezone, sizeof(out->timezone), "UTC");
    if (tz &&
        (!json_is_string(tz) || json_string_length(tz) > ROUTER_TZ_MAX ||
         json_string_length(tz) == 0 || (tz_known && !tz_known(tz_arg, json_string_value(tz)))))
        field_error(errs, "", "timezone",
                    "must be a time zone name known to PostgreSQL "
                    "(pg_timezone_names), e.g. \"Europe/Paris\"");
    else if (tz)
        snprintf(out->timezone, sizeof(out->timezone), "%s", json_string_value(tz));
    get_readonly(doc, &out->version, errs);
    if (parse_skills(doc, "min_proficiency", &out->skills, &out->nskills, errs) < 0 ||
        parse_tiers(doc, out, errs) < 0 || parse_hours(doc, out, errs) < 0 ||
        parse_holidays(doc, out, errs) < 0)
        return -ENOMEM;
    if (parse_result(errs) == 0)
        check_queue(out, errs);
    return parse_result(errs);
}

int router_member_parse(const json_t *doc, const char *queue_id, const char *agent_id,
                        struct router_member *out, struct router_errors *errs)
{
    static const char *const allowed[] = {"queue_id", "agent_id",   "level",      "position",
                                          "penalty",  "created_at", "updated_at", NULL};

    memset(out, 0, sizeof(*out));
    snprintf(out->queue_id, sizeof(out->queue_id), "%s", queue_id);
    snprintf(out->agent_id, sizeof(out->agent_id), "%s", agent_id);
    if (!doc) /* no body: every default */
        doc = json_object();
    else
        json_incref((json_t *)doc);
    if (!is_body(doc, errs))
        goto out_doc;
    reject_unknown(doc, "", allowed, errs);
    check_path_id(doc, "queue_id", queue_id, errs);
    check_path_id(doc, "agent_id", agent_id, errs);
    get_int(doc, "", "level", 1, ROUTER_LEVEL_MAX, 1, &out->level, errs);
    get_int(doc, "", "position", 1, ROUTER_POSITION_MAX, 1, &out->position, errs);
    get_int(doc, "", "penalty", 0, ROUTER_PENALTY_MAX, 0, &out->penalty, errs);
out_doc:
    json_decref((json_t *)doc);
    return parse_result(errs);
}

int router_reason_parse(const json_t *doc, const char *code, struct router_reason *out,
                        struct router_errors *errs)
{
    static const char *const allowed[] = {"code",       "label",      "counts_as_break",
                                          "created_at", "updated_at", NULL};

    memset(out, 0, sizeof(*out));
    snprintf(out->code, sizeof(out->code), "%s", code);
    if (!is_body(doc, errs))
        return -EINVAL;
    reject_unknown(doc, "", allowed, errs);
    check_path_id(doc, "code", code, errs);
    get_text(doc, "", "label", NULL, out->label, sizeof(out->label), errs);
    get_bool(doc, "", "counts_as_break", false, &out->counts_as_break, errs);
    return parse_result(errs);
}

/* ---- rendering ------------------------------------------------------------------------------ */

/* Sets "created_at"/"updated_at"; false on ENOMEM. */
static bool set_times(json_t *doc, int64_t created_ms, int64_t updated_ms)
{
    char c[CC_TIME_ISO8601_LEN], u[CC_TIME_ISO8601_LEN];

    cc_time_format_iso8601(created_ms, c);
    cc_time_format_iso8601(updated_ms, u);
    return json_object_set_new(doc, "created_at", json_string(c)) == 0 &&
           json_object_set_new(doc, "updated_at", json_string(u)) == 0;
}

static json_t *skills_json(const struct router_skill *s, size_t n, const char *level_key)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(
                arr, json_pack("{s:s, s:i}", "skill", s[i].skill, level_key, s[i].level)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Finishes a rendered doc: NULL (and frees it) if any set failed. */
static json_t *finish(json_t *doc, bool ok)
{
    if (!ok) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

json_t *router_agent_to_json(const struct router_agent *a)
{
    json_t *doc = json_pack(
        "{s:s, s:s, s:{s:i, s:i, s:i, s:i}, s:b, s:b, s:o, s:I}", "id", a->id, "name", a->name,
        "capacity", "voice", a->capacity[ROUTER_CH_VOICE], "chat", a->capacity[ROUTER_CH_CHAT],
        "email", a->capacity[ROUTER_CH_EMAIL], "sms", a->capacity[ROUTER_CH_SMS],
        "voice_blocks_other", a->voice_blocks_other, "enabled", a->enabled, "skills",
        skills_json(a->skills, a->nskills, "proficiency"), "version", (json_int_t)a->version);

    return doc ? finish(doc, set_times(doc, a->created_ms, a->updated_ms)) : NULL;
}

static char *hhmm(int minutes, char out[8])
{
    unsigned m = (unsigned)minutes % 1441u;

    snprintf(out, 8, "%02u:%02u", m / 60u, m % 60u);
    return out;
}

static json_t *queue_arrays_json(const struct router_queue *q, json_t *doc)
{
    json_t *tiers = json_array(), *hours = json_array(), *hol = json_array(), *ch = json_array();
    char o[8], c[8];
    bool ok = tiers && hours && hol && ch;

    for (int i = 0; ok && i < ROUTER_CH_COUNT; i++)
        if (q->channels & (1u << i))
            ok = json_array_append_new(ch, json_string(channel_names[i])) == 0;
    for (size_t i = 0; ok && i < q->ntiers; i++)
        ok = json_array_append_new(tiers, json_pack("{s:i, s:i}", "level", q->tiers[i].level,
                                                    "after_s", q->tiers[i].after_s)) == 0;
    for (size_t i = 0; ok && i < q->nhours; i++)
        ok = json_array_append_new(hours, json_pack("{s:i, s:s, s:s}", "day", q->hours[i].day,
                                                    "open", hhmm(q->hours[i].open_min, o), "close",
                                                    hhmm(q->hours[i].close_min, c))) == 0;
    for (size_t i = 0; ok && i < q->nholidays; i++)
        ok = json_array_append_new(hol, json_pack("{s:s, s:s}", "date", q->holidays[i].date, "name",
                                                  q->holidays[i].name)) == 0;
    ok = ok && json_object_set_new(doc, "channels", ch) == 0;
    ok = ok && json_object_set_new(doc, "tier_rules", tiers) == 0;
    ok = ok && json_object_set_new(doc, "opening_hours", hours) == 0;
    ok = ok && json_object_set_new(doc, "holidays", hol) == 0;
    if (!ok) { /* set_new consumed those it was given, even on failure */
        if (!json_object_get(doc, "channels"))
            json_decref(ch);
        if (!json_object_get(doc, "tier_rules"))
            json_decref(tiers);
        if (!json_object_get(doc, "opening_hours"))
            json_decref(hours);
        if (!json_object_get(doc, "holidays"))
            json_decref(hol);
    }
    return finish(doc, ok);
}

json_t *router_queue_to_json(const struct router_queue *q)
{
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:s, s:b, s:s, s:s, s:s, "
        "s:o, s:I}",
        "id", q->id, "name", q->name, "strategy", router_strategy_name(q->strategy), "priority",
        q->priority, "sl_threshold_s", q->sl_threshold_s, "wrapup_s", q->wrapup_s, "ring_timeout_s",
        q->ring_timeout_s, "max_no_answer", q->max_no_answer, "max_wait_s", q->max_wait_s,
        "max_length", q->max_length, "ring_progressive_interval_s", q->ring_progressive_interval_s,
        "overflow_queue_id",
        q->overflow_queue_id[0] ? json_string(q->overflow_queue_id) : json_null(),
        "no_agent_action", router_no_agent_action_name(q->no_agent_action), "callback_enabled",
        q->callback_enabled, "timezone", q->timezone, "closed_action",
        router_closed_action_name(q->closed_action), "closed_reason", q->closed_reason, "skills",
        skills_json(q->skills, q->nskills, "min_proficiency"), "version", (json_int_t)q->version);

    if (!doc)
        return NULL;
    if (!set_times(doc, q->created_ms, q->updated_ms)) {
        json_decref(doc);
        return NULL;
    }
    return queue_arrays_json(q, doc);
}

json_t *router_member_to_json(const struct router_member *m)
{
    json_t *doc =
        json_pack("{s:s, s:s, s:i, s:i, s:i}", "queue_id", m->queue_id, "agent_id", m->agent_id,
                  "level", m->level, "position", m->position, "penalty", m->penalty);

    return doc ? finish(doc, set_times(doc, m->created_ms, m->updated_ms)) : NULL;
}

json_t *router_reason_to_json(const struct router_reason *r)
{
    json_t *doc = json_pack("{s:s, s:s, s:b}", "code", r->code, "label", r->label,
                            "counts_as_break", r->counts_as_break);

    return doc ? finish(doc, set_times(doc, r->created_ms, r->updated_ms)) : NULL;
}

/* ---- lifecycle and merge patch -------------------------------------------------------------- */

void router_agent_clear(struct router_agent *a)
{
    if (!a)
        return;
    free(a->skills);
    memset(a, 0, sizeof(*a));
}

void router_queue_clear(struct router_queue *q)
{
    if (!q)
        return;
    free(q->skills);
    free(q->tiers);
    free(q->hours);
    free(q->holidays);
    memset(q, 0, sizeof(*q));
}

json_t *router_merge_patch(const json_t *target, const json_t *patch)
{
    const char *key;
    json_t *val, *res;

    if (!json_is_object(patch))
        return json_deep_copy(patch);
    res = json_is_object(target) ? json_deep_copy(target) : json_object();
    if (!res)
        return NULL;
    json_object_foreach((json_t *)patch, key, val)
    {
        json_t *merged;
        if (json_is_null(val)) {
            json_object_del(res, key);
            continue;
        }
        merged = router_merge_patch(json_object_get(res, key), val);
        if (!merged || json_object_set_new(res, key, merged) < 0) {
            json_decref(res);
            return NULL;
        }
    }
    return res;
}
