-- validation_stats.sql: one row of day-level statistics that the validation suite checks.
-- Quantile drift is computed here (GX's quantile expectation breaks ValidationDefinition.run).
-- Parameters: $event_date (DATE), $trailing_days (INTEGER): the window before the day that
--   the day's reward quantiles are compared with. Ratios are NULL when that window is empty.
WITH day AS (
    SELECT count(*) AS rows_kept,
           quantile_cont(reward, [0.5, 0.9, 0.99]) AS q
    FROM interactions WHERE event_date = $event_date
), recent AS (
    SELECT count(*) AS rows_trailing,
           quantile_cont(reward, [0.5, 0.9, 0.99]) AS q
    FROM interactions
    WHERE event_date >= $event_date - to_days($trailing_days) AND event_date < $event_date
), quarantined AS (
    SELECT count(*) AS rows_quarantined FROM quarantine WHERE event_date = $event_date
)
SELECT d.rows_kept, q.rows_quarantined,
       q.rows_quarantined / greatest(d.rows_kept + q.rows_quarantined, 1) AS quarantine_share,
       t.rows_trailing,
       d.q[1] AS reward_p50, d.q[2] AS reward_p90, d.q[3] AS reward_p99,
       CASE WHEN t.rows_trailing > 0 THEN d.q[1] - t.q[1] END AS reward_p50_drift,
       CASE WHEN t.rows_trailing > 0 THEN d.q[2] - t.q[2] END AS reward_p90_drift,
       CASE WHEN t.rows_trailing > 0 THEN d.q[3] - t.q[3] END AS reward_p99_drift
FROM day d, recent t, quarantined q;
