-- Raw scan of requests, kept as the oracle of sql/traffic_by_country.sql (tests/test_rollups.py, make bench-queries).
-- Demand map: requests, bytes and approximate unique clients per period, continent and country.
-- Parameters: $start, $end (inclusive dates), $grain ('day' | 'week' | 'month'; weeks are ISO,
-- starting Monday). Unknown places stay NULL.
SELECT
    CAST(date_trunc($grain, date) AS DATE) AS period,
    continent,
    country,
    count(*) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    approx_count_distinct(client_id) AS clients
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY ALL
ORDER BY period, requests DESC, continent NULLS LAST, country NULLS LAST
