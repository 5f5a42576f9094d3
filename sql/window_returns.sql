-- window_returns.sql: the discounted return-to-go of every row of window_sessions (issue 11;
-- sql/window_sessions.sql orders the episodes and documents the episode and position rules).
-- G_t = sum_{j >= t} gamma^(j - t) r_j, the sum over the episode's later positions.
-- The closed form sum_j gamma^j r_j / gamma^t underflows on long sessions (0.5^1075 = 0 in
-- double), so positions are cut into blocks of $block positions with gamma^($block - 1) >=
-- 1e-150: inside a block every weight is gamma^off (off = position - block start) >= 1e-150
-- and the in-block suffix sum is exact up to rounding; block k's head return
-- H_k = S_k + g S_(k+1) + g^2 S_(k+2) (S = a block's sum seen from its start, g = gamma^$block)
-- joins the blocks, and G_t = suffix_t + gamma^($block - off_t) H_(k+1). Left out: the terms
-- more than 3 $block positions ahead, whose weight gamma^(3 $block + 1) < 1e-450 is zero in
-- double (drpo_core/warehouse/sessions.py, block_size), so every term a double can weigh is
-- summed, for sessions of any length. gamma = 0 gives G_t = r_t exactly (block 1, 0^0 = 1).
-- Parameters: $gamma (DOUBLE in [0, 1)), $block (BIGINT >= 1, sessions.block_size(gamma)).
-- Reads: TEMP TABLE window_sessions. Creates: TEMP TABLE window_returns (row_id, return_to_go).

CREATE OR REPLACE TEMP TABLE window_returns AS
WITH suffixes AS (
    -- sum_{j >= t in the block} gamma^(j - t) r_j, as a running sum from the block's end
    SELECT row_id, episode_id, blk, off,
           sum(reward * pow($gamma, off)) OVER (
               PARTITION BY episode_id, blk ORDER BY off DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) / pow($gamma, off) AS suffix
    FROM (SELECT *, episode_pos // $block AS blk, episode_pos % $block AS off
          FROM window_sessions)
), heads AS (
    -- H_k, the return-to-go at block k's first position (blocks are contiguous: lead = k + 1)
    SELECT episode_id, blk,
           suffix + pow($gamma, $block) * (
               coalesce(lead(suffix, 1) OVER blocks, 0.0)
               + pow($gamma, $block) * coalesce(lead(suffix, 2) OVER blocks, 0.0)) AS head_return
    FROM suffixes
    WHERE off = 0 AND blk > 0  -- H_0 is never used: the table is empty unless an episode is long
    WINDOW blocks AS (PARTITION BY episode_id ORDER BY blk)
)
SELECT s.row_id,
       s.suffix + coalesce(pow($gamma, $block - s.off) * h.head_return, 0.0) AS return_to_go
FROM suffixes s
LEFT JOIN heads h ON h.episode_id = s.episode_id AND h.blk = s.blk + 1;
