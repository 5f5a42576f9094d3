-- ingest_last_hash.sql: the content hash of a day's last ingest (none before its first).
-- Parameters: $event_date (DATE). Read-only.
SELECT content_hash FROM ingest_runs
WHERE event_date = $event_date
ORDER BY finished_at DESC
LIMIT 1;
