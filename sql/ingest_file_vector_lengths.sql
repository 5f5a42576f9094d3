-- ingest_file_vector_lengths.sql: the state and action lengths of the first rows of one Parquet
-- file, to check the dimensions its metadata declares against variable-length vectors.
-- Parameters: $file (VARCHAR), $rows (BIGINT, how many rows). Read-only; no hive
-- auto-detection.
SELECT len(state), len(action)
FROM read_parquet($file, hive_partitioning = false)
LIMIT $rows;
