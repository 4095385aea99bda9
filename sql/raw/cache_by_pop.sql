-- Raw scan of requests, kept as the oracle of sql/cache_by_pop.sql (tests/test_rollups.py, make bench-queries).
-- CDN behaviour: per Fastly POP, requests with a cache state, the hit ratio (HIT, HIT-STALE,
-- HIT-CLUSTER...) and the origin bytes (MISS and PASS, with their -CLUSTER variants: the load the
-- T1 mirrors carry). Parameters: $start, $end (inclusive dates).
SELECT
    pop,
    count(*) AS requests,
    round(avg(CASE WHEN is_hit(cache_state) THEN 1.0 ELSE 0.0 END), 4) AS hit_ratio,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    CAST(sum(bytes) FILTER (WHERE is_origin(cache_state)) AS BIGINT) AS origin_bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND cache_state IS NOT NULL
GROUP BY pop
ORDER BY origin_bytes DESC NULLS LAST, pop
