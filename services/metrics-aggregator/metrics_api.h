/*
 * metrics_api: the metrics-aggregator's REST face (proto/openapi/metrics-aggregator.yaml) --
 *   GET /v1/metrics/intervals   KPIs by 15m/1h/1d interval and dimension (JSON or CSV)
 *   GET /v1/metrics/fcr         first contact resolution
 *   GET /v1/metrics/outbound    per-campaign attempts/connects/abandon rate, 24 h and 30 days
 *   GET /v1/metrics/live        the live view (waiting, agents by state, today's KPIs)
 *   GET /v1/metrics/stream      the live view as Server-Sent Events
 *   GET /wallboard/...          the wallboard page (public: the data it loads needs a token)
 * Roles: admin, supervisor, analyst, service (agents 403). live and stream also take the token
 * as ?access_token= (EventSource cannot send headers). Every answer is the caller's tenant's.
 *
 * Thread-safety: handlers run on the HTTP pool's threads; the module holds only immutable
 * settings, the pool (thread-safe) and the stream (its own lock).
 */
#ifndef METRICS_API_H
#define METRICS_API_H

#include "cc_bus.h"
#include "cc_http.h"
#include "cc_pg_pool.h"

struct metrics_config;
typedef struct metrics_api metrics_api;

/* Registers every /v1/metrics/... route and /wallboard/ on srv (before cc_http_start) and starts
 * the live-stream/snapshot ticker thread. pool: PostgreSQL pool for the queries (tables in
 * schema "metrics"); producer: for the cc.metrics snapshots (NULL: none). srv, pool, producer
 * and cfg are borrowed and must outlive the api. Reads PostgreSQL's time-zone names once
 * through the pool (a request's tz is checked against them before any query). NULL on failure
 * (logged), also when cfg->timezone is not a zone PostgreSQL knows. */
metrics_api *metrics_api_new(cc_http *srv, cc_pg_pool *pool, cc_producer *producer,
                             const struct metrics_config *cfg);

/* As metrics_api_new, reading the tables from schema (tests use their own schema). */
metrics_api *metrics_api_new_schema(cc_http *srv, cc_pg_pool *pool, cc_producer *producer,
                                    const struct metrics_config *cfg, const char *schema);

/* Stops the ticker and ends the open event streams; call before cc_http_free. NULL is a no-op. */
void metrics_api_free(metrics_api *api);

#endif
