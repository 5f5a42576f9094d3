-- cvar_filter_record.sql: the lineage of one filter run, one filter_runs row per partition.
-- Parameters: $filter_id, $start, $end (DATE), $kappa (DOUBLE), $partition_by (VARCHAR),
--   $sql_hash (VARCHAR), $partitions (STRUCT[] with the fields partition_value, rows_in,
--   rows_kept, nu, boundary_fraction, kept_share, cvar, in the order of filter_runs).
INSERT INTO filter_runs (filter_id, window_start, window_end, kappa, partition_by,
                         partition_value, rows_in, rows_kept, nu, boundary_fraction, kept_share,
                         cvar, sql_hash)
SELECT $filter_id, $start, $end, $kappa, $partition_by, p.*, $sql_hash
FROM (SELECT UNNEST($partitions, recursive := true)) p;
