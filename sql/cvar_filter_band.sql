-- cvar_filter_band.sql: step 2 of 3 of the CVaR filter (see cvar_filter.sql): the exact cut.
-- The cut, the reward of descending rank k = rows_needed, lies inside a partition's bracket
-- [lower_bound, upper_bound] when fewer than k rows exceed the upper bound and at least k reach
-- the lower one. Two scans find it without sorting the bracket:
-- 1. one scan of the rows at or above the lower bound counts them (and sums their rewards) in
--    64 equal-width bins of the bracket, plus one bin for the rows above its upper bound;
--    the running count from the top bin down names the bin that holds rank k;
-- 2. a second scan fetches only the rows of that bin (about 1/64 of the bracket) and sorts
--    them: the cut is their (k - rows above the bin)-th largest reward.
-- A list of every reward inside the bracket, sorted, gave the same cut more slowly: building
-- and sorting lists is the costly part of an aggregate, counting bins is not.
-- Partitions whose bracket missed the cut get an open bracket (-inf, inf) and stay pending: a
-- second run of this file settles them exactly (with an open bracket, bin 0 is the whole
-- partition).
-- Parameters: $start, $end (DATE), $kappa (DOUBLE), $n_segments (INTEGER, segment partitions).
-- Template fields (from allow-lists, not values): {partition_key} - a SQL expression;
--   {rows} - interactions or filter_signal, whose `reward` is ranked (see cvar_filter.sql).
-- Reads and updates: filter_cuts; appends to: filter_thresholds.

-- The bin of a reward at or above the lower bound: 0..63 inside the bracket [lower, upper], 64
-- above it. The bracket is closed: with tied rewards the upper sample quantile is often the cut
-- itself. Monotone in the reward (each floating-point step is), so a bin holds every
-- reward between its smallest and its largest.
CREATE OR REPLACE TEMP MACRO filter_bin(reward, lower_bound, upper_bound) AS
    CASE WHEN reward > upper_bound THEN 64
         WHEN isfinite(upper_bound - lower_bound) AND upper_bound > lower_bound
         THEN least(63, greatest(0, CAST(floor((reward - lower_bound)
                                               / (upper_bound - lower_bound) * 64) AS INTEGER)))
         ELSE 0 END;

CREATE OR REPLACE TEMP TABLE filter_cut_bins AS
WITH bins AS (
    SELECT c.partition_value, filter_bin(i.reward, c.lower_bound, c.upper_bound) AS bin,
           count(*) AS rows_in_bin, sum(i.reward) AS reward_in_bin,
           min(i.reward) AS bin_min, max(i.reward) AS bin_max
    FROM {rows} i JOIN filter_cuts c ON {partition_key} = c.partition_value
    WHERE i.event_date BETWEEN $start AND $end AND c.pending AND i.reward >= c.lower_bound
    GROUP BY ALL
), running AS (
    SELECT *,
           CAST(sum(rows_in_bin) OVER top_down AS BIGINT) - rows_in_bin AS rows_above_bin,
           sum(reward_in_bin) OVER top_down - reward_in_bin AS reward_above_bin
    FROM bins
    WINDOW top_down AS (PARTITION BY partition_value ORDER BY bin DESC)
)
SELECT r.partition_value, c.rows_in, c.rows_needed - r.rows_above_bin AS rank_in_bin,
       r.bin_min, r.bin_max, r.rows_above_bin, r.reward_above_bin
FROM running r JOIN filter_cuts c USING (partition_value)
WHERE r.bin < 64 AND r.rows_above_bin < c.rows_needed
  AND c.rows_needed <= r.rows_above_bin + r.rows_in_bin;

CREATE OR REPLACE TEMP TABLE filter_band AS
WITH cut_bin AS (
    -- filter_bin is monotone in the reward, so the rows between the smallest and the largest
    -- reward of the bin are exactly the bin's rows
    SELECT b.partition_value, b.rows_in, b.rank_in_bin, b.rows_above_bin, b.reward_above_bin,
           list(i.reward ORDER BY i.reward DESC) AS rewards
    FROM {rows} i JOIN filter_cut_bins b ON {partition_key} = b.partition_value
    WHERE i.event_date BETWEEN $start AND $end AND i.reward BETWEEN b.bin_min AND b.bin_max
    GROUP BY ALL
), located AS (
    SELECT *, rewards[rank_in_bin] AS cut FROM cut_bin
)
-- rows tied at the cut share its bin: rows_above and rows_at need no other bin
SELECT partition_value, rows_in, cut,
       rows_above_bin + len(list_filter(rewards, lambda x: x > cut)) AS rows_above,
       len(list_filter(rewards, lambda x: x = cut)) AS rows_at,
       reward_above_bin + coalesce(list_sum(list_filter(rewards, lambda x: x > cut)), 0)
           AS reward_above
FROM located;

INSERT INTO filter_thresholds
SELECT partition_value, rows_in, cut, rows_above, rows_at, reward_above,
       -- the share of the tied rows' mass kept, so that the kept mass is exactly kappa
       least(1.0, greatest(0.0, ($kappa * rows_in - rows_above) / rows_at))
FROM filter_band;

UPDATE filter_cuts
SET lower_bound = CAST('-infinity' AS DOUBLE), upper_bound = CAST('infinity' AS DOUBLE),
    pending = partition_value NOT IN (SELECT partition_value FROM filter_thresholds);
