-- schema_event_index.sql: fill event_index for a database made before it existed (a one-off
-- migration, run by the warehouse right after sql/schema.sql created the empty table): the
-- 64-bit hash of every stored event_id with its date.
-- No parameters.
INSERT INTO event_index SELECT hash(event_id), event_date FROM interactions;
