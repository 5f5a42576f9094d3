-- ingest_partition.sql: replace one event_date partition of `interactions` with the partition's
-- valid rows. Run by drpo_core.warehouse.ingest inside ONE transaction, after
-- sql/ingest_rules.sql (contract_rows, duplicate_rows) and before sql/ingest_quarantine.sql:
-- re-running a date replaces exactly that date; on any error the transaction rolls back and
-- the database is exactly as before.
-- Parameters: $files (VARCHAR[] of Parquet paths of the partition), $event_date (DATE),
--   $ingest_id (VARCHAR), $d_state, $d_action (INTEGER), $policies (VARCHAR[] allowed
--   logging_policy values), $logprob_nullable (BOOLEAN),
--   $vectors_null_free (BOOLEAN: the footers count no null state/action element).
-- The Parquet files are read once, straight into the table: no staging copy, and in file order:
-- one sorted stream is cut into full row groups but for the last, where the parallel read
-- left a partial one per Parquet row group that the next checkpoint merged into its
-- neighbours, rewriting them (benchmarks/data_bench.py prints the share of blocks each final
-- CHECKPOINT rewrote). Duplicate
-- event_ids are looked for afterwards, in event_index (sql/ingest_duplicate_check.sql); when
-- there are any the caller rolls back, fills duplicate_rows exactly and runs this again.

DELETE FROM interactions WHERE event_date = $event_date;

DELETE FROM quarantine WHERE event_date = $event_date;

DELETE FROM event_index WHERE event_date = $event_date;

INSERT INTO interactions
SELECT event_id, event_time, event_date, user_id, episode_id, step, state, action, item_id,
       reward, behavior_logprob, logging_policy, $ingest_id
FROM contract_rows($files, $event_date, $d_state, $d_action, $policies, $logprob_nullable,
                   $vectors_null_free)
ANTI JOIN duplicate_rows USING (source_file, source_row)
WHERE first_broken IS NULL
ORDER BY source_file, source_row;

INSERT INTO event_index
SELECT hash(event_id), event_date FROM interactions WHERE event_date = $event_date;
