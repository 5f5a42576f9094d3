-- window_fingerprint.sql: a fingerprint of the training window and of the weights a sample is
-- drawn with, computed where the data lives (the run key hashes this instead of tensors of the
-- whole window). Order-independent sums of one 64-bit hash per row, two scans, no join:
-- the window's rows (rowid, event_id, reward, behavior_logprob: rowid too, because the draw
-- accumulates the weights in rowid order) and, when filtered, the filter's (row_id, weight).
-- Parameters: $start, $end (DATE).
-- Template field (allow-list in drpo_core/warehouse/sample.py, not a value):
--   {weights} - the scalar query over filter_weights, or 0 for the unfiltered window.
-- Returns: one row (rows, content, weights).

SELECT count(*) AS rows,
       coalesce(sum(CAST(hash(rowid, event_id, reward, behavior_logprob) AS HUGEINT)), 0)
           AS content,
       {weights} AS weights
FROM interactions
WHERE event_date BETWEEN $start AND $end;
