-- window_sample.sql: a weighted sample with replacement of the training window, drawn out of
-- core (issue 15): draw j takes the row whose cumulative-weight interval [cum_lo, cum_lo + w)
-- holds u_j * W, W the total weight, u_j a seeded uniform in [0, 1) (sample_uniforms, made by
-- the caller from the seed). Each row is drawn with probability w / W, as the trainer's
-- in-memory sampler does (searchsorted on the cumulative weights). The cumulative weights are
-- a window sum in row_id order (DuckDB sorts and spills out of core); the draws meet them in
-- an ASOF join, so memory is bounded by the sample and DuckDB's buffer pool, not the window.
-- Parameters: $start, $end (DATE) when the source reads `interactions`.
-- Template field (from an allow-list in drpo_core/warehouse/sample.py, not a value):
--   {source} - a query of (row_id, weight): filter_weights, or the whole window with weight 1.
-- Reads: TEMP TABLE / view sample_uniforms (pos BIGINT, u DOUBLE).
-- Creates: TEMP TABLE sample_draws (pos, row_id), one row per draw.

CREATE OR REPLACE TEMP TABLE sample_draws AS
WITH src AS (
    SELECT row_id, weight FROM ({source}) WHERE weight > 0
), cdf AS (
    SELECT row_id,
           coalesce(sum(weight) OVER (ORDER BY row_id
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                    0.0) AS cum_lo
    FROM src
), total AS (
    SELECT sum(weight) AS w FROM src
)
SELECT d.pos, c.row_id
FROM (SELECT pos, u * (SELECT w FROM total) AS x FROM sample_uniforms) d
ASOF JOIN cdf c ON d.x >= c.cum_lo;
