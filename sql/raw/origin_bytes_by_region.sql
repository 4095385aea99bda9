-- Raw scan of requests, kept as the oracle of sql/origin_bytes_by_region.sql (tests/test_rollups.py, make bench-queries).
-- Origin (miss + pass) bytes and hit ratio per client continent and country: where the T1 load
-- comes from. Parameters: $start, $end (inclusive dates).
SELECT
    continent,
    country,
    count(*) AS requests,
    round(avg(CASE WHEN is_hit(cache_state) THEN 1.0 ELSE 0.0 END), 4) AS hit_ratio,
    CAST(coalesce(sum(bytes) FILTER (WHERE is_origin(cache_state)), 0) AS BIGINT) AS origin_bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND cache_state IS NOT NULL
GROUP BY ALL
ORDER BY origin_bytes DESC, continent NULLS LAST, country NULLS LAST
