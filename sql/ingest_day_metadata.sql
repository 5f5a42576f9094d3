-- ingest_day_metadata.sql: replace a day's day_metadata row, in the ingest's transaction (with
-- the day's rows: a rolled-back ingest keeps the earlier row).
-- Parameters: $event_date (DATE), $ingest_id (VARCHAR), $simulator_config (VARCHAR: JSON text,
--   or NULL for logs that carry no simulator config).
DELETE FROM day_metadata WHERE event_date = $event_date;

INSERT INTO day_metadata VALUES ($event_date, $ingest_id, CAST($simulator_config AS JSON));
