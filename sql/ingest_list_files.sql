-- ingest_list_files.sql: every object under a day's prefix of an object store (recursively, so
-- that objects in sub-prefixes are seen and refused rather than skipped), through DuckDB's glob
-- (its httpfs extension and credentials must be set up for s3://, gs://, az://).
-- Parameters: $pattern (VARCHAR, '<root>/event_date=YYYY-MM-DD/**'). Read-only.
SELECT file FROM glob($pattern) ORDER BY file;
