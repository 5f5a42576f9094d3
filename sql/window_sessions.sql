-- window_sessions.sql: the episode links of the window's rows (issue 11): each row's position
-- in its episode, the row that follows it and whether it is the episode's last row (one sort);
-- sql/window_returns.sql computes the discounted return-to-go from them when it is needed.
-- drpo_core/warehouse/sessions.py documents the choices; in short:
-- * An episode is the rows of one episode_id in the window (the data a training run sees; rows
--   logged after the window's end are not part of it), ordered by step, then event_id (ties in
--   step). Discounting (window_returns.sql) is by POSITION in that order, not by the step value:
--   steps 0, 2, 7 are positions 0, 1, 2, so a gap in step numbers (a dropped or quarantined
--   row) costs no extra discount and a tie costs one.
-- * next_row_id: the row_id of the next position; done = 1.0 on the last position of the
--   episode (whose next_row_id is its own row_id: never NULL, so joins for the next state are
--   inner joins; DuckDB 2.0.0 fails on NULL FLOAT[d] values of a left join in a sorted result),
--   else 0.0. A one-step session: done = 1 (and its return is its reward: the bandit case).
-- Parameters: $start, $end (DATE) when {rows} reads the window of `interactions`.
-- Template field (allow-list in drpo_core/warehouse/sessions.py, never a value):
--   {rows} - a query of (row_id, episode_id, step, event_id, reward): the warehouse window, or
--   the rows of Parquet logs registered as an Arrow table (one SQL for both paths).
-- Creates: TEMP TABLE window_sessions (row_id, episode_id, reward, episode_pos, next_row_id,
--   done).

CREATE OR REPLACE TEMP TABLE window_sessions AS
SELECT row_id, episode_id, reward, episode_pos,
       coalesce(lead_row_id, row_id) AS next_row_id,
       CAST(lead_row_id IS NULL AS FLOAT) AS done
FROM (
    SELECT row_id, episode_id, reward,
           row_number() OVER episode - 1 AS episode_pos,
           lead(row_id) OVER episode AS lead_row_id
    FROM ({rows})
    WINDOW episode AS (PARTITION BY episode_id ORDER BY step, event_id)
);
