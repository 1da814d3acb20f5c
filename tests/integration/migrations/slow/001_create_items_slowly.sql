-- Holds the migration lock a while so concurrent migrators really overlap.
SELECT pg_sleep(0.3);
CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL);
