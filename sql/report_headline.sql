-- The report's headline numbers for a week: requests, bytes, unique clients (distinct_clients:
-- docs/rollups.md) and origin (cache MISS + PASS) bytes. From rollup_day.
-- Parameters: $start, $end (inclusive dates).
SELECT
    CAST(coalesce(sum(requests), 0) AS BIGINT) AS requests,
    CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes,
    distinct_clients(client_sketch) AS clients,
    CAST(coalesce(sum(origin_bytes), 0) AS BIGINT) AS origin_bytes
FROM rollup_day
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
