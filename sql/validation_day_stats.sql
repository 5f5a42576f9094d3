-- validation_day_stats.sql: one row of statistics of one ingested day, the part of the log
-- contract that ingest cannot see row by row (the validation suite checks it; the row rules
-- themselves are sql/ingest_rules.sql and are not checked again).
-- Parameters: $event_date (DATE) the day; $trailing_days (INTEGER) the days before it that the
--   day is compared with. Trailing figures and drifts are NULL when that window is empty.
-- propensity_calibration: the mean of 1 / (n_items * p_b) over logged rows, with p_b =
--   exp(behavior_logprob) and n_items the distinct items of the day and its trailing window.
--   For a logging policy with full support over the catalogue, E_b[1 / (n p_b)] = 1.
WITH day AS (
    SELECT count(*) AS rows_kept,
           min(reward) AS reward_min, max(reward) AS reward_max,
           quantile_cont(reward, [0.5, 0.9, 0.99]) AS q,
           avg(exp(-behavior_logprob)) AS inverse_propensity_mean
    FROM interactions WHERE event_date = $event_date
), recent AS (
    SELECT count(*) AS rows_trailing, count(DISTINCT event_date) AS days_trailing,
           quantile_cont(reward, [0.5, 0.9, 0.99]) AS q
    FROM interactions
    WHERE event_date >= $event_date - to_days($trailing_days) AND event_date < $event_date
), catalogue AS (
    SELECT count(DISTINCT item_id) AS n_items
    FROM interactions
    WHERE event_date >= $event_date - to_days($trailing_days) AND event_date <= $event_date
), quarantined AS (
    SELECT count(*) AS rows_quarantined FROM quarantine WHERE event_date = $event_date
)
SELECT d.rows_kept, q.rows_quarantined,
       q.rows_quarantined / greatest(d.rows_kept + q.rows_quarantined, 1) AS quarantine_share,
       d.reward_min, d.reward_max,
       d.q[1] AS reward_p50, d.q[2] AS reward_p90, d.q[3] AS reward_p99,
       t.rows_trailing, t.days_trailing,
       CASE WHEN t.days_trailing > 0
            THEN d.rows_kept / (t.rows_trailing / t.days_trailing) END AS volume_ratio,
       CASE WHEN t.rows_trailing > 0 THEN d.q[1] - t.q[1] END AS reward_p50_drift,
       CASE WHEN t.rows_trailing > 0 THEN d.q[2] - t.q[2] END AS reward_p90_drift,
       CASE WHEN t.rows_trailing > 0 THEN d.q[3] - t.q[3] END AS reward_p99_drift,
       d.inverse_propensity_mean / greatest(c.n_items, 1) AS propensity_calibration
FROM day d, recent t, quarantined q, catalogue c;
