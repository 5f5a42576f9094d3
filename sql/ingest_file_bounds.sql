-- ingest_file_bounds.sql: per Parquet file, the range [lo, hi] its footer's column statistics
-- record for each numeric column of the contract (over all the file's row groups; for state and
-- action, over their elements). sql/ingest_rules.sql refuses the day when a finite value falls
-- outside its file's range: the data pages then disagree with the footer (a corrupt page whose
-- footer is intact), so no value of the file can be trusted.
-- A bound is NULL (the column is not checked) when a row group records no statistics for it, or
-- its physical type is none of INT32, INT64, FLOAT, DOUBLE. FLOAT statistics are printed as the
-- shortest text that reads back to the same float32, so they are parsed as FLOAT: compared as
-- DOUBLE text they could sit a rounding step inside the stored values.
-- Parameters: $files (VARCHAR[]). Creates: TEMP TABLE file_bounds (source_file, <column>_lo,
--   <column>_hi for step, state, action, reward, behavior_logprob).
CREATE OR REPLACE TEMP TABLE file_bounds AS
WITH chunks AS (
    SELECT file_name, split_part(path_in_schema, ', ', 1) AS column_name,
           CASE type WHEN 'FLOAT' THEN CAST(TRY_CAST(stats_min_value AS FLOAT) AS DOUBLE)
                     WHEN 'DOUBLE' THEN TRY_CAST(stats_min_value AS DOUBLE)
                     WHEN 'INT32' THEN TRY_CAST(stats_min_value AS DOUBLE)
                     WHEN 'INT64' THEN TRY_CAST(stats_min_value AS DOUBLE) END AS lo,
           CASE type WHEN 'FLOAT' THEN CAST(TRY_CAST(stats_max_value AS FLOAT) AS DOUBLE)
                     WHEN 'DOUBLE' THEN TRY_CAST(stats_max_value AS DOUBLE)
                     WHEN 'INT32' THEN TRY_CAST(stats_max_value AS DOUBLE)
                     WHEN 'INT64' THEN TRY_CAST(stats_max_value AS DOUBLE) END AS hi
    FROM parquet_metadata($files)
    WHERE split_part(path_in_schema, ', ', 1)
          IN ('step', 'state', 'action', 'reward', 'behavior_logprob')
), columns AS (
    -- bounded only when every row group of the file records both statistics
    SELECT file_name, column_name,
           CASE WHEN bool_and(lo IS NOT NULL AND hi IS NOT NULL) THEN min(lo) END AS lo,
           CASE WHEN bool_and(lo IS NOT NULL AND hi IS NOT NULL) THEN max(hi) END AS hi
    FROM chunks
    GROUP BY ALL
)
SELECT file_name AS source_file,
       any_value(lo) FILTER (WHERE column_name = 'step') AS step_lo,
       any_value(hi) FILTER (WHERE column_name = 'step') AS step_hi,
       any_value(lo) FILTER (WHERE column_name = 'state') AS state_lo,
       any_value(hi) FILTER (WHERE column_name = 'state') AS state_hi,
       any_value(lo) FILTER (WHERE column_name = 'action') AS action_lo,
       any_value(hi) FILTER (WHERE column_name = 'action') AS action_hi,
       any_value(lo) FILTER (WHERE column_name = 'reward') AS reward_lo,
       any_value(hi) FILTER (WHERE column_name = 'reward') AS reward_hi,
       any_value(lo) FILTER (WHERE column_name = 'behavior_logprob') AS behavior_logprob_lo,
       any_value(hi) FILTER (WHERE column_name = 'behavior_logprob') AS behavior_logprob_hi
FROM columns
GROUP BY file_name;
