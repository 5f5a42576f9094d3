-- cvar_filter.sql: Theorem 4.1, the optimistic-DRO hard filter, on a window of `interactions`.
-- Keeps the top-kappa probability mass of the reward in every partition and weights each kept
-- row by its density ratio w = dQ*/dP: 1/kappa above the threshold nu, and a fractional weight
-- on rows tied at nu, so that the kept mass is exactly kappa (App. F.1's LP with atoms).
-- The cut is quantile_disc(reward, 1 - kappa), a reward that occurs in the data and a minimiser
-- of the dual min_nu { nu + E[(R - nu)_+] / kappa } (App. F.2, the VaR). quantile_cont is not
-- used: it interpolates between rows, so when kappa * n is not an integer "reward >=
-- quantile_cont" keeps a mass other than kappa. The reported nu is the smallest kept reward
-- (Algorithm 1's nu = min r_top); it equals the cut unless the tied rows get weight 0.
-- kappa = 1 keeps every row with weight exactly 1.
-- Parameters: $start, $end (DATE, inclusive), $kappa (DOUBLE in (0, 1]), $n_segments (INTEGER,
--   buckets of hash(user_id) for partition_by = segment).
-- Template field (from an allow-list, not a value): {partition_key} - a SQL expression.
-- Creates: TEMP TABLE filter_thresholds (one row per partition) and TEMP TABLE filter_weights
--   (row_id = interactions.rowid, weight) read by the export in the same session.

-- Two scans of the window: one for the per-partition cut, one for the rows at or above it.
CREATE OR REPLACE TEMP TABLE filter_cuts AS
SELECT {partition_key} AS partition_value, count(*) AS rows_in,
       quantile_disc(reward, 1 - $kappa) AS cut
FROM interactions
WHERE event_date BETWEEN $start AND $end
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE filter_candidates AS
SELECT i.rowid AS row_id, c.partition_value, i.reward
FROM interactions i JOIN filter_cuts c ON {partition_key} = c.partition_value
WHERE i.event_date BETWEEN $start AND $end AND i.reward >= c.cut;

CREATE OR REPLACE TEMP TABLE filter_thresholds AS
WITH mass AS (
    SELECT f.partition_value,
           count(*) FILTER (WHERE f.reward > c.cut) AS rows_above,
           count(*) FILTER (WHERE f.reward = c.cut) AS rows_at,
           coalesce(sum(f.reward) FILTER (WHERE f.reward > c.cut), 0) AS reward_above
    FROM filter_candidates f JOIN filter_cuts c USING (partition_value)
    GROUP BY f.partition_value
)
SELECT c.partition_value, c.rows_in, c.cut, m.rows_above, m.rows_at,
       -- share of the tied rows' mass kept: (kappa * n - n_above) / n_at, in [0, 1]
       least(1.0, greatest(0.0, ($kappa * c.rows_in - m.rows_above) / m.rows_at))
           AS boundary_fraction,
       m.reward_above
FROM filter_cuts c JOIN mass m USING (partition_value);

-- The kept rows of `interactions` (by rowid, stable while this session holds the writer lock)
-- with their density-ratio weights.
CREATE OR REPLACE TEMP TABLE filter_weights AS
SELECT f.row_id, f.partition_value, f.reward,
       CASE WHEN f.reward > t.cut THEN 1.0 / $kappa
            ELSE t.boundary_fraction / $kappa END AS weight
FROM filter_candidates f JOIN filter_thresholds t USING (partition_value)
WHERE f.reward > t.cut OR t.boundary_fraction > 0;

CREATE OR REPLACE TEMP TABLE filter_thresholds AS
SELECT t.*, k.nu, k.rows_kept
FROM filter_thresholds t
JOIN (SELECT partition_value, min(reward) AS nu, count(*) AS rows_kept
      FROM filter_weights GROUP BY partition_value) k USING (partition_value);
