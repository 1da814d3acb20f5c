/* metrics_sql: SQL plumbing of the read side (see the header). */
#include "metrics_sql.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool metrics_sql_schema_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > METRICS_SQL_SCHEMA_MAX || isdigit((unsigned char)s[0]))
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

int metrics_sql_exec(cc_pg *pg, const char *sql, int n, const char *const *params, PGresult **res)
{
    const char *state;

    *res = cc_pg_query(pg, sql, n, params);
    if (*res)
        return 0;
    state = cc_pg_last_sqlstate(pg);
    return strncmp(state, "22", 2) == 0 ? -EINVAL : -EIO;
}

int64_t metrics_sql_int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void metrics_sql_utc(int64_t unix_ms, char out[CC_TIME_ISO8601_LEN])
{
    if (cc_time_format_iso8601(unix_ms, out) < 0)
        snprintf(out, CC_TIME_ISO8601_LEN, "1970-01-01T00:00:00.000Z");
}
