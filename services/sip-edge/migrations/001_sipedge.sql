-- sip-edge: SIP credentials (HA1 only, never a password), DIDs and registration bindings.
-- Applied by cc_pg_migrate(pg, "sipedge", dir) with search_path = sipedge, public. The CHECKs
-- repeat the REST API's validation (services/sip-edge/sipedge_api.c) so no writer stores
-- nonsense. Domains are stored lowercase (SIP host names are case-insensitive); user names are
-- case-sensitive (RFC 3261 19.1.4).

-- One SIP account: (domain, username) -> tenant, agent. The digest realm is the domain. An agent
-- may hold several (desk phone + softphone), so (tenant, agent_id) is not unique.
CREATE TABLE credentials (
    domain     text        NOT NULL CHECK (domain ~ '^[a-z0-9._-]{1,128}$'),
    username   text        NOT NULL CHECK (username ~ '^[A-Za-z0-9._-]{1,64}$'),
    tenant     text        NOT NULL CHECK (tenant ~ '^[A-Za-z0-9_-]{1,64}$'),
    agent_id   text        NOT NULL CHECK (agent_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    ha1        text        NOT NULL CHECK (ha1 ~ '^[0-9a-f]{32}$'),
    version    bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain, username)
);
-- the API's keyset pages of one tenant, and its ?agent_id= filter
CREATE INDEX credentials_by_tenant ON credentials (tenant, domain, username);
CREATE INDEX credentials_by_agent ON credentials (tenant, agent_id);

-- A dialled number -> the tenant's queue. Numbers are global: one number, one tenant.
CREATE TABLE dids (
    number     text        PRIMARY KEY CHECK (number ~ '^\+?[0-9]{2,20}$'),
    tenant     text        NOT NULL CHECK (tenant ~ '^[A-Za-z0-9_-]{1,64}$'),
    queue_id   text        NOT NULL CHECK (queue_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    priority   integer     NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 1000),
    version    bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dids_by_tenant ON dids (tenant, number);

-- One registered contact of an AOR. Persisted before the 200 OK so that a restart or another
-- instance keeps it; removed with its credential (the account is gone).
CREATE TABLE bindings (
    domain     text        NOT NULL,
    username   text        NOT NULL,
    contact    text        NOT NULL CHECK (char_length(contact) BETWEEN 1 AND 512),
    tenant     text        NOT NULL,
    agent_id   text        NOT NULL,
    call_id    text        NOT NULL CHECK (char_length(call_id) <= 512),
    cseq       bigint      NOT NULL CHECK (cseq BETWEEN 0 AND 4294967295),
    expires_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    user_agent text        NOT NULL DEFAULT '' CHECK (char_length(user_agent) <= 128),
    source     text        NOT NULL DEFAULT '' CHECK (char_length(source) <= 63),
    transport  text        NOT NULL DEFAULT 'udp' CHECK (transport IN ('udp', 'tcp', 'tls', 'ws', 'wss')),
    PRIMARY KEY (domain, username, contact),
    FOREIGN KEY (domain, username) REFERENCES credentials (domain, username) ON DELETE CASCADE
);
-- the expiry sweep
CREATE INDEX bindings_by_expiry ON bindings (expires_at);
-- GET /v1/sip/registrations of one tenant (keyset), optionally one agent
CREATE INDEX bindings_by_tenant ON bindings (tenant, domain, username, contact);
CREATE INDEX bindings_by_agent ON bindings (tenant, agent_id);
