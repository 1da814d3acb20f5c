-- metrics-aggregator 002: exact figures for late and out-of-order events, and what the
-- retention purge needs (see ../DESIGN.md, "Exactly once, in any order" and "Retention").

-- When each event id was applied. The dedupe window (CC_METRICS_DEDUPE_DAYS) is measured from
-- here, not from the event's own time (`at`): a late event is protected from a redelivery for
-- the whole window after it was applied. Rows are appended in seen_at order, so the index grows
-- at its right edge only.
ALTER TABLE events_seen ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX events_seen_seen_at ON events_seen (seen_at);

-- The not_ready reason of an agent's closed span when the event carries it
-- (state_changed.from_reason_code, logged_out.last_reason_code), and when a fact was parked
-- waiting for its created event (the purge drops those older than CC_METRICS_PENDING_DAYS).
-- The ingest's staging table is LIKE pending INCLUDING DEFAULTS: it gets both columns.
ALTER TABLE pending ADD COLUMN span_reason text;
ALTER TABLE pending ADD COLUMN parked_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX pending_parked_at ON pending (parked_at);

-- What earlier batches counted, so that a later batch can take it back exactly:
--   fr_at, fr_queue_id, fr_agent_id: the message counted as the first response and the queue and
--     agent it was counted under (an earlier message arriving later replaces it);
--   end_counted: what the interaction's ended event counted when no agent answer was known yet
--     (0 nothing, 2 a dialer abandon; NULL: not counted yet, or counted as handled), under
--     end_queue_id; ended_queue_id, ended_agent_id: that ended event's own queue and agent (a late
--     agent answer then counts it as handled where an in-order arrival would have).
ALTER TABLE interactions
    ADD COLUMN fr_at timestamptz,
    ADD COLUMN fr_queue_id text,
    ADD COLUMN fr_agent_id text,
    ADD COLUMN end_counted smallint CHECK (end_counted IN (0, 1, 2)),
    ADD COLUMN end_queue_id text,
    ADD COLUMN ended_queue_id text,
    ADD COLUMN ended_agent_id text;

-- Rows counted before this migration: their first response was the earliest message then known,
-- counted under the current queue and, as the best guess, the answering agent.
UPDATE interactions SET fr_at = first_response_at,
    fr_queue_id = COALESCE(cur_queue_id, queue_id, ''), fr_agent_id = COALESCE(agent_id, '')
WHERE first_response_at IS NOT NULL AND created_at IS NOT NULL
    AND channel IN ('chat', 'sms', 'email');
