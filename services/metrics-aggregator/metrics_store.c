/* metrics_store: one transaction per batch, a fixed handful of set-based statements (see
 * metrics_store.h and DESIGN.md). Event kinds appear in the SQL as the numbers of
 * enum metrics_kind (1 created, 2 queued, 3 answered, 4 abandoned, 5 ended, 6 wrap-up,
 * 7 disposition, 8 agent message, 9 transferred, 10 overflowed, 11 survey, 12 logged in,
 * 13 state changed, 14 logged out). */
#include "metrics_store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_buf.h"
#include "cc_log.h"
#include "cc_pg.h"
#include "cc_time.h"

#define STORE_SCHEMA "metrics"

/* The session's staging table: the columns of metrics.pending, emptied at every commit. And the
 * session's planner settings: every statement joins a small stage (about one batch, never
 * analysed) to big indexed tables, which index nested loops do best; a cached plan made while
 * the tables were small must not turn into hash joins over whole tables as they grow. */
static const char *const SQL_SESSION[] = {
    "CREATE TEMP TABLE IF NOT EXISTS stage (LIKE metrics.pending INCLUDING DEFAULTS) ON COMMIT "
    "DELETE ROWS",
    "SET enable_hashjoin = off",
    "SET enable_mergejoin = off",
};

static const char SQL_COPY[] =
    "COPY stage (id, tenant, kind, subj, t, queue_id, agent_id, channel, direction, customer_id, "
    "campaign_id, answered_by, disposition, state, span_state, reason_code, reasons, queue_ids, "
    "wait_ms, talk_ms, hold_ms, duration_ms, wrapup_ms, priority, sl_s, csat, nps, is_conv, "
    "resolved, span_b, span_ms, span_reason) FROM STDIN";

/* Keeps only events never applied before; the rest are duplicates (the count it returns). */
static const char SQL_DEDUPE[] =
    "WITH ins AS (INSERT INTO metrics.events_seen (id, at) SELECT id, metrics.ts(t) FROM stage "
    "ON CONFLICT DO NOTHING RETURNING id) "
    "DELETE FROM stage WHERE id NOT IN (SELECT id FROM ins)";

/* Merges every interaction event into its interaction row, whatever the order of arrival, and
 * parks the countable facts of interactions still without their created event. */
static const char SQL_MERGE[] =
    "WITH m AS (INSERT INTO metrics.interactions AS i (tenant, interaction_id, channel, direction, "
    "queue_id, "
    " campaign_id, customer_id, created_at, answered_at, agent_id, wait_ms, customer_answered_at, "
    " abandoned_at, abandon_wait_ms, ended_at, talk_ms, hold_ms, duration_ms, wrapup_ms, "
    " disposition, disposition_at, is_conversion, resolved, contact_reasons, first_response_at, "
    " cur_queue_id, cur_queue_at, left_at, transfers, csat, nps) "
    /* the input sorted by time: array_agg(..)[1] is the first value, [count] the latest (one
     * sort for all, rather than an ordered aggregate each) */
    "SELECT tenant, subj, "
    " (array_agg(channel) FILTER (WHERE kind = 1))[1], "
    " (array_agg(direction) FILTER (WHERE kind = 1))[1], "
    " (array_agg(queue_id) FILTER (WHERE kind = 1))[1], "
    " (array_agg(campaign_id) FILTER (WHERE kind = 1))[1], "
    " (array_agg(customer_id) FILTER (WHERE kind = 1))[1], "
    " metrics.ts(min(t) FILTER (WHERE kind = 1)), "
    " metrics.ts(min(t) FILTER (WHERE kind = 3 AND answered_by = 'agent')), "
    " (array_agg(agent_id) FILTER (WHERE kind = 3 AND answered_by = 'agent'))[1], "
    " (array_agg(wait_ms) FILTER (WHERE kind = 3 AND answered_by = 'agent'))[1], "
    " metrics.ts(min(t) FILTER (WHERE kind = 3 AND answered_by = 'customer')), "
    " metrics.ts(min(t) FILTER (WHERE kind = 4)), "
    " (array_agg(wait_ms) FILTER (WHERE kind = 4))[1], "
    " metrics.ts(min(t) FILTER (WHERE kind = 5)), "
    " (array_agg(talk_ms) FILTER (WHERE kind = 5))[1], "
    " (array_agg(hold_ms) FILTER (WHERE kind = 5))[1], "
    " (array_agg(duration_ms) FILTER (WHERE kind = 5))[1], "
    " sum(wrapup_ms) FILTER (WHERE kind = 6), "
    " (array_agg(disposition) FILTER (WHERE kind = 7))[count(*) FILTER (WHERE kind = 7)], "
    " metrics.ts(max(t) FILTER (WHERE kind = 7)), "
    " (array_agg(is_conv) FILTER (WHERE kind = 7))[count(*) FILTER (WHERE kind = 7)], "
    " (array_agg(resolved) FILTER (WHERE kind = 7))[count(*) FILTER (WHERE kind = 7)], "
    " CASE WHEN count(*) FILTER (WHERE kind = 7) = 0 THEN '{}'::text[] ELSE (SELECT "
    "  COALESCE(d.reasons, '{}') FROM stage d WHERE d.tenant = st.tenant AND d.subj = "
    "  st.subj AND d.kind = 7 ORDER BY d.t DESC, d.id DESC LIMIT 1) END, "
    " metrics.ts(min(t) FILTER (WHERE kind = 8)), "
    " (array_agg(queue_id) FILTER (WHERE queue_id IS NOT NULL AND (kind IN (2, 10) OR (kind = 3 "
    "  AND answered_by = 'agent'))))[count(*) FILTER (WHERE queue_id IS NOT NULL AND (kind IN (2, "
    "  10) OR (kind = 3 AND answered_by = 'agent')))], "
    " metrics.ts(max(t) FILTER (WHERE queue_id IS NOT NULL AND (kind IN (2, 10) OR (kind = 3 "
    "  AND answered_by = 'agent')))), "
    " metrics.ts(max(t) FILTER (WHERE kind IN (4, 5, 10) OR (kind = 3 AND answered_by = "
    "  'agent'))), "
    " count(*) FILTER (WHERE kind = 9), "
    " (array_agg(csat) FILTER (WHERE kind = 11 AND csat IS NOT NULL))[count(*) FILTER (WHERE "
    "  kind = 11 AND csat IS NOT NULL)], "
    " (array_agg(nps) FILTER (WHERE kind = 11 AND nps IS NOT NULL))[count(*) FILTER (WHERE "
    "  kind = 11 AND nps IS NOT NULL)] "
    "FROM (SELECT * FROM stage WHERE kind BETWEEN 1 AND 11 ORDER BY tenant, subj, t, id) st "
    "GROUP BY tenant, subj "
    "ON CONFLICT (tenant, interaction_id) DO UPDATE SET "
    " channel = COALESCE(i.channel, excluded.channel), "
    " direction = COALESCE(i.direction, excluded.direction), "
    " queue_id = COALESCE(i.queue_id, excluded.queue_id), "
    " campaign_id = COALESCE(i.campaign_id, excluded.campaign_id), "
    " customer_id = COALESCE(i.customer_id, excluded.customer_id), "
    " created_at = COALESCE(i.created_at, excluded.created_at), "
    " agent_id = CASE WHEN excluded.answered_at < i.answered_at OR i.answered_at IS NULL "
    "  THEN COALESCE(excluded.agent_id, i.agent_id) ELSE i.agent_id END, "
    " wait_ms = CASE WHEN excluded.answered_at < i.answered_at OR i.answered_at IS NULL "
    "  THEN COALESCE(excluded.wait_ms, i.wait_ms) ELSE i.wait_ms END, "
    " answered_at = LEAST(i.answered_at, excluded.answered_at), "
    " customer_answered_at = LEAST(i.customer_answered_at, excluded.customer_answered_at), "
    " abandon_wait_ms = CASE WHEN excluded.abandoned_at < i.abandoned_at OR i.abandoned_at IS "
    "  NULL THEN COALESCE(excluded.abandon_wait_ms, i.abandon_wait_ms) ELSE i.abandon_wait_ms "
    "  END, "
    " abandoned_at = LEAST(i.abandoned_at, excluded.abandoned_at), "
    " ended_at = COALESCE(i.ended_at, excluded.ended_at), "
    " talk_ms = COALESCE(i.talk_ms, excluded.talk_ms), "
    " hold_ms = COALESCE(i.hold_ms, excluded.hold_ms), "
    " duration_ms = COALESCE(i.duration_ms, excluded.duration_ms), "
    " wrapup_ms = CASE WHEN excluded.wrapup_ms IS NULL THEN i.wrapup_ms "
    "  ELSE COALESCE(i.wrapup_ms, 0) + excluded.wrapup_ms END, "
    " disposition = CASE WHEN excluded.disposition_at >= i.disposition_at OR i.disposition_at IS "
    "  NULL THEN COALESCE(excluded.disposition, i.disposition) ELSE i.disposition END, "
    " is_conversion = CASE WHEN excluded.disposition_at >= i.disposition_at OR i.disposition_at "
    "  IS NULL THEN COALESCE(excluded.is_conversion, i.is_conversion) ELSE i.is_conversion END, "
    " resolved = CASE WHEN excluded.disposition_at >= i.disposition_at OR i.disposition_at IS "
    "  NULL THEN COALESCE(excluded.resolved, i.resolved) ELSE i.resolved END, "
    " contact_reasons = CASE WHEN excluded.disposition_at >= i.disposition_at OR "
    "  (i.disposition_at IS NULL AND excluded.disposition_at IS NOT NULL) "
    "  THEN excluded.contact_reasons ELSE i.contact_reasons END, "
    " disposition_at = GREATEST(i.disposition_at, excluded.disposition_at), "
    " first_response_at = LEAST(i.first_response_at, excluded.first_response_at), "
    " cur_queue_id = CASE WHEN excluded.cur_queue_at >= i.cur_queue_at OR i.cur_queue_at IS NULL "
    "  THEN COALESCE(excluded.cur_queue_id, i.cur_queue_id) ELSE i.cur_queue_id END, "
    " cur_queue_at = GREATEST(i.cur_queue_at, excluded.cur_queue_at), "
    " left_at = GREATEST(i.left_at, excluded.left_at), "
    " transfers = i.transfers + excluded.transfers, "
    " csat = COALESCE(excluded.csat, i.csat), "
    " nps = COALESCE(excluded.nps, i.nps), "
    " updated_at = now() "
    "RETURNING tenant, interaction_id, created_at IS NULL AS waiting) "
    /* facts of an interaction whose created event has not come wait in metrics.pending */
    "INSERT INTO metrics.pending SELECT s.* FROM (SELECT tenant, interaction_id FROM m WHERE "
    "waiting) w JOIN stage s ON s.tenant = w.tenant AND s.subj = w.interaction_id "
    "WHERE s.kind IN (3, 4, 5, 6, 7, 8, 9, 11)";

/* ... and come back into this batch's stage with their created event. */
static const char SQL_RELEASE[] =
    "WITH rel AS (DELETE FROM metrics.pending p USING (SELECT DISTINCT tenant, subj FROM stage "
    "WHERE kind = 1) c WHERE p.tenant = c.tenant AND p.subj = c.subj RETURNING p.*) "
    "INSERT INTO stage SELECT * FROM rel";

/* A queue's SL threshold: the latest sl_threshold_s of its queued events. */
static const char SQL_QUEUE_SETTINGS[] =
    "INSERT INTO metrics.queue_settings AS q (tenant, queue_id, sl_threshold_s, updated_at) "
    "SELECT DISTINCT ON (tenant, queue_id) tenant, queue_id, sl_s, metrics.ts(t) FROM stage "
    "WHERE kind = 2 AND sl_s IS NOT NULL ORDER BY tenant, queue_id, t DESC, id DESC "
    "ON CONFLICT (tenant, queue_id) DO UPDATE SET sl_threshold_s = excluded.sl_threshold_s, "
    "updated_at = excluded.updated_at WHERE q.updated_at <= excluded.updated_at";

/* The interval rollups: every countable event of an interaction whose created event is known,
 * with its dimensions and flags ($1..$4 short-abandon seconds of voice, chat, sms, email; $5 the
 * default SL seconds), summed per (bucket, queue, agent, channel, campaign). Plus the corrections
 * (fx, sign -1 / +1) of what an earlier batch counted from a fact that this batch changes: a
 * first response replaced by an earlier agent message; an ended counted before its answer came
 * (nothing, or a dialer abandon, becomes handled; nothing becomes a dialer abandon). What was
 * counted that way is kept on the interaction (bk) so that it can be taken back exactly once.
 * Rows: c = this batch's facts (ir: the interaction row where a correction may follow),
 * e = ended facts to recount, u = c + fx, summed into the rollup. */
static const char SQL_ROLLUP[] =
    "WITH c AS MATERIALIZED ("
    " SELECT x.*, COALESCE(q.sl_threshold_s, $5::int)::bigint * 1000 AS sl_ms FROM ("
    "  SELECT s.tenant, s.subj, s.kind, s.t, s.t - s.t % 900000 AS b, s.wait_ms, s.talk_ms, "
    "   s.hold_ms, "
    "   s.duration_ms, s.wrapup_ms, s.is_conv, s.resolved, s.csat, s.nps, s.disposition, "
    "   s.reasons, s.channel AS chg, i.direction, "
    "   CASE WHEN s.kind = 1 THEN s.queue_id "
    "    WHEN s.kind IN (3, 4, 5, 9) THEN COALESCE(s.queue_id, i.cur_queue_id, i.queue_id, '') "
    "    ELSE COALESCE(i.cur_queue_id, i.queue_id, '') END AS q, "
    "   CASE WHEN s.kind = 3 AND s.answered_by = 'agent' THEN s.agent_id "
    "    WHEN s.kind = 5 AND i.answered_at IS NOT NULL THEN COALESCE(s.agent_id, i.agent_id, '') "
    "    WHEN s.kind = 11 THEN COALESCE(s.agent_id, i.agent_id, '') "
    "    WHEN s.kind IN (6, 7, 8, 9) THEN COALESCE(s.agent_id, '') ELSE '' END AS a, "
    "   COALESCE(i.channel, '') AS ch, COALESCE(i.campaign_id, '') AS camp, "
    "   s.kind = 3 AND s.answered_by = 'agent' AS ans, "
    "   s.kind = 3 AND s.answered_by = 'customer' AS conn, "
    "   s.kind = 4 AND s.wait_ms < 1000 * CASE i.channel WHEN 'chat' THEN $2::bigint "
    "    WHEN 'sms' THEN $3::bigint WHEN 'email' THEN $4::bigint ELSE $1::bigint END AS short, "
    "   s.kind = 5 AND i.answered_at IS NOT NULL AS handled, "
    "   s.kind = 5 AND i.direction = 'outbound' AND i.customer_answered_at IS NOT NULL "
    "    AND i.answered_at IS NULL AS out_ab, "
    "   i.channel IN ('chat', 'sms', 'email') AS digital, "
    /* the earliest agent message known, earlier than the one counted so far, the lowest id
     * of the batch's messages at that time (the EXISTS runs for those only) */
    "   s.kind = 8 AND i.channel IN ('chat', 'sms', 'email') "
    "    AND s.t = metrics.ms(i.first_response_at) "
    "    AND (i.fr_at IS NULL OR s.t < metrics.ms(i.fr_at)) AND NOT EXISTS (SELECT 1 FROM "
    "    stage d WHERE d.tenant = s.tenant AND d.subj = s.subj AND d.kind = 8 AND d.t = s.t "
    "    AND d.id < s.id) AS first, "
    "   GREATEST(0, s.t - metrics.ms(i.created_at)) AS fr_ms, "
    "   s.queue_id AS ev_q, s.agent_id AS ev_a, "
    "   CASE WHEN (s.kind = 3 AND i.end_counted IN (0, 2)) OR (s.kind = 8 AND i.fr_at IS NOT "
    "    NULL) THEN i END AS ir "
    "  FROM stage s JOIN metrics.interactions i "
    "   ON i.tenant = s.tenant AND i.interaction_id = s.subj "
    "  WHERE s.kind IN (1, 3, 4, 5, 6, 7, 8, 9, 11) AND i.created_at IS NOT NULL"
    " ) x LEFT JOIN metrics.queue_settings q ON q.tenant = x.tenant AND q.queue_id = x.q "
    " WHERE x.kind NOT IN (3, 8) OR x.ans OR x.conn OR x.first"
    "), e AS ("
    " SELECT DISTINCT ON (tenant, subj) tenant, subj, ch, camp, digital, "
    "  (ir).end_counted AS old_k, (ir).end_queue_id AS old_q, "
    "  CASE WHEN (ir).answered_at IS NOT NULL THEN 1 WHEN (ir).direction = 'outbound' AND "
    "   (ir).customer_answered_at IS NOT NULL THEN 2 ELSE 0 END AS new_k, "
    "  COALESCE((ir).ended_queue_id, (ir).cur_queue_id, (ir).queue_id, '') AS new_q, "
    "  COALESCE((ir).ended_agent_id, (ir).agent_id, '') AS new_a, "
    "  metrics.ms((ir).ended_at) - metrics.ms((ir).ended_at) % 900000 AS eb, "
    "  (ir).talk_ms AS talk_ms, (ir).hold_ms AS hold_ms, (ir).duration_ms AS duration_ms "
    " FROM c WHERE kind = 3 AND (ir).tenant IS NOT NULL ORDER BY tenant, subj"
    "), fx AS ("
    " SELECT tenant, metrics.ms((ir).fr_at) - metrics.ms((ir).fr_at) % 900000 AS b, "
    "  COALESCE((ir).fr_queue_id, '') AS q, COALESCE((ir).fr_agent_id, '') AS a, ch, camp, "
    "  -1 AS sg, false AS handled, false AS out_ab, true AS first, NULL::bigint AS talk_ms, "
    "  NULL::bigint AS hold_ms, NULL::bigint AS duration_ms, "
    "  GREATEST(0, metrics.ms((ir).fr_at) - metrics.ms((ir).created_at)) AS fr_ms, digital "
    " FROM c WHERE first AND (ir).tenant IS NOT NULL "
    " UNION ALL SELECT e.tenant, e.eb, v.q, v.a, e.ch, e.camp, v.sg, v.k = 1, v.k = 2, false, "
    "  e.talk_ms, e.hold_ms, e.duration_ms, NULL, e.digital "
    " FROM e CROSS JOIN LATERAL (VALUES (-1, e.old_k, COALESCE(e.old_q, ''), ''), (1, e.new_k, "
    "  e.new_q, CASE WHEN e.new_k = 1 THEN e.new_a ELSE '' END)) AS v(sg, k, q, a) "
    " WHERE e.new_k <> e.old_k AND v.k <> 0"
    "), u AS ("
    " SELECT tenant, b, q, a, ch, camp, kind, ans, conn, short, handled, out_ab, digital, first, "
    "  1 AS sg, wait_ms, sl_ms, talk_ms, hold_ms, wrapup_ms, chg, is_conv, resolved, fr_ms, "
    "  duration_ms, csat, nps, direction FROM c WHERE kind <> 5 OR handled OR out_ab "
    " UNION ALL SELECT tenant, b, q, a, ch, camp, 0, false, false, false, handled, out_ab, "
    "  digital, first, sg, NULL, NULL, talk_ms, hold_ms, NULL, NULL, NULL, NULL, fr_ms, "
    "  duration_ms, NULL, NULL, NULL FROM fx"
    "), bk AS ("
    " UPDATE metrics.interactions i SET fr_at = COALESCE(z.fr_at, i.fr_at), "
    "  fr_queue_id = CASE WHEN z.fr_at IS NULL THEN i.fr_queue_id ELSE z.fr_q END, "
    "  fr_agent_id = CASE WHEN z.fr_at IS NULL THEN i.fr_agent_id ELSE z.fr_a END, "
    "  end_counted = COALESCE(z.ek, i.end_counted), "
    "  end_queue_id = CASE WHEN z.ek IS NULL THEN i.end_queue_id ELSE z.eq END, "
    "  ended_queue_id = COALESCE(z.evq, i.ended_queue_id), "
    "  ended_agent_id = COALESCE(z.eva, i.ended_agent_id) "
    " FROM (SELECT tenant, subj, metrics.ts(max(fr_t)) AS fr_at, max(fr_q) AS fr_q, "
    "  max(fr_a) AS fr_a, max(ek) AS ek, max(eq) AS eq, max(evq) AS evq, max(eva) AS eva FROM ("
    "  SELECT tenant, subj, t AS fr_t, q AS fr_q, a AS fr_a, NULL::int AS ek, NULL AS eq, "
    "   NULL AS evq, NULL AS eva FROM c WHERE first "
    "  UNION ALL SELECT tenant, subj, NULL, NULL, NULL, CASE WHEN out_ab THEN 2 ELSE 0 END, q, "
    "   ev_q, ev_a FROM c WHERE kind = 5 AND NOT handled "
    "  UNION ALL SELECT tenant, subj, NULL, NULL, NULL, new_k, new_q, NULL, NULL FROM e "
    "   WHERE new_k <> old_k"
    " ) y GROUP BY tenant, subj) z WHERE i.tenant = z.tenant AND i.interaction_id = z.subj"
    "), r AS ("
    " INSERT INTO metrics.rollup AS r (tenant, bucket, queue_id, agent_id, channel, campaign_id, "
    "  entered, answered, answered_in_sl, answer_wait_ms_sum, abandoned, abandoned_in_sl, "
    "  abandoned_short, abandon_wait_ms_sum, max_wait_ms, handled, talk_ms_sum, hold_ms_sum, "
    "  wrapup_count, wrapup_ms_sum, transfers, channel_changes, dispositions, conversions, "
    "  resolved_marked, first_response_count, first_response_ms_sum, resolution_count, "
    "  resolution_ms_sum, csat_count, csat_sum, csat_satisfied, nps_count, nps_promoters, "
    "  nps_detractors, outbound_attempts, outbound_connects, outbound_abandoned) "
    " SELECT tenant, metrics.ts(b), q, a, ch, camp, "
    "  count(*) FILTER (WHERE kind = 1), "
    "  count(*) FILTER (WHERE ans), "
    "  count(*) FILTER (WHERE ans AND wait_ms <= sl_ms), "
    "  COALESCE(sum(wait_ms) FILTER (WHERE ans), 0), "
    "  count(*) FILTER (WHERE kind = 4 AND NOT short), "
    "  count(*) FILTER (WHERE kind = 4 AND NOT short AND wait_ms <= sl_ms), "
    "  count(*) FILTER (WHERE kind = 4 AND short), "
    "  COALESCE(sum(wait_ms) FILTER (WHERE kind = 4 AND NOT short), 0), "
    "  COALESCE(max(wait_ms) FILTER (WHERE ans OR (kind = 4 AND NOT short)), 0), "
    "  COALESCE(sum(sg) FILTER (WHERE handled), 0), "
    "  COALESCE(sum(sg * talk_ms) FILTER (WHERE handled), 0), "
    "  COALESCE(sum(sg * hold_ms) FILTER (WHERE handled), 0), "
    "  count(*) FILTER (WHERE kind = 6), "
    "  COALESCE(sum(wrapup_ms) FILTER (WHERE kind = 6), 0), "
    "  count(*) FILTER (WHERE kind = 9), "
    "  count(*) FILTER (WHERE kind = 9 AND chg IS NOT NULL), "
    "  count(*) FILTER (WHERE kind = 7), "
    "  count(*) FILTER (WHERE kind = 7 AND is_conv), "
    "  count(*) FILTER (WHERE kind = 7 AND resolved), "
    "  COALESCE(sum(sg) FILTER (WHERE first), 0), "
    "  COALESCE(sum(sg * fr_ms) FILTER (WHERE first), 0), "
    "  COALESCE(sum(sg) FILTER (WHERE handled AND digital AND duration_ms IS NOT NULL), 0), "
    "  COALESCE(sum(sg * duration_ms) FILTER (WHERE handled AND digital), 0), "
    "  count(*) FILTER (WHERE kind = 11 AND csat IS NOT NULL), "
    "  COALESCE(sum(csat) FILTER (WHERE kind = 11), 0), "
    "  count(*) FILTER (WHERE kind = 11 AND csat >= 4), "
    "  count(*) FILTER (WHERE kind = 11 AND nps IS NOT NULL), "
    "  count(*) FILTER (WHERE kind = 11 AND nps >= 9), "
    "  count(*) FILTER (WHERE kind = 11 AND nps <= 6), "
    "  count(*) FILTER (WHERE kind = 1 AND direction = 'outbound'), "
    "  count(*) FILTER (WHERE conn), "
    "  COALESCE(sum(sg) FILTER (WHERE out_ab), 0) "
    " FROM u GROUP BY tenant, b, q, a, ch, camp ORDER BY tenant, b, q, a, ch, camp "
    " ON CONFLICT (tenant, bucket, queue_id, agent_id, channel, campaign_id) DO UPDATE SET "
    "  entered = r.entered + excluded.entered, "
    "  answered = r.answered + excluded.answered, "
    "  answered_in_sl = r.answered_in_sl + excluded.answered_in_sl, "
    "  answer_wait_ms_sum = r.answer_wait_ms_sum + excluded.answer_wait_ms_sum, "
    "  abandoned = r.abandoned + excluded.abandoned, "
    "  abandoned_in_sl = r.abandoned_in_sl + excluded.abandoned_in_sl, "
    "  abandoned_short = r.abandoned_short + excluded.abandoned_short, "
    "  abandon_wait_ms_sum = r.abandon_wait_ms_sum + excluded.abandon_wait_ms_sum, "
    "  max_wait_ms = GREATEST(r.max_wait_ms, excluded.max_wait_ms), "
    "  handled = r.handled + excluded.handled, "
    "  talk_ms_sum = r.talk_ms_sum + excluded.talk_ms_sum, "
    "  hold_ms_sum = r.hold_ms_sum + excluded.hold_ms_sum, "
    "  wrapup_count = r.wrapup_count + excluded.wrapup_count, "
    "  wrapup_ms_sum = r.wrapup_ms_sum + excluded.wrapup_ms_sum, "
    "  transfers = r.transfers + excluded.transfers, "
    "  channel_changes = r.channel_changes + excluded.channel_changes, "
    "  dispositions = r.dispositions + excluded.dispositions, "
    "  conversions = r.conversions + excluded.conversions, "
    "  resolved_marked = r.resolved_marked + excluded.resolved_marked, "
    "  first_response_count = r.first_response_count + excluded.first_response_count, "
    "  first_response_ms_sum = r.first_response_ms_sum + excluded.first_response_ms_sum, "
    "  resolution_count = r.resolution_count + excluded.resolution_count, "
    "  resolution_ms_sum = r.resolution_ms_sum + excluded.resolution_ms_sum, "
    "  csat_count = r.csat_count + excluded.csat_count, "
    "  csat_sum = r.csat_sum + excluded.csat_sum, "
    "  csat_satisfied = r.csat_satisfied + excluded.csat_satisfied, "
    "  nps_count = r.nps_count + excluded.nps_count, "
    "  nps_promoters = r.nps_promoters + excluded.nps_promoters, "
    "  nps_detractors = r.nps_detractors + excluded.nps_detractors, "
    "  outbound_attempts = r.outbound_attempts + excluded.outbound_attempts, "
    "  outbound_connects = r.outbound_connects + excluded.outbound_connects, "
    "  outbound_abandoned = r.outbound_abandoned + excluded.outbound_abandoned"
    ") "
    "INSERT INTO metrics.code_rollup AS k (tenant, bucket, queue_id, agent_id, channel, "
    " campaign_id, kind, code, count) "
    "SELECT tenant, metrics.ts(b), q, a, ch, camp, kd, code, count(*) FROM ("
    " SELECT tenant, b, q, a, ch, camp, 'disposition' AS kd, disposition AS code FROM c "
    "  WHERE kind = 7 "
    " UNION ALL SELECT tenant, b, q, a, ch, camp, 'contact_reason', r.code FROM c, "
    "  unnest(c.reasons) AS r(code) WHERE kind = 7"
    ") z GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8 "
    "ON CONFLICT (tenant, bucket, queue_id, agent_id, channel, campaign_id, kind, code) "
    "DO UPDATE SET count = k.count + excluded.count";

/* Agent state time, already split over buckets (span_b/span_ms); the reason of a not_ready span
 * is the one the agent entered it with: the event's own from_reason_code / last_reason_code
 * (exact in any order), else the previous agent event of the batch, else the live row as it was
 * before this batch (exact when the agent's events come in order). */
static const char SQL_AGENT_ROLLUP[] =
    "INSERT INTO metrics.agent_state_rollup AS r (tenant, bucket, agent_id, state, reason_code, "
    " ms) "
    "SELECT x.tenant, metrics.ts(p.b), x.subj, x.span_state, x.rc, sum(p.ms) FROM ("
    " SELECT s.tenant, s.subj, s.span_state, s.span_b, s.span_ms, "
    "  CASE WHEN s.span_state <> 'not_ready' THEN '' WHEN s.span_reason IS NOT NULL THEN "
    "   s.span_reason "
    "   WHEN lag(s.id) OVER w IS NOT NULL THEN CASE WHEN lag(s.state) OVER w = 'not_ready' "
    "    THEN COALESCE(lag(s.reason_code) OVER w, '') ELSE '' END "
    "   WHEN l.state = 'not_ready' THEN l.reason_code ELSE '' END AS rc "
    " FROM stage s LEFT JOIN metrics.live_agents l ON l.tenant = s.tenant AND l.agent_id = s.subj "
    " WHERE s.kind IN (12, 13, 14) "
    " WINDOW w AS (PARTITION BY s.tenant, s.subj ORDER BY s.t, s.id)"
    ") x CROSS JOIN LATERAL unnest(x.span_b, x.span_ms) AS p(b, ms) "
    "WHERE x.span_state IS NOT NULL "
    "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 "
    "ON CONFLICT (tenant, bucket, agent_id, state, reason_code) DO UPDATE SET ms = r.ms + "
    "excluded.ms";

/* Live agents: the latest state event of each agent in the batch wins (an older one never
 * overwrites a newer stored row); queue_ids come from the agent's latest logged_in of the batch,
 * since a state_changed right after a login (the router sends them back to back) carries none. */
static const char SQL_LIVE_AGENTS[] =
    "WITH last AS (SELECT DISTINCT ON (tenant, subj) tenant, subj, state, reason_code, t "
    " FROM stage WHERE kind IN (12, 13, 14) ORDER BY tenant, subj, t DESC, id DESC), "
    "login AS (SELECT DISTINCT ON (tenant, subj) tenant, subj, queue_ids "
    " FROM stage WHERE kind = 12 ORDER BY tenant, subj, t DESC, id DESC) "
    "INSERT INTO metrics.live_agents AS l (tenant, agent_id, state, reason_code, since, "
    " queue_ids, updated_at) "
    "SELECT last.tenant, last.subj, last.state, COALESCE(last.reason_code, ''), "
    " metrics.ts(last.t), COALESCE(login.queue_ids, '{}'), metrics.ts(last.t) "
    "FROM last LEFT JOIN login ON login.tenant = last.tenant AND login.subj = last.subj "
    "ON CONFLICT (tenant, agent_id) DO UPDATE SET state = excluded.state, "
    " reason_code = excluded.reason_code, since = excluded.since, "
    " queue_ids = CASE WHEN cardinality(excluded.queue_ids) > 0 THEN excluded.queue_ids "
    "  ELSE l.queue_ids END, updated_at = excluded.updated_at "
    "WHERE l.updated_at <= excluded.updated_at";

/* Live waiting: leave the list once the interaction left its queue after it was queued ... */
static const char SQL_WAITING_LEAVE[] =
    "DELETE FROM metrics.live_waiting w USING (SELECT DISTINCT tenant, subj FROM stage "
    "WHERE kind IN (3, 4, 5, 10)) s, metrics.interactions i "
    "WHERE w.tenant = s.tenant AND w.interaction_id = s.subj AND i.tenant = s.tenant "
    "AND i.interaction_id = s.subj AND w.since <= i.left_at";

/* ... and join it when queued later than it last left (requeues keep the first time). */
static const char SQL_WAITING_JOIN[] =
    "INSERT INTO metrics.live_waiting AS w (tenant, interaction_id, queue_id, channel, priority, "
    " since) "
    "SELECT DISTINCT ON (s.tenant, s.subj) s.tenant, s.subj, s.queue_id, COALESCE(i.channel, ''), "
    " s.priority, metrics.ts(s.t) "
    "FROM stage s JOIN metrics.interactions i ON i.tenant = s.tenant AND i.interaction_id = s.subj "
    "WHERE s.kind = 2 AND (i.left_at IS NULL OR metrics.ts(s.t) > i.left_at) "
    "ORDER BY s.tenant, s.subj, s.t DESC "
    "ON CONFLICT (tenant, interaction_id) DO UPDATE SET queue_id = excluded.queue_id, "
    " channel = excluded.channel, priority = excluded.priority, "
    " since = LEAST(w.since, excluded.since)";

/* A waiting interaction whose created event came late gets its channel. */
static const char SQL_WAITING_CHANNEL[] =
    "UPDATE metrics.live_waiting w SET channel = s.channel FROM stage s "
    "WHERE s.kind = 1 AND w.tenant = s.tenant AND w.interaction_id = s.subj AND w.channel = '' "
    "AND s.channel IS NOT NULL";

#define K_INTERACTION 0x0ffe /* kinds 1..11 */
#define K_CONTRIB     0x0bfa /* 1, 3..9, 11: counted in the rollups */
#define K_AGENT       0x7000 /* 12..14 */

struct store_step {
    const char *name; /* for the timing log */
    const char *sql;
    unsigned kinds; /* bit k: the step has work when the batch holds kind k */
    bool params;    /* takes the thresholds */
    bool counted;   /* its row count is the number of duplicates */
};

/* Statements in order; a step whose kinds the batch does not hold is skipped (it would find
 * nothing to do, at the price of a plan and a scan). */
static const struct store_step store_steps[] = {
    {"metrics_dedupe", SQL_DEDUPE, ~0u, false, true},
    {"metrics_merge", SQL_MERGE, K_INTERACTION, false, false},
    {"metrics_release", SQL_RELEASE, 1u << 1, false, false},
    {"metrics_queue_settings", SQL_QUEUE_SETTINGS, 1u << 2, false, false},
    {"metrics_rollup", SQL_ROLLUP, K_CONTRIB, true, false},
    {"metrics_agent_rollup", SQL_AGENT_ROLLUP, K_AGENT, false, false},
    {"metrics_live_agents", SQL_LIVE_AGENTS, K_AGENT, false, false},
    {"metrics_waiting_leave", SQL_WAITING_LEAVE, (1u << 3) | (1u << 4) | (1u << 5) | (1u << 10),
     false, false},
    {"metrics_waiting_join", SQL_WAITING_JOIN, 1u << 2, false, false},
    {"metrics_waiting_channel", SQL_WAITING_CHANNEL, 1u << 1, false, false},
};
#define STORE_NSTEPS (sizeof(store_steps) / sizeof(store_steps[0]))

/* The id set of one batch (open addressing), to skip an event repeated inside the batch. The ids
 * are copied into keys (NUL-terminated, one after the other), so that a staged fact can be
 * released at once; a slot holds 1 + the offset of its id in keys, 0 when empty. */
struct idset {
    size_t *slot;
    size_t mask, count, cap; /* cap: slots allocated (mask + 1 in use) */
    struct cc_buf keys;
};

struct metrics_store {
    cc_pg *pg;
    PGconn *staged_conn; /* the connection on which the stage table is known to exist */
    bool timing;
    char params[5][24];  /* short abandon voice, chat, sms, email; default SL (seconds) */
    struct cc_buf buf;   /* the COPY data of the batch being staged */
    struct idset ids;    /* the ids staged in it */
    size_t staged, dups; /* facts staged, repeats skipped */
    unsigned kinds;      /* bit k: a fact of kind k is staged */
    int64_t batch_t0;    /* when the batch began (timing log) */
    int64_t *span_b, *span_ms;
    size_t span_cap;
};

/* ---- lifecycle ---------------------------------------------------------------------------- */

metrics_store *metrics_store_new(const char *dsn, const struct metrics_config *cfg)
{
    metrics_store *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    st->pg = cc_pg_new(dsn);
    if (!st->pg) {
        free(st);
        return NULL;
    }
    for (int i = 0; i < METRICS_CH_COUNT; i++)
        snprintf(st->params[i], sizeof(st->params[i]), "%ld", cfg->short_abandon_s[i]);
    snprintf(st->params[4], sizeof(st->params[4]), "%ld", cfg->sl_default_s);
    st->timing = cfg->store_timing;
    return st;
}

void metrics_store_free(metrics_store *st)
{
    if (!st)
        return;
    cc_pg_free(st->pg);
    cc_buf_free(&st->buf);
    free(st->ids.slot);
    cc_buf_free(&st->ids.keys);
    free(st->span_b);
    free(st->span_ms);
    free(st);
}

int metrics_store_migrate(metrics_store *st, const char *dir)
{
    int applied = 0;
    int rc = cc_pg_migrate(st->pg, STORE_SCHEMA, dir, &applied);

    if (rc < 0)
        CC_ERROR("cannot migrate schema '%s' from '%s': %s", STORE_SCHEMA, dir, strerror(-rc));
    else
        CC_INFO("metrics schema migrated: %d migration(s) applied from '%s'", applied, dir);
    return rc;
}

/* ---- COPY text format --------------------------------------------------------------------- */

static void buf_sep(struct cc_buf *b, bool first)
{
    if (!first)
        cc_buf_put(b, "\t", 1);
}

/* A text field, escaped for COPY (backslash, tab, newline, carriage return); NULL -> \N. */
static void put_str(struct cc_buf *b, const char *s, bool first)
{
    const char *run = s;

    buf_sep(b, first);
    if (!s) {
        cc_buf_put(b, "\\N", 2);
        return;
    }
    for (;;) {
        size_t plain = strcspn(run, "\\\t\n\r"); /* ids and codes: the whole string */

        cc_buf_put(b, run, plain);
        run += plain;
        if (!*run)
            return;
        cc_buf_put(b,
                   *run == '\\'   ? "\\\\"
                   : *run == '\t' ? "\\t"
                   : *run == '\n' ? "\\n"
                                  : "\\r",
                   2);
        run++;
    }
}

/* Writes v in decimal at out (room for 20 characters); returns the length. snprintf costs more
 * than the rest of a row. */
static size_t fmt_int(char *out, int64_t v)
{
    char tmp[20];
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

static void put_int(struct cc_buf *b, int64_t v, bool first)
{
    char num[24];

    buf_sep(b, first);
    if (v == METRICS_ABSENT) {
        cc_buf_put(b, "\\N", 2);
        return;
    }
    cc_buf_put(b, num, fmt_int(num, v));
}

static void put_bool(struct cc_buf *b, int v)
{
    buf_sep(b, false);
    cc_buf_put(b, v == METRICS_ABSENT ? "\\N" : v ? "t" : "f", v == METRICS_ABSENT ? 2 : 1);
}

/* A text[] of ids (validated by the parser: no quote or backslash), every element quoted so
 * that an id spelled "NULL" stays a string. NULL array -> \N. */
static void put_ids(struct cc_buf *b, const json_t *arr)
{
    const json_t *item;
    size_t i;

    buf_sep(b, false);
    if (!arr) {
        cc_buf_put(b, "\\N", 2);
        return;
    }
    cc_buf_put(b, "{", 1);
    json_array_foreach(arr, i, item)
    {
        const char *s = json_string_value(item);

        if (i)
            cc_buf_put(b, ",", 1);
        cc_buf_put(b, "\"", 1);
        cc_buf_put(b, s, strlen(s));
        cc_buf_put(b, "\"", 1);
    }
    cc_buf_put(b, "}", 1);
}

static void put_int_array(struct cc_buf *b, const int64_t *v, size_t n)
{
    char num[24];

    buf_sep(b, false);
    cc_buf_put(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        num[0] = ',';
        cc_buf_put(b, num + !i, fmt_int(num + 1, v[i]) + !!i);
    }
    cc_buf_put(b, "}", 1);
}

/* The agent span of f split over buckets into st->span_b/ms; returns the piece count, or -1. */
static long split_span(metrics_store *st, const struct metrics_fact *f)
{
    size_t n;

    if (!f->span_state || f->span_ms == METRICS_ABSENT)
        return 0;
    n = metrics_split_15m(f->t_ms - f->span_ms, f->t_ms, NULL, NULL, 0);
    if (n > st->span_cap) {
        int64_t *b = realloc(st->span_b, n * sizeof(*b));
        int64_t *m = b ? realloc(st->span_ms, n * sizeof(*m)) : NULL;

        if (b)
            st->span_b = b;
        if (!m)
            return -1;
        st->span_ms = m;
        st->span_cap = n;
    }
    return (long)metrics_split_15m(f->t_ms - f->span_ms, f->t_ms, st->span_b, st->span_ms, n);
}

/* One COPY row (the column order of SQL_COPY). */
static int put_fact(metrics_store *st, const struct metrics_fact *f)
{
    struct cc_buf *b = &st->buf;
    long pieces = split_span(st, f);

    if (pieces < 0)
        return -ENOMEM;
    put_str(b, f->ev.id, true);
    put_str(b, f->ev.tenant, false);
    put_int(b, f->kind, false);
    put_str(b, f->ev.subject, false);
    put_int(b, f->t_ms, false);
    put_str(b, f->queue_id, false);
    put_str(b, f->agent_id, false);
    put_str(b, f->channel, false);
    put_str(b, f->direction, false);
    put_str(b, f->customer_id, false);
    put_str(b, f->campaign_id, false);
    put_str(b, f->answered_by, false);
    put_str(b, f->disposition, false);
    put_str(b, f->state, false);
    put_str(b, pieces > 0 ? f->span_state : NULL, false);
    put_str(b, f->reason_code, false);
    put_ids(b, f->contact_reasons);
    put_ids(b, f->queue_ids);
    put_int(b, f->wait_ms, false);
    put_int(b, f->talk_ms, false);
    put_int(b, f->hold_ms, false);
    put_int(b, f->duration_ms, false);
    put_int(b, f->wrapup_ms, false);
    put_int(b, f->priority, false);
    put_int(b, f->sl_threshold_s, false);
    put_int(b, f->csat, false);
    put_int(b, f->nps, false);
    put_bool(b, f->is_conversion);
    put_bool(b, f->resolved);
    put_int_array(b, st->span_b, (size_t)pieces);
    put_int_array(b, st->span_ms, (size_t)pieces);
    put_str(b, pieces > 0 ? f->span_reason : NULL, false);
    cc_buf_put(b, "\n", 1);
    return b->oom ? -ENOMEM : 0;
}

/* ---- the id set of a batch ---------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Empties the set, keeping its memory. */
static void ids_clear(struct idset *s)
{
    if (s->count)
        memset(s->slot, 0, (s->mask + 1) * sizeof(*s->slot));
    s->count = 0;
    cc_buf_reset(&s->keys);
}

/* Puts the key at offset off of s->keys into a free slot (the key is known to be absent). */
static void ids_place(struct idset *s, size_t off)
{
    size_t i = hash_str(s->keys.p + off) & s->mask;

    while (s->slot[i])
        i = (i + 1) & s->mask;
    s->slot[i] = off + 1;
}

/* Doubles the table (at least 1024 slots) and places every key again. -ENOMEM leaves s as it
 * was. */
static int ids_grow(struct idset *s)
{
    size_t want = s->cap ? 2 * (s->mask + 1) : 1024, *old = s->slot,
           old_n = s->cap ? s->mask + 1 : 0;
    size_t *slot = calloc(want, sizeof(*slot));

    if (!slot)
        return -ENOMEM;
    s->slot = slot;
    s->mask = want - 1;
    s->cap = want;
    for (size_t i = 0; i < old_n; i++)
        if (old[i])
            ids_place(s, old[i] - 1);
    free(old);
    return 0;
}

/* Adds a copy of id: 1 when added, 0 when it was already there, -ENOMEM. The table stays at most
 * half full. */
static int ids_add(struct idset *s, const char *id)
{
    size_t i, off = s->keys.len;

    if (2 * (s->count + 1) > s->cap && ids_grow(s) < 0)
        return -ENOMEM;
    for (i = hash_str(id) & s->mask; s->slot[i]; i = (i + 1) & s->mask)
        if (strcmp(s->keys.p + s->slot[i] - 1, id) == 0)
            return 0;
    cc_buf_put(&s->keys, id, strlen(id) + 1);
    if (s->keys.oom)
        return -ENOMEM;
    s->slot[i] = off + 1; /* the free slot the search ended on */
    s->count++;
    return 1;
}

/* ---- the batch ---------------------------------------------------------------------------- */

void metrics_store_batch_begin(metrics_store *st)
{
    ids_clear(&st->ids);
    cc_buf_reset(&st->buf);
    st->staged = st->dups = 0;
    st->kinds = 0;
    st->batch_t0 = cc_time_mono_us();
}

int metrics_store_stage(metrics_store *st, const struct metrics_fact *f)
{
    int added;

    if (f->kind == METRICS_KIND_IGNORE)
        return 0;
    added = ids_add(&st->ids, f->ev.id);
    if (added < 0)
        st->buf.oom = true; /* metrics_store_commit refuses the batch */
    if (added <= 0) {
        st->dups += added == 0;
        return added;
    }
    if (put_fact(st, f) < 0)
        return -ENOMEM; /* buf.oom stays set: metrics_store_commit refuses the batch */
    st->kinds |= 1u << f->kind;
    st->staged++;
    return 0;
}

static int copy_in(metrics_store *st)
{
    PGconn *conn = cc_pg_conn(st->pg);
    PGresult *res;
    int rc = 0;

    res = PQexec(conn, SQL_COPY);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        CC_ERROR("copy into stage failed: %s", PQerrorMessage(conn));
        PQclear(res);
        return -EIO;
    }
    PQclear(res);
    if (PQputCopyData(conn, st->buf.p, (int)st->buf.len) != 1 || PQputCopyEnd(conn, NULL) != 1)
        rc = -EIO;
    while ((res = PQgetResult(conn))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = -EIO;
        PQclear(res);
    }
    if (rc < 0)
        CC_ERROR("copy into stage failed: %s", PQerrorMessage(conn));
    return rc;
}

/* Creates the session's stage table and sets its planner settings once per connection (a
 * reconnect gives a new session; a rolled-back first batch undoes them: done again). */
static int ensure_stage(metrics_store *st)
{
    if (st->staged_conn == cc_pg_conn(st->pg))
        return 0;
    for (size_t i = 0; i < sizeof(SQL_SESSION) / sizeof(SQL_SESSION[0]); i++)
        if (cc_pg_exec(st->pg, SQL_SESSION[i], 0, NULL) < 0)
            return -EIO;
    return 0;
}

static int run_steps(metrics_store *st, unsigned kinds, size_t *dups)
{
    const char *params[5] = {st->params[0], st->params[1], st->params[2], st->params[3],
                             st->params[4]};

    for (size_t i = 0; i < STORE_NSTEPS; i++) {
        const struct store_step *s = &store_steps[i];
        int64_t t0 = st->timing ? cc_time_mono_us() : 0;
        PGresult *res;

        if (!(s->kinds & kinds))
            continue;
        /* planned every time, not prepared: a plan cached while the tables were small (an
         * index scan on a tenant prefix) turns into seconds per batch as they grow */
        res = cc_pg_query(st->pg, s->sql, s->params ? 5 : 0, s->params ? params : NULL);
        if (!res)
            return -EIO;
        if (s->counted)
            *dups += strtoul(PQcmdTuples(res), NULL, 10);
        if (st->timing)
            CC_INFO("store step '%s': %s rows in %.3f ms", s->name, PQcmdTuples(res),
                    (double)(cc_time_mono_us() - t0) / 1000.0);
        PQclear(res);
    }
    return 0;
}

int metrics_store_apply(metrics_store *st, const struct metrics_fact *facts, size_t n,
                        struct metrics_store_result *out)
{
    metrics_store_batch_begin(st);
    for (size_t i = 0; i < n; i++)
        if (metrics_store_stage(st, &facts[i]) < 0)
            return -ENOMEM;
    return metrics_store_commit(st, out);
}

int metrics_store_commit(metrics_store *st, struct metrics_store_result *out)
{
    struct metrics_store_result res = {.duplicates = st->dups};
    size_t staged = st->staged, dups = 0;
    int64_t t0 = cc_time_mono_us();
    PGconn *conn;
    int rc = 0;

    if (st->buf.oom)
        return -ENOMEM;
    if (st->timing)
        CC_INFO("store stage: %zu rows, %zu bytes built in %.3f ms", staged, st->buf.len,
                (double)(t0 - st->batch_t0) / 1000.0);
    if (staged == 0)
        goto done;
    if (cc_pg_begin(st->pg) < 0)
        return -EIO;
    conn = cc_pg_conn(st->pg);
    rc = ensure_stage(st);
    if (rc == 0)
        rc = copy_in(st);
    if (rc == 0 && st->timing)
        CC_INFO("store copy: %zu rows, %zu bytes in %.3f ms", staged, st->buf.len,
                (double)(cc_time_mono_us() - t0) / 1000.0);
    if (rc == 0)
        rc = run_steps(st, st->kinds, &dups);
    if (rc == 0)
        rc = cc_pg_commit(st->pg);
    if (rc < 0) {
        cc_pg_rollback(st->pg);
        st->staged_conn = NULL; /* the stage table may have been rolled back with it */
        CC_WARN("batch of %zu events not applied (retried): %s", staged,
                *cc_pg_last_sqlstate(st->pg) ? cc_pg_last_sqlstate(st->pg) : "database error");
        return -EIO;
    }
    st->staged_conn = conn;
    res.duplicates += dups;
    res.applied = staged - dups;
done:
    if (st->timing)
        CC_INFO("store batch: %zu applied, %zu duplicates in %.3f ms", res.applied, res.duplicates,
                (double)(cc_time_mono_us() - t0) / 1000.0);
    if (out)
        *out = res;
    return 0;
}
