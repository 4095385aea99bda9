-- Raw scan of requests, kept as the oracle of sql/placement_origin_demand.sql (tests/test_rollups.py, make bench-queries).
-- Origin demand for mirror placement: the bytes Fastly POPs fetch from the origin (cache MISS and
-- PASS), at each POP's location: what the T1 mirrors carry. Parameters: $start, $end.
SELECT
    p.latitude,
    p.longitude,
    r.pop,
    CAST(sum(r.bytes) AS BIGINT) AS bytes,
    count(*) AS requests
FROM requests r JOIN pops p USING (pop)
WHERE r.date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
    AND is_origin(r.cache_state)
GROUP BY ALL
ORDER BY bytes DESC, r.pop
