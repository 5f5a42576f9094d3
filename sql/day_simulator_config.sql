-- day_simulator_config.sql: the simulator config stored with a day at its ingest (NULL or no
-- row: the day's logs carry none, or the day was never ingested).
-- Parameters: $event_date (DATE). Read-only.
SELECT CAST(simulator_config AS VARCHAR) FROM day_metadata WHERE event_date = $event_date;
