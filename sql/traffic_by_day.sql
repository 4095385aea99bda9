-- Requests, bytes and unique clients (distinct_clients: docs/rollups.md) per day and log source,
-- for a date range. From rollup_day. Parameters: $start, $end (inclusive, YYYY-MM-DD).
SELECT
    date,
    source,
    CAST(sum(requests) AS BIGINT) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    distinct_clients(client_sketch) AS clients,
    CAST(sum(client_errors + server_errors) AS BIGINT) AS errors
FROM rollup_day
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY date, source
ORDER BY date, source
