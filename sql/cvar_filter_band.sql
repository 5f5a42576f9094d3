-- cvar_filter_band.sql: step 2 of 3 of the CVaR filter (see cvar_filter.sql): the exact cut.
-- For every pending partition, one scan of the rows above the bracket's lower bound counts the
-- rows above the bracket and sorts the few inside it; the cut, the reward of descending rank
-- k = rows_needed, is inside the bracket when rows_upper < k <= rows_lower, and it is then the
-- (k - rows_upper)-th largest reward of the bracket. Partitions whose bracket missed the cut get
-- an open bracket (-inf, inf) and stay pending: a second run of this file settles them exactly.
-- Parameters: $start, $end (DATE), $kappa (DOUBLE), $n_segments (INTEGER, segment partitions).
-- Template field (from an allow-list, not a value): {partition_key} - a SQL expression.
-- Reads and updates: filter_cuts; appends to: filter_thresholds.

CREATE OR REPLACE TEMP TABLE filter_band AS
WITH bracket AS (
    SELECT c.partition_value, c.rows_in, c.rows_needed,
           count(*) FILTER (WHERE i.reward >= c.upper_bound) AS rows_upper,
           coalesce(sum(i.reward) FILTER (WHERE i.reward >= c.upper_bound), 0) AS reward_upper,
           count(*) AS rows_lower,
           list(i.reward ORDER BY i.reward DESC) FILTER (WHERE i.reward < c.upper_bound) AS band
    FROM interactions i JOIN filter_cuts c ON {partition_key} = c.partition_value
    WHERE i.event_date BETWEEN $start AND $end AND c.pending AND i.reward >= c.lower_bound
    GROUP BY c.partition_value, c.rows_in, c.rows_needed
), located AS (
    SELECT *, CASE WHEN rows_upper < rows_needed AND rows_needed <= rows_lower
                   THEN band[rows_needed - rows_upper] END AS cut
    FROM bracket
)
SELECT partition_value, rows_in, cut,
       rows_upper + len(list_filter(band, lambda x: x > cut)) AS rows_above,
       len(list_filter(band, lambda x: x = cut)) AS rows_at,
       reward_upper + coalesce(list_sum(list_filter(band, lambda x: x > cut)), 0) AS reward_above
FROM located;

INSERT INTO filter_thresholds
SELECT partition_value, rows_in, cut, rows_above, rows_at, reward_above,
       -- the share of the tied rows' mass kept, so that the kept mass is exactly kappa
       least(1.0, greatest(0.0, ($kappa * rows_in - rows_above) / rows_at))
FROM filter_band WHERE cut IS NOT NULL;

UPDATE filter_cuts
SET lower_bound = CAST('-infinity' AS DOUBLE), upper_bound = CAST('infinity' AS DOUBLE),
    pending = partition_value NOT IN (SELECT partition_value FROM filter_thresholds);
