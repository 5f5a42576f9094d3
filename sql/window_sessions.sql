-- window_sessions.sql: the session links of the window's rows (issue 11): each row's position in
-- its episode, its discounted return-to-go, the row that follows it in the episode and whether it
-- is the episode's last row. drpo_core/warehouse/sessions.py documents the choices; in short:
-- * An episode is the rows of one episode_id in the window (the data a training run sees; rows
--   logged after the window's end are not part of it), ordered by step, then event_id (ties in
--   step). Discounting is by POSITION in that order, not by the step value: steps 0, 2, 7 are
--   positions 0, 1, 2, so a gap in step numbers (a dropped or quarantined row) costs no extra
--   discount and a tie costs one.
-- * return_to_go G_t = sum_{j >= t} gamma^(j - t) r_j, the sum over the episode's later positions.
--   The closed form sum_j gamma^j r_j / gamma^t underflows on long sessions (0.5^1075 = 0 in
--   double), so positions are cut into blocks of $block positions with gamma^($block - 1) >=
--   1e-150: inside a block every weight is gamma^off (off = position - block start) >= 1e-150
--   and the in-block suffix sum is exact up to rounding; block k's head return
--   H_k = S_k + g S_(k+1) + g^2 S_(k+2) (S = a block's sum seen from its start, g = gamma^$block)
--   joins the blocks, and G_t = suffix_t + gamma^($block - off_t) H_(k+1). Left out: the terms
--   more than 3 $block positions ahead, whose weight gamma^(3 $block + 1) < 1e-450 is zero in
--   double (drpo_core/warehouse/sessions.py, block_size), so every term a double can weigh is
--   summed, for sessions of any length. gamma = 0 gives G_t = r_t exactly (block 1, 0^0 = 1).
-- * next_row_id: the row_id of the next position; done = 1.0 on the last position of the
--   episode (whose next_row_id is its own row_id: never NULL, so joins for the next state are
--   inner joins; DuckDB 2.0.0 fails on NULL FLOAT[d] values of a left join in a sorted result),
--   else 0.0. A one-step session: done = 1 and G = r (the bandit case).
-- Parameters: $gamma (DOUBLE in [0, 1)), $block (BIGINT >= 1, sessions.block_size(gamma)), and
--   $start, $end (DATE) when {rows} reads the window of `interactions`.
-- Template field (allow-list in drpo_core/warehouse/sessions.py, never a value):
--   {rows} - a query of (row_id, episode_id, step, event_id, reward): the warehouse window, or
--   the rows of Parquet logs registered as an Arrow table (one SQL for both paths).
-- Creates: TEMP TABLE window_sessions (row_id, episode_pos, return_to_go, next_row_id, done).

CREATE OR REPLACE TEMP TABLE window_sessions AS
WITH ordered AS (
    SELECT row_id, episode_id, reward,
           row_number() OVER episode - 1 AS episode_pos,
           lead(row_id) OVER episode AS lead_row_id
    FROM ({rows})
    WINDOW episode AS (PARTITION BY episode_id ORDER BY step, event_id)
), blocked AS (
    SELECT *, episode_pos // $block AS blk, episode_pos % $block AS off FROM ordered
), suffixes AS (
    -- sum_{j >= t in the block} gamma^(j - t) r_j, as a running sum from the block's end
    SELECT *, sum(reward * pow($gamma, off)) OVER (
                  PARTITION BY episode_id, blk ORDER BY off DESC
                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) / pow($gamma, off) AS suffix
    FROM blocked
), heads AS (
    -- H_k, the return-to-go at block k's first position (blocks are contiguous: lead = k + 1)
    SELECT episode_id, blk,
           suffix + pow($gamma, $block) * (
               coalesce(lead(suffix, 1) OVER blocks, 0.0)
               + pow($gamma, $block) * coalesce(lead(suffix, 2) OVER blocks, 0.0)) AS head_return
    FROM suffixes
    WHERE off = 0
    WINDOW blocks AS (PARTITION BY episode_id ORDER BY blk)
)
SELECT s.row_id, s.episode_pos,
       s.suffix + coalesce(pow($gamma, $block - s.off) * h.head_return, 0.0) AS return_to_go,
       coalesce(s.lead_row_id, s.row_id) AS next_row_id,
       CAST(s.lead_row_id IS NULL AS FLOAT) AS done
FROM suffixes s
LEFT JOIN heads h ON h.episode_id = s.episode_id AND h.blk = s.blk + 1;
