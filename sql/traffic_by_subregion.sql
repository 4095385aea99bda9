-- Demand map: requests, bytes and unique clients (distinct_clients: docs/rollups.md) per period
-- and UN M49 sub-region. From rollup_place. Parameters: $start, $end (inclusive dates), $grain
-- ('day' | 'week' | 'month').
SELECT
    CAST(date_trunc($grain, date) AS DATE) AS period,
    continent,
    subregion,
    CAST(sum(requests) AS BIGINT) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    distinct_clients(client_sketch) AS clients
FROM rollup_place
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY ALL
ORDER BY period, requests DESC, continent NULLS LAST, subregion NULLS LAST
