-- Raw scan of requests, kept as the oracle of sql/egress_daily.sql (tests/test_rollups.py, make bench-queries).
-- Egress per day: all bytes served (edge) and origin bytes (cache MISS and PASS), the inputs of
-- the egress budget and forecast. Parameters: $start, $end (inclusive dates).
SELECT
    date,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    CAST(coalesce(sum(bytes) FILTER (WHERE is_origin(cache_state)), 0) AS BIGINT) AS origin_bytes,
    count(*) FILTER (WHERE cache_state IS NOT NULL) AS requests_with_cache_state
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY date
ORDER BY date
