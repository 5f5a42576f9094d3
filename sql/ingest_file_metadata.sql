-- ingest_file_metadata.sql: the key-value metadata of Parquet files' footers, decoded, by file
-- (the log contract's dimensions 'drpo.d_state' / 'drpo.d_action', the simulator config
-- 'drpo.simulator').
-- Parameters: $files (VARCHAR[]). Read-only.
SELECT file_name, decode(key) AS key, decode(value) AS value
FROM parquet_kv_metadata($files)
ORDER BY file_name, key;
