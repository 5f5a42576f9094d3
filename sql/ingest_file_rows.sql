-- ingest_file_rows.sql: the row count one Parquet file's footer declares.
-- Parameters: $file (VARCHAR). Read-only.
SELECT num_rows FROM parquet_file_metadata($file);
