-- ingest_quarantine.sql: every row of the partition that broke a contract rule goes, raw (as
-- JSON), to `quarantine` with the rule and the column. Run in the ingest's transaction after
-- sql/ingest_partition.sql, only when fewer rows were kept than the files hold (a clean
-- partition does not read its files a second time).
-- Parameters: $files, $event_date, $ingest_id, $d_state, $d_action, $policies,
--   $logprob_nullable, $vectors_null_free (as in sql/ingest_partition.sql).
INSERT INTO quarantine (ingest_id, event_date, source_file, source_row, event_id, rule,
                        column_name, raw)
SELECT $ingest_id, $event_date, source_file, source_row, event_id,
       split_part(broken, ':', 1), split_part(broken, ':', 2),
       to_json({'event_id': event_id, 'event_time': event_time, 'event_date': event_date,
                'user_id': user_id, 'episode_id': episode_id, 'step': step,
                'state': state, 'action': action, 'item_id': item_id,
                'reward': reward, 'behavior_logprob': behavior_logprob,
                'logging_policy': logging_policy})
FROM (
    SELECT c.*, coalesce(c.first_broken, d.rule) AS broken
    FROM contract_rows($files, $event_date, $d_state, $d_action, $policies, $logprob_nullable,
                   $vectors_null_free) c
    LEFT JOIN (SELECT *, 'unique:event_id' AS rule FROM duplicate_rows) d
        USING (source_file, source_row)
)
WHERE broken IS NOT NULL;
