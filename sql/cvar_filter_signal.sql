-- cvar_filter_signal.sql: the value the CVaR filter ranks when it is not the logged reward
-- (issue 11's quality signal; cvar_filter.sql then reads this table instead of interactions).
-- G is the row's return-to-go with gamma (window_returns.return_to_go, sql/window_returns.sql);
-- at gamma = 0, G is the logged reward and no session table is read.
-- * quality = return: G.
-- * quality = advantage: G minus the mean of G over the window's rows of the same user_id in
--   the same filter partition (the partition_by key: the whole window for none, the day for
--   event_date, the user's segment for segment, which holds all of a user's rows). The mean is
--   the SQL's stand-in for the state value V(s): adding a constant to every reward of a user
--   (at gamma = 0; at gamma > 0, to every G of the user) leaves the value, hence the kept set and
--   the weights, unchanged. A user's single row in a partition has advantage 0.
-- Ties and weights are then those of the reward today (Theorem 4.1's rule in cvar_filter*.sql).
-- Parameters: $start, $end (DATE), $n_segments (INTEGER, segment partitions).
-- Template fields (allow-lists in drpo_core/warehouse/cvar_filter.py, never values):
--   {signal} - the value's SQL expression; {sessions} - the join of window_returns, or nothing;
--   {partition_key} - the partition's SQL expression (as in cvar_filter.sql).
-- Creates: TEMP TABLE filter_signal (row_id = interactions.rowid, event_date, user_id, reward =
--   the signal), read by cvar_filter*.sql through their {rows} field.

CREATE OR REPLACE TEMP TABLE filter_signal AS
SELECT i.rowid AS row_id, i.event_date, i.user_id, {signal} AS reward
FROM interactions i {sessions}
WHERE i.event_date BETWEEN $start AND $end;
