-- sip-edge: outbound originations (cc.dialer.originate), one row per dialer attempt, written
-- before the customer is dialled: a redelivered command of an attempt that already has a row is
-- acknowledged and ignored, so one attempt never rings the customer twice (at most once: a
-- crash between this row and the INVITE loses the attempt, which the dialer sees as no outcome).
CREATE TABLE originations (
    attempt_id     text        PRIMARY KEY CHECK (attempt_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    tenant         text        NOT NULL CHECK (tenant ~ '^[A-Za-z0-9_-]{1,64}$'),
    interaction_id text        NOT NULL,
    campaign_id    text        NOT NULL,
    destination    text        NOT NULL CHECK (char_length(destination) BETWEEN 1 AND 256),
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- housekeeping by age (rows older than the dialer's redelivery horizon can go)
CREATE INDEX originations_by_age ON originations (created_at);
