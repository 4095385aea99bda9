-- Origin demand for mirror placement: the bytes Fastly POPs fetch from the origin (cache MISS and
-- PASS), at each POP's location: what the T1 mirrors carry. From rollup_cdn.
-- Parameters: $start, $end.
SELECT
    p.latitude,
    p.longitude,
    r.pop,
    CAST(sum(r.origin_bytes) AS BIGINT) AS bytes,
    CAST(sum(r.origin_requests) AS BIGINT) AS requests
FROM rollup_cdn r JOIN pops p USING (pop)
WHERE r.date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
    AND is_origin(r.cache_state)
GROUP BY ALL
ORDER BY bytes DESC, r.pop
