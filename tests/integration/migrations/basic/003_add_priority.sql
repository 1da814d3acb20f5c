ALTER TABLE items ADD COLUMN priority integer NOT NULL DEFAULT 0;
UPDATE items SET priority = id * 10;
