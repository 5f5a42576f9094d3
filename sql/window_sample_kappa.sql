-- window_sample_kappa.sql: an objective's dataset-level top-kappa (filtered_bc) over the rows a
-- sample is drawn from, with the project's one tie rule (drpo_core/filtering.py, as
-- cvar_filter.sql): n rows with positive weight, the cut at descending rank
-- k = ceil(kappa n) (at least 1), rows above it keep their weight, rows tied at it keep the
-- share (kappa n - rows_above) / rows_at of it, rows below none. The rows are counted, not
-- weighted, exactly as the in-memory trainer's prepare() does on the exported rows.
-- The value ranked is the row's reward as the sample carries it: the logged reward, or with
-- DataNeeds.return_gamma its return-to-go (window_returns wr, sql/window_returns.sql), as the
-- in-memory trainer ranks the exported reward column.
-- Parameters: $start, $end (DATE), $kappa (DOUBLE in (0, 1)), $k (BIGINT, ceil(kappa n)).
-- Template fields (allow-lists in drpo_core/warehouse/sample.py, not values): {source} - a query
--   of (row_id, weight); {reward} - i.reward or wr.return_to_go; {sessions} - nothing or the
--   join of window_returns wr.
-- Creates: TEMP TABLE sample_cut (cut, share), one row.

CREATE OR REPLACE TEMP TABLE sample_cut AS
WITH kept AS (
    SELECT {reward} AS reward
    FROM ({source}) s JOIN interactions i ON i.rowid = s.row_id{sessions}
    WHERE s.weight > 0 AND i.event_date BETWEEN $start AND $end
), cut AS (
    SELECT min(reward) AS cut FROM (SELECT reward FROM kept ORDER BY reward DESC LIMIT $k)
)
SELECT c.cut,
       least(1.0, greatest(0.0, ($kappa * count(*) - count(*) FILTER (WHERE k.reward > c.cut))
                                / count(*) FILTER (WHERE k.reward = c.cut))) AS share
FROM kept k, cut c
GROUP BY c.cut;
