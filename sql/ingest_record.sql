-- ingest_record.sql: one ingest_runs row per ingest attempt that got as far as writing (also for
-- a day skipped as unchanged), in the ingest's transaction, and the session's scratch tables
-- dropped.
-- Parameters: $ingest_id, $event_date, $files (VARCHAR[]), $content_hash, $rows_in, $rows_kept,
--   $rows_quarantined, $status (ingested | skipped_unchanged), $started_at (TIMESTAMPTZ).
INSERT INTO ingest_runs VALUES ($ingest_id, $event_date, $files, $content_hash, $rows_in,
                                $rows_kept, $rows_quarantined, $status, $started_at,
                                current_timestamp);

DROP TABLE IF EXISTS duplicate_rows;

DROP TABLE IF EXISTS file_bounds;
