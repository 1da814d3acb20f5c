-- metrics-aggregator: interaction facts, 15-minute rollups and live tables (schema "metrics").
-- Written only by the ingest (services/metrics-aggregator/metrics_store.c), one transaction per
-- consumed batch; read by the REST API and the live stream. See ../DESIGN.md.
--
-- Times are timestamptz; rollup buckets are 15-minute UTC starts. Dimensions of the rollups are
-- text NOT NULL DEFAULT '' ('' = not applicable), so that they can be part of primary keys.

-- Epoch milliseconds -> timestamptz, exactly (no float rounding). STABLE like the operators
-- inside (so that the planner inlines it: an IMMUTABLE wrapper over STABLE operators is not
-- inlined and costs a SQL function call per row).
CREATE FUNCTION ts(ms bigint) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN timestamptz 'epoch' + ms * interval '1 millisecond';

-- timestamptz -> epoch milliseconds (exact: extract returns numeric). STABLE: see ts().
CREATE FUNCTION ms(t timestamptz) RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN floor(extract(epoch FROM t) * 1000)::bigint;

-- Every applied event id, written in the transaction that applies the event's effects: a
-- redelivered event finds its id here and changes nothing. `at` (event time) is for a purge.
CREATE TABLE events_seen (
    id text COLLATE "C" PRIMARY KEY,
    at timestamptz NOT NULL
);

-- One row per interaction: the facts its events carried (merged in any order). created_at is
-- NULL until the created event arrived; contributions of its other events wait in `pending`.
CREATE TABLE interactions (
    tenant            text NOT NULL,
    interaction_id    text NOT NULL,
    channel           text,
    direction         text,
    queue_id          text,        -- the queue it entered first (created)
    campaign_id       text,
    customer_id       text,
    created_at        timestamptz, -- NULL: created not seen yet
    answered_at       timestamptz, -- first answer by an agent
    agent_id          text,        -- the agent of that answer
    wait_ms           bigint,      -- its wait
    customer_answered_at timestamptz, -- outbound: the customer picked up
    abandoned_at      timestamptz,
    abandon_wait_ms   bigint,
    ended_at          timestamptz,
    talk_ms           bigint,
    hold_ms           bigint,
    duration_ms       bigint,
    wrapup_ms         bigint,      -- sum of its wrap-ups
    disposition       text,        -- the latest disposition_set (by time)
    disposition_at    timestamptz,
    is_conversion     boolean,
    resolved          boolean,
    contact_reasons   text[] NOT NULL DEFAULT '{}',
    first_response_at timestamptz, -- first outbound message of an agent
    cur_queue_id      text,        -- the latest queue it was queued in / answered from
    cur_queue_at      timestamptz,
    left_at           timestamptz, -- latest time it left a queue (answered, abandoned, ...)
    transfers         integer NOT NULL DEFAULT 0,
    csat              integer,
    nps               integer,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, interaction_id)
) WITH (fillfactor = 80);
-- first contact resolution: a customer's contacts by time
CREATE INDEX interactions_customer ON interactions (tenant, customer_id, created_at)
    WHERE customer_id IS NOT NULL;
CREATE INDEX interactions_created ON interactions (tenant, created_at);

-- Facts of interactions whose created event has not arrived: the staged event, counted (and
-- deleted) in the transaction that brings the created event.
CREATE TABLE pending (
    id          text COLLATE "C" NOT NULL,
    tenant      text NOT NULL,
    kind        smallint NOT NULL,
    subj        text NOT NULL,
    t           bigint NOT NULL, -- event time, epoch ms
    queue_id    text,
    agent_id    text,
    channel     text,
    direction   text,
    customer_id text,
    campaign_id text,
    answered_by text,
    disposition text,
    state       text,
    span_state  text,
    reason_code text,
    reasons     text[],
    queue_ids   text[],
    wait_ms     bigint,
    talk_ms     bigint,
    hold_ms     bigint,
    duration_ms bigint,
    wrapup_ms   bigint,
    priority    integer,
    sl_s        integer,
    csat        integer,
    nps         integer,
    is_conv     boolean,
    resolved    boolean,
    span_b      bigint[],
    span_ms     bigint[]
);
CREATE INDEX pending_interaction ON pending (tenant, subj);

-- SL threshold of a queue: the latest sl_threshold_s seen on its queued events.
CREATE TABLE queue_settings (
    tenant         text NOT NULL,
    queue_id       text NOT NULL,
    sl_threshold_s integer NOT NULL CHECK (sl_threshold_s > 0),
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant, queue_id)
);

CREATE TABLE rollup (
    tenant      text NOT NULL,
    bucket      timestamptz NOT NULL,
    queue_id    text NOT NULL DEFAULT '',
    agent_id    text NOT NULL DEFAULT '',
    channel     text NOT NULL DEFAULT '',
    campaign_id text NOT NULL DEFAULT '',
    entered               bigint NOT NULL DEFAULT 0,
    answered              bigint NOT NULL DEFAULT 0,
    answered_in_sl        bigint NOT NULL DEFAULT 0,
    answer_wait_ms_sum    bigint NOT NULL DEFAULT 0,
    abandoned             bigint NOT NULL DEFAULT 0,
    abandoned_in_sl       bigint NOT NULL DEFAULT 0,
    abandoned_short       bigint NOT NULL DEFAULT 0,
    abandon_wait_ms_sum   bigint NOT NULL DEFAULT 0,
    max_wait_ms           bigint NOT NULL DEFAULT 0,
    handled               bigint NOT NULL DEFAULT 0,
    talk_ms_sum           bigint NOT NULL DEFAULT 0,
    hold_ms_sum           bigint NOT NULL DEFAULT 0,
    wrapup_count          bigint NOT NULL DEFAULT 0,
    wrapup_ms_sum         bigint NOT NULL DEFAULT 0,
    transfers             bigint NOT NULL DEFAULT 0,
    channel_changes       bigint NOT NULL DEFAULT 0,
    dispositions          bigint NOT NULL DEFAULT 0,
    conversions           bigint NOT NULL DEFAULT 0,
    resolved_marked       bigint NOT NULL DEFAULT 0,
    first_response_count  bigint NOT NULL DEFAULT 0,
    first_response_ms_sum bigint NOT NULL DEFAULT 0,
    resolution_count      bigint NOT NULL DEFAULT 0,
    resolution_ms_sum     bigint NOT NULL DEFAULT 0,
    csat_count            bigint NOT NULL DEFAULT 0,
    csat_sum              bigint NOT NULL DEFAULT 0,
    csat_satisfied        bigint NOT NULL DEFAULT 0,
    nps_count             bigint NOT NULL DEFAULT 0,
    nps_promoters         bigint NOT NULL DEFAULT 0,
    nps_detractors        bigint NOT NULL DEFAULT 0,
    outbound_attempts     bigint NOT NULL DEFAULT 0,
    outbound_connects     bigint NOT NULL DEFAULT 0,
    outbound_abandoned    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, bucket, queue_id, agent_id, channel, campaign_id)
) WITH (fillfactor = 70);

CREATE TABLE code_rollup (
    tenant      text NOT NULL,
    bucket      timestamptz NOT NULL,
    queue_id    text NOT NULL DEFAULT '',
    agent_id    text NOT NULL DEFAULT '',
    channel     text NOT NULL DEFAULT '',
    campaign_id text NOT NULL DEFAULT '',
    kind        text NOT NULL CHECK (kind IN ('disposition', 'contact_reason')),
    code        text NOT NULL,
    count       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, bucket, queue_id, agent_id, channel, campaign_id, kind, code)
);

CREATE TABLE agent_state_rollup (
    tenant      text NOT NULL,
    bucket      timestamptz NOT NULL,
    agent_id    text NOT NULL,
    state       text NOT NULL,
    reason_code text NOT NULL DEFAULT '',
    ms          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, bucket, agent_id, state, reason_code)
) WITH (fillfactor = 70);

-- Live: interactions waiting in a queue (from queued until they leave it).
CREATE TABLE live_waiting (
    tenant         text NOT NULL,
    interaction_id text NOT NULL,
    queue_id       text NOT NULL,
    channel        text NOT NULL DEFAULT '',
    priority       integer NOT NULL DEFAULT 0,
    since          timestamptz NOT NULL, -- queued time (kept across requeues while waiting)
    PRIMARY KEY (tenant, interaction_id)
);
CREATE INDEX live_waiting_queue ON live_waiting (tenant, queue_id);

-- Live: every agent's current state (an older event never overwrites a newer one).
CREATE TABLE live_agents (
    tenant      text NOT NULL,
    agent_id    text NOT NULL,
    state       text NOT NULL,
    reason_code text NOT NULL DEFAULT '',
    since       timestamptz NOT NULL,
    queue_ids   text[] NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL, -- event time of the latest applied agent event
    PRIMARY KEY (tenant, agent_id)
);
