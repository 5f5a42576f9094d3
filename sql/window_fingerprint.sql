-- window_fingerprint.sql: a content fingerprint of the training window, computed where the data
-- lives (the run key hashes this instead of tensors of the whole window). Order-independent:
-- the sum of one 64-bit hash per row over (event_id, reward, behavior_logprob, weight);
-- event_id is the contract's immutable row key, the weight the last filter's density ratio.
-- Parameters: $start, $end (DATE).
-- Template field (allow-list, not a value): {source} - a query of (row_id, weight).
-- Returns: one row (rows, hash_sum).

SELECT count(*) AS rows,
       coalesce(sum(CAST(hash(i.event_id, i.reward, i.behavior_logprob, s.weight) AS HUGEINT)),
                0) AS hash_sum
FROM ({source}) s JOIN interactions i ON i.rowid = s.row_id
WHERE i.event_date BETWEEN $start AND $end;
