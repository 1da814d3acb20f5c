CREATE TABLE never_applied (id integer);
