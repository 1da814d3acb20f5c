-- What a requeue changes beyond queue, priority and skills, kept so that a rebuild of Redis
-- restores it (services/router/DESIGN.md, "Routing semantics"): order_ms, set by a requeue with
-- at_head false (the interaction is ordered from then; NULL = by enqueued_ms, its arrival),
-- and excluded, the agents never to offer it to (a JSON array of agent ids, the union of every
-- requeue's exclude_agent_ids).
ALTER TABLE interactions ADD COLUMN order_ms bigint;
ALTER TABLE interactions ADD COLUMN excluded jsonb NOT NULL DEFAULT '[]'::jsonb
    CHECK (jsonb_typeof(excluded) = 'array');
