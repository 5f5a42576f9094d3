-- ingest_duplicates.sql: the exact unique:event_id rule, run when sql/ingest_duplicate_check.sql
-- found a possible duplicate (the caller has rolled back and runs sql/ingest_partition.sql again
-- after this). Fills duplicate_rows with
-- * every copy of an event_id after its first (by source_file, source_row) among the
--   partition's otherwise valid rows, and
-- * every valid row whose event_id is already stored under another date.
-- Parameters: $files, $event_date, $d_state, $d_action, $policies, $logprob_nullable,
--   $vectors_null_free.

CREATE OR REPLACE TEMP TABLE valid_ids AS
SELECT source_file, source_row, event_id
FROM contract_rows($files, $event_date, $d_state, $d_action, $policies, $logprob_nullable,
                   $vectors_null_free)
WHERE first_broken IS NULL;

-- The dates whose event_index hashes match one of the partition's ids are the only ones whose
-- stored event_id strings are read, to confirm exactly.
INSERT INTO duplicate_rows
SELECT source_file, source_row FROM (
    SELECT source_file, source_row,
           row_number() OVER (PARTITION BY event_id ORDER BY source_file, source_row) AS copy
    FROM valid_ids
    WHERE event_id IN (SELECT event_id FROM valid_ids GROUP BY event_id HAVING count(*) > 1)
)
WHERE copy > 1
UNION
SELECT source_file, source_row
FROM valid_ids SEMI JOIN (
    SELECT event_id FROM interactions
    WHERE event_date <> $event_date
      AND event_date IN (SELECT e.event_date FROM event_index e
                         SEMI JOIN valid_ids v ON e.event_hash = hash(v.event_id)
                         WHERE e.event_date <> $event_date)
) USING (event_id);

DROP TABLE valid_ids;
