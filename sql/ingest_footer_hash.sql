-- ingest_footer_hash.sql: what the content fingerprint of remote files is computed from: per
-- file, its name, size, rows, footer size and writer (an unchanged object-store day is skipped
-- without reading its data).
-- Parameters: $files (VARCHAR[]). Read-only.
SELECT file_name, file_size_bytes, num_rows, footer_size, created_by
FROM parquet_file_metadata($files)
ORDER BY file_name;
