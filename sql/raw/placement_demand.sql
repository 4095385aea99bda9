-- Raw scan of requests, kept as the oracle of sql/placement_demand.sql (tests/test_rollups.py, make bench-queries).
-- Client demand for mirror placement: bytes per client location (latitude/longitude rounded to a
-- 1-degree grid, enough for latency estimates). Parameters: $start, $end (inclusive dates).
SELECT
    round(latitude) AS latitude,
    round(longitude) AS longitude,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    count(*) AS requests
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND latitude IS NOT NULL
GROUP BY 1, 2
ORDER BY bytes DESC, latitude, longitude
