-- ingest_rows_stored.sql: how many rows `interactions` holds for a day.
-- Parameters: $event_date (DATE). Read-only.
SELECT count(*) FROM interactions WHERE event_date = $event_date;
