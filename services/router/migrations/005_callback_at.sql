-- A scheduled callback (cc.routing.callback keep_place false, scheduled_at): the time the
-- customer asked to be called back, so that a rebuild of Redis parks the interaction until then
-- again (or, once past, restores it ordered from that time). NULL: no callback, or one that
-- kept its place.
ALTER TABLE interactions ADD COLUMN callback_at_ms bigint;
