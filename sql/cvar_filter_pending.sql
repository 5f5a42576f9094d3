-- cvar_filter_pending.sql: how many partitions sql/cvar_filter_band.sql has not settled yet.
-- No parameters. Reads: TEMP TABLE filter_cuts.
SELECT count(*) FROM filter_cuts WHERE pending;
