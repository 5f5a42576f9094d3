-- ingest_duplicate_check.sql: after sql/ingest_partition.sql, how many rows the partition kept
-- and whether any of their event_ids may repeat, within the partition or with a stored row of
-- another date. Compares 64-bit hashes in event_index only (12-byte rows, no event_id
-- strings): both counts are 0 for a partition without duplicates, and nonzero whenever there
-- is one (or, about once in 10^13 pairs, a hash collision: the exact pass then finds none).
-- Parameters: $event_date (DATE).
WITH partition_hashes AS (
    SELECT event_hash FROM event_index WHERE event_date = $event_date
)
SELECT (SELECT count(*) FROM partition_hashes) AS rows_kept,
       (SELECT count(*) - count(DISTINCT event_hash) FROM partition_hashes) AS repeated_within,
       (SELECT count(*) FROM event_index e SEMI JOIN partition_hashes USING (event_hash)
        WHERE e.event_date <> $event_date) AS stored_under_other_dates;
