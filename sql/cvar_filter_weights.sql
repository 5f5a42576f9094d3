-- cvar_filter_weights.sql: step 3 of 3 of the CVaR filter (see cvar_filter.sql): the kept rows
-- of `interactions` (by rowid, stable while this session holds the writer lock) with their
-- density-ratio weights w = dQ*/dP (Theorem 4.1): 1/kappa above the cut, the boundary fraction
-- / kappa at it. kappa = 1 keeps every row with weight exactly 1.
-- Parameters: $start, $end (DATE), $kappa (DOUBLE), $n_segments (INTEGER, segment partitions).
-- Template fields (from allow-lists, not values): {partition_key} - a SQL expression;
--   {rows} - interactions or filter_signal (its ranked `reward`, see cvar_filter.sql) and
--   {row_id} - its column holding the interactions rowid (rowid or row_id).
-- Creates: TEMP TABLE filter_weights (row_id, weight), read by the
--   export in the same session.

CREATE OR REPLACE TEMP TABLE filter_weights AS
SELECT i.{row_id} AS row_id,
       CASE WHEN i.reward > t.cut THEN 1.0 / $kappa
            ELSE t.boundary_fraction / $kappa END AS weight
FROM {rows} i JOIN filter_thresholds t ON {partition_key} = t.partition_value
WHERE i.event_date BETWEEN $start AND $end AND i.reward >= t.cut;
