INSERT INTO items (id, name) VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma');
