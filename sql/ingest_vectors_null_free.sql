-- ingest_vectors_null_free.sql: whether the Parquet footers count no null state or action
-- element in any row group (the contract_rows macro then checks finiteness with a cheaper
-- function that rejects nulls); false when a writer left the counts out.
-- Parameters: $files (VARCHAR[]). Read-only.
SELECT coalesce(bool_and(stats_null_count = 0), false)
FROM parquet_metadata($files)
WHERE split_part(path_in_schema, ', ', 1) IN ('state', 'action');
