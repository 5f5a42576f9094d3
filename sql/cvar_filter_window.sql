-- cvar_filter_window.sql: before a filter run, how many rows the window holds and which days
-- the warehouse holds at all (for the one-line error on an empty window).
-- Parameters: $start, $end (DATE, inclusive). Read-only.
SELECT count(*) FILTER (WHERE event_date BETWEEN $start AND $end) AS rows_in_window,
       min(event_date) AS first_day, max(event_date) AS last_day
FROM interactions;
