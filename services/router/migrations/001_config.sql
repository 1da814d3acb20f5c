-- router configuration: agents, skills, not-ready reasons, queues (skills, tier rules, opening
-- hours, holidays) and memberships. Applied by cc_pg_migrate(pg, "router", dir) with
-- search_path = router, public. Every table is keyed by tenant first; the ranges here repeat
-- the API's validation (services/router/router_model.h) so that no writer can store nonsense.

CREATE TABLE agents (
    tenant             text        NOT NULL CHECK (tenant ~ '^[A-Za-z0-9._-]{1,63}$'),
    id                 text        NOT NULL CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    name               text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    cap_voice          smallint    NOT NULL DEFAULT 1 CHECK (cap_voice BETWEEN 0 AND 1),
    cap_chat           smallint    NOT NULL DEFAULT 3 CHECK (cap_chat BETWEEN 0 AND 100),
    cap_email          smallint    NOT NULL DEFAULT 5 CHECK (cap_email BETWEEN 0 AND 100),
    cap_sms            smallint    NOT NULL DEFAULT 3 CHECK (cap_sms BETWEEN 0 AND 100),
    voice_blocks_other boolean     NOT NULL DEFAULT true,
    enabled            boolean     NOT NULL DEFAULT true,
    version            bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);

CREATE TABLE agent_skills (
    tenant      text     NOT NULL,
    agent_id    text     NOT NULL,
    skill       text     NOT NULL CHECK (skill ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    proficiency smallint NOT NULL CHECK (proficiency BETWEEN 1 AND 5),
    PRIMARY KEY (tenant, agent_id, skill),
    FOREIGN KEY (tenant, agent_id) REFERENCES agents (tenant, id) ON DELETE CASCADE
);
-- "which agents have skill S at level >= N" (rebuilding the live skill index)
CREATE INDEX agent_skills_by_skill ON agent_skills (tenant, skill, proficiency);

CREATE TABLE not_ready_reasons (
    tenant          text        NOT NULL CHECK (tenant ~ '^[A-Za-z0-9._-]{1,63}$'),
    code            text        NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    label           text        NOT NULL CHECK (char_length(label) BETWEEN 1 AND 200),
    counts_as_break boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, code)
);

CREATE TABLE queues (
    tenant            text        NOT NULL CHECK (tenant ~ '^[A-Za-z0-9._-]{1,63}$'),
    id                text        NOT NULL CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    name              text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    channels          text[]      NOT NULL
        CHECK (cardinality(channels) BETWEEN 1 AND 4
               AND channels <@ ARRAY['voice', 'chat', 'email', 'sms']),
    strategy          text        NOT NULL
        CHECK (strategy IN ('ring_all', 'longest_idle', 'round_robin', 'linear',
                            'least_talk_time', 'fewest_interactions', 'random',
                            'weighted_random', 'ring_progressive', 'best_skill')),
    priority          integer     NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 1000),
    sl_threshold_s    integer     NOT NULL DEFAULT 20 CHECK (sl_threshold_s BETWEEN 1 AND 86400),
    wrapup_s          integer     NOT NULL DEFAULT 0 CHECK (wrapup_s BETWEEN 0 AND 3600),
    ring_timeout_s    integer     NOT NULL DEFAULT 20 CHECK (ring_timeout_s BETWEEN 1 AND 600),
    max_no_answer     integer     NOT NULL DEFAULT 3 CHECK (max_no_answer BETWEEN 0 AND 100),
    max_wait_s        integer     NOT NULL DEFAULT 0 CHECK (max_wait_s BETWEEN 0 AND 2592000),
    max_length        integer     NOT NULL DEFAULT 0 CHECK (max_length BETWEEN 0 AND 1000000),
    ring_progressive_interval_s integer NOT NULL DEFAULT 5
        CHECK (ring_progressive_interval_s BETWEEN 1 AND 600),
    callback_enabled  boolean     NOT NULL DEFAULT true,
    overflow_queue_id text,
    no_agent_action   text        NOT NULL DEFAULT 'join'
        CHECK (no_agent_action IN ('join', 'refuse', 'overflow')),
    timezone          text        NOT NULL DEFAULT 'UTC',
    closed_action     text        NOT NULL DEFAULT 'reject'
        CHECK (closed_action IN ('reject', 'overflow')),
    closed_reason     text        NOT NULL DEFAULT 'closed'
        CHECK (closed_reason ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    version           bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    CHECK (overflow_queue_id IS NULL OR overflow_queue_id <> id),
    CHECK (overflow_queue_id IS NOT NULL
           OR (no_agent_action <> 'overflow' AND closed_action <> 'overflow')),
    -- a queue that others overflow to cannot be deleted (the API answers 409 naming them)
    FOREIGN KEY (tenant, overflow_queue_id) REFERENCES queues (tenant, id) ON DELETE RESTRICT
);
CREATE INDEX queues_by_overflow ON queues (tenant, overflow_queue_id)
    WHERE overflow_queue_id IS NOT NULL;

CREATE TABLE queue_skills (
    tenant          text     NOT NULL,
    queue_id        text     NOT NULL,
    skill           text     NOT NULL CHECK (skill ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    min_proficiency smallint NOT NULL CHECK (min_proficiency BETWEEN 1 AND 5),
    PRIMARY KEY (tenant, queue_id, skill),
    FOREIGN KEY (tenant, queue_id) REFERENCES queues (tenant, id) ON DELETE CASCADE
);

-- Tier rules (FreeSWITCH tier rules, Genesys bullseye): members of level L become eligible once
-- an interaction has waited the after_s of the highest rule with level <= L (level 1 at once).
CREATE TABLE queue_tier_rules (
    tenant   text    NOT NULL,
    queue_id text    NOT NULL,
    level    integer NOT NULL CHECK (level BETWEEN 2 AND 100),
    after_s  integer NOT NULL CHECK (after_s BETWEEN 0 AND 86400),
    PRIMARY KEY (tenant, queue_id, level),
    FOREIGN KEY (tenant, queue_id) REFERENCES queues (tenant, id) ON DELETE CASCADE
);

-- Weekly opening intervals in the queue's time zone; none at all = open around the clock.
CREATE TABLE queue_hours (
    tenant    text     NOT NULL,
    queue_id  text     NOT NULL,
    day       smallint NOT NULL CHECK (day BETWEEN 1 AND 7), -- ISO: 1 = Monday
    open_min  smallint NOT NULL CHECK (open_min BETWEEN 0 AND 1439),
    close_min smallint NOT NULL CHECK (close_min BETWEEN 1 AND 1440),
    PRIMARY KEY (tenant, queue_id, day, open_min),
    CHECK (close_min > open_min),
    FOREIGN KEY (tenant, queue_id) REFERENCES queues (tenant, id) ON DELETE CASCADE
);

-- Whole days closed (in the queue's time zone), whatever the weekly hours say.
CREATE TABLE queue_holidays (
    tenant   text NOT NULL,
    queue_id text NOT NULL,
    day      date NOT NULL,
    name     text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    PRIMARY KEY (tenant, queue_id, day),
    FOREIGN KEY (tenant, queue_id) REFERENCES queues (tenant, id) ON DELETE CASCADE
);

CREATE TABLE memberships (
    tenant     text        NOT NULL,
    queue_id   text        NOT NULL,
    agent_id   text        NOT NULL,
    level      integer     NOT NULL DEFAULT 1 CHECK (level BETWEEN 1 AND 100),
    position   integer     NOT NULL DEFAULT 1 CHECK (position BETWEEN 1 AND 100000),
    penalty    integer     NOT NULL DEFAULT 0 CHECK (penalty BETWEEN 0 AND 1000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, queue_id, agent_id),
    FOREIGN KEY (tenant, queue_id) REFERENCES queues (tenant, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, agent_id) REFERENCES agents (tenant, id) ON DELETE CASCADE
);
-- "which queues does this agent serve" (cross-queue selection, agent views)
CREATE INDEX memberships_by_agent ON memberships (tenant, agent_id);
