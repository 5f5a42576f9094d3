-- window_sample.sql: the rows a training sample is drawn from, in a canonical order: every row
-- of the source with a positive weight, sorted by row_id (DuckDB sorts out of core, spilling
-- beyond its memory cap). drpo_core/warehouse/sample.py then streams this table in storage
-- order (a base-table scan keeps insertion order), accumulates the weights in numpy and merges
-- the sorted seeded uniforms u_j * W into them: draw j takes the row whose interval
-- [cum_lo, cum_lo + w) holds u_j * W, i.e. row i with probability w_i / W (Theorem 4.1's Q*),
-- exactly as the trainer's in-memory sampler (searchsorted on the cumulative weights). No
-- window function and no join over the window: one sort, two sequential scans.
-- Parameters: $start, $end (DATE) when the source reads `interactions`.
-- Template field (from an allow-list in drpo_core/warehouse/sample.py, not a value):
--   {source} - a query of (row_id, weight): filter_weights, or the whole window with weight 1.
-- Creates: TEMP TABLE sample_weights (row_id, weight), sorted by row_id.

CREATE OR REPLACE TEMP TABLE sample_weights AS
SELECT row_id, weight FROM ({source}) WHERE weight > 0 ORDER BY row_id;
