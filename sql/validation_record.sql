-- validation_record.sql: store one validation outcome of a day (append-only: the latest row
-- of a day is its current status).
-- Parameters: $event_date (DATE), $success (BOOLEAN), $critical_failures (VARCHAR[]),
--   $warnings (VARCHAR[]), $result (VARCHAR, the JSON of the suites' results).
INSERT INTO validation_runs (event_date, success, critical_failures, warnings, result)
VALUES ($event_date, $success, $critical_failures, $warnings, $result);
