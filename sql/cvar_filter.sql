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
-- Creates: TEMP TABLE filter_thresholds (one row per partition) and TEMP VIEW filtered_window.

CREATE OR REPLACE TEMP TABLE window_rows AS
SELECT event_id, reward, {partition_key} AS partition_value
FROM interactions
WHERE event_date BETWEEN $start AND $end;

CREATE OR REPLACE TEMP TABLE filter_thresholds AS
WITH thr AS (
    SELECT partition_value, count(*) AS rows_in,
           quantile_disc(reward, 1 - $kappa) AS cut
    FROM window_rows GROUP BY partition_value
), mass AS (
    SELECT w.partition_value,
           count(*) FILTER (WHERE w.reward > t.cut) AS rows_above,
           count(*) FILTER (WHERE w.reward = t.cut) AS rows_at,
           coalesce(sum(w.reward) FILTER (WHERE w.reward > t.cut), 0) AS reward_above
    FROM window_rows w JOIN thr t USING (partition_value)
    GROUP BY w.partition_value
)
SELECT t.partition_value, t.rows_in, t.cut, m.rows_above, m.rows_at,
       -- share of the tied rows' mass kept: (kappa * n - n_above) / n_at, in [0, 1]
       least(1.0, greatest(0.0, ($kappa * t.rows_in - m.rows_above) / m.rows_at))
           AS boundary_fraction,
       m.reward_above
FROM thr t JOIN mass m USING (partition_value);

CREATE OR REPLACE TEMP TABLE filter_weights AS
SELECT w.event_id, w.partition_value, w.reward,
       CASE WHEN w.reward > f.cut THEN 1.0 / $kappa
            ELSE f.boundary_fraction / $kappa END AS weight
FROM window_rows w JOIN filter_thresholds f USING (partition_value)
WHERE w.reward > f.cut OR (w.reward = f.cut AND f.boundary_fraction > 0);

CREATE OR REPLACE TEMP TABLE filter_thresholds AS
SELECT f.*, k.nu, k.rows_kept
FROM filter_thresholds f
JOIN (SELECT partition_value, min(reward) AS nu, count(*) AS rows_kept
      FROM filter_weights GROUP BY partition_value) k USING (partition_value);
