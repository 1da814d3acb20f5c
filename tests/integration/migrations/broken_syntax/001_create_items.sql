-- Fixture for tests/integration/test_pg.c: three migrations (create, insert, add column).
CREATE TABLE items (
    id integer PRIMARY KEY,
    name text NOT NULL
);
