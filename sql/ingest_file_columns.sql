-- ingest_file_columns.sql: the column names and types of one Parquet file as written: folder
-- names never become columns (no hive auto-detection).
-- Parameters: $file (VARCHAR). Read-only.
DESCRIBE SELECT * FROM read_parquet($file, hive_partitioning = false);
