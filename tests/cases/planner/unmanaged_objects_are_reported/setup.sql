CREATE SCHEMA scratch;
CREATE TABLE scratch.notes (id INTEGER);
CREATE VIEW scratch.v_notes AS SELECT id FROM scratch.notes
