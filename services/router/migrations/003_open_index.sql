-- The partial index of open interactions names the open states instead of excluding 'ended'.
--
-- Every single-row UPDATE of router_live.c says "WHERE tenant = $1 AND id = $2 AND state <>
-- 'ended'", which implied the old predicate (state <> 'ended'), so the planner could answer it
-- from interactions_open (tenant, enqueued_ms) -- every open interaction of the tenant, read
-- and filtered by id -- instead of the primary key. It did: a prepared statement's generic
-- plan, made while the table was young and not yet analysed, kept that choice for the life
-- of the connection (measured: 1.1 ms and ~900 rows per 'assigned' update at 900 calls/s).
-- "state <> 'ended'" does not imply "state IN ('waiting', 'assigned')" for the planner, so
-- now only the primary key serves those updates; the rebuild, which reads every open
-- interaction in enqueue order, names the two states and keeps its index.
DROP INDEX interactions_open;
CREATE INDEX interactions_open ON interactions (enqueued_ms) WHERE state IN ('waiting', 'assigned');
