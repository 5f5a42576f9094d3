-- heldout_rows.sql: a seeded sample of one held-out day for the off-policy estimate.
-- Parameters: $event_date (DATE) the held-out day, $n_rows (BIGINT) the most rows returned,
--   $seed (BIGINT) which sample. The sample is the n_rows rows of smallest hash(event_id, seed)
--   (a top-n, so memory is bounded by the sample, not the day), returned in event_id order:
--   the same day, n_rows and seed always give the same rows.
SELECT event_id, state, item_id, reward, behavior_logprob
FROM (
    SELECT event_id, state, item_id, reward, behavior_logprob
    FROM interactions
    WHERE event_date = $event_date
    ORDER BY hash(event_id, $seed), event_id
    LIMIT $n_rows
)
ORDER BY event_id;
