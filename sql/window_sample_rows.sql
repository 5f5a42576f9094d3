-- window_sample_rows.sql: the window's rows that a training sample drew, each once, in no
-- particular order (a hash join of the distinct drawn row ids against the window, so DuckDB
-- never sorts the wide rows; drpo_core/warehouse/sample.py restores the draw order).
-- Parameters: $start, $end (DATE). Reads the registered Arrow table sample_rows_arrow(row_id).
-- Template fields (from drpo_core/warehouse/sample.py, never values): {columns} - the columns
-- fetched (i.state, i.action, i.reward, i.behavior_logprob or i.reward; with DataNeeds the
-- return-to-go wr.return_to_go AS reward, and next_state, done from the episode links);
-- {joins} - nothing, or the joins of window_returns wr, window_sessions ws and the next row nx.
SELECT d.row_id, {columns}
FROM sample_rows_arrow d
JOIN interactions i ON i.rowid = d.row_id{joins}
WHERE i.event_date BETWEEN $start AND $end
