-- item_catalogue.sql: the item catalogue as logged up to a date: one embedding per item_id.
-- Parameters: $until (DATE) the last event_date looked at. Deterministic: an item logged with
--   several embeddings takes the one of its first event (event_date, event_id).
SELECT item_id, arg_min(action, (event_date, event_id)) AS action
FROM interactions
WHERE event_date <= $until
GROUP BY item_id
ORDER BY item_id;
