-- Origin (miss + pass) bytes and hit ratio per client continent and country: where the T1 load
-- comes from. From rollup_place. Parameters: $start, $end (inclusive dates).
SELECT
    continent,
    country,
    CAST(sum(cache_requests) AS BIGINT) AS requests,
    round(sum(hits) / sum(cache_requests), 4) AS hit_ratio,
    CAST(sum(origin_bytes) AS BIGINT) AS origin_bytes
FROM rollup_place
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY ALL
HAVING sum(cache_requests) > 0
ORDER BY origin_bytes DESC, continent NULLS LAST, country NULLS LAST
