-- ingest_infer_dims.sql: the most common (state, action) lengths of the files' rows, for files
-- that declare no dimensions (no metadata, variable-length lists) into a new database.
-- Parameters: $files (VARCHAR[]). Read-only; no hive auto-detection.
SELECT len(state), len(action)
FROM read_parquet($files, hive_partitioning = false)
GROUP BY ALL
ORDER BY count(*) DESC
LIMIT 1;
