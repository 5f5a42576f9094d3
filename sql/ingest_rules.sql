-- ingest_rules.sql: the log contract's row rules, defined once for every ingest statement.
-- No parameters. Needs: TEMP TABLE file_bounds (sql/ingest_file_bounds.sql) of the same files.
-- Creates, for this connection:
-- * the table macro contract_rows(files, partition_date, d_state, d_action, policies,
--   logprob_nullable, vectors_null_free): every row of the Parquet files with its source_file,
--   its 0-based source_row and first_broken, the first rule it breaks as 'rule:column' (NULL
--   for a valid row; the rules stop at the first broken one, so a quarantined row names exactly
--   one). Its arguments are bound from the caller's prepared parameters, never formatted into
--   the text. vectors_null_free: the files' footers count no null state/action element.
--   The files are read as written: folder names never become columns (no hive auto-detection),
--   so the file's own event_date meets the partition_date rule.
--   A finite value outside the range its file's footer statistics record (file_bounds) is no
--   broken rule but a corrupt file: the read fails with an error naming the file, row and
--   column, and the caller's transaction rolls back (nothing of the day is written).
--   Values are stored without change: a step that is not an INTEGER (0.5, 3e10) and a vector
--   element beyond float32's range are rules that quarantine the row, never a rounding cast.
-- * duplicate_rows: the rows that break the one rule spanning rows, unique:event_id (empty
--   unless sql/ingest_duplicates.sql filled it).
CREATE OR REPLACE TEMP MACRO contract_rows(files, partition_date, d_state, d_action, policies,
                                           logprob_nullable, vectors_null_free) AS TABLE
SELECT * EXCLUDE (footer_broken),
       CASE
           WHEN footer_broken IS NOT NULL THEN error(
               source_file || ': row ' || source_row || ', column ' || footer_broken
               || ' holds a value outside the range the file''s footer statistics record '
               || '(a corrupt data page)')
           WHEN event_id IS NULL THEN 'not_null:event_id'
           WHEN event_time IS NULL THEN 'not_null:event_time'
           WHEN event_date IS NULL THEN 'not_null:event_date'
           WHEN user_id IS NULL THEN 'not_null:user_id'
           WHEN episode_id IS NULL THEN 'not_null:episode_id'
           WHEN step IS NULL THEN 'not_null:step'
           WHEN state IS NULL THEN 'not_null:state'
           WHEN action IS NULL THEN 'not_null:action'
           WHEN item_id IS NULL THEN 'not_null:item_id'
           WHEN reward IS NULL THEN 'not_null:reward'
           WHEN logging_policy IS NULL THEN 'not_null:logging_policy'
           WHEN behavior_logprob IS NULL AND NOT logprob_nullable
               THEN 'not_null:behavior_logprob'
           WHEN len(state) <> d_state THEN 'dimension:state'
           WHEN len(action) <> d_action THEN 'dimension:action'
           -- every element present and finite. x * 0 is 0 for a finite x and NaN for an inf or
           -- NaN one, so a dot product with zeros is finite exactly when every element is, and
           -- cannot overflow; DuckDB rejects a null element anywhere in the batch there, hence
           -- the sum (it skips nulls and accumulates float32 in DOUBLE, so cannot overflow
           -- either, but runs an aggregate per list) unless the footers rule null elements out
           WHEN list_position(state, NULL) IS NOT NULL THEN 'finite:state'
           WHEN NOT isfinite(CASE WHEN vectors_null_free
                                  THEN list_dot_product(state, list_resize([0::FLOAT], d_state, 0))
                                  ELSE list_sum(state) END) THEN 'finite:state'
           WHEN list_position(action, NULL) IS NOT NULL THEN 'finite:action'
           WHEN NOT isfinite(CASE WHEN vectors_null_free
                                  THEN list_dot_product(action, list_resize([0::FLOAT], d_action, 0))
                                  ELSE list_sum(action) END) THEN 'finite:action'
           -- a finite DOUBLE element beyond float32's range would fail the FLOAT[] cast of the
           -- whole day (a free no-op when the file holds float32 already)
           WHEN list_position(TRY_CAST(state AS FLOAT[]), NULL) IS NOT NULL
               THEN 'float32_range:state'
           WHEN list_position(TRY_CAST(action AS FLOAT[]), NULL) IS NOT NULL
               THEN 'float32_range:action'
           WHEN NOT isfinite(reward) THEN 'finite:reward'
           WHEN behavior_logprob IS NOT NULL AND NOT isfinite(behavior_logprob)
               THEN 'finite:behavior_logprob'
           WHEN behavior_logprob > 0 THEN 'logprob_nonpositive:behavior_logprob'
           -- TRY_CAST rounds 0.5 to 0: compared with the value, a fraction shows
           WHEN TRY_CAST(step AS INTEGER) IS DISTINCT FROM step THEN 'integer:step'
           WHEN step < 0 THEN 'step_nonnegative:step'
           WHEN event_date <> partition_date THEN 'partition_date:event_date'
           -- a nanosecond event_time (TIMESTAMP_NS) with a sub-microsecond part would be
           -- truncated by the TIMESTAMPTZ column: a rule per row rather than refusing the file,
           -- so the day's other rows are kept and this one keeps its exact value in
           -- quarantine's raw JSON (nothing is lost either way; only the rule loses nothing
           -- of the rest of the day)
           WHEN epoch_ns(event_time) % 1000 <> 0 THEN 'timestamp_precision:event_time'
           WHEN CAST(event_time AS DATE) <> partition_date THEN 'event_time_in_day:event_time'
           WHEN NOT list_contains(policies, logging_policy)
               THEN 'logging_policy_allowed:logging_policy'
       END AS first_broken
FROM (
    SELECT r.* EXCLUDE (filename, file_row_number),
           r.filename AS source_file, r.file_row_number AS source_row,
           -- the first column holding a finite value outside its file's footer range
           CASE WHEN isfinite(r.reward) AND (r.reward < b.reward_lo OR r.reward > b.reward_hi)
                    THEN 'reward'
                WHEN isfinite(r.behavior_logprob) AND (r.behavior_logprob < b.behavior_logprob_lo
                                                       OR r.behavior_logprob > b.behavior_logprob_hi)
                    THEN 'behavior_logprob'
                WHEN isfinite(r.step) AND (r.step < b.step_lo OR r.step > b.step_hi) THEN 'step'
                WHEN isfinite(list_min(r.state)) AND list_min(r.state) < b.state_lo THEN 'state'
                WHEN isfinite(list_max(r.state)) AND list_max(r.state) > b.state_hi THEN 'state'
                WHEN isfinite(list_min(r.action)) AND list_min(r.action) < b.action_lo
                    THEN 'action'
                WHEN isfinite(list_max(r.action)) AND list_max(r.action) > b.action_hi
                    THEN 'action'
           END AS footer_broken
    FROM read_parquet(files, filename = true, file_row_number = true, hive_partitioning = false) r
    LEFT JOIN file_bounds b ON r.filename = b.source_file
);

CREATE OR REPLACE TEMP TABLE duplicate_rows (
    source_file  VARCHAR NOT NULL,
    source_row   BIGINT NOT NULL
);
