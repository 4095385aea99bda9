-- Egress per day: all bytes served (edge) and origin bytes (cache MISS and PASS), the inputs of
-- the egress budget and forecast. From rollup_day. Parameters: $start, $end (inclusive dates).
SELECT
    date,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    CAST(sum(origin_bytes) AS BIGINT) AS origin_bytes,
    CAST(sum(cache_requests) AS BIGINT) AS requests_with_cache_state
FROM rollup_day
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY date
ORDER BY date
