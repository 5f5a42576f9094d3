-- ingest_quarantine_counts.sql: the rows one ingest quarantined, by 'rule:column'.
-- Parameters: $ingest_id (VARCHAR). Read-only.
SELECT rule || ':' || column_name, count(*)
FROM quarantine
WHERE ingest_id = $ingest_id
GROUP BY ALL
ORDER BY ALL;
