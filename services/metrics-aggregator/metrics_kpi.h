/*
 * metrics_kpi: the KPIs of proto/openapi/metrics-aggregator.yaml computed from the counters of
 * metrics.rollup and the agent-state time of metrics.agent_state_rollup -- their one
 * implementation, shared by the interval report (metrics_query), the live view (metrics_live)
 * and the CSV (metrics_csv).
 *
 * Counters are int64_t arrays of METRICS_C_COUNT, indexed by enum metrics_counter, in the order
 * of metrics_kpi_counters (the rollup's column names, also the order of the documents and the
 * CSV). Agent-state time is a JSON object {"available":ms,"reserved":ms,"busy":ms,"wrap_up":ms,
 * "not_ready":{"<reason>":ms,...}} ("agent_state_ms" in the documents).
 *
 * Numbers: times are integer milliseconds rounded half up; ratios are 0..1 rounded half up to 4
 * decimals; csat_avg and nps likewise to 4 decimals; a KPI whose denominator is 0 is null.
 * metrics_kpi_dump writes those reals as rounded ("0.8333", not "0.83330000000000004").
 *
 * Thread-safety: pure functions over the caller's arrays and JSON; the tables are constant.
 */
#ifndef METRICS_KPI_H
#define METRICS_KPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The counters of metrics.rollup, in document and CSV order. */
enum metrics_counter {
    METRICS_C_ENTERED,
    METRICS_C_ANSWERED,
    METRICS_C_ANSWERED_SL,
    METRICS_C_ANSWER_WAIT,
    METRICS_C_ABANDONED,
    METRICS_C_ABANDONED_SL,
    METRICS_C_ABANDONED_SHORT,
    METRICS_C_ABANDON_WAIT,
    METRICS_C_MAX_WAIT, /* the one maximum: every other counter sums */
    METRICS_C_HANDLED,
    METRICS_C_TALK,
    METRICS_C_HOLD,
    METRICS_C_WRAPUP_COUNT,
    METRICS_C_WRAPUP_MS,
    METRICS_C_TRANSFERS,
    METRICS_C_CHANNEL_CHANGES,
    METRICS_C_DISPOSITIONS,
    METRICS_C_CONVERSIONS,
    METRICS_C_RESOLVED,
    METRICS_C_FR_COUNT,
    METRICS_C_FR_MS,
    METRICS_C_RES_COUNT,
    METRICS_C_RES_MS,
    METRICS_C_CSAT_COUNT,
    METRICS_C_CSAT_SUM,
    METRICS_C_CSAT_SAT,
    METRICS_C_NPS_COUNT,
    METRICS_C_NPS_PRO,
    METRICS_C_NPS_DET,
    METRICS_C_OB_ATTEMPTS,
    METRICS_C_OB_CONNECTS,
    METRICS_C_OB_ABANDONED,
    METRICS_C_COUNT,
};

#define METRICS_KPI_COUNT    17 /* members of a "kpis" object */
#define METRICS_KPI_NSTAFFED 4  /* states an agent counts as staffed in */

/* Column names of the counters ("entered", ...), indexed by enum metrics_counter. */
extern const char *const metrics_kpi_counters[METRICS_C_COUNT];
/* Member names of a "kpis" object ("service_level", ...), in document and CSV order. */
extern const char *const metrics_kpi_names[METRICS_KPI_COUNT];
/* The staffed states: "available", "reserved", "busy", "wrap_up". */
extern const char *const metrics_kpi_staffed[METRICS_KPI_NSTAFFED];

/* a / b rounded towards minus infinity (b > 0): the base of every rounding here. */
int64_t metrics_kpi_floor_div(int64_t a, int64_t b);
/* num/den in integer ms rounded half up; JSON null when den <= 0. New reference. */
json_t *metrics_kpi_ms(int64_t num, int64_t den);
/* num/den rounded half up to 4 decimals; JSON null when den <= 0. New reference. */
json_t *metrics_kpi_ratio(int64_t num, int64_t den);

/* Adds counters c into into (max for METRICS_C_MAX_WAIT, sum for the rest). */
void metrics_kpi_add(int64_t *into, const int64_t *c);
/* The "kpis" object of counters c; states (may be NULL: occupancy and utilisation are then
 * null) is an agent-state object. New reference, NULL on ENOMEM. */
json_t *metrics_kpi_json(const int64_t *c, const json_t *states);
/* The "counts" object: every counter by name plus "agent_state_ms" (a copy of states, or null).
 * New reference, NULL on ENOMEM. */
json_t *metrics_kpi_counts_json(const int64_t *c, const json_t *states);
/* The live view's "today" object of counters c: answered, abandoned, service_level, asa_ms,
 * aht_ms, abandon_rate, longest_wait_ms; with all also handled, csat and nps (the tenant-wide
 * version). New reference, NULL on ENOMEM. */
json_t *metrics_kpi_today(const int64_t *c, bool all);

/* A new agent-state object: the staffed states at 0 and an empty not_ready. NULL on ENOMEM. */
json_t *metrics_kpi_states_new(void);
/* Adds ms spent in state (reason: its not_ready reason) to st. logged_out is no work time and
 * is left out; an unknown state gets a member of its own. */
void metrics_kpi_states_add(json_t *st, const char *state, const char *reason, int64_t ms);
/* Adds every figure of the agent-state object from into into. */
void metrics_kpi_states_merge(json_t *into, const json_t *from);
/* Adds v to the integer member key of obj (0 when absent). */
void metrics_kpi_add_int(json_t *obj, const char *key, int64_t v);

/* Serialises doc compactly with the 4-decimal numbers as written. malloc'd string or NULL;
 * *len (may be NULL) gets its length. */
char *metrics_kpi_dump(const json_t *doc, size_t *len);

#endif
