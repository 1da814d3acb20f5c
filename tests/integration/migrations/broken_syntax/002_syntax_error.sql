-- A syntax error: the whole file must be rolled back and not recorded.
CREATE TABLE extras (id integer);
INSERT INTO items (id, name) VALUES (9, 'nine');
SELEC 1;
