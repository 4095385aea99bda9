-- CDN behaviour: per Fastly POP, requests with a cache state, the hit ratio (HIT, HIT-STALE,
-- HIT-CLUSTER...) and the origin bytes (MISS and PASS, with their -CLUSTER variants: the load the
-- T1 mirrors carry). From rollup_cdn. Parameters: $start, $end (inclusive dates).
SELECT
    pop,
    CAST(sum(requests) AS BIGINT) AS requests,
    round(sum(hits) / sum(requests), 4) AS hit_ratio,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    CAST(sum(origin_bytes) FILTER (WHERE is_origin(cache_state)) AS BIGINT) AS origin_bytes
FROM rollup_cdn
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND cache_state IS NOT NULL
GROUP BY pop
ORDER BY origin_bytes DESC NULLS LAST, pop
