-- Raw scan of requests, kept as the oracle of sql/traffic_by_subregion.sql (tests/test_rollups.py, make bench-queries).
-- Demand map: requests, bytes and approximate unique clients per period and UN M49 sub-region.
-- Parameters: $start, $end (inclusive dates), $grain ('day' | 'week' | 'month').
SELECT
    CAST(date_trunc($grain, date) AS DATE) AS period,
    continent,
    subregion,
    count(*) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    approx_count_distinct(client_id) AS clients
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY ALL
ORDER BY period, requests DESC, continent NULLS LAST, subregion NULLS LAST
