-- sip-edge: queued callbacks. A waiting caller asked to be called back (POST
-- /v1/calls/{interaction_id}/callback) and was released; the interaction keeps its place in the
-- router's queue, and the sip-edge instance that took the request rings the agent the router
-- assigns, then dials the customer through the trunk. One row per callback not yet dialled or
-- ended, written before the caller is released and deleted when the callback ends; a restart of
-- that instance (same CC_INSTANCE_ID) restores its rows, so a promised callback outlives it.
CREATE TABLE callbacks (
    interaction_id text        PRIMARY KEY CHECK (char_length(interaction_id) BETWEEN 1 AND 64),
    tenant         text        NOT NULL CHECK (tenant ~ '^[A-Za-z0-9_-]{1,64}$'),
    queue_id       text        NOT NULL CHECK (char_length(queue_id) BETWEEN 1 AND 64),
    number         text        NOT NULL CHECK (number ~ '^\+?[0-9]{2,20}$'),
    caller         text        NOT NULL CHECK (char_length(caller) <= 256), -- who called (From user)
    dialled        text        NOT NULL CHECK (char_length(dialled) <= 256), -- the DID they called
    host           text        NOT NULL CHECK (char_length(host) <= 256), -- our address they dialled
    priority       integer     NOT NULL CHECK (priority BETWEEN 0 AND 1000),
    instance       text        NOT NULL CHECK (char_length(instance) <= 128),
    scheduled_at   timestamptz,          -- when the customer asked to be called (NULL: now,
                                         -- keeping the place in the queue)
    created_at     timestamptz NOT NULL, -- the interaction's (its event ids derive from it)
    requested_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX callbacks_by_instance ON callbacks (instance, requested_at);
