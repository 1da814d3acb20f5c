-- sip-edge: the state of an origination, so that an attempt recorded but never dialled (a crash
-- between the row and the INVITE, a command dropped at shutdown) is reported instead of
-- vanishing: 'recorded' (the dialer consumer made the row) -> 'dialled' (the SIP thread took it:
-- dialled, or ended it itself, e.g. expired) or -> 'orphaned' (found still recorded at a start-up:
-- created + ended {system, failed, detail not_dialled} were published, so the dialer can retry).
-- Rows from before this migration count as dialled. What cc.interaction.created needs again is
-- kept too (queue, caller id, priority, the command's customer), and which instance recorded it.
ALTER TABLE originations
    ADD COLUMN state text NOT NULL DEFAULT 'dialled'
        CHECK (state IN ('recorded', 'dialled', 'orphaned')),
    ADD COLUMN instance text NOT NULL DEFAULT '' CHECK (char_length(instance) <= 128),
    ADD COLUMN queue_id text NOT NULL DEFAULT '' CHECK (char_length(queue_id) <= 64),
    ADD COLUMN caller_id text NOT NULL DEFAULT '' CHECK (char_length(caller_id) <= 64),
    ADD COLUMN customer_id text NOT NULL DEFAULT '' CHECK (char_length(customer_id) <= 64),
    ADD COLUMN priority integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 1000);
ALTER TABLE originations ALTER COLUMN state SET DEFAULT 'recorded';
-- the start-up scan: only the few rows still recorded
CREATE INDEX originations_recorded ON originations (created_at) WHERE state = 'recorded';
