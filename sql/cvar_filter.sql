-- cvar_filter.sql: Theorem 4.1, the optimistic-DRO hard filter, on a window of `interactions`,
-- step 1 of 3: row counts and a bracket around every partition's cut.
-- The filter keeps the top-kappa probability mass of the reward in every partition and weights
-- each kept row by its density ratio w = dQ*/dP: 1/kappa above the cut, and a fractional weight
-- on rows tied at the cut, so that the kept mass is exactly kappa (App. F.1's LP with atoms).
-- The cut is the reward of descending rank ceil(kappa * n), a value that occurs in the data and
-- a minimiser of the dual min_nu { nu + E[(R - nu)_+] / kappa } (App. F.2, the VaR); it is the
-- smallest kept reward, the nu that Algorithm 1 reports (nu = min r_top). quantile_cont is not
-- used: it interpolates between rows, so "reward >= quantile_cont" can keep a mass other than
-- kappa when kappa * n is not an integer.
-- Speed: an exact per-partition quantile over the whole window (quantile_disc) sorts every
-- reward of it. Instead a block sample (2 %) brackets every partition's cut between two
-- sample quantiles at 1 - kappa -+ margin, the margin being 4 standard errors of a sample
-- quantile of that partition (rounded up on the grid 0.0025 * 2^(i/2)); cvar_filter_band.sql then
-- counts the rows in 64 bins of the bracket and sorts only the bin holding the cut, and opens
-- the bracket to the whole partition wherever the sample missed. The result is always exact; only the time depends on the sample.
-- The value ranked is the `reward` column of {rows}: the logged reward (quality = reward, the
-- table interactions), or the signal sql/cvar_filter_signal.sql wrote under that name
-- (quality = return or advantage, the temp table filter_signal); nu and cvar are of that value.
-- Parameters: $start, $end (DATE, inclusive), $kappa (DOUBLE in (0, 1]),
--   $n_segments (INTEGER, buckets of hash(user_id) for partition_by = segment).
-- Template fields (from allow-lists, not values): {partition_key} - a SQL expression;
--   {rows} - interactions or filter_signal (drpo_core/warehouse/cvar_filter.py).
-- Creates: TEMP TABLE filter_cuts (one row per partition), an empty TEMP TABLE filter_thresholds.

CREATE OR REPLACE TEMP TABLE filter_cuts AS
WITH counts AS (
    SELECT {partition_key} AS partition_value, count(*) AS rows_in
    FROM {rows}
    WHERE event_date BETWEEN $start AND $end
    GROUP BY ALL
), sampled AS (
    SELECT {partition_key} AS partition_value, count(*) AS rows_sampled,
           quantile_disc(reward, [greatest(0.0, 1 - $kappa - 0.0025 * 2 ** (i / 2))
                                  FOR i IN range(16)]) AS lower_bounds,
           quantile_disc(reward, [least(1.0, 1 - $kappa + 0.0025 * 2 ** (i / 2))
                                  FOR i IN range(16)]) AS upper_bounds
    FROM {rows} TABLESAMPLE 2% (system, 42)
    WHERE event_date BETWEEN $start AND $end
    GROUP BY ALL
), margins AS (
    -- grid index i (0-based) of the smallest margin >= 4 sqrt(kappa (1 - kappa) / n_s) + 1 / n_s
    -- (16: beyond the grid)
    SELECT *, CAST(least(16, greatest(0, ceil(2 * log2((4 * sqrt($kappa * (1 - $kappa)
                                                                 / rows_sampled)
                                                        + 1.0 / rows_sampled) / 0.0025))))
                   AS INTEGER) AS i
    FROM sampled
)
SELECT c.partition_value, c.rows_in,
       -- k = ceil(kappa * n): the cut's descending rank (at least one row is kept)
       greatest(1, CAST(ceil($kappa * c.rows_in - 1e-9) AS BIGINT)) AS rows_needed,
       -- no sampled rows, a margin beyond the grid, or a sample quantile at level 0 or 1
       -- bound nothing: the bracket stays open on that side
       coalesce(CASE WHEN m.i < 16 AND 1 - $kappa - 0.0025 * 2 ** (m.i / 2) > 0
                     THEN m.lower_bounds[m.i + 1] END,
                CAST('-infinity' AS DOUBLE)) AS lower_bound,
       coalesce(CASE WHEN m.i < 16 AND 1 - $kappa + 0.0025 * 2 ** (m.i / 2) < 1
                     THEN m.upper_bounds[m.i + 1] END,
                CAST('infinity' AS DOUBLE)) AS upper_bound,
       true AS pending
FROM counts c LEFT JOIN margins m USING (partition_value);

CREATE OR REPLACE TEMP TABLE filter_thresholds AS
SELECT partition_value, rows_in,
       CAST(NULL AS DOUBLE) AS cut,                -- = nu, the smallest kept reward
       CAST(NULL AS BIGINT) AS rows_above,         -- reward > cut: weight 1 / kappa
       CAST(NULL AS BIGINT) AS rows_at,            -- reward = cut: weight boundary_fraction / kappa
       CAST(NULL AS DOUBLE) AS reward_above,
       CAST(NULL AS DOUBLE) AS boundary_fraction   -- (kappa n - rows_above) / rows_at, in (0, 1]
FROM filter_cuts WHERE false;
