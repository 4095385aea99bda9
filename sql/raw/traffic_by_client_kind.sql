-- Raw scan of requests, kept as the oracle of sql/traffic_by_client_kind.sql (tests/test_rollups.py, make bench-queries).
-- Requests, bytes and approximate unique clients per client kind (apk, curl, browser, ...).
-- Parameters: $start, $end (inclusive dates).
SELECT
    client_kind,
    count(*) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    approx_count_distinct(client_id) AS clients
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY client_kind
ORDER BY requests DESC, client_kind NULLS LAST
