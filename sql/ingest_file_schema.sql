-- ingest_file_schema.sql: the Parquet schema of one file as its footer lists it, depth first
-- from the root: each element's name and its number of children (NULL for a leaf), so that
-- the top-level column names are read as written (DESCRIBE renames a repeated one).
-- Parameters: $file (VARCHAR). Read-only.
SELECT name, coalesce(num_children, 0) FROM parquet_schema($file);
