-- Raw scan of requests, kept as the oracle of sql/traffic_by_day.sql (tests/test_rollups.py, make bench-queries).
-- Requests, bytes and approximate unique clients per day and log source, for a date range.
-- Parameters: $start, $end (inclusive, YYYY-MM-DD).
SELECT
    date,
    source,
    count(*) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    approx_count_distinct(client_id) AS clients,
    count(*) FILTER (WHERE status >= 400) AS errors
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY date, source
ORDER BY date, source
