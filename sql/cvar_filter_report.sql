-- cvar_filter_report.sql: one row per partition of a finished filter run (sql/cvar_filter*.sql):
-- partition_value, rows_in, rows_kept, nu, boundary_fraction, kept_share, cvar.
-- rows_above < k = ceil(kappa n) <= rows_above + rows_at, so the tied rows always keep a
-- positive share: every row at the cut is kept and nu (the smallest kept reward) = cut.
-- kept_share = (rows_above + boundary_fraction rows_at) / n = kappa (Theorem 4.1);
-- cvar = E[w R] with w = dQ*/dP, the upper-tail CVaR_kappa of the reward.
-- Parameters: $kappa (DOUBLE). Reads: TEMP TABLE filter_thresholds.
SELECT CAST(partition_value AS VARCHAR), rows_in, rows_above + rows_at, cut,
       boundary_fraction, (rows_above + boundary_fraction * rows_at) / rows_in,
       (reward_above + boundary_fraction * rows_at * cut) / ($kappa * rows_in)
FROM filter_thresholds
ORDER BY partition_value;
