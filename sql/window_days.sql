-- window_days.sql: the status of every date of a window, one row per date in [$start, $end]
-- (dates without data included): the rows stored, the rows quarantined, whether an ingest ever
-- ran for it, and its latest validation (validation_runs is append-only, so the latest row of a
-- date is its status: 'passed', 'failed', or 'never' when the date was never validated).
-- Parameters: $start, $end (DATE, inclusive). Read-only.
WITH days AS (
    SELECT CAST(d AS DATE) AS event_date
    FROM generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 DAY) t(d)
), stored AS (
    SELECT event_date, count(*) AS rows_stored
    FROM interactions WHERE event_date BETWEEN $start AND $end
    GROUP BY ALL
), quarantined AS (
    SELECT event_date, count(*) AS rows_quarantined
    FROM quarantine WHERE event_date BETWEEN $start AND $end
    GROUP BY ALL
), ingested AS (
    SELECT DISTINCT event_date FROM ingest_runs WHERE event_date BETWEEN $start AND $end
), validated AS (
    SELECT event_date, arg_max(success, validated_at) AS success, max(validated_at) AS validated_at
    FROM validation_runs WHERE event_date BETWEEN $start AND $end
    GROUP BY ALL
)
SELECT d.event_date,
       coalesce(s.rows_stored, 0) AS rows_stored,
       coalesce(q.rows_quarantined, 0) AS rows_quarantined,
       i.event_date IS NOT NULL AS ingested,
       CASE WHEN v.success THEN 'passed' WHEN NOT v.success THEN 'failed' ELSE 'never' END
           AS validation,
       v.validated_at
FROM days d
LEFT JOIN stored s USING (event_date)
LEFT JOIN quarantined q USING (event_date)
LEFT JOIN ingested i USING (event_date)
LEFT JOIN validated v USING (event_date)
ORDER BY d.event_date;
