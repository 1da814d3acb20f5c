/*
 * metrics_sql: the SQL plumbing the read-side modules share (metrics_query, metrics_live):
 * running a statement with PostgreSQL's refusal of a value told apart from a failure, reading
 * integer columns, times as statement parameters, and the check of a schema name that is
 * pasted into statement text.
 *
 * Thread-safety: stateless; each caller brings its own cc_pg.
 */
#ifndef METRICS_SQL_H
#define METRICS_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "cc_pg.h"
#include "cc_time.h"

#define METRICS_SQL_MAX        8192 /* longest statement text the read side builds */
#define METRICS_SQL_SCHEMA_MAX 63

/* True when s can be pasted into SQL as a schema name: 1..METRICS_SQL_SCHEMA_MAX of [a-z0-9_],
 * not starting with a digit. */
bool metrics_sql_schema_valid(const char *s);

/* Runs sql with text params; *res (to PQclear) on success. -EINVAL when PostgreSQL refused a
 * value (SQLSTATE class 22: a bad time zone or timestamp), else -EIO. cc_pg logs the failure. */
int metrics_sql_exec(cc_pg *pg, const char *sql, int n, const char *const *params, PGresult **res);

/* The integer in column col of row (0 for NULL). */
int64_t metrics_sql_int(const PGresult *r, int row, int col);

/* unix_ms as an ISO 8601 UTC timestamp parameter ("2026-11-22T10:00:00.000Z"). */
void metrics_sql_utc(int64_t unix_ms, char out[CC_TIME_ISO8601_LEN]);

#endif
