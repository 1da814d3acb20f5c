/*
 * metrics_csv: the interval report (metrics_query_intervals) as CSV, for GET
 * /v1/metrics/intervals with format=csv or Accept: text/csv -- RFC 4180: CRLF line ends, a
 * field quoted when it holds a comma, a quote, CR or LF (quotes doubled).
 *
 * Thread-safety: pure; reads the report only.
 */
#ifndef METRICS_CSV_H
#define METRICS_CSV_H

#include <jansson.h>

/*
 * A header line, then one line per element of the report's "rows":
 *   start,end,<the group_by dimensions' columns>,<every counter>,agent_available_ms,
 *   agent_reserved_ms,agent_busy_ms,agent_wrap_up_ms,agent_not_ready_ms,<every KPI>
 * (counters and KPIs in metrics_kpi order; not_ready summed over its reasons; the codes are left
 * out). null is an empty field, reals as the JSON writes them. malloc'd string or NULL (ENOMEM).
 */
char *metrics_csv_intervals(const json_t *report);

#endif
