SELECT pg_sleep(0.2);
ALTER TABLE items ADD COLUMN priority integer NOT NULL DEFAULT 0;
