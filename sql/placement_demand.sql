-- Client demand for mirror placement: bytes per client location (latitude/longitude rounded to a
-- 1-degree grid, enough for latency estimates). From rollup_location.
-- Parameters: $start, $end (inclusive dates).
SELECT
    latitude,
    longitude,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    CAST(sum(requests) AS BIGINT) AS requests
FROM rollup_location
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND latitude IS NOT NULL
GROUP BY 1, 2
ORDER BY bytes DESC, latitude, longitude
