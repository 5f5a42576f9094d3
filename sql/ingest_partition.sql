-- ingest_partition.sql: load one event_date partition into `interactions`, quarantining every
-- row that breaks the log contract. Run inside ONE transaction by drpo_core.warehouse.ingest:
-- re-running a date replaces exactly that date; on any error the transaction rolls back and
-- the database is exactly as before.
-- Parameters: $files (VARCHAR[] of Parquet paths of the partition), $event_date (DATE),
--   $ingest_id (VARCHAR), $d_state, $d_action (INTEGER), $policies (VARCHAR[] allowed
--   logging_policy values), $logprob_nullable (BOOLEAN).

-- 1. Stage every row with its position and the first rule it breaks. The Parquet files are
--    read once: the inserts below copy from this temp table (spilled beyond DuckDB's memory
--    limit), which measured faster than reading the files again.
CREATE OR REPLACE TEMP TABLE staged AS
WITH raw AS (
    SELECT * EXCLUDE (filename, file_row_number),
           filename AS source_file, file_row_number AS source_row
    FROM read_parquet($files, filename = true, file_row_number = true)
), checked AS (
    SELECT *,
        CASE
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
            WHEN behavior_logprob IS NULL AND NOT $logprob_nullable
                THEN 'not_null:behavior_logprob'
            WHEN len(state) <> $d_state THEN 'dimension:state'
            WHEN len(action) <> $d_action THEN 'dimension:action'
            -- all elements present and finite <=> no null element and a finite sum (a NaN or
            -- inf element makes the sum NaN or inf; list_sum of FLOAT accumulates in DOUBLE,
            -- which float32 values cannot overflow)
            WHEN list_count(state) <> len(state) OR NOT isfinite(list_sum(state))
                THEN 'finite:state'
            WHEN list_count(action) <> len(action) OR NOT isfinite(list_sum(action))
                THEN 'finite:action'
            WHEN NOT isfinite(reward) THEN 'finite:reward'
            WHEN behavior_logprob IS NOT NULL AND NOT isfinite(behavior_logprob)
                THEN 'finite:behavior_logprob'
            WHEN behavior_logprob > 0 THEN 'logprob_nonpositive:behavior_logprob'
            WHEN step < 0 THEN 'step_nonnegative:step'
            WHEN event_date <> $event_date THEN 'partition_date:event_date'
            WHEN CAST(event_time AS DATE) <> $event_date THEN 'event_time_in_day:event_time'
            WHEN NOT list_contains($policies, logging_policy)
                THEN 'logging_policy_allowed:logging_policy'
        END AS broken
    FROM raw
)
SELECT * EXCLUDE (broken), broken AS first_broken FROM checked;

-- 2. Within the partition, every copy of an event_id after its first is a duplicate (a hash
--    aggregate finds the few repeated ids; only those rows are ranked).
UPDATE staged SET first_broken = 'unique:event_id'
FROM (
    SELECT source_file, source_row FROM (
        SELECT source_file, source_row,
               row_number() OVER (PARTITION BY event_id ORDER BY source_file, source_row) AS k
        FROM staged
        WHERE event_id IN (SELECT event_id FROM staged WHERE first_broken IS NULL
                           GROUP BY event_id HAVING count(*) > 1)
          AND first_broken IS NULL)
    WHERE k > 1
) AS dup
WHERE staged.source_file = dup.source_file AND staged.source_row = dup.source_row;

-- 3. Rows whose event_id is already stored under another date are duplicates across files.
--    The dates whose event_index hashes match one of this partition's ids (almost always none)
--    are the only ones whose stored event_id strings are read, to confirm exactly.
CREATE OR REPLACE TEMP TABLE suspect_dates AS
SELECT DISTINCT e.event_date
FROM event_index e SEMI JOIN staged s ON e.event_hash = hash(s.event_id)
WHERE e.event_date <> $event_date;

UPDATE staged SET first_broken = 'unique:event_id'
FROM (SELECT DISTINCT i.event_id
      FROM interactions i SEMI JOIN suspect_dates d USING (event_date)
      SEMI JOIN staged s USING (event_id)) AS seen
WHERE staged.first_broken IS NULL AND staged.event_id = seen.event_id;

-- 4. Replace exactly this date.
DELETE FROM interactions WHERE event_date = $event_date;

DELETE FROM quarantine WHERE event_date = $event_date;

DELETE FROM event_index WHERE event_date = $event_date;

INSERT INTO event_index
SELECT hash(event_id), event_date FROM staged WHERE first_broken IS NULL;

INSERT INTO interactions
SELECT event_id, event_time, event_date, user_id, episode_id, step, state, action, item_id,
       reward, behavior_logprob, logging_policy, $ingest_id
FROM staged WHERE first_broken IS NULL;

INSERT INTO quarantine (ingest_id, event_date, source_file, source_row, event_id, rule,
                        column_name, raw)
SELECT $ingest_id, $event_date, source_file, source_row, event_id,
       split_part(first_broken, ':', 1), split_part(first_broken, ':', 2),
       to_json({'event_id': event_id, 'event_time': event_time, 'event_date': event_date,
                'user_id': user_id, 'episode_id': episode_id, 'step': step,
                'state': state, 'action': action, 'item_id': item_id,
                'reward': reward, 'behavior_logprob': behavior_logprob,
                'logging_policy': logging_policy})
FROM staged WHERE first_broken IS NOT NULL;
