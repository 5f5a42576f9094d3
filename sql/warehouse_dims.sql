-- warehouse_dims.sql: the state and action dimensions the database was created for (the fixed
-- array sizes of `interactions`), as (key, value) rows; no rows before the first ingest.
-- No parameters. Read-only.
SELECT key, value FROM pipeline_meta WHERE key IN ('d_state', 'd_action');
