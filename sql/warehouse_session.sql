-- warehouse_session.sql: the settings of every warehouse session, run once per connection.
-- Timestamps are read and cast to dates in UTC (an event_time's day is its UTC day); no progress
-- bar on stdout; DuckDB's buffer pool is capped (it spills beyond the cap).
-- Parameters: $limit (VARCHAR, a DuckDB memory size such as '1.5GB').
SET TimeZone = 'UTC';

SET enable_progress_bar = false;

SET memory_limit = $limit;
