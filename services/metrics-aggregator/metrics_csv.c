/* metrics_csv: the interval report as RFC 4180 CSV (see the header). */
#include "metrics_csv.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_buf.h"
#include "metrics_kpi.h"
#include "metrics_query.h"

/* One field, quoted when it holds a comma, a quote, CR or LF (quotes doubled). */
static void mc_field(struct cc_buf *b, bool first, const char *s)
{
    if (!first)
        cc_buf_put(b, ",", 1);
    if (!strpbrk(s, ",\"\r\n")) {
        cc_buf_put(b, s, strlen(s));
        return;
    }
    cc_buf_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"')
            cc_buf_put(b, "\"", 1);
        cc_buf_put(b, s, 1);
    }
    cc_buf_put(b, "\"", 1);
}

/* A JSON scalar as a field (never the first): null is empty; reals as dumped. */
static void mc_json_field(struct cc_buf *b, const json_t *v)
{
    char num[64] = "";

    if (json_is_integer(v))
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(num, sizeof(num), "%.10g", json_real_value(v));
    else if (json_is_string(v)) {
        mc_field(b, false, json_string_value(v));
        return;
    }
    mc_field(b, false, num);
}

static int64_t mc_not_ready_ms(const json_t *st)
{
    const char *r;
    json_t *ms;
    int64_t n = 0;

    json_object_foreach(json_object_get(st, "not_ready"), r, ms)
    {
        n += json_integer_value(ms);
    }
    return n;
}

/* The row/column names of the report's group_by dimensions, in its order (at most 4). */
static size_t mc_dim_columns(const json_t *report, const char *cols[4])
{
    const json_t *g;
    size_t i, n = 0;

    json_array_foreach(json_object_get(report, "group_by"), i, g)
    {
        const char *col = metrics_query_dim_column(metrics_query_dim(json_string_value(g)));
        if (col && n < 4)
            cols[n++] = col;
    }
    return n;
}

static void mc_header(struct cc_buf *b, const char *const *cols, size_t ncols)
{
    mc_field(b, true, "start");
    mc_field(b, false, "end");
    for (size_t i = 0; i < ncols; i++)
        mc_field(b, false, cols[i]);
    for (size_t i = 0; i < METRICS_C_COUNT; i++)
        mc_field(b, false, metrics_kpi_counters[i]);
    for (size_t i = 0; i < METRICS_KPI_NSTAFFED; i++) {
        char name[64];
        snprintf(name, sizeof(name), "agent_%s_ms", metrics_kpi_staffed[i]);
        mc_field(b, false, name);
    }
    mc_field(b, false, "agent_not_ready_ms");
    for (size_t i = 0; i < METRICS_KPI_COUNT; i++)
        mc_field(b, false, metrics_kpi_names[i]);
    cc_buf_put(b, "\r\n", 2);
}

static void mc_row(struct cc_buf *b, const json_t *row, const char *const *cols, size_t ncols)
{
    const json_t *counts = json_object_get(row, "counts"), *kpis = json_object_get(row, "kpis");
    const json_t *st = json_object_get(counts, "agent_state_ms");

    mc_field(b, true, json_string_value(json_object_get(row, "start")));
    mc_json_field(b, json_object_get(row, "end"));
    for (size_t i = 0; i < ncols; i++)
        mc_json_field(b, json_object_get(row, cols[i]));
    for (size_t k = 0; k < METRICS_C_COUNT; k++)
        mc_json_field(b, json_object_get(counts, metrics_kpi_counters[k]));
    for (size_t k = 0; k < METRICS_KPI_NSTAFFED; k++)
        mc_json_field(b, json_is_object(st) ? json_object_get(st, metrics_kpi_staffed[k]) : NULL);
    if (json_is_object(st)) {
        json_t *nr = json_integer(mc_not_ready_ms(st));
        mc_json_field(b, nr);
        json_decref(nr);
    } else {
        mc_json_field(b, NULL);
    }
    for (size_t k = 0; k < METRICS_KPI_COUNT; k++)
        mc_json_field(b, json_object_get(kpis, metrics_kpi_names[k]));
    cc_buf_put(b, "\r\n", 2);
}

char *metrics_csv_intervals(const json_t *report)
{
    struct cc_buf b = {0};
    const char *cols[4];
    size_t ncols = mc_dim_columns(report, cols), i;
    const json_t *row;

    mc_header(&b, cols, ncols);
    json_array_foreach(json_object_get(report, "rows"), i, row)
    {
        mc_row(&b, row, cols, ncols);
    }
    if (b.oom || !b.p) { /* out of memory (the header is always put: p is set otherwise) */
        cc_buf_free(&b);
        return NULL;
    }
    return b.p;
}
