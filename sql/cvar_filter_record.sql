-- cvar_filter_record.sql: the lineage of one filter run, one filter_runs row per partition.
-- Warehouses made before the quality signal (issue 11) get its two columns first, with the
-- values every earlier run had (quality reward, gamma 0); ADD COLUMN IF NOT EXISTS is a no-op
-- on the others.
-- Parameters: $filter_id, $start, $end (DATE), $kappa (DOUBLE), $partition_by (VARCHAR),
--   $sql_hash (VARCHAR), $partitions (STRUCT[] with the fields partition_value, rows_in,
--   rows_kept, nu, boundary_fraction, kept_share, cvar, in the order of filter_runs),
--   $quality (VARCHAR: reward | return | advantage | q), $gamma (DOUBLE).
ALTER TABLE filter_runs ADD COLUMN IF NOT EXISTS quality VARCHAR DEFAULT 'reward';
ALTER TABLE filter_runs ADD COLUMN IF NOT EXISTS gamma DOUBLE DEFAULT 0.0;
INSERT INTO filter_runs (filter_id, window_start, window_end, kappa, partition_by,
                         partition_value, rows_in, rows_kept, nu, boundary_fraction, kept_share,
                         cvar, sql_hash, quality, gamma)
SELECT $filter_id, $start, $end, $kappa, $partition_by, p.*, $sql_hash, $quality, $gamma
FROM (SELECT UNNEST($partitions, recursive := true)) p;
