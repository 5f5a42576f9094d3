-- warehouse_has_table.sql: one row when the main schema holds a table of that name.
-- Parameters: $name (VARCHAR). Read-only.
SELECT 1 FROM information_schema.tables WHERE table_name = $name AND table_schema = 'main';
