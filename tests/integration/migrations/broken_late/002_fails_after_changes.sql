-- Fails at run time after two statements took effect: all of it must be rolled back.
CREATE TABLE extras (id integer);
INSERT INTO items (id, name) VALUES (9, 'nine');
INSERT INTO items (id, name) VALUES (9, 'duplicate key');
