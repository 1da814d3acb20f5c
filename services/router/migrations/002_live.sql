-- router live state persisted for a rebuild of Redis (services/router/router_live.c), and the
-- configuration change feed that keeps Redis in step with these tables.
--
-- Redis holds the live state; these tables hold what must survive Redis losing it: every open
-- interaction (waiting or in progress, with its original enqueue time so it keeps its place)
-- and every agent's presence. Rows are written idempotently by the engine (INSERT ... ON
-- CONFLICT DO NOTHING / UPDATE to a state) before or right after the Redis script that makes
-- the same change, so a crash in between redelivers the command and both steps converge.

CREATE TABLE interactions (
    tenant          text        NOT NULL CHECK (tenant ~ '^[A-Za-z0-9_-]{1,64}$'),
    id              text        NOT NULL CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$'),
    queue_id        text        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('voice', 'chat', 'email', 'sms')),
    priority        integer     NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 1000),
    skills          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    callback_number text,
    request_id      text,
    enqueued_ms     bigint      NOT NULL,
    -- waiting (queued or ringing), assigned (in progress with agent_id), ended (closed: kept
    -- a while so that a redelivered route command for it is recognised and not routed again)
    state           text        NOT NULL DEFAULT 'waiting'
        CHECK (state IN ('waiting', 'assigned', 'ended')),
    agent_id        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    CHECK (state <> 'assigned' OR agent_id IS NOT NULL)
);
-- the rebuild reads open interactions only; the purge finds old closed ones
CREATE INDEX interactions_open ON interactions (tenant, enqueued_ms) WHERE state <> 'ended';
CREATE INDEX interactions_closed ON interactions (updated_at) WHERE state = 'ended';

CREATE TABLE agent_state (
    tenant     text        NOT NULL CHECK (tenant ~ '^[A-Za-z0-9_-]{1,64}$'),
    agent_id   text        NOT NULL,
    presence   text        NOT NULL CHECK (presence IN ('logged_out', 'available', 'not_ready')),
    reason     text,
    since_ms   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, agent_id)
);

-- Configuration change feed: every write to the configuration tables notifies channel
-- 'router_config' with "<kind>|<tenant>|<id>[|<agent id>]" (kind agent, queue or member), so
-- that each router instance re-syncs that one entity into Redis whoever wrote it (REST on any
-- instance, SQL by hand). PostgreSQL folds identical notifications of one transaction into one.
CREATE FUNCTION notify_config() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    payload text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    IF TG_TABLE_NAME = 'agents' THEN
        payload := 'agent|' || r.tenant || '|' || r.id;
    ELSIF TG_TABLE_NAME = 'agent_skills' THEN
        payload := 'agent|' || r.tenant || '|' || r.agent_id;
    ELSIF TG_TABLE_NAME = 'queues' THEN
        payload := 'queue|' || r.tenant || '|' || r.id;
    ELSIF TG_TABLE_NAME = 'memberships' THEN
        payload := 'member|' || r.tenant || '|' || r.queue_id || '|' || r.agent_id;
    ELSE -- queue_skills, queue_tier_rules, queue_hours, queue_holidays
        payload := 'queue|' || r.tenant || '|' || r.queue_id;
    END IF;
    PERFORM pg_notify('router_config', payload);
    RETURN NULL;
END
$$;

CREATE TRIGGER agents_notify AFTER INSERT OR UPDATE OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION notify_config();
CREATE TRIGGER agent_skills_notify AFTER INSERT OR UPDATE OR DELETE ON agent_skills
    FOR EACH ROW EXECUTE FUNCTION notify_config();
CREATE TRIGGER queues_notify AFTER INSERT OR UPDATE OR DELETE ON queues
    FOR EACH ROW EXECUTE FUNCTION notify_config();
CREATE TRIGGER queue_skills_notify AFTER INSERT OR UPDATE OR DELETE ON queue_skills
    FOR EACH ROW EXECUTE FUNCTION notify_config();
CREATE TRIGGER queue_tier_rules_notify AFTER INSERT OR UPDATE OR DELETE ON queue_tier_rules
    FOR EACH ROW EXECUTE FUNCTION notify_config();
CREATE TRIGGER queue_hours_notify AFTER INSERT OR UPDATE OR DELETE ON queue_hours
    FOR EACH ROW EXECUTE FUNCTION notify_config();
CREATE TRIGGER queue_holidays_notify AFTER INSERT OR UPDATE OR DELETE ON queue_holidays
    FOR EACH ROW EXECUTE FUNCTION notify_config();
CREATE TRIGGER memberships_notify AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION notify_config();
