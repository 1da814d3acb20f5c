/* metrics_kpi: counters and agent-state time -> KPIs, rounding, counts JSON (see the header). */
#include "metrics_kpi.h"

#include <string.h>

#define MK_DUMP (JSON_COMPACT | JSON_REAL_PRECISION(10))

const char *const metrics_kpi_counters[METRICS_C_COUNT] = {
    "entered",
    "answered",
    "answered_in_sl",
    "answer_wait_ms_sum",
    "abandoned",
    "abandoned_in_sl",
    "abandoned_short",
    "abandon_wait_ms_sum",
    "max_wait_ms",
    "handled",
    "talk_ms_sum",
    "hold_ms_sum",
    "wrapup_count",
    "wrapup_ms_sum",
    "transfers",
    "channel_changes",
    "dispositions",
    "conversions",
    "resolved_marked",
    "first_response_count",
    "first_response_ms_sum",
    "resolution_count",
    "resolution_ms_sum",
    "csat_count",
    "csat_sum",
    "csat_satisfied",
    "nps_count",
    "nps_promoters",
    "nps_detractors",
    "outbound_attempts",
    "outbound_connects",
    "outbound_abandoned",
};

const char *const metrics_kpi_names[METRICS_KPI_COUNT] = {
    "service_level",   "service_level_2",
    "asa_ms",          "aht_ms",
    "avg_talk_ms",     "avg_hold_ms",
    "avg_wrapup_ms",   "longest_wait_ms",
    "abandon_rate",    "first_response_ms",
    "resolution_ms",   "csat",
    "csat_avg",        "nps",
    "conversion_rate", "occupancy",
    "utilisation",
};

const char *const metrics_kpi_staffed[METRICS_KPI_NSTAFFED] = {"available", "reserved", "busy",
                                                               "wrap_up"};

/* ---- numbers -------------------------------------------------------------------------------- */

int64_t metrics_kpi_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

json_t *metrics_kpi_ms(int64_t num, int64_t den)
{
    if (den <= 0)
        return json_null();
    return json_integer(metrics_kpi_floor_div(2 * num + den, 2 * den));
}

/* num/den * scale rounded half up to 4 decimals, or null when den is 0. */
static json_t *mk_ratio_scaled(int64_t num, int64_t den, int64_t scale)
{
    if (den <= 0)
        return json_null();
    return json_real((double)metrics_kpi_floor_div(2 * num * scale * 10000 + den, 2 * den) /
                     10000.0);
}

json_t *metrics_kpi_ratio(int64_t num, int64_t den)
{
    return mk_ratio_scaled(num, den, 1);
}

char *metrics_kpi_dump(const json_t *doc, size_t *len)
{
    char *s = json_dumps(doc, MK_DUMP);

    if (len)
        *len = s ? strlen(s) : 0;
    return s;
}

/* ---- agent states --------------------------------------------------------------------------- */

json_t *metrics_kpi_states_new(void)
{
    json_t *o = json_object();

    for (size_t i = 0; o && i < METRICS_KPI_NSTAFFED; i++)
        json_object_set_new(o, metrics_kpi_staffed[i], json_integer(0));
    if (o)
        json_object_set_new(o, "not_ready", json_object());
    return o;
}

void metrics_kpi_add_int(json_t *obj, const char *key, int64_t v)
{
    json_t *cur = json_object_get(obj, key);

    json_object_set_new(obj, key, json_integer(json_integer_value(cur) + v));
}

void metrics_kpi_states_add(json_t *st, const char *state, const char *reason, int64_t ms)
{
    if (strcmp(state, "logged_out") == 0)
        return;
    if (strcmp(state, "not_ready") == 0)
        metrics_kpi_add_int(json_object_get(st, "not_ready"), reason, ms);
    else
        metrics_kpi_add_int(st, state, ms);
}

void metrics_kpi_states_merge(json_t *into, const json_t *from)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)from, k, v)
    {
        if (json_is_object(v)) {
            const char *r;
            json_t *ms;
            json_object_foreach(v, r, ms)
            {
                metrics_kpi_add_int(json_object_get(into, k), r, json_integer_value(ms));
            }
        } else {
            metrics_kpi_add_int(into, k, json_integer_value(v));
        }
    }
}

/* busy + wrap_up, every logged-in state (utilisation's denominator), and the staffed states
 * (occupancy's). */
static void mk_states_sums(const json_t *st, int64_t *work, int64_t *logged_in, int64_t *staffed)
{
    const char *k;
    json_t *v;

    *work = *logged_in = 0;
    json_object_foreach((json_t *)st, k, v)
    {
        if (json_is_object(v)) {
            const char *r;
            json_t *ms;
            json_object_foreach(v, r, ms)
            {
                *logged_in += json_integer_value(ms);
            }
        } else {
            *logged_in += json_integer_value(v);
        }
    }
    *work = json_integer_value(json_object_get(st, "busy")) +
            json_integer_value(json_object_get(st, "wrap_up"));
    *staffed = *work + json_integer_value(json_object_get(st, "available")) +
               json_integer_value(json_object_get(st, "reserved"));
}

/* ---- KPIs ----------------------------------------------------------------------------------- */

json_t *metrics_kpi_json(const int64_t *c, const json_t *st)
{
    json_t *k = json_object();
    int64_t work = 0, logged_in = 0, staffed = 0;

    if (!k)
        return NULL;
    if (st)
        mk_states_sums(st, &work, &logged_in, &staffed);
    json_object_set_new(k, "service_level",
                        metrics_kpi_ratio(c[METRICS_C_ANSWERED_SL], c[METRICS_C_ANSWERED]));
    json_object_set_new(k, "service_level_2",
                        metrics_kpi_ratio(c[METRICS_C_ANSWERED_SL] + c[METRICS_C_ABANDONED_SL],
                                          c[METRICS_C_ANSWERED] + c[METRICS_C_ABANDONED]));
    json_object_set_new(k, "asa_ms",
                        metrics_kpi_ms(c[METRICS_C_ANSWER_WAIT], c[METRICS_C_ANSWERED]));
    json_object_set_new(
        k, "aht_ms",
        metrics_kpi_ms(c[METRICS_C_TALK] + c[METRICS_C_HOLD] + c[METRICS_C_WRAPUP_MS],
                       c[METRICS_C_HANDLED]));
    json_object_set_new(k, "avg_talk_ms", metrics_kpi_ms(c[METRICS_C_TALK], c[METRICS_C_HANDLED]));
    json_object_set_new(k, "avg_hold_ms", metrics_kpi_ms(c[METRICS_C_HOLD], c[METRICS_C_HANDLED]));
    json_object_set_new(k, "avg_wrapup_ms",
                        metrics_kpi_ms(c[METRICS_C_WRAPUP_MS], c[METRICS_C_WRAPUP_COUNT]));
    json_object_set_new(k, "longest_wait_ms",
                        c[METRICS_C_ANSWERED] + c[METRICS_C_ABANDONED] > 0
                            ? json_integer(c[METRICS_C_MAX_WAIT])
                            : json_null());
    json_object_set_new(
        k, "abandon_rate",
        metrics_kpi_ratio(c[METRICS_C_ABANDONED], c[METRICS_C_ANSWERED] + c[METRICS_C_ABANDONED]));
    json_object_set_new(k, "first_response_ms",
                        metrics_kpi_ms(c[METRICS_C_FR_MS], c[METRICS_C_FR_COUNT]));
    json_object_set_new(k, "resolution_ms",
                        metrics_kpi_ms(c[METRICS_C_RES_MS], c[METRICS_C_RES_COUNT]));
    json_object_set_new(k, "csat",
                        metrics_kpi_ratio(c[METRICS_C_CSAT_SAT], c[METRICS_C_CSAT_COUNT]));
    json_object_set_new(k, "csat_avg",
                        metrics_kpi_ratio(c[METRICS_C_CSAT_SUM], c[METRICS_C_CSAT_COUNT]));
    json_object_set_new(
        k, "nps",
        mk_ratio_scaled(c[METRICS_C_NPS_PRO] - c[METRICS_C_NPS_DET], c[METRICS_C_NPS_COUNT], 100));
    json_object_set_new(k, "conversion_rate",
                        metrics_kpi_ratio(c[METRICS_C_CONVERSIONS], c[METRICS_C_DISPOSITIONS]));
    json_object_set_new(k, "occupancy", st ? metrics_kpi_ratio(work, staffed) : json_null());
    json_object_set_new(k, "utilisation", st ? metrics_kpi_ratio(work, logged_in) : json_null());
    return k;
}

json_t *metrics_kpi_counts_json(const int64_t *c, const json_t *st)
{
    json_t *o = json_object();

    for (size_t i = 0; o && i < METRICS_C_COUNT; i++)
        json_object_set_new(o, metrics_kpi_counters[i], json_integer(c[i]));
    if (o)
        json_object_set_new(o, "agent_state_ms", st ? json_deep_copy(st) : json_null());
    return o;
}

void metrics_kpi_add(int64_t *into, const int64_t *c)
{
    for (size_t i = 0; i < METRICS_C_COUNT; i++)
        into[i] = i == METRICS_C_MAX_WAIT ? (c[i] > into[i] ? c[i] : into[i]) : into[i] + c[i];
}

json_t *metrics_kpi_today(const int64_t *c, bool all)
{
    json_t *k = metrics_kpi_json(c, NULL), *t;

    if (!k)
        return NULL;
    t = json_pack(
        "{s:I, s:I, s:O, s:O, s:O, s:O, s:O}", "answered", (json_int_t)c[METRICS_C_ANSWERED],
        "abandoned", (json_int_t)c[METRICS_C_ABANDONED], "service_level",
        json_object_get(k, "service_level"), "asa_ms", json_object_get(k, "asa_ms"), "aht_ms",
        json_object_get(k, "aht_ms"), "abandon_rate", json_object_get(k, "abandon_rate"),
        "longest_wait_ms", json_object_get(k, "longest_wait_ms"));
    if (t && all) {
        json_object_set_new(t, "handled", json_integer(c[METRICS_C_HANDLED]));
        json_object_set(t, "csat", json_object_get(k, "csat"));
        json_object_set(t, "nps", json_object_get(k, "nps"));
    }
    json_decref(k);
    return t;
}
